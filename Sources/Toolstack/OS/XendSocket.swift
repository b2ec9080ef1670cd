import LinuxSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Unix stream sockets for xend's API: LinuxSystem's ``LinuxSystem/UnixSocket``
/// with this module's error, plus blocking reads and writes.
enum XendSocket {
    /// A listening socket at `path` with the given mode (a stale socket
    /// file from an earlier run is replaced).
    static func listen(path: String, mode: mode_t) throws(ToolstackError) -> FileDescriptor {
        try SystemCallError.mapping(ToolstackError.init) { () throws(SystemCallError) in
            try UnixSocket.listen(path: path, mode: mode)
        }
    }

    /// Accepts one connection (blocking); the new descriptor is
    /// close-on-exec.
    static func accept(_ listener: FileDescriptor) throws(ToolstackError) -> FileDescriptor {
        try SystemCallError.mapping(ToolstackError.init) { () throws(SystemCallError) in
            try UnixSocket.accept(listener)
        }
    }

    /// Connects to `path`.
    static func connect(path: String) throws(ToolstackError) -> FileDescriptor {
        try SystemCallError.mapping(ToolstackError.init) { () throws(SystemCallError) in
            try UnixSocket.connect(path: path)
        }
    }

    /// Reads what is available (blocking until something is); 0 at end of
    /// file.
    static func read(_ fd: FileDescriptor, into buffer: inout [UInt8]) throws(ToolstackError)
        -> Int
    {
        do {
            return try buffer.withUnsafeMutableBytes {
                try fd.read(into: $0, retryOnInterrupt: true)
            }
        } catch {
            throw .system(operation: "read", error as? Errno ?? .ioError)
        }
    }

    static func writeAll(_ fd: FileDescriptor, _ bytes: [UInt8]) throws(ToolstackError) {
        do {
            _ = try fd.writeAll(bytes)
        } catch {
            throw .system(operation: "write", error as? Errno ?? .ioError)
        }
    }
}
