import CLinux
import LinuxSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Whether the kernel's random number generator is initialised, learnt by
/// one thread of PID 1 that waits for it in getrandom(2).
///
/// Every Swift program seeds its hashing from getrandom(2) as it loads;
/// without RDRAND that blocks until the kernel's jitter loop has made the
/// entropy, about a second after /init. PID 1 (deterministic hashing: its
/// input is the image and the command line) waits on this thread alone and
/// starts those programs after. When the services waited in their own
/// processes, four at once, a CI boot hung with two of them each holding a
/// vCPU in the kernel (docs/ARCHITECTURE.md).
final class KernelRandomness: Sendable {
    private let ready = Atomic<Bool>(false)

    var isReady: Bool { ready.load(ordering: .acquiring) }

    /// Starts the waiting thread; `done` runs on it once the generator is
    /// ready. Without a thread, waits here.
    func waitInBackground(_ done: @escaping @Sendable () -> Void) {
        let wait: @Sendable () -> Void = { [self] in
            var byte: UInt8 = 0
            while clinux_getrandom(&byte, 1) < 0 && errno == EINTR {}
            // Any other failure (no getrandom at all) leaves nothing to
            // wait for: the programs would not wait in it either.
            ready.store(true, ordering: .releasing)
            done()
        }
        do {
            try Threads.spawn(name: "randomness", wait)
        } catch {
            Console.say("no thread to wait for the kernel's random numbers (\(error)); waiting now")
            wait()
        }
    }
}
