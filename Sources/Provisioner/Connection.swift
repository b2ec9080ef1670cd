import CLinux
import COpenSSL

#if canImport(Glibc)
    import Glibc
#endif

/// Why a fetch did not get a response: the server could not be reached
/// (worth trying again later), or it could not be trusted.
public enum FetchError: Error, Sendable, Equatable, CustomStringConvertible {
    /// DNS, connect, timeout, reset, an HTTP error status: try again later.
    case unreachable(String)
    /// The TLS certificate did not verify, or the response is malformed:
    /// retrying gives the same answer.
    case untrusted(String)

    public var description: String {
        switch self {
        case .unreachable(let why), .untrusted(let why): return why
        }
    }
}

/// A byte stream to a server: TCP, or TLS over it.
protocol Connection: AnyObject {
    func send(_ bytes: [UInt8]) throws(FetchError)
    /// Up to `limit` bytes; empty at the end of the stream.
    func receive(limit: Int) throws(FetchError) -> [UInt8]
    func close()
}

private func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }

/// A TCP connection with a deadline on connect and on every read and write.
final class TCPConnection: Connection {
    let descriptor: Int32

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    /// Resolves `host` and connects to the first address that answers.
    static func open(host: String, port: UInt16, timeout: Int32) throws(FetchError) -> TCPConnection
    {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            throw .unreachable("cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry {
            entry = current.pointee.ai_next
            let fd = socket(
                current.pointee.ai_family,
                current.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue)
                    | Int32(SOCK_NONBLOCK.rawValue), current.pointee.ai_protocol)
            if fd < 0 {
                lastError = errorText(errno)
                continue
            }
            if connect(fd, current.pointee.ai_addr, current.pointee.ai_addrlen) != 0
                && errno != EINPROGRESS
            {
                lastError = errorText(errno)
                Glibc.close(fd)
                continue
            }
            var waiter = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&waiter, 1, timeout * 1000)
            var socketError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &socketError, &length)
            if ready <= 0 || socketError != 0 {
                lastError =
                    ready == 0 ? "connect timed out after \(timeout) s" : errorText(socketError)
                Glibc.close(fd)
                continue
            }
            // Blocking from here on, each read and write bounded.
            let flags = clinux_fcntl_int(fd, F_GETFL, 0)
            _ = clinux_fcntl_int(fd, F_SETFL, flags & ~Int32(O_NONBLOCK))
            var deadline = timeval(tv_sec: Int(timeout), tv_usec: 0)
            setsockopt(
                fd, SOL_SOCKET, SO_RCVTIMEO, &deadline, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(
                fd, SOL_SOCKET, SO_SNDTIMEO, &deadline, socklen_t(MemoryLayout<timeval>.size))
            return TCPConnection(descriptor: fd)
        }
        throw .unreachable("cannot connect to \(host) port \(port): \(lastError)")
    }

    func send(_ bytes: [UInt8]) throws(FetchError) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 && errno == EINTR { continue }
            guard sent > 0 else { throw .unreachable("send failed: \(errorText(errno))") }
            offset += sent
        }
    }

    func receive(limit: Int) throws(FetchError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: limit)
        while true {
            let count = buffer.withUnsafeMutableBytes {
                recv(descriptor, $0.baseAddress, $0.count, 0)
            }
            if count < 0 && errno == EINTR { continue }
            if count < 0 {
                let code = errno
                throw .unreachable(
                    code == EAGAIN
                        ? "the server stopped sending (timed out)"
                        : "receive failed: \(errorText(code))")
            }
            return Array(buffer.prefix(count))
        }
    }

    func close() { Glibc.close(descriptor) }
}

/// How a TLS server's certificate is judged.
public enum TLSTrust: Sendable, Equatable {
    /// Verified (chain and host name) against the CA certificates in this
    /// PEM file.
    case authorities(file: String)
    /// Not verified: the caller authenticates the content instead (the
    /// bundle's pinned SHA-256).
    case contentPinned
}

/// TLS (OpenSSL) over a TCP connection.
final class TLSConnection: Connection {
    private let tcp: TCPConnection
    private let context: OpaquePointer
    private let ssl: OpaquePointer

    init(over tcp: TCPConnection, host: String, trust: TLSTrust) throws(FetchError) {
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            tcp.close()
            throw .untrusted("TLS: \(Self.lastError())")
        }
        _ = proxenos_ssl_ctx_min_tls12(context)
        switch trust {
        case .authorities(let file):
            guard SSL_CTX_load_verify_locations(context, file, nil) == 1 else {
                SSL_CTX_free(context)
                tcp.close()
                throw .untrusted(
                    "TLS: cannot load the CA certificates in \(file): \(Self.lastError())")
            }
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        case .contentPinned:
            SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        }
        guard let ssl = SSL_new(context) else {
            SSL_CTX_free(context)
            tcp.close()
            throw .untrusted("TLS: \(Self.lastError())")
        }
        self.tcp = tcp
        self.context = context
        self.ssl = ssl
        let isAddress = host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." }
        if !isAddress { _ = proxenos_ssl_set_sni(ssl, host) }
        if case .authorities = trust {
            // The certificate must name the host (or the address) we asked for.
            let parameters = SSL_get0_param(ssl)
            let ok =
                isAddress
                ? X509_VERIFY_PARAM_set1_ip_asc(parameters, host) : SSL_set1_host(ssl, host)
            guard ok == 1 else {
                close()
                throw .untrusted("TLS: cannot check the certificate's name against \(host)")
            }
        }
        SSL_set_fd(ssl, tcp.descriptor)
        ERR_clear_error()
        guard SSL_connect(ssl) == 1 else {
            let verify = SSL_get_verify_result(ssl)
            let reason =
                verify != X509_V_OK
                ? "certificate not trusted: \(String(cString: X509_verify_cert_error_string(verify)))"
                : Self.lastError()
            close()
            if verify != X509_V_OK { throw .untrusted("TLS with \(host): \(reason)") }
            throw .unreachable("TLS with \(host): \(reason)")
        }
    }

    static func lastError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "handshake failed (\(errorText(errno)))" }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    func send(_ bytes: [UInt8]) throws(FetchError) {
        let written = bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
        guard written == bytes.count else {
            throw .unreachable("TLS send failed: \(Self.lastError())")
        }
    }

    func receive(limit: Int) throws(FetchError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: limit)
        let count = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
        if count > 0 { return Array(buffer.prefix(Int(count))) }
        let reason = SSL_get_error(ssl, count)
        // A server that closes without close_notify (many HTTP/1.0 ones)
        // ends the stream too; the HTTP framing tells whether it was whole.
        if reason == SSL_ERROR_ZERO_RETURN || reason == SSL_ERROR_SYSCALL { return [] }
        throw .unreachable("TLS receive failed: \(Self.lastError())")
    }

    func close() {
        SSL_free(ssl)
        SSL_CTX_free(context)
        tcp.close()
    }
}
