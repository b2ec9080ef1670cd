/// The frames xm and consoled exchange on consoled's socket:
///
///     type (1 byte) | length (2 bytes, big-endian) | payload (length bytes)
///
/// Client to consoled: `H` hello (first, once), `I` input, `C` command.
/// consoled to client: `A` accepted or `E` refused (the answer to the
/// hello), then `O` output, `N` notices for the admin, `M` mode changes.
/// Text payloads are UTF-8; hello and accepted are `key=value` lines.
public enum ConsoleFrame: Sendable, Equatable {
    case hello(ConsoleHello)
    case input([UInt8])
    case command(ConsoleCommand)
    case accepted(ConsoleAccepted)
    case refused(String)
    case output([UInt8])
    case notice(String)
    case mode(ConsoleAccessMode)

    /// The largest payload of one frame.
    public static let maximumPayload = 16384
    /// Type and length.
    public static let headerSize = 3

    /// The frame's type byte.
    public var type: UInt8 {
        switch self {
        case .hello: return UInt8(ascii: "H")
        case .input: return UInt8(ascii: "I")
        case .command: return UInt8(ascii: "C")
        case .accepted: return UInt8(ascii: "A")
        case .refused: return UInt8(ascii: "E")
        case .output: return UInt8(ascii: "O")
        case .notice: return UInt8(ascii: "N")
        case .mode: return UInt8(ascii: "M")
        }
    }

    /// The payload's bytes (cut to ``maximumPayload``; callers split
    /// input and output themselves).
    public var payload: [UInt8] {
        let bytes: [UInt8]
        switch self {
        case .hello(let hello): bytes = Array(hello.encoded.utf8)
        case .input(let data), .output(let data): bytes = data
        case .command(let command): bytes = Array(command.text.utf8)
        case .accepted(let accepted): bytes = Array(accepted.encoded.utf8)
        case .refused(let text), .notice(let text): bytes = Array(text.utf8)
        case .mode(let mode): bytes = Array(mode.rawValue.utf8)
        }
        return Array(bytes.prefix(Self.maximumPayload))
    }

    /// The frame on the wire.
    public var encoded: [UInt8] {
        let body = payload
        return Self.header(type: type, length: body.count) + body
    }

    /// A frame header.
    public static func header(type: UInt8, length: Int) -> [UInt8] {
        [type, UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
    }

    /// Decodes one frame's payload.
    public static func decode(type: UInt8, payload: ArraySlice<UInt8>) throws(ConsoledError)
        -> ConsoleFrame
    {
        let text = String(decoding: payload, as: UTF8.self)
        switch type {
        case UInt8(ascii: "H"): return .hello(try ConsoleHello(decoding: text))
        case UInt8(ascii: "I"): return .input(Array(payload))
        case UInt8(ascii: "C"):
            guard let command = ConsoleCommand(text: text) else {
                throw .protocolViolation(
                    "unknown command '\(ConsoleText.printable(text, limit: 40))'")
            }
            return .command(command)
        case UInt8(ascii: "A"): return .accepted(try ConsoleAccepted(decoding: text))
        case UInt8(ascii: "E"): return .refused(text)
        case UInt8(ascii: "O"): return .output(Array(payload))
        case UInt8(ascii: "N"): return .notice(text)
        case UInt8(ascii: "M"):
            guard let mode = ConsoleAccessMode(rawValue: text) else {
                throw .protocolViolation("unknown mode '\(ConsoleText.printable(text, limit: 40))'")
            }
            return .mode(mode)
        default:
            throw .protocolViolation("unknown frame type \(type)")
        }
    }
}

/// Splits a byte stream into frames; holds at most one unfinished frame
/// (so at most ``ConsoleFrame/maximumPayload`` plus a read's worth).
public struct ConsoleFrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0

    public init() {}

    /// Bytes held waiting for the rest of their frame.
    public var buffered: Int { buffer.count - start }

    /// Adds bytes read from the peer.
    public mutating func feed<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
        if start > 0 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame, nil when more bytes are needed; throws for
    /// a frame that breaks the protocol (the connection is then useless).
    public mutating func next() throws(ConsoledError) -> ConsoleFrame? {
        guard buffer.count - start >= ConsoleFrame.headerSize else { return nil }
        let type = buffer[start]
        let length = Int(buffer[start + 1]) << 8 | Int(buffer[start + 2])
        guard length <= ConsoleFrame.maximumPayload else {
            throw .protocolViolation(
                "a frame of \(length) bytes (at most \(ConsoleFrame.maximumPayload))")
        }
        let end = start + ConsoleFrame.headerSize + length
        guard buffer.count >= end else { return nil }
        let payload = buffer[(start + ConsoleFrame.headerSize)..<end]
        start = end
        return try ConsoleFrame.decode(type: type, payload: payload)
    }
}

