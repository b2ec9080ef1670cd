import CLinux
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// A system call that failed, with what it was doing ("bind /run/x.sock"),
/// so that a module can turn it into its own error without losing either.
public struct SystemCallError: Error, Sendable, Equatable, CustomStringConvertible {
    public var operation: String
    public var errno: Errno

    public init(operation: String, _ errno: Errno) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String { "\(operation): \(errno)" }

    /// Runs `body`, turning its failure into the caller's own error.
    @inlinable
    public static func mapping<T, E: Error>(
        _ transform: (SystemCallError) -> E, _ body: () throws(SystemCallError) -> T
    ) throws(E) -> T {
        do throws(SystemCallError) {
            return try body()
        } catch {
            throw transform(error)
        }
    }
}

/// Threads outside Swift's cooperative pool.
public enum Threads {
    /// Runs `body` on a new detached pthread, so that blocking work (a socket
    /// reader, libxenguest's builder) never occupies Swift's cooperative pool,
    /// which has only as many threads as the machine has cores.
    ///
    /// - Parameters:
    ///   - name: the thread's name in ps and gdb (cut to 15 bytes); nil keeps
    ///     the process's name.
    ///   - body: the thread's work; the thread ends when it returns.
    /// - Throws: ``SystemCallError`` if no thread could be created.
    public static func spawn(name: String? = nil, _ body: @escaping @Sendable () -> Void)
        throws(SystemCallError)
    {
        final class Box {
            let name: String?
            let body: @Sendable () -> Void
            init(_ name: String?, _ body: @escaping @Sendable () -> Void) {
                self.name = name
                self.body = body
            }
        }
        let box = Unmanaged.passRetained(Box(name, body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(
            &thread, nil,
            { raw in
                // The pointer is the Box retained above; take back that +1.
                guard let raw else { return nil }
                let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
                // Cosmetic (shows in ps/gdb); a failure changes nothing.
                if let name = box.name { _ = name.withCString { clinux_xenstore_name_thread($0) } }
                box.body()
                return nil
            }, box)
        guard result == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            let operation = name.map { "create thread \($0)" } ?? "pthread_create"
            throw SystemCallError(operation: operation, Errno(rawValue: result))
        }
        pthread_detach(thread)
    }
}
