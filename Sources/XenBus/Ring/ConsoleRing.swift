import Synchronization

/// The layout of io/console.h's `struct xencons_interface`: two byte rings
/// and their four free-running 32-bit indices.
///
///     char in[1024];                        offset 0     (dom0 → guest)
///     char out[2048];                       offset 1024  (guest → dom0)
///     XENCONS_RING_IDX in_cons, in_prod;    offsets 3072, 3076
///     XENCONS_RING_IDX out_cons, out_prod;  offsets 3080, 3084
///
/// Indices wrap at 2^32; a byte's position is `index & (size - 1)`
/// (`MASK_XENCONS_IDX`).
public enum ConsoleRingLayout {
    /// Offset of `in`, the input ring the backend fills.
    public static let inputOffset = 0
    /// `sizeof(in)`.
    public static let inputSize: UInt32 = 1024
    /// Offset of `out`, the output ring the guest fills.
    public static let outputOffset = 1024
    /// `sizeof(out)`.
    public static let outputSize: UInt32 = 2048
    /// Offset of `in_cons` (written by the guest).
    public static let inputConsumerOffset = 3072
    /// Offset of `in_prod` (written by the backend).
    public static let inputProducerOffset = 3076
    /// Offset of `out_cons` (written by the backend).
    public static let outputConsumerOffset = 3080
    /// Offset of `out_prod` (written by the guest).
    public static let outputProducerOffset = 3084
    /// `sizeof(struct xencons_interface)`.
    public static let size = 3088
}

/// The four shared indices, accessed atomically because the other domain
/// writes them concurrently.
struct ConsoleRingIndices {
    let inputConsumer: UnsafeMutablePointer<Atomic<UInt32>>
    let inputProducer: UnsafeMutablePointer<Atomic<UInt32>>
    let outputConsumer: UnsafeMutablePointer<Atomic<UInt32>>
    let outputProducer: UnsafeMutablePointer<Atomic<UInt32>>

    init(base: UnsafeMutableRawPointer) {
        // Binding is sound: these words are only ever accessed as 32-bit
        // atomics here (on x86 a plain aligned mov, as in C).
        func word(_ offset: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
            (base + offset).bindMemory(to: Atomic<UInt32>.self, capacity: 1)
        }
        inputConsumer = word(ConsoleRingLayout.inputConsumerOffset)
        inputProducer = word(ConsoleRingLayout.inputProducerOffset)
        outputConsumer = word(ConsoleRingLayout.outputConsumerOffset)
        outputProducer = word(ConsoleRingLayout.outputProducerOffset)
    }
}

/// Checks a console page and returns its base address.
func validateConsoleBuffer(_ buffer: UnsafeMutableRawBufferPointer)
    throws(XenBusError) -> UnsafeMutableRawPointer
{
    guard let base = buffer.baseAddress else { throw .ringBufferInvalid("empty buffer") }
    guard Int(bitPattern: base) % 4 == 0 else {
        throw .ringBufferInvalid("console page at \(base) is not 4-byte aligned")
    }
    guard buffer.count >= ConsoleRingLayout.size else {
        throw .ringBufferInvalid(
            "\(buffer.count) bytes cannot hold xencons_interface (\(ConsoleRingLayout.size))")
    }
    return base
}

/// How many bytes a producer index says are waiting, or the fault it is:
/// `producer - consumer` must lie in `0...size`. A producer behind the
/// consumer (by at most `size`) moved backwards; anything else is further
/// ahead than the ring holds.
func consoleProducerCheck(producer: UInt32, consumer: UInt32, size: UInt32)
    throws(XenBusError) -> UInt32
{
    let waiting = producer &- consumer
    if waiting <= size { return waiting }
    if consumer &- producer <= size {
        throw .ringProducerRegressed(producer: producer, consumer: consumer)
    }
    throw .ringProducerOverflow(producer: producer, base: consumer, ringSize: size)
}

/// How many bytes a consumer index leaves in use, or the fault it is: the
/// consumer must lie within `size` bytes behind the producer.
func consoleConsumerCheck(consumer: UInt32, producer: UInt32, size: UInt32, name: String)
    throws(XenBusError) -> UInt32
{
    let used = producer &- consumer
    if used <= size { return used }
    let position =
        consumer &- producer <= size
        ? "\(consumer &- producer) bytes ahead of the producer \(producer)"
        : "\(used) bytes behind the producer \(producer), the ring holds \(size)"
    throw .guestProtocol("console \(name) \(consumer) is \(position)")
}

