/// A provisioning bundle: the tar archive `proxenos.config=URL` names, and
/// where each of its members goes. The layout (a contract with the SSH
/// side):
///
///     xend-config.sxp                  → /etc/xen/xend-config.sxp
///     xen/NAME                         → /etc/xen/NAME (domain configs)
///     auto                             → names of configs to `xm create`, one a line
///     ssh/authorized_keys              → /root/.ssh/authorized_keys (0600, dir 0700)
///     ssh/dropbear_{rsa,ecdsa,ed25519}_host_key → /etc/dropbear/ (0600)
///
/// Anything else (an absolute path, `..`, a link, a device node, a name
/// outside these folders, a member twice) refuses the whole bundle.
public struct Bundle: Sendable, Equatable {
    /// One file to install.
    public struct File: Sendable, Equatable {
        /// The member's name, normalized (`./` and trailing `/` removed).
        public var member: String
        /// The absolute path it is installed at.
        public var target: String
        public var mode: UInt32
        /// Its bytes' place in the archive.
        public var dataOffset: Int
        public var size: Int
    }

    public var files: [File]
    /// The `auto` list: config names to start, in order.
    public var auto: [String]

    /// Whether the bundle brings any SSH host key (the SSH server must then
    /// be restarted to read them).
    public var hasHostKeys: Bool {
        files.contains { $0.target.hasPrefix(Self.dropbearDirectory + "/") }
    }

    public static let xenDirectory = "/etc/xen"
    public static let sshDirectory = "/root/.ssh"
    public static let dropbearDirectory = "/etc/dropbear"
    public static let hostKeyNames: Set<String> = [
        "dropbear_rsa_host_key", "dropbear_ecdsa_host_key", "dropbear_ed25519_host_key",
    ]

    /// Why a bundle is refused; the message names the member.
    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        case archive(Tar.Error)
        case absolutePath(String)
        case parentReference(String)
        case link(String, target: String)
        case special(String, type: Character)
        case outsideLayout(String)
        case duplicate(String)
        case badAutoList(line: Int, String)

        public var description: String {
            switch self {
            case .archive(let error): return "not a valid tar archive: \(error)"
            case .absolutePath(let name): return "member \(name) has an absolute path"
            case .parentReference(let name): return "member \(name) reaches outside with `..`"
            case .link(let name, let target):
                return "member \(name) is a link (to \(target)); bundles hold no links"
            case .special(let name, let type):
                return "member \(name) is a device node or special file (type \(type))"
            case .outsideLayout(let name):
                return "member \(name) is outside the bundle layout "
                    + "(xend-config.sxp, auto, xen/NAME, ssh/authorized_keys, ssh/dropbear_*_host_key)"
            case .duplicate(let name): return "member \(name) appears twice"
            case .badAutoList(let line, let text):
                return "auto, line \(line): \(text) is not a domain config name"
            }
        }
    }

    /// Checks every member of an archive and plans its installation.
    public static func plan(archive: [UInt8]) throws(Refusal) -> Bundle {
        let members: [Tar.Member]
        do {
            members = try Tar.members(of: archive)
        } catch {
            throw .archive(error)
        }
        var files: [File] = []
        var seen: Set<String> = []
        var autoMember: Tar.Member?
        for member in members {
            let name = try normalize(member.name)
            if name.isEmpty { continue }  // "./" itself
            switch member.kind {
            case .symbolicLink(let target), .hardLink(let target):
                throw .link(member.name, target: target)
            case .special(let type):
                throw .special(member.name, type: type)
            case .directory:
                guard name == "xen" || name == "ssh" else { throw .outsideLayout(member.name) }
                continue
            case .file:
                break
            }
            guard seen.insert(name).inserted else { throw .duplicate(member.name) }
            let parts = name.split(separator: "/").map(String.init)
            let file: File
            switch (parts.count, parts.first) {
            case (1, "xend-config.sxp"):
                file = File(
                    member: name, target: xenDirectory + "/xend-config.sxp", mode: 0o644,
                    dataOffset: member.dataOffset, size: member.size)
            case (1, "auto"):
                autoMember = member
                continue
            case (2, "xen") where isConfigName(parts[1]) && parts[1] != "xend-config.sxp":
                file = File(
                    member: name, target: xenDirectory + "/" + parts[1], mode: 0o644,
                    dataOffset: member.dataOffset, size: member.size)
            case (2, "ssh") where parts[1] == "authorized_keys":
                file = File(
                    member: name, target: sshDirectory + "/authorized_keys", mode: 0o600,
                    dataOffset: member.dataOffset, size: member.size)
            case (2, "ssh") where hostKeyNames.contains(parts[1]):
                file = File(
                    member: name, target: dropbearDirectory + "/" + parts[1], mode: 0o600,
                    dataOffset: member.dataOffset, size: member.size)
            default:
                throw .outsideLayout(member.name)
            }
            files.append(file)
        }
        var auto: [String] = []
        if let autoMember {
            let bytes = archive[autoMember.dataOffset..<autoMember.dataOffset + autoMember.size]
            auto = try parseAuto(String(decoding: bytes, as: UTF8.self))
        }
        return Bundle(files: files, auto: auto)
    }

    /// A member name without `./` and trailing `/`; refuses absolute
    /// paths and any `..` component.
    static func normalize(_ name: String) throws(Refusal) -> String {
        guard !name.hasPrefix("/") else { throw .absolutePath(name) }
        var parts: [Substring] = []
        for part in name.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { throw .parentReference(name) }
            parts.append(part)
        }
        return parts.joined(separator: "/")
    }

    /// `auto`: one config name a line; blank lines and `#` comments skipped.
    public static func parseAuto(_ text: String) throws(Refusal) -> [String] {
        var names: [String] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false)
            .enumerated()
        {
            let content = line.split(
                separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
            let name = content.filter { $0 != " " && $0 != "\t" && $0 != "\r" }
            if name.isEmpty { continue }
            guard isConfigName(name) else { throw .badAutoList(line: index + 1, String(line)) }
            names.append(name)
        }
        return names
    }

    /// A file name in /etc/xen: letters, digits, `.`, `_`, `-`, `+`; not
    /// starting with `.` or `-`; at most 64 bytes.
    public static func isConfigName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 64, name.first != ".", name.first != "-" else {
            return false
        }
        return name.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9")
                || $0 == "." || $0 == "_" || $0 == "-" || $0 == "+"
        }
    }
}
