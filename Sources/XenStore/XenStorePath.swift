/// The path rules of docs/misc/xenstore.txt, checked before a request is
/// sent so a bad path fails locally with a reason instead of an `EINVAL`.
public enum XenStorePath {
    /// Whether `byte` may appear in a path: ASCII alphanumerics and `-/_@`.
    public static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "/"),
            UInt8(ascii: "_"), UInt8(ascii: "@"):
            return true
        default:
            return false
        }
    }

    /// Checks a node path. Absolute paths start with `/` and may be up to
    /// 3072 bytes; relative ones (resolved by xenstored against
    /// `/local/domain/<own domid>`) up to 2048. `@` at the start names a
    /// special watch and is accepted only with `allowSpecial`.
    ///
    /// - Throws: ``XenStoreError/invalidPath(_:reason:)`` naming the rule.
    public static func validate(_ path: String, allowSpecial: Bool = false) throws(XenStoreError) {
        let bytes = Array(path.utf8)
        guard let first = bytes.first else {
            throw .invalidPath(path, reason: "the empty path is not a node")
        }
        if let bad = bytes.first(where: { !isAllowed($0) }) {
            let shown =
                bad >= 0x20 && bad < 0x7f ? "'\(Character(Unicode.Scalar(bad)))'" : "byte \(bad)"
            throw .invalidPath(
                path, reason: "\(shown) is not allowed; use letters, digits and -/_@")
        }
        if first == UInt8(ascii: "@") {
            guard allowSpecial else {
                throw .invalidPath(path, reason: "'@' paths name special watches only")
            }
            guard bytes.count <= XenStoreLimits.relativePathMax else {
                throw .invalidPath(
                    path,
                    reason:
                        "\(bytes.count) bytes, over the \(XenStoreLimits.relativePathMax)-byte limit"
                )
            }
            return
        }
        let absolute = first == UInt8(ascii: "/")
        let limit = absolute ? XenStoreLimits.absolutePathMax : XenStoreLimits.relativePathMax
        guard bytes.count <= limit else {
            throw .invalidPath(
                path,
                reason: "\(bytes.count) bytes, over the \(limit)-byte limit for "
                    + (absolute ? "absolute" : "relative") + " paths")
        }
        if path == "/" { return }
        if bytes.last == UInt8(ascii: "/") {
            throw .invalidPath(path, reason: "trailing '/' (only the root \"/\" ends in '/')")
        }
        for index in bytes.indices.dropFirst()
        where bytes[index] == UInt8(ascii: "/") && bytes[index - 1] == UInt8(ascii: "/") {
            throw .invalidPath(path, reason: "doubled '/'")
        }
    }

    /// `parent/child`, handling the root.
    public static func join(_ parent: String, _ child: String) -> String {
        parent == "/" ? "/" + child : parent + "/" + child
    }

    /// The parent of an absolute path (`/` for top-level nodes and `/`).
    public static func parent(of path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")),
            slash != path.utf8.startIndex
        else { return "/" }
        return String(path[..<slash])
    }

    /// The last component of a path.
    public static func basename(_ path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return path }
        return String(path[path.utf8.index(after: slash)...])
    }

    /// Whether `child` is `parent` or below it (xenstore.txt's definition;
    /// every path is a child of `/`).
    public static func isChild(_ child: String, of parent: String) -> Bool {
        if parent == "/" { return true }
        let c = child.utf8
        let p = parent.utf8
        guard c.starts(with: p) else { return false }
        if c.count == p.count { return true }
        return c[c.index(c.startIndex, offsetBy: p.count)] == UInt8(ascii: "/")
    }
}
