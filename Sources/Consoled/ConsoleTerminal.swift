import CLinux
import LinuxSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// The terminal settings before raw mode, for the signal handlers that put
/// them back when `xm console` is killed (SIGTERM, SIGHUP, SIGINT,
/// SIGQUIT). Written once before the handlers are installed, read only by
/// them.
nonisolated(unsafe) private var savedTerminal = termios()
nonisolated(unsafe) private var terminalSaved = false

/// `xm console`'s side: joins the terminal to a guest console served by
/// consoled. Raw mode is set before anything is read, so no byte typed
/// early (Ctrl-] included) is cooked by the line discipline; Ctrl-] is
/// recognised in any chunk and detaches at once (``EscapeMenu``); the
/// terminal is
/// restored on detach, on any error, and when the client is killed by a
/// catchable signal.
public enum ConsoleTerminal {
    /// Attaches; returns when the admin detaches, stdin ends, or consoled
    /// closes the console (the domain went away). With `waitSeconds`, a
    /// console consoled does not serve yet (a domain just created) or a
    /// consoled not up yet is waited for that long.
    public static func run(socketPath: String, hello: ConsoleHello, waitSeconds: Int)
        throws(ConsoledError)
    {
        let terminal = isatty(STDIN_FILENO) == 1
        if terminal { enterRawMode() }
        defer { if terminal { restoreTerminal() } }
        let socket = try connect(socketPath: socketPath, hello: hello, waitSeconds: waitSeconds)
        defer { try? socket.connection.close() }
        try session(socket)
    }

    private struct Attached {
        let connection: FileDescriptor
        var decoder: ConsoleFrameDecoder
        let accepted: ConsoleAccepted
    }

    private static func connect(socketPath: String, hello: ConsoleHello, waitSeconds: Int)
        throws(ConsoledError) -> Attached
    {
        let deadline = now() + UInt64(max(0, waitSeconds)) * 1_000_000_000
        while true {
            do throws(ConsoledError) {
                let fd: FileDescriptor
                do throws(SystemCallError) {
                    fd = try UnixSocket.connect(path: socketPath)
                } catch {
                    throw .notRunning(path: socketPath, reason: "\(error.errno)")
                }
                do throws(ConsoledError) {
                    try sendAll(fd, ConsoleFrame.hello(hello).encoded)
                    var decoder = ConsoleFrameDecoder()
                    while true {
                        guard let frame = try readFrame(fd, &decoder, timeoutMilliseconds: 10_000)
                        else {
                            throw .notRunning(path: socketPath, reason: "no answer to the attach")
                        }
                        switch frame {
                        case .accepted(let accepted):
                            return Attached(connection: fd, decoder: decoder, accepted: accepted)
                        case .refused(let reason):
                            throw .refused(reason)
                        default:
                            continue
                        }
                    }
                } catch {
                    try? fd.close()
                    throw error
                }
            } catch {
                // Not yet there: consoled starting, or the domain's console
                // not set up yet (just created). Anything else is final.
                let retry: Bool
                switch error {
                case .notRunning: retry = true
                case .refused(let reason): retry = reason.hasPrefix("no console for")
                default: retry = false
                }
                if !retry || now() >= deadline { throw error }
                usleep(200_000)
            }
        }
    }

    private static func session(_ attached: Attached) throws(ConsoledError) {
        var decoder = attached.decoder
        let fd = attached.connection
        let mode = attached.accepted.mode
        notice(
            "attached to \(attached.accepted.domainName) (domain \(attached.accepted.domainID)) "
                + (mode == .write ? "read-write" : "as a spy (read-only)")
                + "; Ctrl-] detaches, Ctrl-^ opens the menu")
        // Frames that came with the accept (the replay).
        try drainFrames(&decoder)
        var menu = EscapeMenu()
        var buffer = [UInt8](repeating: 0, count: 16384)
        var fds = [
            pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0),
            pollfd(fd: fd.rawValue, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            fds[0].revents = 0
            fds[1].revents = 0
            let ready = retryingSyscall { poll(&fds, nfds_t(fds.count), -1) }
            if case .failure(let errno) = ready { throw .system(operation: "poll", errno: errno) }
            if fds[1].revents != 0 {
                let count = buffer.withUnsafeMutableBytes { raw in
                    retryingSyscall { read(fd.rawValue, raw.baseAddress, raw.count) }
                }
                guard case .success(let got) = count, got > 0 else {
                    notice("consoled closed the console")
                    return
                }
                decoder.feed(buffer[0..<got])
                try drainFrames(&decoder)
            }
            if fds[0].revents != 0 {
                let count = buffer.withUnsafeMutableBytes { raw in
                    retryingSyscall { read(STDIN_FILENO, raw.baseAddress, raw.count) }
                }
                guard case .success(let got) = count, got > 0 else { return }
                for action in menu.feed(Array(buffer[0..<got])) {
                    switch action {
                    case .forward(let bytes):
                        var rest = bytes[...]
                        while !rest.isEmpty {
                            let piece = Array(rest.prefix(ConsoleFrame.maximumPayload))
                            try sendAll(fd, ConsoleFrame.input(piece).encoded)
                            rest = rest.dropFirst(piece.count)
                        }
                    case .showMenu: notice(EscapeMenu.menuLine)
                    case .showHelp: notice(EscapeMenu.help)
                    case .resume: notice("back to the console")
                    case .command(let command):
                        try sendAll(fd, ConsoleFrame.command(command).encoded)
                    case .detach:
                        notice("detached")
                        return
                    }
                }
            }
        }
    }

