import XenStore

/// An errno name for an ERROR reply, as xenstored sends them.
struct StoreFailure: Error, Equatable {
    let name: String

    static let invalid = StoreFailure(name: "EINVAL")
    static let accessDenied = StoreFailure(name: "EACCES")
    static let notPermitted = StoreFailure(name: "EPERM")
    static let noEntry = StoreFailure(name: "ENOENT")
    static let exists = StoreFailure(name: "EEXIST")
    static let again = StoreFailure(name: "EAGAIN")
    static let busy = StoreFailure(name: "EBUSY")
    static let tooBig = StoreFailure(name: "E2BIG")
    static let notSupported = StoreFailure(name: "ENOSYS")
}

/// Who is asking: the connection, its domain, and its privileges.
struct Caller {
    /// The connection, or -1 for the store's own direct API.
    var connection: Int
    var domid: UInt32
    /// Dom0 (xenstored's "tools") may do anything.
    var privileged: Bool
    /// SET_TARGET: this domain acts with `target`'s rights too.
    var target: UInt32?
}

/// A node: value, access list (owner first), ordered children, and the
/// generation of its last change (transactions compare generations).
struct StoreNode {
    var value: [UInt8] = []
    var permissions: [XenStorePermission]
    var children: [String] = []
    var generation: UInt64
}

/// A modification to report to watches (fired at once, or at commit).
struct StoreEvent {
    var path: String
    /// Exact events match only watches on `path` itself; others match every
    /// watch at or above `path` (xenstored's `fire_watches`).
    var exact: Bool
    var permissions: [XenStorePermission]
    /// Before a SET_PERMS: a watcher losing access still hears of it.
    var oldPermissions: [XenStorePermission]? = nil
}

/// What an operation did, for transactions and watches.
struct StoreEffects {
    /// Next generation number to hand out.
    var generation: UInt64
    /// Paths read or written (a transaction conflicts if any changed).
    var touched: [String] = []
    /// Paths whose node was changed, created or removed.
    var modified: [String] = []
    var events: [StoreEvent] = []

    mutating func bump() -> UInt64 {
        generation += 1
        return generation
    }
}

/// The node tree, as a flat map from absolute path to node so a
/// transaction's snapshot is a cheap copy-on-write value.
struct StoreTree {
    /// The special nodes whose permissions govern who hears of domains.
    static let specialNodes = ["@introduceDomain", "@releaseDomain"]

    var nodes: [String: StoreNode]

    init() {
        let dom0Only = [XenStorePermission(domid: 0, access: .none)]
        nodes = ["/": StoreNode(permissions: dom0Only, generation: 1)]
        for special in Self.specialNodes {
            nodes[special] = StoreNode(permissions: dom0Only, generation: 1)
        }
    }

    enum Need {
        case read
        case write
        /// SET_PERMS: write access and ownership.
        case writeOwner
    }

    /// xenstored's `perm_for_conn`: dom0, the owner and the owner's
    /// controller get everything; otherwise the first later entry for the
    /// domain, else the owner entry's letter.
    static func allows(_ permissions: [XenStorePermission], _ need: Need, _ caller: Caller) -> Bool
    {
        guard let owner = permissions.first else { return caller.privileged }
        if caller.privileged || owner.domid == caller.domid
            || (caller.target != nil && owner.domid == caller.target)
        {
            return true
        }
        let entry =
            permissions.dropFirst().first {
                $0.domid == caller.domid || (caller.target != nil && $0.domid == caller.target)
            } ?? owner
        switch need {
        case .read: return entry.access.canRead
        case .write: return entry.access.canWrite
        case .writeOwner: return false
        }
    }

    /// The node if it exists and `caller` may `need` it; nil if it does not
    /// exist and its nearest existing ancestor grants `need`. Otherwise
    /// `EACCES`, so a denied caller learns nothing about the node
    /// (xenstored's `errno_from_parents`).
    func lookup(_ path: String, _ need: Need, _ caller: Caller) throws(StoreFailure) -> StoreNode? {
        if let node = nodes[path] {
            guard Self.allows(node.permissions, need, caller) else { throw .accessDenied }
            return node
        }
        var ancestor = path
        repeat {
            ancestor = XenStorePath.parent(of: ancestor)
            if let node = nodes[ancestor] {
                guard Self.allows(node.permissions, need, caller) else { throw .accessDenied }
                return nil
            }
        } while ancestor != "/"
        throw .accessDenied
    }

