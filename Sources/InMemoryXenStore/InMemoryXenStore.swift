import Synchronization
import SystemPackage
import XenStore

#if canImport(Glibc)
    import Glibc
#endif

/// An in-memory xenstored for tests. It speaks the real wire protocol over
/// stream sockets, one thread per connection:
///
/// - ``connect(domid:)`` gives a ``XenStoreClient`` talking to it as a
///   domain: dom0 is privileged, any other domid is a guest bound by node
///   permissions (relative paths resolve under `/local/domain/<domid>`).
/// - ``serve(socketPath:domid:)`` listens on a Unix socket, as xenstored
///   does, for programs such as `proxenos xenstore`.
///
/// Semantics follow xenstored: parents created on write/mkdir with
/// inherited permissions (an unprivileged creator owns what it creates),
/// recursive rm, watches that fire once on set-up and then for changes at
/// or below their path, `@introduceDomain`/`@releaseDomain`, transactions
/// working on a snapshot that fail with `EAGAIN` at commit if any node they
/// touched changed. RELEASE does not close the domain's connections here,
/// and xenstored's quotas (nodes, watches, transactions per domain) are not
/// modelled.
///
/// Call ``stop()`` when done: it ends every connection and listener.
/// Without it the store lives as long as any connection or listener does.
public final class InMemoryXenStore: Sendable {
    /// One served socket; the lock serialises writes and guards the close.
    private final class ServerSocket: Sendable {
        let fd: FileDescriptor
        let domid: UInt32
        /// True once closed: nobody may use `fd` then.
        let closed = Mutex(false)

        init(fd: FileDescriptor, domid: UInt32) {
            self.fd = fd
            self.domid = domid
        }
    }

    private struct Sockets {
        var stopped = false
        var connections: [Int: ServerSocket] = [:]
        var listeners: [(fd: FileDescriptor, path: String)] = []
    }

    private let engine = Mutex(StoreEngine())
    private let sockets = Mutex(Sockets())

    public init() {}

    // MARK: connecting

    /// A client connected as `domid` over an in-process socket pair.
    public func connect(domid: UInt32 = 0) throws -> XenStoreClient {
        let (serverEnd, clientEnd) = try XenStoreSocket.pair()
        do {
            try attach(serverEnd, domid: domid)
        } catch {
            try? clientEnd.close()
            throw error
        }
        return XenStoreClient(
            transport: try FileDescriptorTransport(adopting: clientEnd, isSocket: true))
    }

    /// Listens on a Unix socket at `socketPath` (replacing a stale one);
    /// every connection there acts as `domid` (dom0 by default, like
    /// xenstored's socket). The socket file is removed by ``stop()``.
    public func serve(socketPath: String, domid: UInt32 = 0) throws {
        let listener = try XenStoreSocket.listen(path: socketPath)
        let accepted = sockets.withLock { sockets -> Bool in
            guard !sockets.stopped else { return false }
            sockets.listeners.append((listener, socketPath))
            return true
        }
        guard accepted else {
            try? listener.close()
            throw XenStoreError.closed
        }
        do {
            try spawnThread(name: "xs-mem-accept") { [self] in
                acceptLoop(listener, domid: domid)
            }
        } catch {
            XenStoreSocket.shutdown(listener)
            throw error
        }
    }

    /// Ends every connection and listener; later ``connect(domid:)`` and
    /// ``serve(socketPath:domid:)`` calls fail with ``XenStoreError/closed``.
    public func stop() {
        let (connections, listeners) = sockets.withLock { sockets in
            sockets.stopped = true
            return (Array(sockets.connections.values), sockets.listeners)
        }
        for connection in connections { XenStoreSocket.shutdown(connection.fd) }
        for listener in listeners {
            XenStoreSocket.shutdown(listener.fd)
            _ = unlink(listener.path)
        }
    }

    /// Drops every connection of `domid` as if xenstored lost it; the
    /// clients see their requests fail and watches end with an error.
    public func disconnect(domid: UInt32) {
        let victims = sockets.withLock { sockets in
            sockets.connections.values.filter { $0.domid == domid }
        }
        for victim in victims { XenStoreSocket.shutdown(victim.fd) }
    }

    /// Connections currently open.
    public var connectionCount: Int {
        engine.withLock { $0.connections.count }
    }

    /// Watches currently registered, over all connections.
    public var watchCount: Int {
        engine.withLock { $0.connections.values.reduce(0) { $0 + $1.watches.count } }
    }

    /// Transactions currently open, over all connections.
    public var transactionCount: Int {
        engine.withLock { $0.connections.values.reduce(0) { $0 + $1.transactions.count } }
    }

    // MARK: direct access (privileged, for test set-up and assertions)

    /// The raw value of a node, or nil if it does not exist.
    public func bytes(at path: String) -> [UInt8]? {
        engine.withLock { $0.tree.nodes[path]?.value }
    }

