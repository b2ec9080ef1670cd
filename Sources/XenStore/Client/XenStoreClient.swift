import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Operations shared by the client and a transaction handle.
public protocol XenStoreAccess: Sendable {
    /// The node's value as UTF-8 text. Throws ``XenStoreError/noEntry(_:)``
    /// if the node does not exist.
    func read(_ path: String) async throws -> String
    /// The node's value, or nil if it does not exist.
    func readIfPresent(_ path: String) async throws -> String?
    /// The node's value as raw bytes.
    func readBytes(_ path: String) async throws -> [UInt8]
    /// Sets the node's value, creating it and missing parents.
    func write(_ path: String, _ value: String) async throws
    /// Sets the node's value to raw bytes, creating it and missing parents.
    func write(_ path: String, bytes: [UInt8]) async throws
    /// Creates the node and missing parents with empty values; an existing
    /// node is left alone.
    func mkdir(_ path: String) async throws
    /// Removes the node and everything below it; a missing node is not an
    /// error.
    func remove(_ path: String) async throws
    /// The names (last components) of the node's children.
    func directory(_ path: String) async throws -> [String]
    /// The node's access list, owner first.
    func permissions(_ path: String) async throws -> [XenStorePermission]
    /// Replaces the node's access list (owner first).
    func setPermissions(_ path: String, _ perms: [XenStorePermission]) async throws
}

extension XenStoreAccess {
    /// Whether the node exists.
    public func exists(_ path: String) async throws -> Bool {
        try await readIfPresent(path) != nil
    }
}

/// A connection to xenstored.
///
/// Many tasks may issue requests at once: each request gets its own req_id
/// and waits for its reply; a dedicated reader thread delivers replies and
/// watch events. If the connection breaks, every request in flight fails
/// and every watch ends with an error; nothing hangs.
public final class XenStoreClient: Sendable {
    /// xenstored's Unix socket.
    public static let defaultSocketPath = "/run/xenstored/socket"
    /// The kernel's xenbus device.
    public static let defaultDevicePath = "/dev/xen/xenbus"

    let connection: ClientConnection

    /// A client over any transport (tests, custom pipes).
    public init(transport: some XenStoreTransport) {
        connection = ClientConnection(transport: transport)
    }

    /// Connects to xenstored's Unix socket.
    public static func connect(socketPath: String = defaultSocketPath) throws -> XenStoreClient {
        XenStoreClient(transport: try FileDescriptorTransport.unixSocket(path: socketPath))
    }

    /// Opens the kernel's xenbus device.
    public static func openDevice(path: String = defaultDevicePath) throws -> XenStoreClient {
        XenStoreClient(transport: try FileDescriptorTransport.device(path: path))
    }

    /// The socket if xenstored listens there, else the xenbus device (as
    /// libxenstore does).
    public static func connectDefault() throws -> XenStoreClient {
        // As Xen's libxenstore: XENSTORED_PATH names another socket.
        if let override = getenv("XENSTORED_PATH").map({ String(cString: $0) }), !override.isEmpty {
            return try connect(socketPath: override)
        }
        do {
            return try connect()
        } catch let socketError {
            do {
                return try openDevice()
            } catch XenStoreError.system(_, let errno) {
                throw XenStoreError.system(
                    operation: "no xenstored socket (\(socketError)) and open \(defaultDevicePath)",
                    errno)
            }
        }
    }

    /// Closes the connection; requests in flight fail with
    /// ``XenStoreError/closed`` and watches end. Idempotent.
    public func close() {
        connection.close()
    }

    deinit {
        connection.close()
    }

    // MARK: watches

    /// Sets a watch on `path` (or a special path such as `@releaseDomain`).
    ///
    /// Like xenstored, the watch fires once on set-up with `path` itself,
    /// then for every change at or below `path`. Iterate the result;
    /// ``XenStoreWatch/cancel()`` removes the watch.
    public func watch(_ path: String) async throws -> XenStoreWatch {
        try XenStorePath.validate(path, allowSpecial: true)
        let (token, queue) = try connection.registerWatch()
        do {
            _ = try await perform(.watch(path, token: token), transaction: 0)
        } catch {
            connection.unregisterWatch(token)
            queue.finish()
            throw error
        }
        return XenStoreWatch(client: self, path: path, token: token, queue: queue)
    }

    /// Removes every watch and transaction of this connection on the daemon
    /// side (RESET_WATCHES). Local watch objects then see no more events.
    public func resetWatches() async throws {
        _ = try await perform(.resetWatches, transaction: 0)
    }

    // MARK: transactions

