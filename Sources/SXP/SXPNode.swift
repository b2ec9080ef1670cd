/// A position in SXP text. Lines and columns count from 1; a column counts
/// bytes (a tab is one column), which is what an editor shows for the ASCII
/// that xend-config.sxp is written in. Nodes built in code, not parsed, sit
/// at 0:0.
public struct SXPLocation: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public var description: String { "\(line):\(column)" }

    public static func < (a: SXPLocation, b: SXPLocation) -> Bool {
        (a.line, a.column) < (b.line, b.column)
    }
}

/// One parsed S-expression with the location of its first byte.
///
/// xend's own reader turns every atom into a string; we keep the lexical
/// kind so that the typed configuration can say "expected a number" and
/// point at the value.
public struct SXPNode: Sendable, Equatable {
    /// The lexical kinds of the SXP dialect xend reads.
    public enum Value: Sendable, Equatable {
        /// `( ... )`
        case list([SXPNode])
        /// A bare word: `network-bridge`, `yes`, `/var/log/xen/xend.log`.
        case symbol(String)
        /// A single- or double-quoted string, escapes resolved.
        case string(String)
        /// A decimal integer: `196`, `-1`.
        case integer(Int64)
        /// A decimal fraction: `1.5`, `2.0e3`.
        case decimal(Double)
    }

    public var value: Value
    public var location: SXPLocation

    /// A node; one built in code rather than parsed is located at 0:0.
    public init(_ value: Value, at location: SXPLocation = SXPLocation(line: 0, column: 0)) {
        self.value = value
        self.location = location
    }

    /// The node's text if it is an atom (symbol, string or number), as xend
    /// would see it; nil for a list.
    public var atomText: String? {
        switch value {
        case .list: return nil
        case .symbol(let text), .string(let text): return text
        case .integer(let number): return String(number)
        case .decimal(let number): return String(number)
        }
    }

    /// The children of a list node; nil for an atom.
    public var listItems: [SXPNode]? {
        if case .list(let items) = value { return items }
        return nil
    }
}

/// A syntax error, located in its input (`file` names the input: a path, or
/// what a message is, for text that did not come from a file).
public struct SXPError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var location: SXPLocation
    public var message: String

    public init(file: String, location: SXPLocation, message: String) {
        self.file = file
        self.location = location
        self.message = message
    }

    /// `file:line:column: message`, the form editors and compilers use.
    public var description: String { "\(file):\(location.line):\(location.column): \(message)" }
}
