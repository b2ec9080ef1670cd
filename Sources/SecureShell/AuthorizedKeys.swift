/// What the launcher tells the console about `/root/.ssh/authorized_keys`
/// before dropbear starts: how many keys may log in, and the reasons
/// dropbear would refuse every one of them (it ignores an authorized_keys
/// file that it, its directory or the home directory is writable by group
/// or others, or owned by another user).
public enum AuthorizedKeys {
    /// The number of key lines: not empty, not a `#` comment.
    public static func keyCount(_ text: String) -> Int {
        text.split(whereSeparator: { $0 == "\n" || $0 == "\r" })
            .map { $0.drop(while: { $0 == " " || $0 == "\t" }) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
            .count
    }

    /// One path's owner and permission bits.
    public struct Entry: Sendable, Equatable {
        public var path: String
        public var mode: UInt32
        public var owner: UInt32

        public init(path: String, mode: UInt32, owner: UInt32) {
            self.path = path
            self.mode = mode
            self.owner = owner
        }
    }

    /// The problems that make dropbear refuse the file, one line each, for
    /// the home directory, ~/.ssh and the file of user `uid`.
    public static func permissionProblems(_ entries: [Entry], uid: UInt32) -> [String] {
        entries.compactMap { entry in
            if entry.owner != uid && entry.owner != 0 {
                return "\(entry.path) is owned by uid \(entry.owner); dropbear ignores the keys"
            }
            if entry.mode & 0o022 != 0 {
                let octal = String(entry.mode & 0o777, radix: 8)
                return "\(entry.path) is writable by group or others (mode \(octal)); "
                    + "dropbear ignores the keys (chmod go-w)"
            }
            return nil
        }
    }
}
