import LinuxSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Runs `body` on a new detached pthread (``LinuxSystem/Threads/spawn(name:_:)``):
/// blocking work (libxenguest's builder, save and restore, socket reads)
/// never occupies Swift's cooperative pool.
public func spawnThread(_ body: @escaping @Sendable () -> Void) throws(ToolstackError) {
    try SystemCallError.mapping(ToolstackError.init) { () throws(SystemCallError) in
        try Threads.spawn(body)
    }
}

extension ToolstackError {
    /// A failed system call from LinuxSystem, as this module reports it.
    init(_ failure: SystemCallError) {
        self = .system(operation: failure.operation, failure.errno)
    }
}

/// Runs blocking work on its own thread and waits for it without blocking
/// the caller's thread.
public func offload<T: Sendable>(
    _ body: @escaping @Sendable () throws(ToolstackError) -> T
) async throws(ToolstackError) -> T {
    let result: Result<T, ToolstackError> = await withCheckedContinuation { continuation in
        do throws(ToolstackError) {
            try spawnThread {
                do throws(ToolstackError) {
                    continuation.resume(returning: .success(try body()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        } catch {
            continuation.resume(returning: .failure(error))
        }
    }
    return try result.get()
}

/// Seconds on CLOCK_MONOTONIC: time since boot, the same for every process
/// and unaffected by clock changes, so uptimes survive xend's restart.
public func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// Seconds since the epoch (for `/vm/UUID/start_time`, as libxl wrote it).
public func wallClockSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