    /// A node's value as UTF-8 text, or nil if it does not exist.
    public func value(at path: String) -> String? {
        bytes(at: path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A node's children names, or nil if it does not exist.
    public func children(of path: String) -> [String]? {
        engine.withLock { $0.tree.nodes[path]?.children }
    }

    /// A node's access list, or nil if it does not exist.
    public func permissions(of path: String) -> [XenStorePermission]? {
        engine.withLock { $0.tree.nodes[path]?.permissions }
    }

    /// Whether a domain was introduced and not released.
    public func isIntroduced(_ domid: UInt32) -> Bool {
        engine.withLock { $0.domains[domid] != nil }
    }

    /// Writes as dom0 (creating parents, firing watches).
    public func write(_ path: String, _ value: String) throws {
        try direct(.write(path, value: Array(value.utf8)))
    }

    /// Creates a node as dom0 (firing watches).
    public func mkdir(_ path: String) throws {
        try direct(.mkdir(path))
    }

    /// Removes a subtree as dom0 (firing watches).
    public func remove(_ path: String) throws {
        try direct(.remove(path))
    }

    /// Sets a node's access list as dom0 (firing watches).
    public func setPermissions(_ path: String, _ permissions: [XenStorePermission]) throws {
        try direct(.setPermissions(path, permissions))
    }

    /// The tree below `path` in `xenstore-ls -p`-like form, one node a line:
    /// `path = "value" (perms)`. For test failure messages.
    public func dump(_ path: String = "/") -> String {
        engine.withLock { engine in
            var lines: [String] = []
            func visit(_ current: String) {
                guard let node = engine.tree.nodes[current] else { return }
                let value = String(decoding: node.value, as: UTF8.self)
                let perms = node.permissions.map(\.description).joined(separator: ",")
                lines.append("\(current) = \"\(value)\" (\(perms))")
                for child in node.children { visit(XenStorePath.join(current, child)) }
            }
            visit(path)
            return lines.joined(separator: "\n")
        }
    }

    private func direct(_ request: XenStoreRequest) throws {
        let (result, output) = engine.withLock { engine in
            (engine.direct(request), engine.connectionsWithOutput)
        }
        flush(output)
        if case .failure(let failure) = result {
            throw XenStoreClient.error(
                fromReply: XenStorePayload.strings([failure.name]), to: request)
        }
    }

    // MARK: serving

    private func attach(_ fd: FileDescriptor, domid: UInt32) throws {
        let socket = ServerSocket(fd: fd, domid: domid)
        let id = engine.withLock { $0.addConnection(domid: domid) }
        let registered = sockets.withLock { sockets -> Bool in
            guard !sockets.stopped else { return false }
            sockets.connections[id] = socket
            return true
        }
        guard registered else {
            engine.withLock { $0.removeConnection(id) }
            try? fd.close()
            throw XenStoreError.closed
        }
        do {
            try spawnThread(name: "xs-mem-conn") { [self] in serveConnection(id, socket) }
        } catch {
            sockets.withLock { _ = $0.connections.removeValue(forKey: id) }
            engine.withLock { $0.removeConnection(id) }
            try? fd.close()
            throw error
        }
    }

    private func acceptLoop(_ listener: FileDescriptor, domid: UInt32) {
        while true {
            let fd: FileDescriptor
            do {
                fd = try XenStoreSocket.accept(listener)
            } catch XenStoreError.system(_, .connectionAbort) {
                continue
            } catch {
                break  // shut down by stop(), or the listener failed
            }
            if (try? attach(fd, domid: domid)) == nil { break }
        }
        try? listener.close()
    }

    /// Reads requests from one connection until it closes. A message over
    /// the payload limit drops the connection, as xenstored does.
    private func serveConnection(_ id: Int, _ socket: ServerSocket) {
        var parser = XenStoreMessageParser()
        reading: while true {
            guard
                let bytes = try? XenStoreSocket.receive(
                    socket.fd, maximum: XenStoreLimits.headerSize + XenStoreLimits.payloadMax),
                !bytes.isEmpty
            else { break }
            parser.append(bytes)
            while true {
                let message: XenStoreMessage?
                do {
                    message = try parser.next()
                } catch {
                    break reading
                }
                guard let message else { break }
                let output = engine.withLock { engine in
                    engine.handle(message, from: id)
                    return engine.connectionsWithOutput
                }
                flush(output)
            }
        }
        engine.withLock { $0.removeConnection(id) }
        sockets.withLock { _ = $0.connections.removeValue(forKey: id) }
        socket.closed.withLock { closed in
            closed = true
            XenStoreSocket.shutdown(socket.fd)
            try? socket.fd.close()
        }
    }

    /// Writes the queued messages of each connection. The connection's lock
    /// is held from taking its queue to the end of writing, so messages
    /// reach each client in the order the engine queued them.
    private func flush(_ ids: [Int]) {
        for id in ids {
            guard let socket = sockets.withLock({ $0.connections[id] }) else {
                engine.withLock { _ = $0.takeOutbox(id) }
                continue
            }
            socket.closed.withLock { closed in
                let messages = engine.withLock { $0.takeOutbox(id) }
                guard !closed else { return }
                for message in messages {
                    do {
                        try XenStoreSocket.sendAll(socket.fd, message.encoded())
                    } catch {
                        // The peer is gone; its reader thread cleans up.
                        XenStoreSocket.shutdown(socket.fd)
                        return
                    }
                }
            }
        }
    }
}
