import Dispatch
import Synchronization

/// Runs async work from synchronous code (an ArgumentParser `run()`, a PID 1
/// boot step), blocking the calling thread — never one of Swift's
/// cooperative threads — until the work ends.
public func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let done = DispatchSemaphore(value: 0)
    let outcome = Mutex<Result<T, any Error>?>(nil)
    Task {
        let result: Result<T, any Error>
        do {
            result = .success(try await body())
        } catch {
            result = .failure(error)
        }
        outcome.withLock { $0 = result }
        done.signal()
    }
    done.wait()
    // The task stored a result before signalling.
    return try outcome.withLock { $0 ?? .failure(CancellationError()) }.get()
}
