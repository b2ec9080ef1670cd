import CLinux
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Runs `body` on a new detached pthread. Blocking readers (the client's
/// reply reader, the in-memory server's connections) get their own thread
/// so they never occupy Swift's cooperative pool.
///
/// - Throws: ``XenStoreError/system(operation:_:)`` if no thread could be
///   created.
package func spawnThread(name: String, _ body: @escaping @Sendable () -> Void)
    throws(XenStoreError)
{
    final class Box {
        let name: String
        let body: @Sendable () -> Void
        init(_ name: String, _ body: @escaping @Sendable () -> Void) {
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
            _ = box.name.withCString { clinux_xenstore_name_thread($0) }
            box.body()
            return nil
        }, box)
    guard result == 0 else {
        Unmanaged<Box>.fromOpaque(box).release()
        throw .system(operation: "create thread \(name)", Errno(rawValue: result))
    }
    pthread_detach(thread)
}
