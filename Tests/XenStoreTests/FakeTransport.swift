import Dispatch
import Synchronization

@testable import XenStore

/// A transport that answers each request through `responder` (raw reply
/// bytes), records what was sent, and can deliver replies one byte at a
/// time or hang up on demand.
final class FakeTransport: XenStoreTransport {
    private struct State {
        var parser = XenStoreMessageParser()
        var sent: [XenStoreMessage] = []
        var incoming: [[UInt8]] = []
        var closed = false
        var closeCalls = 0
    }

    private let state = Mutex(State())
    private let available = DispatchSemaphore(value: 0)
    private let responder: @Sendable (XenStoreMessage) -> [[UInt8]]
    private let chunkSize: Int

    /// - Parameters:
    ///   - chunkSize: replies are handed to the reader in pieces this big.
    ///   - responder: the reply messages (as bytes) for one request.
    init(
        chunkSize: Int = .max,
        responder: @escaping @Sendable (XenStoreMessage) -> [[UInt8]] = { _ in [] }
    ) {
        self.chunkSize = chunkSize
        self.responder = responder
    }

    var sent: [XenStoreMessage] { state.withLock { $0.sent } }
    var isClosed: Bool { state.withLock { $0.closed } }

    func send(_ bytes: [UInt8]) throws(XenStoreError) {
        let messages = try state.withLock { state throws(XenStoreError) -> [XenStoreMessage] in
            guard !state.closed else { throw .closed }
            state.parser.append(bytes)
            var messages: [XenStoreMessage] = []
            while let message = try state.parser.next() { messages.append(message) }
            state.sent += messages
            return messages
        }
        for message in messages { deliver(responder(message).flatMap { $0 }) }
    }

    /// Queues bytes for the reader as if the daemon sent them.
    func deliver(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        var chunks: [[UInt8]] = []
        var index = 0
        while index < bytes.count {
            let end = min(bytes.count, index + min(chunkSize, bytes.count))
            chunks.append(Array(bytes[index..<end]))
            index = end
        }
        state.withLock { $0.incoming += chunks }
        for _ in chunks { available.signal() }
    }

    func receive() throws(XenStoreError) -> [UInt8] {
        while true {
            let next = state.withLock { state -> [UInt8]?? in
                if !state.incoming.isEmpty { return .some(state.incoming.removeFirst()) }
                if state.closed { return .some(nil) }
                return .none
            }
            switch next {
            case .some(.some(let bytes)): return bytes
            case .some(.none): return []
            case .none: available.wait()
            }
        }
    }

    /// The daemon side hangs up: the reader sees end of file.
    func hangUp() { close() }

    func close() {
        let first = state.withLock { state -> Bool in
            state.closeCalls += 1
            defer { state.closed = true }
            return !state.closed
        }
        if first { available.signal() }
    }
}

/// Builds a reply message's bytes.
func reply(
    _ type: XenStoreMessageType, to request: XenStoreMessage, _ payload: [UInt8]
) -> [UInt8] {
    (try? XenStoreMessage(
        type: type, requestID: request.requestID, transactionID: request.transactionID,
        payload: payload
    ).encoded()) ?? []
}
