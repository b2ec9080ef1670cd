/// A request from a client to xenstored, typed. ``encodePayload()`` builds
/// the payload a toolstack or backend sends (checking paths and limits);
/// ``init(decoding:)`` parses one on the server side.
public enum XenStoreRequest: Sendable, Equatable, CustomStringConvertible {
    /// CONTROL: a command and its parameters (implementation specific).
    case control([String])
    case directory(String)
    /// DIRECTORY_PART: children starting at a byte offset into the list.
    case directoryPart(String, offset: Int)
    case read(String)
    case getPermissions(String)
    case watch(String, token: String)
    case unwatch(String, token: String)
    case transactionStart
    case transactionEnd(commit: Bool)
    case introduce(domid: UInt32, mfn: UInt64, eventChannel: UInt32)
    case release(domid: UInt32)
    case getDomainPath(domid: UInt32)
    case write(String, value: [UInt8])
    case mkdir(String)
    case remove(String)
    case setPermissions(String, [XenStorePermission])
    case isDomainIntroduced(domid: UInt32)
    case resume(domid: UInt32)
    case setTarget(domid: UInt32, target: UInt32)
    case resetWatches

    /// The header type this request is sent with.
    public var type: XenStoreMessageType {
        switch self {
        case .control: .control
        case .directory: .directory
        case .directoryPart: .directoryPart
        case .read: .read
        case .getPermissions: .getPermissions
        case .watch: .watch
        case .unwatch: .unwatch
        case .transactionStart: .transactionStart
        case .transactionEnd: .transactionEnd
        case .introduce: .introduce
        case .release: .release
        case .getDomainPath: .getDomainPath
        case .write: .write
        case .mkdir: .mkdir
        case .remove: .remove
        case .setPermissions: .setPermissions
        case .isDomainIntroduced: .isDomainIntroduced
        case .resume: .resume
        case .setTarget: .setTarget
        case .resetWatches: .resetWatches
        }
    }

    /// The node (or domain) the request is about, for error messages.
    public var subject: String {
        switch self {
        case .directory(let path), .directoryPart(let path, _), .read(let path),
            .getPermissions(let path), .watch(let path, _), .unwatch(let path, _),
            .write(let path, _), .mkdir(let path), .remove(let path),
            .setPermissions(let path, _):
            return path
        case .introduce(let domid, _, _), .release(let domid), .getDomainPath(let domid),
            .isDomainIntroduced(let domid), .resume(let domid), .setTarget(let domid, _):
            return "domain \(domid)"
        case .control(let words):
            return words.first ?? ""
        case .transactionStart, .transactionEnd, .resetWatches:
            return ""
        }
    }

    /// E.g. `WRITE /local/domain/1/name`.
    public var description: String {
        subject.isEmpty ? type.description : "\(type) \(subject)"
    }

    /// The payload, after checking paths, tokens and the payload limit.
    ///
    /// - Throws: ``XenStoreError/invalidPath(_:reason:)``,
    ///   ``XenStoreError/tooLarge(what:size:limit:)`` or
    ///   ``XenStoreError/invalidArgument(_:)``; nothing is sent then.
    public func encodePayload() throws(XenStoreError) -> [UInt8] {
        let payload: [UInt8]
        switch self {
        case .directory(let path), .read(let path), .mkdir(let path), .remove(let path):
            try XenStorePath.validate(path)
            payload = XenStorePayload.strings([path])
        case .getPermissions(let path):
            try XenStorePath.validate(path, allowSpecial: true)
            payload = XenStorePayload.strings([path])
        case .directoryPart(let path, let offset):
            try XenStorePath.validate(path)
            guard offset >= 0 else { throw .invalidArgument("negative DIRECTORY_PART offset") }
            payload = XenStorePayload.strings([path, String(offset)])
        case .watch(let path, let token), .unwatch(let path, let token):
            try XenStorePath.validate(path, allowSpecial: true)
            try Self.checkNoNUL(token, "watch token")
            payload = XenStorePayload.strings([path, token])
        case .write(let path, let value):
            try XenStorePath.validate(path)
            payload = XenStorePayload.strings([path]) + value
        case .setPermissions(let path, let permissions):
            try XenStorePath.validate(path, allowSpecial: true)
            guard !permissions.isEmpty else {
                throw .invalidArgument("\(path): a permission list needs at least the owner entry")
            }
            payload = XenStorePayload.strings([path] + permissions.map(\.description))
        case .control(let words):
            guard !words.isEmpty else { throw .invalidArgument("CONTROL needs a command") }
            for word in words { try Self.checkNoNUL(word, "CONTROL argument") }
            payload = XenStorePayload.strings(words)
        case .transactionStart, .resetWatches:
            payload = [0]
        case .transactionEnd(let commit):
            payload = XenStorePayload.strings([commit ? "T" : "F"])
        case .introduce(let domid, let mfn, let eventChannel):
            payload = XenStorePayload.strings([
                String(domid), String(mfn), String(eventChannel),
            ])
        case .release(let domid), .getDomainPath(let domid), .isDomainIntroduced(let domid),
            .resume(let domid):
            payload = XenStorePayload.strings([String(domid)])
        case .setTarget(let domid, let target):
            payload = XenStorePayload.strings([String(domid), String(target)])
        }
        guard payload.count <= XenStoreLimits.payloadMax else {
            throw .tooLarge(
                what: "\(description) request", size: payload.count,
                limit: XenStoreLimits.payloadMax)
        }
        return payload
    }

    /// The whole message for this request.
    public func message(requestID: UInt32, transactionID: UInt32 = 0) throws(XenStoreError)
        -> XenStoreMessage
    {
        XenStoreMessage(
            type: type, requestID: requestID, transactionID: transactionID,
            payload: try encodePayload())
    }

