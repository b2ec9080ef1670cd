import Synchronization

/// Whether the kernel modules loading on a background thread are all in:
/// set once by that thread, read by PID 1's loop.
final class BackgroundModules: Sendable {
    private let finished = Atomic<Bool>(false)

    var isFinished: Bool { finished.load(ordering: .acquiring) }

    func finish() { finished.store(true, ordering: .releasing) }
}
