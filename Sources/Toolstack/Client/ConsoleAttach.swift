import LinuxSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// `xm console`: joins the terminal to a guest console pty until Ctrl-]
/// (as xm's xenconsole did) or the pty closes (the domain went away).
public enum ConsoleAttach {
    /// Ctrl-], the byte that detaches.
    public static let escape: UInt8 = 0x1d

    /// Copies the part of `input` before the escape byte, and whether the
    /// escape byte was seen.
    public static func split(_ input: ArraySlice<UInt8>) -> (
        forward: ArraySlice<UInt8>, detach: Bool
    ) {
        guard let index = input.firstIndex(of: escape) else { return (input, false) }
        return (input[..<index], true)
    }

    /// Attaches stdin/stdout to the pty at `path` (already checked to be
    /// `/dev/pts/N`); returns when the user detaches or the pty closes.
    public static func run(tty path: String) throws(ToolstackError) {
        let pty: FileDescriptor
        do {
            pty = try FileDescriptor.open(
                FilePath(path), .readWrite,
                options: [FileDescriptor.OpenOptions(rawValue: O_NOCTTY), .closeOnExec])
        } catch {
            throw .system(operation: "opening the console \(path)", error as? Errno ?? .ioError)
        }
        defer { try? pty.close() }
        makeRaw(pty.rawValue)
        let restore = RawTerminal(fd: STDIN_FILENO)
        defer { restore?.restore() }

        var fds = [
            pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0),
            pollfd(fd: pty.rawValue, events: Int16(POLLIN), revents: 0),
        ]
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let ready = retryingSyscall { poll(&fds, nfds_t(fds.count), -1) }
            if case .failure(let errno) = ready { throw .system(operation: "poll", errno) }
            if fds[1].revents != 0 {
                let count = read(pty.rawValue, &buffer, buffer.count)
                // EIO or 0: xenconsoled closed the pty (the domain is gone).
                if count <= 0 { return }
                writeAll(STDOUT_FILENO, buffer[..<count])
            }
            if fds[0].revents != 0 {
                let count = read(STDIN_FILENO, &buffer, buffer.count)
                if count <= 0 { return }
                let (forward, detach) = split(buffer[..<count])
                writeAll(pty.rawValue, forward)
                if detach { return }
            }
        }
    }

    private static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) {
        var rest = bytes
        while !rest.isEmpty {
            let result = retryingSyscall {
                rest.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            }
            guard case .success(let written) = result, written > 0 else { return }
            rest = rest.dropFirst(written)
        }
    }

    private static func makeRaw(_ fd: Int32) {
        var settings = termios()
        guard tcgetattr(fd, &settings) == 0 else { return }
        cfmakeraw(&settings)
        _ = tcsetattr(fd, TCSANOW, &settings)
    }

    /// The terminal's settings before raw mode, put back on detach.
    private struct RawTerminal {
        let fd: Int32
        let saved: termios

        init?(fd: Int32) {
            guard isatty(fd) == 1 else { return nil }
            var settings = termios()
            guard tcgetattr(fd, &settings) == 0 else { return nil }
            self.fd = fd
            saved = settings
            var raw = settings
            cfmakeraw(&raw)
            _ = tcsetattr(fd, TCSANOW, &raw)
        }

        func restore() {
            var settings = saved
            _ = tcsetattr(fd, TCSANOW, &settings)
        }
    }
}
