import Synchronization

/// The shared state of one connection to xenstored: requests in flight
/// matched by req_id, watch queues by token, and the reader thread that
/// blocks on the transport and hands replies and events out.
///
/// Any failure of the stream (end of file, I/O error, protocol violation,
/// a failed send, ``close()``) is final: every request in flight fails and
/// every watch ends with the error, and later requests fail at once.
final class ClientConnection: Sendable {
    private enum Pending {
        case waiting(CheckedContinuation<XenStoreMessage, any Error>)
        /// A request whose reply nobody awaits (an unwatch from a deinit).
        case discard
    }

    private struct State {
        var failure: XenStoreError?
        var nextRequestID: UInt32 = 0
        var pending: [UInt32: Pending] = [:]
        var watches: [String: WatchQueue] = [:]
        var nextToken: UInt64 = 0

        mutating func allocateRequestID() -> UInt32 {
            repeat {
                nextRequestID &+= 1
            } while nextRequestID == 0
                || pending[nextRequestID] != nil
            return nextRequestID
        }
    }

    private static let connectionCounter = Atomic<UInt64>(0)

    private let transport: any XenStoreTransport
    private let state = Mutex(State())
    /// Serialises whole messages onto the transport.
    private let sendLock = Mutex(())
    /// Makes tokens unique across the clients of one process too.
    private let tokenPrefix: String

    init(transport: some XenStoreTransport) {
        self.transport = transport
        let number = Self.connectionCounter.add(1, ordering: .relaxed).newValue
        tokenPrefix = "proxenos-\(number)-"
        do {
            try spawnThread(name: "xenstore-reader") { [self] in readLoop() }
        } catch {
            state.withLock { $0.failure = error }
            transport.close()
        }
    }

    /// Sends `request` and waits for its reply (which may be an ERROR).
    ///
    /// Not cancellable: xenstore has no way to withdraw a request, and the
    /// reply comes promptly unless the connection dies, which fails it.
    func roundTrip(_ request: XenStoreRequest, transaction: UInt32) async throws -> XenStoreMessage
    {
        let payload = try request.encodePayload()
        return try await withCheckedThrowingContinuation { continuation in
            let registered = state.withLock { state -> Result<UInt32, XenStoreError> in
                if let failure = state.failure { return .failure(failure) }
                let id = state.allocateRequestID()
                state.pending[id] = .waiting(continuation)
                return .success(id)
            }
            switch registered {
            case .failure(let error):
                continuation.resume(throwing: error)
            case .success(let id):
                transmit(
                    XenStoreMessage(
                        type: request.type, requestID: id, transactionID: transaction,
                        payload: payload), id: id)
            }
        }
    }

    /// Sends `request` without waiting for the reply; errors are dropped.
    func sendDetached(_ request: XenStoreRequest) {
        guard let payload = try? request.encodePayload() else { return }
        let id = state.withLock { state -> UInt32? in
            guard state.failure == nil else { return nil }
            let id = state.allocateRequestID()
            state.pending[id] = .discard
            return id
        }
        guard let id else { return }
        transmit(XenStoreMessage(type: request.type, requestID: id, payload: payload), id: id)
    }

    /// A fresh token and the queue its events will go to.
    func registerWatch() throws(XenStoreError) -> (token: String, queue: WatchQueue) {
        let queue = WatchQueue()
        let token = try state.withLock { state throws(XenStoreError) -> String in
            if let failure = state.failure { throw failure }
            state.nextToken += 1
            let token = tokenPrefix + String(state.nextToken)
            state.watches[token] = queue
            return token
        }
        return (token, queue)
    }

    /// Stops delivering events for `token`.
    func unregisterWatch(_ token: String) {
        _ = state.withLock { $0.watches.removeValue(forKey: token) }
    }

    /// Ends the connection: fails everything with ``XenStoreError/closed``.
    func close() {
        terminate(.closed)
    }

    // MARK: internals

    private func transmit(_ message: XenStoreMessage, id: UInt32) {
        do throws(XenStoreError) {
            let bytes = try message.encoded()
            try sendLock.withLock { _ throws(XenStoreError) in try transport.send(bytes) }
        } catch {
            // A failed or partial send leaves the stream unusable.
            let entry = state.withLock { $0.pending.removeValue(forKey: id) }
            if case .waiting(let continuation) = entry { continuation.resume(throwing: error) }
            terminate(error)
        }
    }

    private func readLoop() {
        var parser = XenStoreMessageParser()
        var failure = XenStoreError.closed
        reading: while true {
            let bytes: [UInt8]
            do {
                bytes = try transport.receive()
            } catch {
                failure = error
                break
            }
            if bytes.isEmpty { break }
            parser.append(bytes)
            do {
                while let message = try parser.next() { dispatch(message) }
            } catch {
                failure = error
                break reading
            }
        }
        terminate(failure)
    }

    private func dispatch(_ message: XenStoreMessage) {
        if message.type == .watchEvent {
            // A malformed or unknown-token event is dropped: watches may fire
            // spuriously anyway, and it may belong to a watch just removed.
            guard let (path, token) = try? XenStoreWatchEvent.decode(message.payload) else {
                return
            }
            let queue = state.withLock { $0.watches[token] }
            queue?.push(XenStoreWatchEvent(path: path))
            return
        }
        let entry = state.withLock { $0.pending.removeValue(forKey: message.requestID) }
        if case .waiting(let continuation) = entry { continuation.resume(returning: message) }
    }

    private func terminate(_ error: XenStoreError) {
        let (failure, pending, watches) = state.withLock { state in
            if state.failure == nil { state.failure = error }
            defer {
                state.pending = [:]
                state.watches = [:]
            }
            return (state.failure ?? error, state.pending, state.watches)
        }
        transport.close()
        for entry in pending.values {
            if case .waiting(let continuation) = entry { continuation.resume(throwing: failure) }
        }
        for queue in watches.values { queue.fail(failure) }
    }
}
