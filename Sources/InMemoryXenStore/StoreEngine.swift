import XenStore

/// The whole server state and request handling, without I/O: messages in,
/// messages queued per connection out. The socket layer around it
/// (``InMemoryXenStore``) runs it under one lock.
struct StoreEngine {
    struct Watch {
        /// Canonical (absolute or special) path.
        var node: String
        var token: String
        /// Bytes to strip from event paths of a relative watch.
        var prefixLength: Int
    }

    struct Transaction {
        /// The tree at start, to know what the transaction saw.
        var base: StoreTree
        var tree: StoreTree
        /// Generation of each path when first touched (0: absent).
        var accessed: [String: UInt64] = [:]
        var modified: Set<String> = []
        var events: [StoreEvent] = []
    }

    struct Connection {
        var domid: UInt32
        var watches: [Watch] = []
        var transactions: [UInt32: Transaction] = [:]
        var outbox: [XenStoreMessage] = []
    }

    struct Domain {
        var mfn: UInt64
        var eventChannel: UInt32
    }

    /// First domid that is not a real domain (`DOMID_FIRST_RESERVED`).
    static let firstReservedDomid: UInt32 = 0x7FF0

    var tree = StoreTree()
    var generation: UInt64 = 1
    var connections: [Int: Connection] = [:]
    var domains: [UInt32: Domain] = [:]
    var targets: [UInt32: UInt32] = [:]
    private var nextConnection = 0
    private var nextTransaction: UInt32 = 0

    // MARK: connections

    mutating func addConnection(domid: UInt32) -> Int {
        nextConnection += 1
        connections[nextConnection] = Connection(domid: domid)
        return nextConnection
    }

    mutating func removeConnection(_ id: Int) {
        connections[id] = nil
    }

    /// Connections with messages waiting to be written.
    var connectionsWithOutput: [Int] {
        connections.compactMap { $0.value.outbox.isEmpty ? nil : $0.key }
    }

    mutating func takeOutbox(_ id: Int) -> [XenStoreMessage] {
        guard let messages = connections[id]?.outbox, !messages.isEmpty else { return [] }
        connections[id]?.outbox = []
        return messages
    }

    func caller(for connection: Int) -> Caller? {
        guard let record = connections[connection] else { return nil }
        return Caller(
            connection: connection, domid: record.domid, privileged: record.domid == 0,
            target: targets[record.domid])
    }

    // MARK: requests

    /// Handles one request from `connection`, queueing the reply (and any
    /// watch events) on the connections concerned.
    mutating func handle(_ message: XenStoreMessage, from connection: Int) {
        guard let caller = caller(for: connection) else { return }
        var afterReply: [(Int, XenStoreMessage)] = []
        let reply: XenStoreMessage
        do throws(StoreFailure) {
            let payload = try execute(message, caller, &afterReply)
            guard payload.count <= XenStoreLimits.payloadMax else { throw .tooBig }
            reply = XenStoreMessage(
                type: message.type, requestID: message.requestID,
                transactionID: message.transactionID, payload: payload)
        } catch {
            afterReply = []
            reply = XenStoreMessage(
                type: .error, requestID: message.requestID, transactionID: message.transactionID,
                payload: XenStorePayload.strings([error.name]))
        }
        connections[connection]?.outbox.append(reply)
        for (target, event) in afterReply { connections[target]?.outbox.append(event) }
    }

    /// Runs a request for the store's own API (privileged, no connection,
    /// no transaction); watch events are queued as for any request.
    mutating func direct(_ request: XenStoreRequest) -> Result<[UInt8], StoreFailure> {
        let caller = Caller(connection: -1, domid: 0, privileged: true, target: nil)
        let message: XenStoreMessage
        do {
            message = try request.message(requestID: 0)
        } catch {
            return .failure(.invalid)
        }
        var ignored: [(Int, XenStoreMessage)] = []
        do throws(StoreFailure) {
            return .success(try execute(message, caller, &ignored))
        } catch {
            return .failure(error)
        }
    }

    private static let requestTypes: Set<XenStoreMessageType> = [
        .control, .directory, .read, .getPermissions, .watch, .unwatch, .transactionStart,
        .transactionEnd, .introduce, .release, .getDomainPath, .write, .mkdir, .remove,
        .setPermissions, .isDomainIntroduced, .resume, .setTarget, .resetWatches, .directoryPart,
    ]

    private static let ok = XenStorePayload.strings(["OK"])

