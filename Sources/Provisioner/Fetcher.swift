import COpenSSL
import Provisioning

/// Fetches one URL's body over HTTP or HTTPS, following a few redirects.
public struct Fetcher: Sendable {
    /// Seconds for the connect and for each read or write.
    public var timeout: Int32 = 15
    /// The largest body accepted.
    public var bodyLimit = 64 << 20
    /// How HTTPS servers are judged.
    public var trust: TLSTrust

    public init(trust: TLSTrust) {
        self.trust = trust
    }

    /// The body of a 200 response. An error status is `.unreachable` (the
    /// boot server may not have the bundle yet); a redirect from HTTPS to
    /// HTTP is refused unless the content is pinned.
    public func fetch(_ url: FetchURL) throws(FetchError) -> [UInt8] {
        var current = url
        for _ in 0...4 {
            let response = try get(current)
            switch response.status {
            case 200:
                return response.body
            case 301, 302, 303, 307, 308:
                guard let location = response.header("location") else {
                    throw .untrusted("\(current): redirect \(response.status) without a Location")
                }
                let next: FetchURL
                do {
                    next = try current.resolving(location)
                } catch {
                    throw .untrusted("\(current): redirect to \(location): \(error)")
                }
                if current.scheme == .https && next.scheme == .http && trust != .contentPinned {
                    throw .untrusted("\(current): redirect from HTTPS to plain HTTP (\(next))")
                }
                current = next
            default:
                throw .unreachable("\(current): HTTP \(response.status) \(response.reason)")
            }
        }
        throw .untrusted("\(url): more than 4 redirects")
    }

    private func get(_ url: FetchURL) throws(FetchError) -> HTTPResponseParser.Response {
        let tcp = try TCPConnection.open(host: url.host, port: url.port, timeout: timeout)
        let connection: any Connection =
            url.scheme == .https ? try TLSConnection(over: tcp, host: url.host, trust: trust) : tcp
        defer { connection.close() }
        try connection.send(url.request)
        var parser = HTTPResponseParser(bodyLimit: bodyLimit)
        do {
            while true {
                let bytes = try connection.receive(limit: 64 << 10)
                if bytes.isEmpty { return try parser.finish() }
                if let response = try parser.feed(bytes) { return response }
            }
        } catch let error as HTTPResponseParser.Error {
            if error == .truncated { throw .unreachable("\(url): \(error)") }
            throw .untrusted("\(url): \(error)")
        } catch let error as FetchError {
            throw error
        } catch {
            throw .unreachable("\(url): \(error)")
        }
    }
}

/// SHA-256 of some bytes, as 64 lower-case hex digits (OpenSSL).
public func sha256Hex(_ bytes: [UInt8]) -> String {
    var digest = [UInt8](repeating: 0, count: 32)
    var length: UInt32 = 32
    _ = bytes.withUnsafeBytes { input in
        EVP_Digest(input.baseAddress, input.count, &digest, &length, EVP_sha256(), nil)
    }
    let hex = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    for byte in digest {
        text.append(hex[Int(byte >> 4)])
        text.append(hex[Int(byte & 15)])
    }
    return String(decoding: text, as: UTF8.self)
}
