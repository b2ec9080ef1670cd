import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Small whole-file helpers over swift-system, for configuration and
/// /proc, /sys files (no Foundation in dom0 binaries).
public enum Files {
    /// The whole content of a file as bytes.
    public static func readBytes(_ path: String, limit: Int = 64 << 20) throws(Errno) -> [UInt8] {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
        } catch { throw error as? Errno ?? .ioError }
        defer { try? fd.close() }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while result.count < limit {
            let count: Int
            do {
                count = try chunk.withUnsafeMutableBytes {
                    try fd.read(into: $0, retryOnInterrupt: true)
                }
            } catch { throw error as? Errno ?? .ioError }
            if count == 0 { break }
            result += chunk[0..<count]
        }
        return result
    }

    /// The whole content of a text file (invalid UTF-8 repaired).
    public static func read(_ path: String) throws(Errno) -> String {
        String(decoding: try readBytes(path), as: UTF8.self)
    }

    /// The content of a text file, or nil when it cannot be read.
    public static func readIfPresent(_ path: String) -> String? {
        try? read(path)
    }

    /// Writes (creates or truncates) a file.
    public static func write(
        _ path: String, _ text: String,
        mode: FilePermissions = [.ownerReadWrite, .groupRead, .otherRead]
    ) throws(Errno) {
        try write(path, bytes: Array(text.utf8), mode: mode)
    }

    /// Writes bytes to a file, creating or truncating it.
    public static func write(
        _ path: String, bytes: [UInt8],
        mode: FilePermissions = [.ownerReadWrite, .groupRead, .otherRead]
    ) throws(Errno) {
        do {
            let fd = try FileDescriptor.open(
                FilePath(path), .writeOnly, options: [.create, .truncate, .closeOnExec],
                permissions: mode)
            defer { try? fd.close() }
            _ = try fd.writeAll(bytes)
        } catch { throw error as? Errno ?? .ioError }
    }

    /// Whether a path exists (without following a final symlink's target).
    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Polls (every 0.2 s) until `path` exists or `timeout` passes; whether
    /// it exists. For markers another process writes once (provisioning's).
    public static func waitUntilExists(_ path: String, timeout: Duration) -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while !exists(path) {
            if clock.now >= deadline { return false }
            usleep(200_000)
        }
        return true
    }

    /// Whether a path is a directory.
    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir -p: creates the directory and its missing parents.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(Errno) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, mode) != 0 {
                let error = Errno(rawValue: errno)
                if error != .fileExists { throw error }
            }
        }
    }

    /// The names in a directory, without "." and "..", sorted.
    public static func list(_ path: String) throws(Errno) -> [String] {
        guard let dir = opendir(path) else { throw Errno(rawValue: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Creates a symbolic link unless the path already exists.
    public static func symlinkIfMissing(target: String, at path: String) throws(Errno) {
        if exists(path) { return }
        if symlink(target, path) != 0 { throw Errno(rawValue: errno) }
    }
}
