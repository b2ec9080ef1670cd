/// The dependency and alias tables `depmod` writes (modules.dep,
/// modules.alias, modules.builtin), and the load order they imply.
public struct ModuleIndex: Sendable, Equatable {
    /// Module name (with `_`) → path relative to /lib/modules/VERSION.
    public private(set) var paths: [String: String] = [:]
    /// Module name → direct and indirect dependencies, as depmod lists them.
    public private(set) var dependencies: [String: [String]] = [:]
    /// (pattern, module name) from modules.alias, in file order.
    public private(set) var aliases: [(pattern: String, module: String)] = []
    /// Modules built into the kernel: loading them is a no-op.
    public private(set) var builtin: Set<String> = []

    public init(dep: String, alias: String = "", builtin: String = "") {
        for line in dep.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let path = String(line[..<colon])
            let name = Self.name(ofPath: path)
            paths[name] = path
            dependencies[name] = line[line.index(after: colon)...]
                .split(separator: " ").map { Self.name(ofPath: String($0)) }
        }
        for line in alias.split(separator: "\n") where line.hasPrefix("alias ") {
            let fields = line.split(separator: " ")
            guard fields.count == 3 else { continue }
            aliases.append((String(fields[1]), Self.normalize(String(fields[2]))))
        }
        for line in builtin.split(separator: "\n") {
            self.builtin.insert(Self.name(ofPath: String(line)))
        }
    }

    public static func == (lhs: ModuleIndex, rhs: ModuleIndex) -> Bool {
        lhs.paths == rhs.paths && lhs.dependencies == rhs.dependencies
            && lhs.builtin == rhs.builtin && lhs.aliases.elementsEqual(rhs.aliases, by: ==)
    }

    /// "kernel/net/bridge/bridge.ko" → "bridge"; dashes become underscores
    /// as the kernel compares module names.
    /// Splits a load order into Xen's own device modules (under
    /// kernel/drivers/xen: xenfs, evtchn, gntdev, ... which xenstored needs
    /// at once) and the rest, each keeping its order. Nothing under
    /// drivers/xen depends on the rest, so the first part loads on its own.
    public static func splitXenFirst(_ paths: [String]) -> (xen: [String], rest: [String]) {
        let isXen: (String) -> Bool = { $0.hasPrefix("kernel/drivers/xen/") }
        return (paths.filter(isXen), paths.filter { !isXen($0) })
    }

    public static func name(ofPath path: String) -> String {
        var base = Substring(path.split(separator: "/").last ?? Substring(path))
        for suffix in [".ko.xz", ".ko.zst", ".ko.gz", ".ko"] where base.hasSuffix(suffix) {
            base = base.dropLast(suffix.count)
            break
        }
        return normalize(String(base))
    }

    public static func normalize(_ name: String) -> String {
        String(name.map { $0 == "-" ? "_" : $0 })
    }

    /// The files to load, dependencies first, each once, for the wanted
    /// modules; built-in modules are skipped and unknown names returned.
    public func loadOrder(for wanted: [String]) -> (paths: [String], unknown: [String]) {
        var order: [String] = []
        var seen: Set<String> = []
        var unknown: [String] = []
        func visit(_ name: String, depth: Int) {
            guard depth < 64, !seen.contains(name) else { return }
            seen.insert(name)
            if builtin.contains(name) { return }
            guard let path = paths[name] else {
                unknown.append(name)
                return
            }
            for dependency in dependencies[name] ?? [] { visit(dependency, depth: depth + 1) }
            order.append(path)
        }
        for name in wanted { visit(Self.normalize(name), depth: 0) }
        return (order, unknown)
    }

    /// The modules whose alias patterns match a device's modalias (the
    /// shell-glob patterns modules.alias uses: `*`, `?` and `[...]`).
    public func modules(forModalias modalias: String) -> [String] {
        var found: [String] = []
        for (pattern, module) in aliases
        where !found.contains(module) && Glob.matches(pattern, modalias) {
            found.append(module)
        }
        return found
    }
}

/// Shell-style glob matching over bytes, enough for modules.alias.
enum Glob {
    static func matches(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.utf8)
        let t = Array(text.utf8)
        var pi = 0
        var ti = 0
        var star = -1
        var mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == UInt8(ascii: "*") {
                star = pi
                mark = ti
                pi += 1
            } else if pi < p.count, let next = matchOne(p, pi, t[ti]) {
                pi = next
                ti += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ti = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }

    /// Matches one text byte at pattern position `pi`; returns the position
    /// after the pattern element, or nil.
    private static func matchOne(_ p: [UInt8], _ pi: Int, _ c: UInt8) -> Int? {
        switch p[pi] {
        case UInt8(ascii: "?"):
            return pi + 1
        case UInt8(ascii: "["):
            var i = pi + 1
            var negate = false
            if i < p.count && (p[i] == UInt8(ascii: "!") || p[i] == UInt8(ascii: "^")) {
                negate = true
                i += 1
            }
            var matched = false
            var first = true
            while i < p.count && (first || p[i] != UInt8(ascii: "]")) {
                first = false
                if i + 2 < p.count && p[i + 1] == UInt8(ascii: "-") && p[i + 2] != UInt8(ascii: "]")
                {
                    if p[i] <= c && c <= p[i + 2] { matched = true }
                    i += 3
                } else {
                    if p[i] == c { matched = true }
                    i += 1
                }
            }
            // An unterminated class matches a literal '['.
            guard i < p.count else { return c == UInt8(ascii: "[") ? pi + 1 : nil }
            return matched != negate ? i + 1 : nil
        default:
            return p[pi] == c ? pi + 1 : nil
        }
    }
}