    /// Runs `body` in a transaction and commits it. If the commit (or any
    /// request inside) reports a conflict (`EAGAIN`), the whole body runs
    /// again in a new transaction, up to `maxAttempts` times; then
    /// ``XenStoreError/transactionRetriesExhausted(attempts:)``.
    ///
    /// If `body` throws anything else, the transaction is abandoned and the
    /// error rethrown. The handle must not be used after `body` returns.
    public func transaction<R: Sendable>(
        maxAttempts: Int = 16, _ body: @Sendable (XenStoreTransaction) async throws -> R
    ) async throws -> R {
        let attempts = max(1, maxAttempts)
        for attempt in 1...attempts {
            let transaction = XenStoreTransaction(
                client: self, id: try await startTransaction())
            let result: R
            do {
                result = try await body(transaction)
            } catch XenStoreError.again {
                try? await endTransaction(transaction.id, commit: false)
                await backOff(attempt)
                continue
            } catch {
                try? await endTransaction(transaction.id, commit: false)
                throw error
            }
            do {
                try await endTransaction(transaction.id, commit: true)
                return result
            } catch XenStoreError.again {
                await backOff(attempt)
            }
        }
        throw XenStoreError.transactionRetriesExhausted(attempts: attempts)
    }

    /// Starts a transaction by hand; prefer ``transaction(maxAttempts:_:)``.
    public func startTransaction() async throws -> UInt32 {
        let reply = try await perform(.transactionStart, transaction: 0)
        guard let text = XenStorePayload.strings(reply).first, let id = UInt32(text), id != 0
        else {
            throw XenStoreError.protocol("TRANSACTION_START reply is not a transaction id")
        }
        return id
    }

    /// Commits (`commit: true`) or abandons a transaction started by hand.
    /// Throws ``XenStoreError/again`` if the commit conflicted.
    public func endTransaction(_ id: UInt32, commit: Bool) async throws {
        _ = try await perform(.transactionEnd(commit: commit), transaction: id)
    }

    /// A short growing pause so competing writers interleave.
    private func backOff(_ attempt: Int) async {
        guard attempt > 1 else { return }
        let milliseconds = min(50, 1 << min(attempt - 1, 6))
        try? await Task.sleep(for: .milliseconds(milliseconds))
    }

    // MARK: domains

    /// Tells xenstored to talk to a new domain over its store ring page
    /// (`mfn`, a gfn for PV guests) and unbound event channel (INTRODUCE).
    public func introduceDomain(_ domid: UInt32, mfn: UInt64, eventChannel: UInt32) async throws {
        _ = try await perform(
            .introduce(domid: domid, mfn: mfn, eventChannel: eventChannel), transaction: 0)
    }

    /// Tells xenstored to stop talking to a domain (RELEASE); fires
    /// `@releaseDomain`.
    public func releaseDomain(_ domid: UInt32) async throws {
        _ = try await perform(.release(domid: domid), transaction: 0)
    }

    /// Whether xenstored talks to the domain (IS_DOMAIN_INTRODUCED).
    public func isDomainIntroduced(_ domid: UInt32) async throws -> Bool {
        let reply = try await perform(.isDomainIntroduced(domid: domid), transaction: 0)
        switch XenStorePayload.strings(reply).first {
        case "T": return true
        case "F": return false
        default: throw XenStoreError.protocol("IS_DOMAIN_INTRODUCED reply is neither T nor F")
        }
    }

    /// The domain's home path, `/local/domain/<domid>` (GET_DOMAIN_PATH).
    public func domainPath(_ domid: UInt32) async throws -> String {
        let reply = try await perform(.getDomainPath(domid: domid), transaction: 0)
        guard let path = XenStorePayload.strings(reply).first, !path.isEmpty else {
            throw XenStoreError.protocol("GET_DOMAIN_PATH reply is empty")
        }
        return path
    }

    /// Re-arms `@releaseDomain` for a domain (RESUME).
    public func resumeDomain(_ domid: UInt32) async throws {
        _ = try await perform(.resume(domid: domid), transaction: 0)
    }

    /// Lets `domid` act on `target`'s nodes as if it were `target`'s owner
    /// (SET_TARGET, for device-model stub domains).
    public func setTarget(_ domid: UInt32, target: UInt32) async throws {
        _ = try await perform(.setTarget(domid: domid, target: target), transaction: 0)
    }

    /// An implementation-specific CONTROL command (e.g. `["print", "text"]`);
    /// returns the reply text.
    public func control(_ words: [String]) async throws -> String {
        let reply = try await perform(.control(words), transaction: 0)
        return String(decoding: reply.prefix { $0 != 0 }, as: UTF8.self)
    }

    // MARK: requests

    /// Sends `request` and returns the reply payload, turning an ERROR
    /// reply into a ``XenStoreError``.
    func perform(_ request: XenStoreRequest, transaction: UInt32) async throws -> [UInt8] {
        let reply = try await connection.roundTrip(request, transaction: transaction)
        if reply.type == .error {
            throw Self.error(fromReply: reply.payload, to: request)
        }
        guard reply.type == request.type else {
            throw XenStoreError.protocol("\(reply.type) reply to a \(request.type) request")
        }
        return reply.payload
    }

    /// The error an ERROR reply (errno name) to `request` stands for.
    package static func error(fromReply payload: [UInt8], to request: XenStoreRequest)
        -> XenStoreError
    {
        let name = XenStorePayload.strings(payload).first ?? ""
        switch name {
        case "ENOENT": return .noEntry(request.subject)
        case "EACCES", "EPERM": return .permissionDenied(request.subject)
        case "EAGAIN": return .again
        case "": return .protocol("ERROR reply without an errno name to \(request)")
        default: return .errno(name, request: request.description)
        }
    }
}

