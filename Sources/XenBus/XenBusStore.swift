/// What the backend machinery needs from xenstore. Paths are absolute
/// (`/local/domain/0/backend/vbd/1/51712/state`) and passed through as given.
///
/// XenDevices' `XenStoreBusStore` is the real one (over XenStoreClient);
/// ``InMemoryXenBusStore`` (XenBusTesting) is the fake. Errors are the store's own; XenBus wraps them.
public protocol XenBusStore: Sendable {
    /// The node's value; nil when the node does not exist.
    func read(_ path: String) async throws -> String?

    /// Creates or overwrites a node (missing parents are created, as
    /// xenstored does).
    func write(_ path: String, _ value: String) async throws

    /// Names (not paths) of a node's children; empty when the node has none
    /// or does not exist.
    func directory(_ path: String) async throws -> [String]

    /// Removes a node and everything below it; removing a missing node is
    /// not an error.
    func remove(_ path: String) async throws

    /// Registers a watch on `path`. The stream yields the path of every
    /// change at or below `path` (xenstored semantics: once right after
    /// registration with `path` itself; on removal of an ancestor, `path`
    /// again) and finishes or throws when the connection ends. Ending the
    /// iteration (or cancelling the iterating task) removes the watch.
    func watch(_ path: String) async throws -> AsyncThrowingStream<String, any Error>
}