    /// Creates `path` and missing ancestors with empty values. Each new node
    /// inherits its parent's permissions; an unprivileged creator becomes
    /// the owner.
    mutating func create(_ path: String, _ caller: Caller, _ effects: inout StoreEffects) {
        var missing: [String] = []
        var current = path
        while nodes[current] == nil {
            missing.append(current)
            current = XenStorePath.parent(of: current)
        }
        for newPath in missing.reversed() {
            let parentPath = XenStorePath.parent(of: newPath)
            guard var parent = nodes[parentPath] else { continue }
            var permissions = parent.permissions
            if !caller.privileged, !permissions.isEmpty { permissions[0].domid = caller.domid }
            nodes[newPath] = StoreNode(permissions: permissions, generation: effects.bump())
            parent.children.append(XenStorePath.basename(newPath))
            parent.generation = effects.bump()
            nodes[parentPath] = parent
            effects.touched += [newPath, parentPath]
            effects.modified += [newPath, parentPath]
        }
    }

    // MARK: operations

    func read(_ path: String, _ caller: Caller, _ effects: inout StoreEffects) throws(StoreFailure)
        -> [UInt8]
    {
        effects.touched.append(path)
        guard let node = try lookup(path, .read, caller) else { throw .noEntry }
        return node.value
    }

    mutating func write(
        _ path: String, _ value: [UInt8], _ caller: Caller, _ effects: inout StoreEffects
    ) throws(StoreFailure) {
        effects.touched.append(path)
        if try lookup(path, .write, caller) == nil { create(path, caller, &effects) }
        guard var node = nodes[path] else { throw .noEntry }
        node.value = value
        node.generation = effects.bump()
        nodes[path] = node
        effects.modified.append(path)
        effects.events.append(StoreEvent(path: path, exact: false, permissions: node.permissions))
    }

    mutating func mkdir(_ path: String, _ caller: Caller, _ effects: inout StoreEffects)
        throws(StoreFailure)
    {
        effects.touched.append(path)
        // An existing node is fine and changes nothing (no event).
        guard try lookup(path, .write, caller) == nil else { return }
        create(path, caller, &effects)
        if let node = nodes[path] {
            effects.events.append(
                StoreEvent(path: path, exact: false, permissions: node.permissions))
        }
    }

    mutating func remove(_ path: String, _ caller: Caller, _ effects: inout StoreEffects)
        throws(StoreFailure)
    {
        effects.touched.append(path)
        let parentPath = XenStorePath.parent(of: path)
        guard try lookup(path, .write, caller) != nil else {
            // Already gone: fine, as long as the parent exists.
            effects.touched.append(parentPath)
            if nodes[parentPath] == nil { throw .noEntry }
            return
        }
        if path == "/" { throw .invalid }
        // Post-order, like xenstored's tree walk: the removed root fires
        // every watch at or above it; each node below fires only watches
        // set exactly on it.
        var order: [String] = []
        func collect(_ current: String) {
            for child in nodes[current]?.children ?? [] {
                collect(XenStorePath.join(current, child))
            }
            order.append(current)
        }
        collect(path)
        for removed in order {
            if let node = nodes[removed] {
                effects.events.append(
                    StoreEvent(path: removed, exact: removed != path, permissions: node.permissions)
                )
            }
            nodes[removed] = nil
            effects.touched.append(removed)
            effects.modified.append(removed)
        }
        if var parent = nodes[parentPath] {
            let name = XenStorePath.basename(path)
            parent.children.removeAll { $0 == name }
            parent.generation = effects.bump()
            nodes[parentPath] = parent
            effects.touched.append(parentPath)
            effects.modified.append(parentPath)
        }
    }

    func directory(_ path: String, _ caller: Caller, _ effects: inout StoreEffects)
        throws(StoreFailure) -> StoreNode
    {
        effects.touched.append(path)
        guard let node = try lookup(path, .read, caller) else { throw .noEntry }
        return node
    }

    func permissions(_ path: String, _ caller: Caller, _ effects: inout StoreEffects)
        throws(StoreFailure) -> [XenStorePermission]
    {
        effects.touched.append(path)
        guard let node = try lookup(path, .read, caller) else { throw .noEntry }
        return node.permissions
    }

    mutating func setPermissions(
        _ path: String, _ permissions: [XenStorePermission], _ caller: Caller,
        _ effects: inout StoreEffects
    ) throws(StoreFailure) {
        effects.touched.append(path)
        guard var node = try lookup(path, .writeOwner, caller) else { throw .noEntry }
        guard let newOwner = permissions.first else { throw .invalid }
        // Only dom0 may give a node away.
        if !caller.privileged, newOwner.domid != node.permissions.first?.domid {
            throw .notPermitted
        }
        let old = node.permissions
        node.permissions = permissions
        node.generation = effects.bump()
        nodes[path] = node
        effects.modified.append(path)
        effects.events.append(
            StoreEvent(path: path, exact: false, permissions: permissions, oldPermissions: old))
    }
}