/// Copies `count` bytes out of a byte ring starting at free-running index
/// `index`, wrapping at the ring's end. Never touches memory outside the
/// ring: the position is masked and `count` is at most the ring size.
func copyOutOfRing(
    _ ring: UnsafeMutableRawPointer, size: UInt32, index: UInt32, count: Int,
    into destination: UnsafeMutableRawPointer
) {
    let start = Int(index & (size - 1))
    let first = min(count, Int(size) - start)
    // Plain copies of shared bytes the other end may be rewriting: each byte
    // is read once, here, and the caller only ever sees this copy.
    destination.copyMemory(from: ring + start, byteCount: first)
    destination.advanced(by: first).copyMemory(from: ring, byteCount: count - first)
}

/// Copies `count` bytes into a byte ring starting at free-running index
/// `index`, wrapping at the ring's end (`count` is at most the ring size).
func copyIntoRing(
    _ ring: UnsafeMutableRawPointer, size: UInt32, index: UInt32, count: Int,
    from source: UnsafeRawPointer
) {
    let start = Int(index & (size - 1))
    let first = min(count, Int(size) - start)
    (ring + start).copyMemory(from: source, byteCount: first)
    ring.copyMemory(from: source + first, byteCount: count - first)
}

/// The backend (dom0) half of a `xencons_interface` page: reads what the
/// guest wrote to `out` and writes keyboard input into `in`, as xenconsoled's
/// `buffer_append` and `handle_tty_read` do.
///
/// The indices this side owns (`out_cons`, `in_prod`) are kept privately and
/// only ever stored to the page, never read back: a guest scribbling on them
/// cannot make us re-read or skip bytes. The ring never notifies; a non-zero
/// count from ``readOutput(into:)`` or ``writeInput(_:)`` means "notify the
/// guest" (the console protocol has no event indices, so every transfer
/// notifies, as xenconsoled does). For the same reason there is no
/// io/ring.h-style final check and no full fence: the guest notifies after
/// every publish, so a data path that unmasks its port before draining loses
/// no wakeup.
///
/// Against a hostile guest: a byte is copied out of the page once, into the
/// caller's buffer; positions are masked into the ring, so nothing outside
/// `in`/`out` is ever touched. `out_prod` more than 2048 bytes past
/// `out_cons` is ``XenBusError/ringProducerOverflow(producer:base:ringSize:)``,
/// `out_prod` behind `out_cons` is
/// ``XenBusError/ringProducerRegressed(producer:consumer:)``, and an `in_cons`
/// outside the 1024 bytes behind `in_prod` is ``XenBusError/guestProtocol(_:)``.
/// All are guest faults and leave the ring untouched. xenconsoled and QEMU
/// silently ignore such a ring, so the console stays wedged until the guest
/// repairs the index; a backend here reports the fault (rate-limited) and
/// then calls ``resynchronizeOutput()`` / ``resynchronizeInput()``, which
/// adopt the guest's current producer/consumer without reading the bogus
/// window, so a guest that re-initialises its console (a new kernel after
/// kexec or pvgrub) gets it back.
public struct ConsoleBackRing: ~Copyable {
    private let base: UnsafeMutableRawPointer
    private let indices: ConsoleRingIndices
    private let owner: AnyObject?

    /// `out_cons`: the next output byte to read.
    public private(set) var outputConsumer: UInt32
    /// `in_prod`: where the next input byte goes.
    public private(set) var inputProducer: UInt32

    /// Attaches to a console page, adopting the `out_cons` and `in_prod` it
    /// holds (zero on a fresh page; where a previous backend left them after
    /// a restart). `keepAlive` is retained for the ring's lifetime (the
    /// object that owns `buffer`).
    public init(attaching buffer: UnsafeMutableRawBufferPointer, keepAlive: AnyObject? = nil)
        throws(XenBusError)
    {
        let base = try validateConsoleBuffer(buffer)
        self.base = base
        self.indices = ConsoleRingIndices(base: base)
        self.owner = keepAlive
        // Read once at attach; from here on our own copies are the truth.
        self.outputConsumer = indices.outputConsumer.pointee.load(ordering: .relaxed)
        self.inputProducer = indices.inputProducer.pointee.load(ordering: .relaxed)
    }

