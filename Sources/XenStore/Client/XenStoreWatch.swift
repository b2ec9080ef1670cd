import Synchronization

/// A watch on a xenstore path: an asynchronous sequence of the paths that
/// changed at or below it, starting with the firing xenstored sends when the
/// watch is set up.
///
/// The sequence throws if the connection breaks. Iterating again after a
/// `break` continues where the previous loop stopped; concurrent iterators
/// share the events (each event goes to one of them). A task cancelled
/// while waiting sees the sequence end (nil) without removing the watch.
///
/// ``cancel()`` removes the watch; dropping the last reference does so too,
/// best-effort, without waiting for xenstored's answer.
public final class XenStoreWatch: AsyncSequence, Sendable {
    public typealias Element = XenStoreWatchEvent

    /// The path (or special `@...` name) being watched, as given.
    public let path: String
    private let token: String
    private let client: XenStoreClient
    private let queue: WatchQueue
    private let cancelled = Atomic(false)

    init(client: XenStoreClient, path: String, token: String, queue: WatchQueue) {
        self.client = client
        self.path = path
        self.token = token
        self.queue = queue
    }

    /// The next event, or nil once the watch was cancelled (or the calling
    /// task is cancelled).
    public func next() async throws -> XenStoreWatchEvent? {
        try await queue.next()
    }

    /// Removes the watch (UNWATCH) and ends the sequence. Idempotent; errors
    /// (a closed connection) are ignored since the watch is gone either way.
    public func cancel() async {
        guard !cancelled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        client.connection.unregisterWatch(token)
        queue.finish()
        _ = try? await client.perform(.unwatch(path, token: token), transaction: 0)
    }

    deinit {
        guard !cancelled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        client.connection.unregisterWatch(token)
        queue.finish()
        client.connection.sendDetached(.unwatch(path, token: token))
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let watch: XenStoreWatch

        public mutating func next() async throws -> XenStoreWatchEvent? {
            try await watch.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(watch: self)
    }
}

/// A xenstore transaction: reads see a snapshot taken at its start, writes
/// become visible atomically at commit. Obtained from
/// ``XenStoreClient/transaction(maxAttempts:_:)``; valid only inside it.
public final class XenStoreTransaction: XenStoreAccess, Sendable {
    /// xenstored's transaction id (the tx_id header field).
    public let id: UInt32
    private let operations: Operations

    init(client: XenStoreClient, id: UInt32) {
        self.id = id
        operations = Operations(client: client, transaction: id)
    }

    public func read(_ path: String) async throws -> String {
        try await operations.read(path)
    }
    public func readIfPresent(_ path: String) async throws -> String? {
        try await operations.readIfPresent(path)
    }
    public func readBytes(_ path: String) async throws -> [UInt8] {
        try await operations.readBytes(path)
    }
    public func write(_ path: String, _ value: String) async throws {
        try await operations.write(path, Array(value.utf8))
    }
    public func write(_ path: String, bytes: [UInt8]) async throws {
        try await operations.write(path, bytes)
    }
    public func mkdir(_ path: String) async throws {
        try await operations.mkdir(path)
    }
    public func remove(_ path: String) async throws {
        try await operations.remove(path)
    }
    public func directory(_ path: String) async throws -> [String] {
        try await operations.directory(path)
    }
    public func permissions(_ path: String) async throws -> [XenStorePermission] {
        try await operations.permissions(path)
    }
    public func setPermissions(_ path: String, _ perms: [XenStorePermission]) async throws {
        try await operations.setPermissions(path, perms)
    }
}