    private mutating func execute(
        _ message: XenStoreMessage, _ caller: Caller, _ afterReply: inout [(Int, XenStoreMessage)]
    ) throws(StoreFailure) -> [UInt8] {
        guard Self.requestTypes.contains(message.type) else { throw .notSupported }
        let request: XenStoreRequest
        do {
            request = try XenStoreRequest(decoding: message)
        } catch {
            throw .invalid
        }
        let tx = message.transactionID
        switch request {
        case .read(let path):
            let path = try canonical(path, caller).path
            return try onTree(tx, caller) { tree, effects throws(StoreFailure) in
                try tree.read(path, caller, &effects)
            }
        case .write(let path, let value):
            let path = try canonical(path, caller).path
            try onTree(tx, caller) { tree, effects throws(StoreFailure) in
                try tree.write(path, value, caller, &effects)
            }
            return Self.ok
        case .mkdir(let path):
            let path = try canonical(path, caller).path
            try onTree(tx, caller) { tree, effects throws(StoreFailure) in
                try tree.mkdir(path, caller, &effects)
            }
            return Self.ok
        case .remove(let path):
            let path = try canonical(path, caller).path
            try onTree(tx, caller) { tree, effects throws(StoreFailure) in
                try tree.remove(path, caller, &effects)
            }
            return Self.ok
        case .directory(let path):
            let path = try canonical(path, caller).path
            let node = try onTree(tx, caller) { tree, effects throws(StoreFailure) in
                try tree.directory(path, caller, &effects)
            }
            return XenStorePayload.strings(node.children)
        case .directoryPart(let path, let offset):
            let path = try canonical(path, caller).path
            let node = try onTree(tx, caller) { tree, effects throws(StoreFailure) in
                try tree.directory(path, caller, &effects)
            }
            return Self.directoryPart(node, offset: offset)
        case .getPermissions(let path):
            let path = try canonical(path, caller, allowSpecial: true).path
            let permissions = try onTree(tx, caller) { tree, effects throws(StoreFailure) in
                try tree.permissions(path, caller, &effects)
            }
            return XenStorePayload.strings(permissions.map(\.description))
        case .setPermissions(let path, let permissions):
            let path = try canonical(path, caller, allowSpecial: true).path
            try onTree(tx, caller) { tree, effects throws(StoreFailure) in
                try tree.setPermissions(path, permissions, caller, &effects)
            }
            return Self.ok
        case .watch(let path, let token):
            let (node, relative) = try canonical(path, caller, allowSpecial: true)
            guard var record = connections[caller.connection] else { throw .invalid }
            if record.watches.contains(where: { $0.node == node && $0.token == token }) {
                throw .exists
            }
            let prefix = relative ? Self.home(caller.domid).utf8.count + 1 : 0
            record.watches.append(Watch(node: node, token: token, prefixLength: prefix))
            connections[caller.connection] = record
            // Fires once at set-up, after the reply, with the path as given.
            afterReply.append(
                (caller.connection, XenStoreWatchEvent.message(path: path, token: token)))
            return Self.ok
        case .unwatch(let path, let token):
            let node = try canonical(path, caller, allowSpecial: true).path
            guard var record = connections[caller.connection],
                let index = record.watches.firstIndex(where: {
                    $0.node == node && $0.token == token
                })
            else { throw .noEntry }
            record.watches.remove(at: index)
            connections[caller.connection] = record
            return Self.ok
        case .resetWatches:
            connections[caller.connection]?.watches = []
            connections[caller.connection]?.transactions = [:]
            return Self.ok
        case .transactionStart:
            if tx != 0 {
                guard connections[caller.connection]?.transactions[tx] != nil else {
                    throw .noEntry
                }
                throw .busy
            }
            guard connections[caller.connection] != nil else { throw .invalid }
            var id: UInt32
            repeat {
                nextTransaction &+= 1
                id = nextTransaction
            } while id == 0 || connections.values.contains { $0.transactions[id] != nil }
            connections[caller.connection]?.transactions[id] = Transaction(base: tree, tree: tree)
            return XenStorePayload.strings([String(id)])
        case .transactionEnd(let commit):
            guard tx != 0,
                let transaction = connections[caller.connection]?.transactions.removeValue(
                    forKey: tx)
            else { throw .noEntry }
            if commit { try self.commit(transaction) }
            return Self.ok
        case .introduce(let domid, let mfn, let eventChannel):
            guard caller.privileged else { throw .accessDenied }
            guard domid != 0, domid < Self.firstReservedDomid else { throw .invalid }
            let isNew = domains[domid] == nil
            domains[domid] = Domain(mfn: mfn, eventChannel: eventChannel)
            if isNew { fireSpecial("@introduceDomain") }
            return Self.ok
        case .release(let domid):
            guard caller.privileged else { throw .accessDenied }
            guard domid != 0 else { throw .invalid }
            guard domains.removeValue(forKey: domid) != nil else { throw .noEntry }
            fireSpecial("@releaseDomain")
            return Self.ok
        case .resume(let domid):
            guard caller.privileged else { throw .accessDenied }
            guard domains[domid] != nil else { throw .noEntry }
            return Self.ok
        case .isDomainIntroduced(let domid):
            guard caller.privileged else { throw .accessDenied }
            return XenStorePayload.strings([domid == 0 || domains[domid] != nil ? "T" : "F"])
        case .getDomainPath(let domid):
            return XenStorePayload.strings([Self.home(domid)])
        case .setTarget(let domid, let target):
            guard caller.privileged else { throw .accessDenied }
            targets[domid] = target
            return Self.ok
        case .control(let words):
            guard caller.privileged else { throw .accessDenied }
            switch words.first {
            case "check", "print": return Self.ok
            case "help": return XenStorePayload.strings(["check\nhelp\nprint\n"])
            default: throw .invalid
            }
        }
    }

