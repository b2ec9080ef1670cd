#if canImport(Glibc)
    import Glibc
#endif

/// PID 1's messages on the console (its stdout, /dev/console), one line
/// each, written unbuffered so they are never lost in a crash or power-off.
public enum Console {
    /// Writes "proxenos: MESSAGE" and a newline.
    public static func say(_ message: String) {
        writeLine("proxenos: " + message)
    }

    /// Writes a line as it is.
    public static func writeLine(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }
            offset += written
        }
    }
}
