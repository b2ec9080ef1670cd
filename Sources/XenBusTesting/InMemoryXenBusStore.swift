import Synchronization
import XenBus

/// An in-memory xenstore for tests: a tree of nodes with xenstored's watch
/// semantics (a change fires watches on the node and its ancestors; a
/// removal also fires watches below the removed node; every watch fires
/// once on registration). Permissions and transactions are not modelled.
public final class InMemoryXenBusStore: XenBusStore {
    private struct Watch {
        var path: String
        var continuation: AsyncThrowingStream<String, any Error>.Continuation
    }

    private struct State {
        var nodes: [String: String] = [:]
        var watches: [Int: Watch] = [:]
        var nextWatch = 0
        var writes: [BackendNodeWrite] = []
    }

    /// One recorded write (tests check what was written, in order).
    public struct BackendNodeWrite: Sendable, Equatable {
        public var path: String
        public var value: String
    }

    private let state = Mutex(State())

    /// A store holding `nodes` (parents are created).
    public init(_ nodes: [String: String] = [:]) {
        for (path, value) in nodes.sorted(by: { $0.key < $1.key }) {
            set(path, value)
        }
    }

    // MARK: XenBusStore

    public func read(_ path: String) async throws -> String? {
        value(path)
    }

    public func write(_ path: String, _ value: String) async throws {
        set(path, value)
    }

    public func directory(_ path: String) async throws -> [String] {
        children(path)
    }

    public func remove(_ path: String) async throws {
        delete(path)
    }

    public func watch(_ path: String) async throws -> AsyncThrowingStream<String, any Error> {
        let path = Self.normalize(path)
        let (stream, continuation) = AsyncThrowingStream<String, any Error>.makeStream()
        let id = state.withLock { state in
            let id = state.nextWatch
            state.nextWatch += 1
            state.watches[id] = Watch(path: path, continuation: continuation)
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.watches.removeValue(forKey: id) }
        }
        // xenstored fires every new watch once.
        continuation.yield(path)
        return stream
    }

    // MARK: synchronous access for tests

    /// The node's value, nil if absent.
    public func value(_ path: String) -> String? {
        state.withLock { $0.nodes[Self.normalize(path)] }
    }

    /// Writes a node (creating parents) and fires watches.
    public func set(_ path: String, _ value: String) {
        let path = Self.normalize(path)
        let fired = state.withLock { state in
            var parent = Self.parent(of: path)
            while let current = parent, state.nodes[current] == nil {
                state.nodes[current] = ""
                parent = Self.parent(of: current)
            }
            state.nodes[path] = value
            state.writes.append(BackendNodeWrite(path: path, value: value))
            return Self.matching(state.watches, changed: path, removal: false)
        }
        for (continuation, event) in fired { continuation.yield(event) }
    }

    /// Removes a node and its subtree and fires watches (nothing happens
    /// for a missing node).
    public func delete(_ path: String) {
        let path = Self.normalize(path)
        let fired = state.withLock {
            state -> [(AsyncThrowingStream<String, any Error>.Continuation, String)] in
            guard state.nodes[path] != nil else { return [] }
            state.nodes = state.nodes.filter { key, _ in
                key != path && !key.hasPrefix(path + "/")
            }
            return Self.matching(state.watches, changed: path, removal: true)
        }
        for (continuation, event) in fired { continuation.yield(event) }
    }

    /// Names of the node's children, sorted.
    public func children(_ path: String) -> [String] {
        let prefix = Self.normalize(path) + "/"
        return state.withLock { state in
            state.nodes.keys.compactMap { key -> String? in
                guard key.hasPrefix(prefix) else { return nil }
                let rest = key.dropFirst(prefix.count)
                return rest.contains("/") ? nil : String(rest)
            }.sorted()
        }
    }

    /// Every write so far, in order.
    public var writes: [BackendNodeWrite] {
        state.withLock { $0.writes }
    }

    /// Watches currently registered.
    public var watchCount: Int {
        state.withLock { $0.watches.count }
    }

    /// Fires the watches registered on a special path such as
    /// `@introduceDomain` or `@releaseDomain`, as xenstored does on
    /// INTRODUCE and when a domain shuts down or dies; the event carries the
    /// special path itself. Nodes are not touched.
    public func fireSpecial(_ name: String) {
        let continuations = state.withLock { state in
            state.watches.values.filter { $0.path == name }.map(\.continuation)
        }
        for continuation in continuations { continuation.yield(name) }
    }

    /// Ends the watch streams registered on exactly `path` with `error`,
    /// as when one watch of a client is lost; returns how many ended.
    @discardableResult
    public func failWatches(on path: String, _ error: any Error) -> Int {
        let path = Self.normalize(path)
        let continuations = state.withLock { state in
            let ids = state.watches.filter { $0.value.path == path }.map(\.key)
            return ids.compactMap { state.watches.removeValue(forKey: $0)?.continuation }
        }
        for continuation in continuations { continuation.finish(throwing: error) }
        return continuations.count
    }

    /// Ends every watch stream with `error` (a lost connection).
    public func failWatches(_ error: any Error) {
        let continuations = state.withLock { state in
            let all = state.watches.values.map(\.continuation)
            state.watches.removeAll()
            return all
        }
        for continuation in continuations { continuation.finish(throwing: error) }
    }

    // MARK: helpers

    private static func matching(
        _ watches: [Int: Watch], changed path: String, removal: Bool
    ) -> [(AsyncThrowingStream<String, any Error>.Continuation, String)] {
        var fired: [(AsyncThrowingStream<String, any Error>.Continuation, String)] = []
        for watch in watches.values {
            if path == watch.path || path.hasPrefix(watch.path + "/") {
                fired.append((watch.continuation, path))
            } else if removal && watch.path.hasPrefix(path + "/") {
                fired.append((watch.continuation, watch.path))
            }
        }
        return fired
    }

    static func normalize(_ path: String) -> String {
        var path = path
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        return path
    }

    static func parent(of path: String) -> String? {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return nil }
        return String(path[..<slash])
    }
}