/// Read-write, or read-only.
public enum ConsoleAccessMode: String, Sendable, Equatable {
    /// The one client whose input reaches the guest.
    case write = "rw"
    /// Watches only; input is ignored.
    case spy = "spy"
}

/// What a client asks for when it attaches.
public struct ConsoleHello: Sendable, Equatable {
    /// How a client wants to attach.
    public enum Request: String, Sendable, Equatable {
        /// Write access if free, else spy (the default).
        case write = "rw"
        /// Read-only.
        case spy = "spy"
        /// Write access, bumping the current writer to spy.
        case force = "force"
    }

    /// Domain name or id.
    public var domain: String
    public var request: Request
    /// Lines of history to replay first.
    public var replay: Int
    /// Pass every byte, escape sequences included.
    public var raw: Bool
    /// Who the admin says they are and where from (the terminal, an SSH
    /// peer); consoled adds the uid and pid the kernel vouches for.
    public var user: String
    public var origin: String

    public init(
        domain: String, request: Request = .write, replay: Int = 20, raw: Bool = false,
        user: String = "", origin: String = ""
    ) {
        self.domain = domain
        self.request = request
        self.replay = replay
        self.raw = raw
        self.user = user
        self.origin = origin
    }

    var encoded: String {
        [
            "domain=\(domain)", "request=\(request.rawValue)", "replay=\(replay)",
            "raw=\(raw ? 1 : 0)", "user=\(user)", "from=\(origin)",
        ].joined(separator: "\n")
    }

    init(decoding text: String) throws(ConsoledError) {
        let fields = ConsoleText.fields(text)
        guard let domain = fields["domain"], !domain.isEmpty else {
            throw .protocolViolation("the hello names no domain")
        }
        self.domain = domain
        guard let request = Request(rawValue: fields["request"] ?? "rw") else {
            throw .protocolViolation("unknown request '\(fields["request"] ?? "")'")
        }
        self.request = request
        replay = Int(fields["replay"] ?? "") ?? 20
        raw = fields["raw"] == "1"
        user = fields["user"] ?? ""
        origin = fields["from"] ?? ""
    }
}

/// consoled's answer to a hello.
public struct ConsoleAccepted: Sendable, Equatable {
    public var domainName: String
    public var domainID: UInt32
    public var mode: ConsoleAccessMode

    public init(domainName: String, domainID: UInt32, mode: ConsoleAccessMode) {
        self.domainName = domainName
        self.domainID = domainID
        self.mode = mode
    }

    var encoded: String { "name=\(domainName)\nid=\(domainID)\nmode=\(mode.rawValue)" }

    init(decoding text: String) throws(ConsoledError) {
        let fields = ConsoleText.fields(text)
        guard let name = fields["name"], let id = UInt32(fields["id"] ?? ""),
            let mode = ConsoleAccessMode(rawValue: fields["mode"] ?? "")
        else {
            throw .protocolViolation(
                "a malformed accept '\(ConsoleText.printable(text, limit: 80))'")
        }
        domainName = name
        domainID = id
        self.mode = mode
    }
}

/// Escape-menu commands a client sends.
public enum ConsoleCommand: Sendable, Equatable {
    /// List who is attached.
    case who
    /// Replay the last N lines.
    case replay(Int)
    /// Take write access (the writer becomes a spy).
    case force
    /// Give write access up.
    case spy

    var text: String {
        switch self {
        case .who: return "who"
        case .replay(let lines): return "replay \(lines)"
        case .force: return "force"
        case .spy: return "spy"
        }
    }

    init?(text: String) {
        let words = text.split(separator: " ")
        switch (words.first, words.count) {
        case ("who", 1): self = .who
        case ("force", 1): self = .force
        case ("spy", 1): self = .spy
        case ("replay", 2):
            guard let lines = Int(words[1]), lines >= 0 else { return nil }
            self = .replay(lines)
        default: return nil
        }
    }
}

/// Text helpers for values that came from a peer.
public enum ConsoleText {
    /// `key=value` lines; later keys win, lines without `=` are ignored.
    static func fields(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            fields[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return fields
    }

    /// `text` cut to `limit` characters with every character outside
    /// printable ASCII replaced by `?`: peer-supplied words go into logs
    /// and onto other admins' terminals.
    public static func printable(_ text: String, limit: Int) -> String {
        String(
            String.UnicodeScalarView(
                text.unicodeScalars.prefix(limit).map { scalar in
                    (0x20..<0x7f).contains(scalar.value) ? scalar : "?"
                }))
    }
}
