import LinuxSystem
import Provisioning

#if canImport(Glibc)
    import Glibc
#endif

/// Installs a checked bundle: every file is first written into a fresh
/// staging folder under /run, then copied next to its target and renamed
/// over it, so a target is either the old file or the whole new one. A
/// symlink already at a target is replaced, never followed.
public struct Installer: Sendable {
    /// Prepended to every target path (tests install into a temporary
    /// folder; the appliance uses "").
    public var root: String
    public var staging: String

    public init(root: String = "", staging: String = "/run/proxenos/bundle-staging") {
        self.root = root
        self.staging = staging
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Installs every file of `bundle`, whose bytes are in `archive`.
    /// Returns the target paths written.
    public func install(_ bundle: Bundle, archive: [UInt8]) throws(Failure) -> [String] {
        try removeTree(staging)
        try make(staging, mode: 0o700)
        // Stage: one file per member, by its position (names need no
        // trust here: they were checked, and are not used as paths).
        for (index, file) in bundle.files.enumerated() {
            let bytes = Array(archive[file.dataOffset..<file.dataOffset + file.size])
            try writeNew("\(staging)/\(index)", bytes, mode: file.mode)
        }
        var written: [String] = []
        for (index, file) in bundle.files.enumerated() {
            let target = root + file.target
            let directory = String(target[..<(target.lastIndex(of: "/") ?? target.startIndex)])
            try make(directory, mode: Self.directoryMode(file.target))
            let bytes: [UInt8]
            do {
                bytes = try Files.readBytes("\(staging)/\(index)", limit: 64 << 20)
            } catch {
                throw Failure(description: "staging \(file.member): \(error)")
            }
            let temporary = target + ".proxenos-new"
            unlink(temporary)
            try writeNew(temporary, bytes, mode: file.mode)
            guard rename(temporary, target) == 0 else {
                let reason = String(cString: strerror(errno))
                unlink(temporary)
                throw Failure(description: "install \(target): \(reason)")
            }
            written.append(file.target)
        }
        try? removeTree(staging)
        return written
    }

    /// /root/.ssh and /etc/dropbear hold secrets: 0700, as sshd expects.
    static func directoryMode(_ target: String) -> mode_t {
        target.hasPrefix(Bundle.sshDirectory + "/")
            || target.hasPrefix(Bundle.dropbearDirectory + "/")
            ? 0o700 : 0o755
    }

    private func make(_ path: String, mode: mode_t) throws(Failure) {
        do {
            try Files.makeDirectories(path, mode: mode)
            // An existing folder keeps its mode otherwise; secrets' folders
            // must not stay open to others.
            if mode == 0o700 { chmod(path, mode) }
        } catch {
            throw Failure(description: "create \(path): \(error)")
        }
    }

    /// Creates a file that must not exist yet, never through a symlink.
    private func writeNew(_ path: String, _ bytes: [UInt8], mode: UInt32) throws(Failure) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(mode))
        guard fd >= 0 else {
            throw Failure(description: "create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        fchmod(fd, mode_t(mode))
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                throw Failure(description: "write \(path): \(String(cString: strerror(errno)))")
            }
            offset += count
        }
        guard fsync(fd) == 0 || errno == EINVAL else {
            throw Failure(description: "write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Removes a staging folder left by an earlier attempt (flat: files only).
    private func removeTree(_ path: String) throws(Failure) {
        guard Files.isDirectory(path) else {
            unlink(path)
            return
        }
        for name in (try? Files.list(path)) ?? [] { unlink("\(path)/\(name)") }
        guard rmdir(path) == 0 || errno == ENOENT else {
            throw Failure(description: "remove \(path): \(String(cString: strerror(errno)))")
        }
    }
}