    /// Parses a request the way xenstored reads its payload: the structure
    /// only (argument counts, numbers); paths are the server's to judge.
    ///
    /// - Throws: ``XenStoreError/protocol(_:)`` for a malformed payload or
    ///   a type that is not a request (xenstored answers `EINVAL`/`ENOSYS`).
    public init(decoding message: XenStoreMessage) throws(XenStoreError) {
        let payload = message.payload
        let type = message.type
        func malformed(_ why: String) -> XenStoreError {
            .protocol("malformed \(type) request: \(why)")
        }
        /// Exactly one NUL-terminated string (xenstored's `onearg`).
        func oneArgument() throws(XenStoreError) -> String {
            guard let nul = payload.firstIndex(of: 0), nul == payload.count - 1 else {
                throw malformed("expected one NUL-terminated argument")
            }
            return String(decoding: payload[..<nul], as: UTF8.self)
        }
        /// At least `count` NUL-terminated strings; later ones are ignored.
        func arguments(_ count: Int) throws(XenStoreError) -> [String] {
            let all = XenStorePayload.fields(payload)
            let terminated = payload.last == 0 ? all.count : all.count - 1
            guard terminated >= count else {
                throw malformed("expected \(count) NUL-terminated arguments")
            }
            return all.prefix(count).map { String(decoding: $0, as: UTF8.self) }
        }
        func number<T: FixedWidthInteger>(_ text: String, as: T.Type) throws(XenStoreError) -> T {
            guard let value = T(text, radix: 10) else {
                throw malformed("\"\(text)\" is not a number")
            }
            return value
        }
        switch type {
        case .control:
            let words = XenStorePayload.strings(payload)
            guard !words.isEmpty else { throw malformed("no command") }
            self = .control(words)
        case .directory: self = .directory(try oneArgument())
        case .read: self = .read(try oneArgument())
        case .getPermissions: self = .getPermissions(try oneArgument())
        case .mkdir: self = .mkdir(try oneArgument())
        case .remove: self = .remove(try oneArgument())
        case .directoryPart:
            let args = try arguments(2)
            self = .directoryPart(args[0], offset: try number(args[1], as: Int.self))
        case .watch, .unwatch:
            let args = try arguments(2)
            self =
                type == .watch
                ? .watch(args[0], token: args[1]) : .unwatch(args[0], token: args[1])
        case .transactionStart:
            self = .transactionStart
        case .transactionEnd:
            switch try oneArgument() {
            case "T": self = .transactionEnd(commit: true)
            case "F": self = .transactionEnd(commit: false)
            default: throw malformed("expected T or F")
            }
        case .introduce:
            let args = try arguments(3)
            // The mfn is documented as signed decimal; accept both forms.
            let mfn: UInt64
            if let signed = Int64(args[1], radix: 10) {
                mfn = UInt64(bitPattern: signed)
            } else {
                mfn = try number(args[1], as: UInt64.self)
            }
            self = .introduce(
                domid: try number(args[0], as: UInt32.self), mfn: mfn,
                eventChannel: try number(args[2], as: UInt32.self))
        case .release: self = .release(domid: try number(try oneArgument(), as: UInt32.self))
        case .getDomainPath:
            self = .getDomainPath(domid: try number(try oneArgument(), as: UInt32.self))
        case .isDomainIntroduced:
            self = .isDomainIntroduced(domid: try number(try oneArgument(), as: UInt32.self))
        case .resume: self = .resume(domid: try number(try oneArgument(), as: UInt32.self))
        case .setTarget:
            let args = try arguments(2)
            self = .setTarget(
                domid: try number(args[0], as: UInt32.self),
                target: try number(args[1], as: UInt32.self))
        case .write:
            guard let nul = payload.firstIndex(of: 0) else { throw malformed("no path") }
            self = .write(
                String(decoding: payload[..<nul], as: UTF8.self),
                value: Array(payload[(nul + 1)...]))
        case .setPermissions:
            let all = XenStorePayload.fields(payload)
            guard payload.last == 0, all.count >= 2 else {
                throw malformed("expected a path and at least one permission")
            }
            var permissions: [XenStorePermission] = []
            for field in all.dropFirst() {
                permissions.append(
                    try XenStorePermission(parsing: String(decoding: field, as: UTF8.self)))
            }
            self = .setPermissions(String(decoding: all[0], as: UTF8.self), permissions)
        case .resetWatches:
            self = .resetWatches
        default:
            throw .protocol("\(type) is not a request")
        }
    }

    private static func checkNoNUL(_ text: String, _ what: String) throws(XenStoreError) {
        if text.utf8.contains(0) { throw .invalidArgument("\(what) contains a NUL byte") }
    }
}

/// A watch event as sent by xenstored: `XS_WATCH_EVENT` with `path\0token\0`.
public struct XenStoreWatchEvent: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The path that changed (relative if the watch was set relative).
    public var path: String

    public init(path: String) { self.path = path }

    public var description: String { path }

    /// The watch event message xenstored sends for `token`.
    public static func message(path: String, token: String) -> XenStoreMessage {
        XenStoreMessage(type: .watchEvent, payload: XenStorePayload.strings([path, token]))
    }

    /// The path and token of a watch event payload.
    ///
    /// - Throws: ``XenStoreError/protocol(_:)`` unless it holds two strings.
    public static func decode(_ payload: [UInt8]) throws(XenStoreError) -> (
        path: String, token: String
    ) {
        let fields = XenStorePayload.strings(payload)
        guard fields.count >= 2, payload.last == 0 else {
            throw .protocol("watch event payload is not \"path\\0token\\0\"")
        }
        return (fields[0], fields[1])
    }
}
