/// Names one request taken off a back ring until it is answered: its ring
/// index (free-running, as `req_cons` counted it).
public struct RequestToken: Hashable, Sendable, CustomStringConvertible {
    public let index: UInt32

    public init(index: UInt32) { self.index = index }

    public var description: String { "#\(index)" }
}

/// A back ring with its journal: every request taken is copied once, into
/// the journal, and every response goes through the journal before the
/// ring, so a backend killed at any point can be restarted on the same
/// ring (``init(resuming:journal:)``) and the guest sees each request
/// answered exactly once. Without a journal it is a plain back ring.
///
/// Backends use it from their data-path worker only (it is noncopyable
/// and not thread-safe, like the ring).
public struct JournaledBackRing<Request: RingDecodable, Response: RingEncodable>: ~Copyable {
    /// The ring.
    public private(set) var ring: BackRing<Request, Response>
    /// The journal, if the backend keeps one.
    public let journal: RingJournal?
    /// Requests answered since the last push (their slots are freed once
    /// the push published them).
    private var answered: [UInt32] = []
    /// Requests a restarted backend must redo before taking new ones, in
    /// the order they were first taken.
    private var redo: [UInt32] = []
    private var redoNext = 0
    /// Whether a predecessor's journal was recovered at resume.
    public let recoveredJournal: Bool

    /// A fresh connection: the frontend initialised the ring (indices 0).
    /// `journal` must be freshly formatted for it.
    public init(ring: consuming BackRing<Request, Response>, journal: RingJournal?) {
        self.ring = ring
        self.journal = journal
        self.recoveredJournal = false
        answered.reserveCapacity(Int(self.ring.geometry.entryCount))
    }

    /// A restarted backend on a live ring: requests resume where the
    /// journal says, answers its predecessor had queued but not published
    /// are put on the ring again, and requests it had taken but not
    /// answered come back first from ``nextRequest()``. Without a
    /// journal every unanswered request is read again from the ring.
    /// `recovered` says whether `journal` is a predecessor's (true) or
    /// was formatted just now at the ring's `rsp_prod` (false).
    public init(
        resuming buffer: UnsafeMutableRawBufferPointer, keepAlive: AnyObject?,
        journal: RingJournal?, recovered: Bool = true
    ) throws(XenBusError) {
        var recovery: RingJournal.Recovery? = nil
        if let journal {
            let published = try BackRing<Request, Response>(
                resuming: buffer, requestConsumer: nil, keepAlive: nil
            ).responseProducer
            recovery = journal.recover(responseProducer: published)
        }
        var ring = try BackRing<Request, Response>(
            resuming: buffer, requestConsumer: recovery?.requestConsumer, keepAlive: keepAlive)
        if let journal, let recovery {
            for index in recovery.republish {
                guard ring.outstandingRequests > 0 else { break }
                let responseIndex = ring.responseProducer
                journal.recordAnswered(index, responseIndex: responseIndex)
                try ring.enqueueResponse(
                    encoded: UnsafeRawBufferPointer(journal.responseBytes(index)))
            }
        }
        self.ring = ring
        self.journal = journal
        self.recoveredJournal = journal != nil && recovered
        answered.reserveCapacity(Int(self.ring.geometry.entryCount))
        if let recovery {
            answered.append(contentsOf: recovery.republish)
            redo = recovery.redo
        }
    }

    /// Responses recovered from a journal and queued at resume: push them.
    public var hasQueuedResponses: Bool { !answered.isEmpty }

    /// The next request: first those a predecessor left unanswered, then
    /// new ones from the ring. The request is decoded from the journal's
    /// copy (or a private copy without a journal) and journaled as taken.
    public mutating func nextRequest() throws(XenBusError) -> (RequestToken, Request)? {
        if redoNext < redo.count, let journal {
            let index = redo[redoNext]
            redoNext += 1
            if redoNext == redo.count {
                redo = []
                redoNext = 0
            }
            let bytes = UnsafeRawBufferPointer(journal.requestBytes(index))
            let request = Request(ringEntry: RingEntryReader(privateCopy: bytes))
            return (RequestToken(index: index), request)
        }
        guard let journal else {
            guard let request = try ring.nextRequest() else { return nil }
            return (RequestToken(index: ring.requestConsumer &- 1), request)
        }
        let index = ring.requestConsumer
        guard let (taken, request) = try ring.nextRequest(copyingInto: journal.requestBytes(index))
        else { return nil }
        journal.recordTaken(taken)
        return (RequestToken(index: taken), request)
    }

    /// Requests left to redo from before a restart.
    public var pendingRedo: Int { redo.count - redoNext }

    /// Answers a request taken earlier; visible to the guest after
    /// ``pushResponses()``.
    public mutating func respond(to token: RequestToken, with response: Response)
        throws(XenBusError)
    {
        guard let journal else {
            try ring.enqueueResponse(response)
            return
        }
        guard ring.outstandingRequests > 0 else { throw .ringResponseWithoutRequest }
        let bytes = journal.responseBytes(token.index)
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
        var writer = RingEntryWriter(slot: bytes)
        response.encode(to: &writer)
        journal.recordAnswered(token.index, responseIndex: ring.responseProducer)
        try ring.enqueueResponse(encoded: UnsafeRawBufferPointer(bytes))
        answered.append(token.index)
    }

    /// Publishes queued responses and frees their journal slots; true when
    /// the frontend asked to be notified.
    public mutating func pushResponses() -> Bool {
        let notify = ring.pushResponses()
        if let journal {
            for index in answered { journal.release(index) }
        }
        answered.removeAll(keepingCapacity: true)
        return notify
    }

    /// `RING_FINAL_CHECK_FOR_REQUESTS`, counting requests left to redo.
    public func finalCheckForRequests() throws(XenBusError) -> Bool {
        if pendingRedo > 0 { return true }
        return try ring.finalCheckForRequests()
    }

    /// Requests ready to take now (redo included).
    public func unconsumedRequests() throws(XenBusError) -> UInt32 {
        UInt32(pendingRedo) + (try ring.unconsumedRequests())
    }
}
