import LinuxSystem
import Logging
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// xend's local API: a Unix socket only root can open (mode 0600 in a
/// 0700 directory). Each connection carries framed requests, each answered
/// by one framed response, in order. A thread per connection blocks on
/// reads; requests go to the `Xend` actor.
public final class XendServer: Sendable {
    public static let defaultSocketPath = "/run/xend/xend.sock"

    let path: String
    let xend: Xend
    let log: Logger
    let listener: FileDescriptor

    /// Creates the directory and the socket; the socket's existence tells
    /// PID 1 that xend is ready, so call this last in start-up.
    public init(path: String = defaultSocketPath, xend: Xend, logger: Logger)
        throws(ToolstackError)
    {
        self.path = path
        self.xend = xend
        self.log = logger
        let directory = String(path.prefix(upTo: path.lastIndex(of: "/") ?? path.startIndex))
        if !directory.isEmpty {
            if mkdir(directory, 0o700) != 0 && errno != EEXIST {
                throw .system(operation: "mkdir \(directory)", Errno(rawValue: errno))
            }
            _ = chmod(directory, 0o700)
        }
        listener = try XendSocket.listen(path: path, mode: 0o600)
    }

    /// Accepts connections on a thread of its own until the process ends.
    public func start() throws(ToolstackError) {
        try spawnThread { [self] in
            while true {
                let connection: FileDescriptor
                do {
                    connection = try XendSocket.accept(listener)
                } catch {
                    log.error("xend socket: \(error)")
                    usleep(100_000)
                    continue
                }
                do {
                    try spawnThread { [self] in serve(connection) }
                } catch {
                    log.error("xend socket: no thread for a client: \(error)")
                    try? connection.close()
                }
            }
        }
    }

    /// Answers the requests of one client until it closes the connection
    /// or sends something unreadable.
    func serve(_ connection: FileDescriptor) {
        defer { try? connection.close() }
        var decoder = FrameDecoder()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let payload: [UInt8]
            do {
                if let frame = try decoder.next() {
                    payload = frame
                } else {
                    let count = try XendSocket.read(connection, into: &buffer)
                    if count == 0 { return }
                    decoder.append(buffer[..<count])
                    continue
                }
            } catch {
                // A bad frame length: the stream cannot be resynchronised.
                respond(XendResponse(error), on: connection)
                return
            }
            let response: XendResponse
            do throws(ToolstackError) {
                let request = try XendRequest(try XendWire.parse(payload))
                let xend = self.xend
                response =
                    (try? runBlocking { await xend.handle(request) })
                    ?? .failure(kind: "internal", message: "xend lost the request")
            } catch {
                response = XendResponse(error)
            }
            guard respond(response, on: connection) else { return }
        }
    }

    @discardableResult
    func respond(_ response: XendResponse, on connection: FileDescriptor) -> Bool {
        do {
            try XendSocket.writeAll(connection, try XendWire.frame(response.sxp))
            return true
        } catch {
            log.warning("xend socket: cannot answer a client: \(error)")
            return false
        }
    }
}
