import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// xm's side of xend's socket: one request, one response.
public struct XendClient: Sendable {
    public var socketPath: String
    /// How long to keep trying while xend is starting (the socket missing
    /// or refusing).
    public var connectTimeoutSeconds: Double

    public init(
        socketPath: String = XendServer.defaultSocketPath, connectTimeoutSeconds: Double = 10
    ) {
        self.socketPath = socketPath
        self.connectTimeoutSeconds = connectTimeoutSeconds
    }

    /// Sends a request and waits for xend's answer (as long as it takes:
    /// creating a domain under emulation takes a while).
    public func send(_ request: XendRequest) throws(ToolstackError) -> XendResponse {
        let fd = try connect()
        defer { try? fd.close() }
        try XendSocket.writeAll(fd, try XendWire.frame(request.sxp))
        var decoder = FrameDecoder()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            if let payload = try decoder.next() {
                return try XendResponse(try XendWire.parse(payload))
            }
            let count = try XendSocket.read(fd, into: &buffer)
            guard count > 0 else {
                throw .daemonUnavailable(
                    path: socketPath, reason: "xend closed the connection without answering")
            }
            decoder.append(buffer[..<count])
        }
    }

    /// Sends a request; an error response becomes a thrown error.
    public func call(_ request: XendRequest) throws(ToolstackError) -> XendResponse {
        let response = try send(request)
        if case .failure(_, let message) = response { throw .remote(message) }
        return response
    }

    private func connect() throws(ToolstackError) -> FileDescriptor {
        let deadline = monotonicSeconds() + connectTimeoutSeconds
        while true {
            do {
                return try XendSocket.connect(path: socketPath)
            } catch {
                let transient: Bool
                if case .system(_, let errno) = error {
                    transient = errno == .noSuchFileOrDirectory || errno == .connectionRefused
                    if !transient {
                        throw .daemonUnavailable(path: socketPath, reason: "\(errno)")
                    }
                } else {
                    throw error
                }
                if monotonicSeconds() > deadline {
                    throw .daemonUnavailable(path: socketPath, reason: "no socket or refused")
                }
                usleep(100_000)
            }
        }
    }
}
