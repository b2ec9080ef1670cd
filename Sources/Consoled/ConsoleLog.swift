import CLinux
import LinuxSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// One console log file (`guest-NAME.log`, `hypervisor.log`): every line
/// starts with a timestamp; at `maximumBytes` the file is rotated
/// (`.1` is the newest old one, up to `.keep`), so a guest's log takes at
/// most `(keep + 1) × (maximumBytes + 4 KiB)`.
///
/// Written synchronously with plain write(2) on an O_APPEND descriptor:
/// what consoled read from a ring is in the file before anyone else sees
/// it, so a consoled killed right after loses nothing it had taken. A
/// failed write (the log file system full) drops those bytes, counts them
/// and remembers the errno; the caller reports it, rate-limited, and the
/// console goes on.
public final class ConsoleLog {
    public let path: String
    public let maximumBytes: Int
    public let keep: Int
    private let clock: any ConsoleClock
    private var descriptor: Int32 = -1
    private var size = 0
    private var atLineStart = true
    private var scratch: [UInt8] = []
    private var lastStampSecond = Int.min
    private var lastStamp: [UInt8] = []

    /// Bytes lost to failed writes since the last ``takeFailures()``.
    public private(set) var droppedBytes = 0
    /// The last failed write's errno (or open's).
    public private(set) var lastError: Errno?

    /// Opens (creates, appends to) the log at `path`.
    public init(path: String, maximumBytes: Int, keep: Int, clock: any ConsoleClock) {
        self.path = path
        self.maximumBytes = max(4096, maximumBytes)
        self.keep = max(0, keep)
        self.clock = clock
        scratch.reserveCapacity(8192)
        open()
    }

    deinit { closeDescriptor() }

    /// Appends guest output, a timestamp before each line. Files rotate
    /// between lines, so every file starts with a timestamp; a line still
    /// unfinished 4 KiB past the cap is cut there (the next file's first
    /// line gets its own timestamp), so a guest that never writes a newline
    /// is bounded too.
    public func append(_ bytes: UnsafeRawBufferPointer) {
        scratch.removeAll(keepingCapacity: true)
        for byte in bytes {
            if !atLineStart && size + scratch.count >= maximumBytes + Self.longLineAllowance {
                write(scratch)
                scratch.removeAll(keepingCapacity: true)
                rotate()
                atLineStart = true
            }
            if atLineStart {
                if size + scratch.count >= maximumBytes {
                    write(scratch)
                    scratch.removeAll(keepingCapacity: true)
                    rotate()
                }
                scratch.append(contentsOf: stamp())
                atLineStart = false
            }
            scratch.append(byte)
            if byte == 0x0a { atLineStart = true }
        }
        write(scratch)
    }

    /// How far past the cap an unfinished line may run before it is cut.
    static let longLineAllowance = 4096

    /// Appends a line of consoled's own (attach, detach, bump ...), marked
    /// `[consoled]`. An unfinished guest line is ended first so the event
    /// stands on its own line.
    public func event(_ text: String) {
        scratch.removeAll(keepingCapacity: true)
        if !atLineStart { scratch.append(0x0a) }
        if size + scratch.count >= maximumBytes {
            write(scratch)
            scratch.removeAll(keepingCapacity: true)
            rotate()
        }
        scratch.append(contentsOf: stamp())
        scratch.append(contentsOf: Array("[consoled] \(text)\n".utf8))
        atLineStart = true
        write(scratch)
    }

    /// Closes and opens the file again (SIGHUP: after an outside rotation
    /// or deletion the log goes to a fresh file at `path`).
    public func reopen() {
        closeDescriptor()
        open()
    }

    /// The dropped count and errno so far, reset.
    public func takeFailures() -> (bytes: Int, errno: Errno?) {
        defer {
            droppedBytes = 0
            lastError = nil
        }
        return (droppedBytes, lastError)
    }

    private func stamp() -> [UInt8] {
        let now = clock.wallSeconds()
        if now != lastStampSecond {
            lastStampSecond = now
            lastStamp = logTimestamp(now)
        }
        return lastStamp
    }

    private func write(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        if descriptor < 0 { open() }
        guard descriptor >= 0 else {
            droppedBytes += bytes.count
            return
        }
        var offset = 0
        while offset < bytes.count {
            let result = bytes.withUnsafeBytes { raw -> Result<Int, Errno> in
                guard let base = raw.baseAddress else { return .success(0) }
                return retryingSyscall {
                    Glibc.write(descriptor, base + offset, raw.count - offset)
                }
            }
            switch result {
            case .success(let written) where written > 0:
                offset += written
                size += written
            case .success:
                lastError = .noSpace
                droppedBytes += bytes.count - offset
                return
            case .failure(let errno):
                lastError = errno
                droppedBytes += bytes.count - offset
                return
            }
        }
    }

    /// `path` → `.1` → `.2` ... → `.keep`; the oldest goes.
    private func rotate() {
        closeDescriptor()
        if keep == 0 {
            _ = unlink(path)
        } else {
            _ = unlink("\(path).\(keep)")
            if keep > 1 {
                for index in stride(from: keep - 1, through: 1, by: -1) {
                    _ = rename("\(path).\(index)", "\(path).\(index + 1)")
                }
            }
            _ = rename(path, "\(path).1")
        }
        open()
    }

    private func open() {
        let result = retryingSyscall {
            clinux_open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        }
        switch result {
        case .success(let fd):
            descriptor = fd
            var status = stat()
            size = fstat(fd, &status) == 0 ? Int(status.st_size) : 0
        case .failure(let errno):
            descriptor = -1
            lastError = errno
        }
    }

    private func closeDescriptor() {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        descriptor = -1
    }
}
