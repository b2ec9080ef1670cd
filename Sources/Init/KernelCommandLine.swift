/// The kernel command line (/proc/cmdline) split into words as the kernel
/// splits it: whitespace separates, double quotes group (and are removed).
public struct KernelCommandLine: Sendable, Equatable {
    /// Every word in order, quotes removed.
    public let words: [String]

    /// Parses the text of /proc/cmdline.
    public init(_ text: String) {
        var words: [String] = []
        var current = ""
        var inQuotes = false
        var hasWord = false
        for character in text {
            if character == "\"" {
                inQuotes.toggle()
                hasWord = true
            } else if !inQuotes && (character == " " || character == "\n" || character == "\t") {
                if hasWord { words.append(current) }
                current = ""
                hasWord = false
            } else {
                current.append(character)
                hasWord = true
            }
        }
        if hasWord { words.append(current) }
        self.words = words
    }

    /// The value of the last `key=value` word for `key` (later words win, as
    /// for the kernel's own parameters); `""` for a bare `key`; nil if absent.
    public func value(_ key: String) -> String? {
        var found: String?
        for word in words {
            if word == key {
                found = ""
            } else if word.hasPrefix(key + "=") {
                found = String(word.dropFirst(key.count + 1))
            }
        }
        return found
    }

    /// Every `proxenos.KEY[=VALUE]` word as KEY → VALUE (bare flags map to "").
    public var proxenosKeys: [String: String] {
        var keys: [String: String] = [:]
        for word in words where word.hasPrefix("proxenos.") {
            let body = word.dropFirst("proxenos.".count)
            if let equals = body.firstIndex(of: "=") {
                keys[String(body[..<equals])] = String(body[body.index(after: equals)...])
            } else if !body.isEmpty {
                keys[String(body)] = ""
            }
        }
        return keys
    }
}
