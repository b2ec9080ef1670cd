import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// One file system to mount.
public struct MountSpec: Sendable, Equatable {
    public var source: String
    public var target: String
    public var type: String
    public var flags: UInt
    public var data: String

    public init(source: String, target: String, type: String, flags: UInt = 0, data: String = "") {
        self.source = source
        self.target = target
        self.type = type
        self.flags = flags
        self.data = data
    }
}

/// mount(2) and umount2(2).
public enum Mounts {
    public static let noSUID = UInt(MS_NOSUID)
    public static let noDevices = UInt(MS_NODEV)
    public static let noExec = UInt(MS_NOEXEC)

    /// Creates the mount point if needed and mounts; EBUSY (already
    /// mounted) counts as success.
    public static func mount(_ spec: MountSpec) throws(Errno) {
        try Files.makeDirectories(spec.target)
        let result = retryingSyscall {
            Glibc.mount(
                spec.source, spec.target, spec.type, spec.flags, spec.data.isEmpty ? nil : spec.data
            )
        }
        if case .failure(let error) = result, error != .resourceBusy { throw error }
    }

    /// Detaches a mount (lazily: busy mounts go when their last user does).
    public static func detach(_ target: String) throws(Errno) {
        if case .failure(let error) = retryingSyscall({ umount2(target, Int32(MNT_DETACH)) }) {
            throw error
        }
    }

    /// Mount points from /proc/mounts, in mount order.
    public static func current() -> [String] {
        guard let text = Files.readIfPresent("/proc/mounts") else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            return fields.count > 1 ? unescape(String(fields[1])) : nil
        }
    }

    /// /proc/mounts writes space, tab, newline and backslash as \ooo.
    static func unescape(_ field: String) -> String {
        var bytes: [UInt8] = []
        let raw = Array(field.utf8)
        var i = 0
        while i < raw.count {
            if raw[i] == UInt8(ascii: "\\"), i + 3 < raw.count,
                let value = UInt8(String(decoding: raw[(i + 1)...(i + 3)], as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                i += 4
            } else {
                bytes.append(raw[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