    /// Attaches to the console page in a writable grant mapping, keeping it
    /// mapped.
    public init(mapping: GrantMapping) throws(XenBusError) {
        try self.init(attaching: try mapping.writableBytes(), keepAlive: mapping)
    }

    /// Output bytes the guest has published and we have not read. Throws a
    /// guest fault for an impossible `out_prod`.
    public func pendingOutput() throws(XenBusError) -> Int {
        // Acquiring: the bytes the guest wrote before publishing out_prod
        // must be visible once we see the new index (xen_rmb).
        let producer = indices.outputProducer.pointee.load(ordering: .acquiring)
        return Int(
            try consoleProducerCheck(
                producer: producer, consumer: outputConsumer, size: ConsoleRingLayout.outputSize))
    }

    /// Copies up to `buffer.count` waiting output bytes into `buffer`,
    /// oldest first, publishes the new `out_cons`, and returns how many were
    /// copied (notify the guest when non-zero: it may be waiting for room).
    public mutating func readOutput(into buffer: UnsafeMutableRawBufferPointer)
        throws(XenBusError) -> Int
    {
        let count = min(try pendingOutput(), buffer.count)
        guard count > 0, let destination = buffer.baseAddress else { return 0 }
        copyOutOfRing(
            base + ConsoleRingLayout.outputOffset, size: ConsoleRingLayout.outputSize,
            index: outputConsumer, count: count, into: destination)
        outputConsumer &+= UInt32(count)
        // Releasing: our reads of those bytes are done before the guest may
        // see their space freed and overwrite them (xen_mb in xenconsoled).
        indices.outputConsumer.pointee.store(outputConsumer, ordering: .releasing)
        return count
    }

    /// Room in `in` for input. Throws a guest fault for an impossible
    /// `in_cons`.
    public func freeInput() throws(XenBusError) -> Int {
        // Acquiring: the guest's reads of the bytes it consumed happen before
        // we overwrite them, which come after this load (xen_mb).
        let consumer = indices.inputConsumer.pointee.load(ordering: .acquiring)
        let used = try consoleConsumerCheck(
            consumer: consumer, producer: inputProducer, size: ConsoleRingLayout.inputSize,
            name: "in_cons")
        return Int(ConsoleRingLayout.inputSize - used)
    }

    /// Copies as many of `bytes` as fit into `in`, publishes the new
    /// `in_prod`, and returns how many were written (notify the guest when
    /// non-zero). The rest is the caller's to retry once the guest has read.
    public mutating func writeInput(_ bytes: UnsafeRawBufferPointer) throws(XenBusError) -> Int {
        let count = min(try freeInput(), bytes.count)
        guard count > 0, let source = bytes.baseAddress else { return 0 }
        copyIntoRing(
            base + ConsoleRingLayout.inputOffset, size: ConsoleRingLayout.inputSize,
            index: inputProducer, count: count, from: source)
        inputProducer &+= UInt32(count)
        // Releasing: the guest must see the bytes before the index that hands
        // them over (xen_wmb).
        indices.inputProducer.pointee.store(inputProducer, ordering: .releasing)
        return count
    }

    /// Recovers `out` after a guest fault: `out_cons` jumps to the guest's
    /// current `out_prod` without reading anything in between, and is
    /// published. Notify the guest afterwards.
    public mutating func resynchronizeOutput() {
        outputConsumer = indices.outputProducer.pointee.load(ordering: .relaxed)
        indices.outputConsumer.pointee.store(outputConsumer, ordering: .releasing)
    }

    /// Recovers `in` after a guest fault: `in_prod` jumps to the guest's
    /// current `in_cons` (the ring reads as empty; input it had not read is
    /// dropped) and is published. Notify the guest afterwards.
    public mutating func resynchronizeInput() {
        inputProducer = indices.inputConsumer.pointee.load(ordering: .relaxed)
        indices.inputProducer.pointee.store(inputProducer, ordering: .releasing)
    }
}
