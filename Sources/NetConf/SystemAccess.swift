import LinuxSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// ``SysctlAccess`` on `/proc/sys`, which resolves `net/` in the network
/// namespace of the calling thread.
public final class ProcSysctl: SysctlAccess {
    private let root: String

    public init(root: String = "/proc/sys") {
        self.root = root
    }

    private func path(_ key: String) throws(NetConfError) -> String {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
            throw .invalidArgument("invalid sysctl key \(key)")
        }
        return root + "/" + key
    }

    public func read(_ key: String) throws(NetConfError) -> String {
        let path = try path(key)
        let text = try readTextFile(path)
        return String(text.filter { $0 != "\n" })
    }

    public func write(_ key: String, _ value: String) throws(NetConfError) {
        let path = try path(key)
        do {
            let fd = try FileDescriptor.open(path, .writeOnly)
            defer { try? fd.close() }
            _ = try fd.writeAll(Array((value + "\n").utf8))
        } catch let error as Errno {
            throw .file(path: path, operation: "write \(value)", error)
        } catch {
            throw .file(path: path, operation: "write \(value)", .ioError)
        }
    }
}

/// Reads a whole (small) file as UTF-8 text.
func readTextFile(_ path: String) throws(NetConfError) -> String {
    let bytes = try readFile(path)
    return String(decoding: bytes, as: UTF8.self)
}

/// Reads a whole file.
func readFile(_ path: String) throws(NetConfError) -> [UInt8] {
    do {
        let fd = try FileDescriptor.open(path, .readOnly)
        defer { try? fd.close() }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try fd.read(into: $0) }
            if count == 0 { break }
            result += buffer[..<count]
        }
        return result
    } catch let error as Errno {
        throw .file(path: path, operation: "read", error)
    } catch {
        throw .file(path: path, operation: "read", .ioError)
    }
}

/// Where netconf keeps what it needs to undo: the original addresses and
/// routes of the netdev, sysctl values it changed.
public protocol RecordStore: AnyObject {
    func load(_ name: String) throws(NetConfError) -> String?
    func save(_ name: String, _ text: String) throws(NetConfError)
    func remove(_ name: String) throws(NetConfError)
    /// Where a record lives, for messages.
    func location(of name: String) -> String
}

/// ``RecordStore`` in a directory (default `/run/proxenos/netconf`, a
/// tmpfs: records describe the running kernel and die with it).
public final class DirectoryRecordStore: RecordStore {
    public static let defaultDirectory = "/run/proxenos/netconf"
    public let directory: String

    public init(directory: String = DirectoryRecordStore.defaultDirectory) {
        self.directory = directory
    }

    public func location(of name: String) -> String { directory + "/" + name + ".sxp" }

    public func load(_ name: String) throws(NetConfError) -> String? {
        let path = location(of: name)
        do {
            return try readTextFile(path)
        } catch .file(_, _, let errno) where errno == .noSuchFileOrDirectory {
            return nil
        }
    }

    public func save(_ name: String, _ text: String) throws(NetConfError) {
        try makeDirectories(directory)
        let path = location(of: name)
        let temporary = path + ".new"
        do {
            let fd = try FileDescriptor.open(
                temporary, .writeOnly, options: [.create, .truncate],
                permissions: [.ownerReadWrite])
            do {
                _ = try fd.writeAll(Array(text.utf8))
                try fd.close()
            } catch {
                try? fd.close()
                throw error
            }
        } catch let error as Errno {
            throw .file(path: temporary, operation: "write", error)
        } catch {
            throw .file(path: temporary, operation: "write", .ioError)
        }
        // rename(2) makes the new record appear whole or not at all.
        if case .failure(let errno) = retryingSyscall({ rename(temporary, path) }) {
            throw .file(path: path, operation: "rename \(temporary) to", errno)
        }
    }

    public func remove(_ name: String) throws(NetConfError) {
        let path = location(of: name)
        if case .failure(let errno) = retryingSyscall({ unlink(path) }),
            errno != .noSuchFileOrDirectory
        {
            throw .file(path: path, operation: "remove", errno)
        }
    }

    private func makeDirectories(_ path: String) throws(NetConfError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if case .failure(let errno) = retryingSyscall({ mkdir(prefix, 0o755) }),
                errno != .fileExists
            {
                throw .file(path: prefix, operation: "create directory", errno)
            }
        }
    }
}
