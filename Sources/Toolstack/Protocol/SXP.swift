import DomainConfig
import SXP

/// S-expressions as xend's socket and save files carry them: one value per
/// message, written by ``SXPWriter/Style/wire`` and read by ``SXPParser``,
/// as `DomainSXP` (atoms, integers, lists).
extension XendWire {
    /// Deepest nesting the parser accepts; real messages use four levels.
    public static let maximumDepth = 32

    /// The lossless one-line text of a value.
    public static func render(_ value: DomainSXP) -> String {
        SXPWriter.wire.render(value.node)
    }

    /// Parses exactly one value (surrounding white space allowed).
    public static func parse(_ text: String) throws(ToolstackError) -> DomainSXP {
        try parse(Array(text.utf8))
    }

    /// Parses exactly one value from bytes.
    public static func parse(_ bytes: [UInt8]) throws(ToolstackError) -> DomainSXP {
        let nodes: [SXPNode]
        do {
            nodes = try SXPParser.parse(bytes, file: "message", maximumDepth: maximumDepth)
        } catch {
            throw .malformedMessage("\(error.location): \(error.message)")
        }
        guard let first = nodes.first else {
            throw .malformedMessage("the message holds no expression")
        }
        guard nodes.count == 1 else {
            throw .malformedMessage("unexpected text after the expression at \(nodes[1].location)")
        }
        return DomainSXP(first)
    }
}

extension DomainSXP {
    /// A parsed node: symbols and strings become atoms. A fraction is not
    /// part of the protocol; it stays the atom it was spelled as.
    init(_ node: SXPNode) {
        switch node.value {
        case .symbol(let text), .string(let text): self = .atom(text)
        case .integer(let number): self = .integer(Int(number))
        case .decimal: self = .atom(node.atomText ?? "")
        case .list(let items): self = .list(items.map(DomainSXP.init))
        }
    }
}

extension DomainSXP {
    /// The head atom of a list (`create` in `(create ...)`).
    public var head: String? {
        guard case .list(let items) = self, let first = items.first, case .atom(let name) = first
        else { return nil }
        return name
    }

    /// The list's items after the head.
    public var tail: [DomainSXP] {
        guard case .list(let items) = self else { return [] }
        return Array(items.dropFirst())
    }

    /// An atom's text, or an integer's spelling.
    public var stringValue: String? {
        switch self {
        case .atom(let text): return text
        case .integer(let number): return String(number)
        case .list: return nil
        }
    }

    /// An integer, or an atom spelling one.
    public var intValue: Int? {
        switch self {
        case .integer(let number): return number
        case .atom(let text): return integerValue(text)
        case .list: return nil
        }
    }

    /// Every `(key ...)` child list with this head.
    public func children(_ key: String) -> [DomainSXP] {
        tail.filter { $0.head == key }
    }

    /// The first `(key value)` child's value.
    public func field(_ key: String) -> DomainSXP? {
        children(key).first?.tail.first
    }

    /// `-?[0-9]+` that fits an Int.
    private func integerValue(_ text: String) -> Int? {
        var digits = Substring(text)
        if digits.first == "-" { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.count <= 19,
            digits.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
        else { return nil }
        return Int(text)
    }
}

/// Builds `(key value)`.
func sxpField(_ key: String, _ value: DomainSXP) -> DomainSXP {
    .list([.atom(key), value])
}

/// Builds `(key "text")`.
func sxpField(_ key: String, _ text: String) -> DomainSXP {
    .list([.atom(key), .atom(text)])
}

/// Builds `(key number)`.
func sxpField(_ key: String, _ number: Int) -> DomainSXP {
    .list([.atom(key), .integer(number)])
}
