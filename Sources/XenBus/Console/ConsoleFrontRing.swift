import Synchronization

/// The guest's half of a `xencons_interface` page (Linux hvc_xen's
/// `__write_console` / `domU_read_console`), for tests that drive a console
/// backend the way a guest kernel would.
///
/// Owns `out_prod` and `in_cons` privately, like ``ConsoleBackRing`` owns
/// the other two. Index checks mirror the backend's: an impossible `in_prod`
/// or `out_cons` from the backend throws the same ``XenBusError`` cases
/// (named from the backend's point of view) instead of Linux's `BUG_ON`.
public struct ConsoleFrontRing: ~Copyable {
    private let base: UnsafeMutableRawPointer
    private let indices: ConsoleRingIndices
    private let owner: AnyObject?

    /// `out_prod`: where the next output byte goes.
    public private(set) var outputProducer: UInt32
    /// `in_cons`: the next input byte to read.
    public private(set) var inputConsumer: UInt32

    /// Initialises a console page as the domain builder leaves it: both
    /// rings zeroed, all four indices at `startIndex` (0 for a new domain;
    /// near 2^32 to test wrap-around).
    public init(
        initializing buffer: UnsafeMutableRawBufferPointer, startIndex: UInt32 = 0,
        keepAlive: AnyObject? = nil
    ) throws(XenBusError) {
        let base = try validateConsoleBuffer(buffer)
        UnsafeMutableRawBufferPointer(
            start: base, count: ConsoleRingLayout.inputConsumerOffset
        ).initializeMemory(as: UInt8.self, repeating: 0)
        let indices = ConsoleRingIndices(base: base)
        for index in [
            indices.inputConsumer, indices.inputProducer, indices.outputConsumer,
            indices.outputProducer,
        ] {
            index.pointee.store(startIndex, ordering: .relaxed)
        }
        self.base = base
        self.indices = indices
        self.owner = keepAlive
        self.outputProducer = startIndex
        self.inputConsumer = startIndex
    }

    /// Attaches to an initialised page, adopting its `out_prod` and
    /// `in_cons`.
    public init(attaching buffer: UnsafeMutableRawBufferPointer, keepAlive: AnyObject? = nil)
        throws(XenBusError)
    {
        let base = try validateConsoleBuffer(buffer)
        self.base = base
        self.indices = ConsoleRingIndices(base: base)
        self.owner = keepAlive
        self.outputProducer = indices.outputProducer.pointee.load(ordering: .relaxed)
        self.inputConsumer = indices.inputConsumer.pointee.load(ordering: .relaxed)
    }

    /// Room in `out`.
    public func freeOutput() throws(XenBusError) -> Int {
        // Acquiring: the backend's reads of the bytes it consumed happen
        // before we overwrite them (mb in hvc_xen).
        let consumer = indices.outputConsumer.pointee.load(ordering: .acquiring)
        let used = try consoleConsumerCheck(
            consumer: consumer, producer: outputProducer, size: ConsoleRingLayout.outputSize,
            name: "out_cons")
        return Int(ConsoleRingLayout.outputSize - used)
    }

    /// Copies as many of `bytes` as fit into `out` and publishes `out_prod`;
    /// returns how many (notify the backend when non-zero).
    public mutating func writeOutput(_ bytes: UnsafeRawBufferPointer) throws(XenBusError) -> Int {
        let count = min(try freeOutput(), bytes.count)
        guard count > 0, let source = bytes.baseAddress else { return 0 }
        copyIntoRing(
            base + ConsoleRingLayout.outputOffset, size: ConsoleRingLayout.outputSize,
            index: outputProducer, count: count, from: source)
        outputProducer &+= UInt32(count)
        // Releasing: the bytes are visible before the index (wmb in hvc_xen).
        indices.outputProducer.pointee.store(outputProducer, ordering: .releasing)
        return count
    }

    /// Input bytes the backend has published and we have not read.
    public func pendingInput() throws(XenBusError) -> Int {
        // Acquiring: the backend's bytes are visible once its index is.
        let producer = indices.inputProducer.pointee.load(ordering: .acquiring)
        return Int(
            try consoleProducerCheck(
                producer: producer, consumer: inputConsumer, size: ConsoleRingLayout.inputSize))
    }

    /// Copies up to `buffer.count` waiting input bytes into `buffer` and
    /// publishes `in_cons`; returns how many.
    public mutating func readInput(into buffer: UnsafeMutableRawBufferPointer)
        throws(XenBusError) -> Int
    {
        let count = min(try pendingInput(), buffer.count)
        guard count > 0, let destination = buffer.baseAddress else { return 0 }
        copyOutOfRing(
            base + ConsoleRingLayout.inputOffset, size: ConsoleRingLayout.inputSize,
            index: inputConsumer, count: count, into: destination)
        inputConsumer &+= UInt32(count)
        // Releasing: our reads are done before the backend reuses the space.
        indices.inputConsumer.pointee.store(inputConsumer, ordering: .releasing)
        return count
    }
}