    /// `/local/domain/<domid>`.
    static func home(_ domid: UInt32) -> String { "/local/domain/\(domid)" }

    /// The absolute path for a request path (relative ones are under the
    /// caller's home), or `EINVAL` by xenstore.txt's rules.
    private func canonical(_ path: String, _ caller: Caller, allowSpecial: Bool = false)
        throws(StoreFailure) -> (path: String, relative: Bool)
    {
        do {
            try XenStorePath.validate(path, allowSpecial: allowSpecial)
            if path.hasPrefix("/") || path.hasPrefix("@") { return (path, false) }
            let absolute = Self.home(caller.domid) + "/" + path
            try XenStorePath.validate(absolute)
            return (absolute, true)
        } catch {
            throw .invalid
        }
    }

    /// Runs `body` on the live tree (firing watches now) or on the
    /// transaction's copy (recording what it saw and queueing its events).
    private mutating func onTree<R>(
        _ tx: UInt32, _ caller: Caller,
        _ body: (inout StoreTree, inout StoreEffects) throws(StoreFailure) -> R
    ) throws(StoreFailure) -> R {
        var effects = StoreEffects(generation: generation)
        if tx == 0 {
            defer {
                generation = effects.generation
                fire(effects.events)
            }
            return try body(&tree, &effects)
        }
        guard var transaction = connections[caller.connection]?.transactions[tx] else {
            throw .noEntry
        }
        let result: Result<R, StoreFailure>
        do throws(StoreFailure) {
            result = .success(try body(&transaction.tree, &effects))
        } catch {
            result = .failure(error)
        }
        // Even a failed request observed nodes (a read of a missing one).
        for path in effects.touched where transaction.accessed[path] == nil {
            transaction.accessed[path] = transaction.base.nodes[path]?.generation ?? 0
        }
        transaction.modified.formUnion(effects.modified)
        transaction.events += effects.events
        generation = effects.generation
        connections[caller.connection]?.transactions[tx] = transaction
        return try result.get()
    }

    /// Applies a transaction unless a node it touched changed since it
    /// started (`EAGAIN`), then fires its queued events.
    private mutating func commit(_ transaction: Transaction) throws(StoreFailure) {
        for (path, seen) in transaction.accessed where (tree.nodes[path]?.generation ?? 0) != seen {
            throw .again
        }
        for path in transaction.modified {
            tree.nodes[path] = transaction.tree.nodes[path]
        }
        fire(transaction.events)
    }

    // MARK: watches

    private mutating func fireSpecial(_ name: String) {
        guard let node = tree.nodes[name] else { return }
        fire([StoreEvent(path: name, exact: true, permissions: node.permissions)])
    }

    /// Queues a WATCH_EVENT on every connection with a matching watch that
    /// may see the node (it can read the node, its old permissions, or the
    /// node's parent, as xenstored's `watch_permitted`).
    private mutating func fire(_ events: [StoreEvent]) {
        guard !events.isEmpty else { return }
        for id in connections.keys.sorted() {
            guard let caller = caller(for: id), var record = connections[id],
                !record.watches.isEmpty
            else { continue }
            for event in events where permitted(event, caller) {
                for watch in record.watches {
                    let matches =
                        event.exact
                        ? event.path == watch.node
                        : XenStorePath.isChild(event.path, of: watch.node)
                    guard matches else { continue }
                    let shown = String(
                        decoding: event.path.utf8.dropFirst(watch.prefixLength), as: UTF8.self)
                    record.outbox.append(
                        XenStoreWatchEvent.message(path: shown, token: watch.token))
                }
            }
            connections[id] = record
        }
    }

    private func permitted(_ event: StoreEvent, _ caller: Caller) -> Bool {
        if StoreTree.allows(event.permissions, .read, caller) { return true }
        if let old = event.oldPermissions, StoreTree.allows(old, .read, caller) { return true }
        guard let parent = tree.nodes[XenStorePath.parent(of: event.path)] else { return false }
        return StoreTree.allows(parent.permissions, .read, caller)
    }

    // MARK: DIRECTORY_PART

    /// xenstored's reply: the node generation, then as many whole child
    /// names from `offset` as fit, then an extra NUL if the list ends there.
    static func directoryPart(_ node: StoreNode, offset: Int) -> [UInt8] {
        let generation = XenStorePayload.strings([String(node.generation)])
        let children = XenStorePayload.strings(node.children)
        guard offset < children.count else { return generation + [0] }
        let room = XenStoreLimits.payloadMax - generation.count - 1
        var end = offset
        while end < children.count {
            guard let nul = children[end...].firstIndex(of: 0) else { break }
            let next = nul + 1
            guard next - offset < room else { break }
            end = next
        }
        var reply = generation + children[offset..<end]
        if end == children.count { reply.append(0) }
        return reply
    }
}
