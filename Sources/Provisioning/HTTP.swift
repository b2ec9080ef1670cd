/// The parts of HTTP/1.1 a bundle fetch needs, as pure functions: the URL,
/// the request bytes, and the response read incrementally from whatever
/// the transport (TCP or TLS) delivers.
public struct FetchURL: Sendable, Equatable, CustomStringConvertible {
    public enum Scheme: String, Sendable { case http, https }

    public var scheme: Scheme
    /// A DNS name or an IPv4 address, or an IPv6 address without brackets.
    public var host: String
    public var port: UInt16
    /// The request target: path and query, at least `/`.
    public var target: String

    public var description: String {
        let bracketed = host.contains(":") ? "[\(host)]" : host
        let defaultPort: UInt16 = scheme == .http ? 80 : 443
        return "\(scheme.rawValue)://\(bracketed)\(port == defaultPort ? "" : ":\(port)")\(target)"
    }

    /// Why a URL is not one we fetch.
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Parses `http[s]://HOST[:PORT][/PATH]`; user info and fragments are
    /// refused (a boot server needs neither), as are spaces and controls.
    public init(_ text: String) throws(Problem) {
        guard text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw Problem(message: "\(text): spaces, controls or non-ASCII in the URL")
        }
        guard let colon = text.firstIndex(of: ":"), text[colon...].hasPrefix("://"),
            let scheme = Scheme(rawValue: text[..<colon].lowercased())
        else { throw Problem(message: "\(text): not an http:// or https:// URL") }
        let rest = text[text.index(colon, offsetBy: 3)...]
        let authorityEnd =
            rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var target = String(rest[authorityEnd...])
        guard !target.contains("#") else {
            throw Problem(message: "\(text): a fragment in the URL")
        }
        if target.isEmpty { target = "/" } else if target.hasPrefix("?") { target = "/" + target }
        guard !authority.contains("@") else {
            throw Problem(message: "\(text): user information in the URL is not supported")
        }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw Problem(message: "\(text): unclosed [ in the host")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw Problem(message: "\(text): bad host") }
                portText = after.dropFirst()
            }
        } else if let colon = authority.firstIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else { throw Problem(message: "\(text): no host") }
        var port: UInt16 = scheme == .http ? 80 : 443
        if let portText {
            guard !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = UInt16(portText), value != 0
            else { throw Problem(message: "\(text): port \(portText) is not 1-65535") }
            port = value
        }
        self.scheme = scheme
        self.host = String(host)
        self.port = port
        self.target = target
    }

    /// A `Location` header's value resolved against this URL (absolute
    /// URLs and absolute paths).
    public func resolving(_ location: String) throws(Problem) -> FetchURL {
        if location.hasPrefix("/") && !location.hasPrefix("//") {
            var next = self
            next.target = location
            return next
        }
        return try FetchURL(location)
    }

    /// The GET request, closing the connection after the response.
    public var request: [UInt8] {
        let bracketed = host.contains(":") ? "[\(host)]" : host
        let defaultPort: UInt16 = scheme == .http ? 80 : 443
        let hostHeader = port == defaultPort ? bracketed : "\(bracketed):\(port)"
        return Array(
            ("GET \(target) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: proxenos\r\n"
                + "Accept: */*\r\nConnection: close\r\n\r\n").utf8)
    }
}

/// An HTTP/1.x response, parsed as its bytes arrive: the head (status and
/// headers), then a body delimited by Content-Length, chunked coding, or
/// the end of the connection. Bounded: the head at 16 KiB, the body at
/// `bodyLimit`.
public struct HTTPResponseParser: Sendable {
    public enum Error: Swift.Error, Sendable, Equatable, CustomStringConvertible {
        case headTooLong
        case malformedStatusLine(String)
        case malformedHeader(String)
        case badContentLength(String)
        case bodyTooLarge(limit: Int)
        case malformedChunk
        case unsupportedTransferEncoding(String)
        case truncated

        public var description: String {
            switch self {
            case .headTooLong: return "the response's head is longer than 16 KiB"
            case .malformedStatusLine(let line): return "malformed status line: \(line)"
            case .malformedHeader(let line): return "malformed header line: \(line)"
            case .badContentLength(let value): return "bad Content-Length: \(value)"
            case .bodyTooLarge(let limit): return "the body is larger than \(limit) bytes"
            case .malformedChunk: return "malformed chunked body"
            case .unsupportedTransferEncoding(let value):
                return "unsupported Transfer-Encoding: \(value)"
            case .truncated: return "the connection closed before the whole body arrived"
            }
        }
    }

    /// A complete response.
    public struct Response: Sendable, Equatable {
        public var status: Int
        public var reason: String
        /// Header names in lower case, in order.
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        public func header(_ name: String) -> String? {
            headers.first(where: { $0.name == name.lowercased() })?.value
        }

        public static func == (lhs: Response, rhs: Response) -> Bool {
            lhs.status == rhs.status && lhs.reason == rhs.reason && lhs.body == rhs.body
                && lhs.headers.elementsEqual(rhs.headers, by: { $0 == $1 })
        }
    }

    private enum Framing {
        case length(Int)
        case chunked
        case untilClose
    }

    private enum State {
        case head
        case body(Framing)
        case chunkSize
        case chunkData(Int)
        case chunkDataEnd
        case trailer
        case done
    }