    private static func drainFrames(_ decoder: inout ConsoleFrameDecoder) throws(ConsoledError) {
        while let frame = try decoder.next() {
            switch frame {
            case .output(let bytes): writeAll(STDOUT_FILENO, bytes)
            case .notice(let text): notice(text)
            case .mode(let mode):
                notice(mode == .write ? "you have write access" : "you are a spy now (read-only)")
            case .refused(let text): throw .refused(text)
            default: continue
            }
        }
    }

    private static func readFrame(
        _ fd: FileDescriptor, _ decoder: inout ConsoleFrameDecoder, timeoutMilliseconds: Int32
    ) throws(ConsoledError) -> ConsoleFrame? {
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            if let frame = try decoder.next() { return frame }
            var pfd = pollfd(fd: fd.rawValue, events: Int16(POLLIN), revents: 0)
            guard
                case .success(let ready) = retryingSyscall({ poll(&pfd, 1, timeoutMilliseconds) }),
                ready > 0
            else { return nil }
            let count = buffer.withUnsafeMutableBytes { raw in
                retryingSyscall { read(fd.rawValue, raw.baseAddress, raw.count) }
            }
            guard case .success(let got) = count, got > 0 else { return nil }
            decoder.feed(buffer[0..<got])
        }
    }

    /// Who is attaching, for consoled's log and `who`: the login name and
    /// the terminal or SSH peer.
    public static func identity() -> (user: String, origin: String) {
        var user = "uid \(getuid())"
        if let entry = getpwuid(getuid()), let name = entry.pointee.pw_name {
            user = String(cString: name)
        }
        var origin: [String] = []
        if let tty = ttyname(STDIN_FILENO) { origin.append(String(cString: tty)) }
        if let ssh = getenv("SSH_CLIENT") {
            let peer = String(cString: ssh).split(separator: " ").first.map(String.init) ?? ""
            if !peer.isEmpty { origin.append("ssh \(peer)") }
        }
        return (user, origin.joined(separator: " "))
    }

    // MARK: terminal

    private static func enterRawMode() {
        var settings = termios()
        guard tcgetattr(STDIN_FILENO, &settings) == 0 else { return }
        savedTerminal = settings
        terminalSaved = true
        for signal in [SIGTERM, SIGHUP, SIGINT, SIGQUIT] {
            Glibc.signal(signal) { number in
                // Async-signal-safe: tcsetattr, signal and raise only.
                if terminalSaved { _ = tcsetattr(STDIN_FILENO, TCSANOW, &savedTerminal) }
                Glibc.signal(number, SIG_DFL)
                raise(number)
            }
        }
        var raw = settings
        cfmakeraw(&raw)
        _ = tcsetattr(STDIN_FILENO, TCSANOW, &raw)
    }

    private static func restoreTerminal() {
        guard terminalSaved else { return }
        _ = tcsetattr(STDIN_FILENO, TCSANOW, &savedTerminal)
        for signal in [SIGTERM, SIGHUP, SIGINT, SIGQUIT] { Glibc.signal(signal, SIG_DFL) }
    }

    private static func notice(_ text: String) {
        let body = text.split(separator: "\n", omittingEmptySubsequences: false).joined(
            separator: "\r\n")
        writeAll(STDOUT_FILENO, Array("\r\n[consoled] \(body)\r\n".utf8))
    }

    private static func now() -> UInt64 { SystemClock().monotonic() }

    private static func sendAll(_ fd: FileDescriptor, _ bytes: [UInt8]) throws(ConsoledError) {
        var offset = 0
        while offset < bytes.count {
            let result = bytes.withUnsafeBytes { raw -> Result<Int, Errno> in
                guard let base = raw.baseAddress else { return .success(0) }
                return retryingSyscall {
                    send(fd.rawValue, base + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                }
            }
            switch result {
            case .success(let sent) where sent > 0: offset += sent
            case .success: throw .system(operation: "writing to consoled", errno: .brokenPipe)
            case .failure(let errno): throw .system(operation: "writing to consoled", errno: errno)
            }
        }
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let result = bytes.withUnsafeBytes { raw -> Result<Int, Errno> in
                guard let base = raw.baseAddress else { return .success(0) }
                return retryingSyscall { write(fd, base + offset, raw.count - offset) }
            }
            guard case .success(let written) = result, written > 0 else { return }
            offset += written
        }
    }
}