extension XenStoreClient: XenStoreAccess {
    public func read(_ path: String) async throws -> String {
        try await Operations(client: self, transaction: 0).read(path)
    }
    public func readIfPresent(_ path: String) async throws -> String? {
        try await Operations(client: self, transaction: 0).readIfPresent(path)
    }
    public func readBytes(_ path: String) async throws -> [UInt8] {
        try await Operations(client: self, transaction: 0).readBytes(path)
    }
    public func write(_ path: String, _ value: String) async throws {
        try await Operations(client: self, transaction: 0).write(path, Array(value.utf8))
    }
    public func write(_ path: String, bytes: [UInt8]) async throws {
        try await Operations(client: self, transaction: 0).write(path, bytes)
    }
    public func mkdir(_ path: String) async throws {
        try await Operations(client: self, transaction: 0).mkdir(path)
    }
    public func remove(_ path: String) async throws {
        try await Operations(client: self, transaction: 0).remove(path)
    }
    public func directory(_ path: String) async throws -> [String] {
        try await Operations(client: self, transaction: 0).directory(path)
    }
    public func permissions(_ path: String) async throws -> [XenStorePermission] {
        try await Operations(client: self, transaction: 0).permissions(path)
    }
    public func setPermissions(_ path: String, _ perms: [XenStorePermission]) async throws {
        try await Operations(client: self, transaction: 0).setPermissions(path, perms)
    }
}

/// The node operations, for the client (transaction 0) and transactions.
struct Operations {
    let client: XenStoreClient
    let transaction: UInt32

    func readBytes(_ path: String) async throws -> [UInt8] {
        try await client.perform(.read(path), transaction: transaction)
    }

    func read(_ path: String) async throws -> String {
        String(decoding: try await readBytes(path), as: UTF8.self)
    }

    func readIfPresent(_ path: String) async throws -> String? {
        do {
            return try await read(path)
        } catch XenStoreError.noEntry {
            return nil
        }
    }

    func write(_ path: String, _ value: [UInt8]) async throws {
        _ = try await client.perform(.write(path, value: value), transaction: transaction)
    }

    func mkdir(_ path: String) async throws {
        _ = try await client.perform(.mkdir(path), transaction: transaction)
    }

    func remove(_ path: String) async throws {
        do {
            _ = try await client.perform(.remove(path), transaction: transaction)
        } catch XenStoreError.noEntry {
            // xenstored reports ENOENT only when the parent is missing too;
            // either way the node is gone, which is what was asked.
        }
    }

    func directory(_ path: String) async throws -> [String] {
        do {
            let reply = try await client.perform(.directory(path), transaction: transaction)
            return XenStorePayload.strings(reply)
        } catch XenStoreError.errno("E2BIG", _) {
            // The child list does not fit one reply: fetch it in parts.
            return try await directoryInParts(path)
        }
    }

    /// DIRECTORY_PART until the final part (marked by an extra NUL),
    /// restarting if the node's generation changes between parts.
    private func directoryInParts(_ path: String) async throws -> [String] {
        let maximumRestarts = 8
        restart: for _ in 0..<maximumRestarts {
            var names: [String] = []
            var offset = 0
            var generation: ArraySlice<UInt8>?
            while true {
                let reply = try await client.perform(
                    .directoryPart(path, offset: offset), transaction: transaction)
                guard let nul = reply.firstIndex(of: 0) else {
                    throw XenStoreError.protocol("DIRECTORY_PART reply without a generation")
                }
                let thisGeneration = reply[..<nul]
                if let generation, generation != thisGeneration { continue restart }
                generation = thisGeneration
                var body = reply[(nul + 1)...]
                let isLast: Bool
                if body.elementsEqual([0]) {
                    body = body.prefix(0)
                    isLast = true
                } else if body.count >= 2, body.suffix(2).elementsEqual([0, 0]) {
                    body = body.dropLast()
                    isLast = true
                } else {
                    isLast = false
                }
                guard isLast || !body.isEmpty else {
                    throw XenStoreError.protocol("DIRECTORY_PART reply makes no progress")
                }
                names += XenStorePayload.strings(Array(body))
                offset += body.count
                if isLast { return names }
            }
        }
        throw XenStoreError.errno(
            "EAGAIN", request: "DIRECTORY_PART \(path) (the directory kept changing)")
    }

    func permissions(_ path: String) async throws -> [XenStorePermission] {
        let reply = try await client.perform(.getPermissions(path), transaction: transaction)
        var result: [XenStorePermission] = []
        for text in XenStorePayload.strings(reply) {
            do {
                result.append(try XenStorePermission(parsing: text))
            } catch {
                throw XenStoreError.protocol("GET_PERMS reply holds \(error)")
            }
        }
        guard !result.isEmpty else {
            throw XenStoreError.protocol("GET_PERMS reply for \(path) is empty")
        }
        return result
    }

    func setPermissions(_ path: String, _ perms: [XenStorePermission]) async throws {
        _ = try await client.perform(.setPermissions(path, perms), transaction: transaction)
    }
}