    public let bodyLimit: Int
    private var buffer: [UInt8] = []
    private var state = State.head
    private var status = 0
    private var reason = ""
    private var headers: [(name: String, value: String)] = []
    private var body: [UInt8] = []

    public init(bodyLimit: Int) {
        self.bodyLimit = bodyLimit
    }

    /// Feeds received bytes; returns the response once it is complete.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(Error) -> Response? {
        buffer.append(contentsOf: bytes)
        return try advance()
    }

    /// The connection closed: the response if it is complete now.
    public mutating func finish() throws(Error) -> Response {
        if let response = try advance() { return response }
        if case .body(.untilClose) = state { return response() }
        throw .truncated
    }

    private func response() -> Response {
        Response(status: status, reason: reason, headers: headers, body: body)
    }

    private mutating func takeLine() throws(Error) -> String? {
        guard let newline = buffer.firstIndex(of: 0x0a) else {
            if buffer.count > 16 << 10 { throw .headTooLong }
            return nil
        }
        var line = buffer[..<newline]
        if line.last == 0x0d { line = line.dropLast() }
        buffer.removeSubrange(...newline)
        return String(decoding: line, as: UTF8.self)
    }

    private mutating func appendBody(_ bytes: ArraySlice<UInt8>) throws(Error) {
        guard body.count + bytes.count <= bodyLimit else { throw .bodyTooLarge(limit: bodyLimit) }
        body.append(contentsOf: bytes)
    }

    private mutating func advance() throws(Error) -> Response? {
        var headBytes = 0
        while true {
            switch state {
            case .done:
                return response()
            case .head:
                let before = buffer.count
                guard let line = try takeLine() else { return nil }
                headBytes += before - buffer.count
                if headBytes > 16 << 10 { throw .headTooLong }
                if status == 0 {
                    let parts = line.split(
                        separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
                    guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].count == 3,
                        let code = Int(parts[1]), code >= 100
                    else { throw .malformedStatusLine(line) }
                    status = code
                    reason = parts.count > 2 ? String(parts[2]) : ""
                    continue
                }
                if line.isEmpty {
                    // 1xx: an interim response; the real one follows.
                    if status < 200 {
                        status = 0
                        headers = []
                        continue
                    }
                    state = .body(try framing())
                    if case .body(.length(0)) = state { state = .done }
                    if status == 204 || status == 304 { state = .done }
                    continue
                }
                guard let colon = line.firstIndex(of: ":"), colon != line.startIndex,
                    !line[..<colon].contains(" ")
                else { throw .malformedHeader(line) }
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
                headers.append((name, value))
            case .body(.length(let remaining)):
                let take = min(remaining, buffer.count)
                try appendBody(buffer[..<take])
                buffer.removeFirst(take)
                if remaining - take == 0 {
                    state = .done
                } else {
                    state = .body(.length(remaining - take))
                    return nil
                }
            case .body(.untilClose):
                try appendBody(buffer[...])
                buffer.removeAll()
                return nil
            case .body(.chunked), .chunkSize:
                guard let line = try takeLine() else { return nil }
                let sizeText = line.split(separator: ";", maxSplits: 1)[...].first ?? ""
                let trimmed = sizeText.trimmingCharacters(in: " \t")
                guard !trimmed.isEmpty, trimmed.count <= 8, let size = Int(trimmed, radix: 16)
                else {
                    throw .malformedChunk
                }
                if body.count + size > bodyLimit { throw .bodyTooLarge(limit: bodyLimit) }
                state = size == 0 ? .trailer : .chunkData(size)
            case .chunkData(let remaining):
                let take = min(remaining, buffer.count)
                try appendBody(buffer[..<take])
                buffer.removeFirst(take)
                if remaining - take == 0 {
                    state = .chunkDataEnd
                } else {
                    state = .chunkData(remaining - take)
                    return nil
                }
            case .chunkDataEnd:
                guard let line = try takeLine() else { return nil }
                guard line.isEmpty else { throw .malformedChunk }
                state = .chunkSize
            case .trailer:
                guard let line = try takeLine() else { return nil }
                if line.isEmpty { state = .done }
            }
        }
    }

    private func framing() throws(Error) -> Framing {
        let encodings = headers.filter { $0.name == "transfer-encoding" }.map {
            $0.value.lowercased()
        }
        if let encoding = encodings.last {
            guard encoding == "chunked" else { throw .unsupportedTransferEncoding(encoding) }
            return .chunked
        }
        let lengths = Set(headers.filter { $0.name == "content-length" }.map(\.value))
        if lengths.count > 1 { throw .badContentLength(lengths.sorted().joined(separator: ", ")) }
        if let text = lengths.first {
            guard !text.isEmpty, text.count <= 18, text.allSatisfy({ $0.isASCII && $0.isNumber }),
                let length = Int(text)
            else { throw .badContentLength(text) }
            guard length <= bodyLimit else { throw .bodyTooLarge(limit: bodyLimit) }
            return .length(length)
        }
        return .untilClose
    }
}

extension StringProtocol {
    /// The text without the given leading and trailing characters.
    func trimmingCharacters(in set: String) -> String {
        let characters = Set(set)
        guard let first = firstIndex(where: { !characters.contains($0) }),
            let last = lastIndex(where: { !characters.contains($0) })
        else { return "" }
        return String(self[first...last])
    }
}
