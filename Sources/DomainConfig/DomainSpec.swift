/// A paravirtual domain as an xm config file describes it, validated and
/// with xend's defaults applied. The toolstack builds the domain from this.
public struct DomainSpec: Sendable, Equatable {
    /// Unique among running domains; letters, digits and `_-.:/+`.
    public var name: String
    /// Canonical lower-case `8-4-4-4-12` form; `nil` means "generate one".
    public var uuid: String?
    /// Absolute path of the guest kernel in dom0.
    public var kernel: String
    /// Absolute path of the initial ramdisk, if any.
    public var ramdisk: String?
    /// Initial memory in MiB.
    public var memory: Int
    /// Maximum memory in MiB; xend raises it to `memory` when lower or unset.
    public var maxmem: Int
    /// Number of virtual CPUs (≥ 1).
    public var vcpus: Int
    /// Physical CPUs the VCPUs may run on; `nil` lets Xen choose.
    public var cpus: CPUSet?
    /// The `ip=` kernel argument built from `ip`, `gateway`, `netmask`,
    /// `hostname`, `interface`, `dhcp`, `nfs_server` (without `ip=`).
    public var ipConfiguration: String?
    /// The `root=` kernel argument (without `root=`), e.g. `/dev/hda1 ro`.
    public var root: String?
    /// Extra kernel arguments, with `nfsroot=` prepended when `nfs_root` is set.
    public var extra: String?
    /// The guest kernel command line as xend composed it:
    /// `ip=… root=… extra`, e.g. `root=/dev/hda1 ro 4`.
    public var cmdline: String
    public var onPoweroff: ShutdownAction
    public var onReboot: ShutdownAction
    public var onCrash: ShutdownAction
    /// Virtual block devices in config order.
    public var disks: [DiskSpec]
    /// Virtual network interfaces in config order; the index is the vif's
    /// device id (vifD.N).
    public var vifs: [VifSpec]
    /// Things xm accepted that Proxenos ignores, and likely mistakes.
    public var warnings: [DomainConfigWarning]

    public init(
        name: String, uuid: String? = nil, kernel: String, ramdisk: String? = nil,
        memory: Int, maxmem: Int, vcpus: Int = 1, cpus: CPUSet? = nil,
        ipConfiguration: String? = nil, root: String? = nil, extra: String? = nil,
        cmdline: String, onPoweroff: ShutdownAction = .destroy,
        onReboot: ShutdownAction = .restart, onCrash: ShutdownAction = .restart,
        disks: [DiskSpec] = [], vifs: [VifSpec] = [], warnings: [DomainConfigWarning] = []
    ) {
        self.name = name
        self.uuid = uuid
        self.kernel = kernel
        self.ramdisk = ramdisk
        self.memory = memory
        self.maxmem = maxmem
        self.vcpus = vcpus
        self.cpus = cpus
        self.ipConfiguration = ipConfiguration
        self.root = root
        self.extra = extra
        self.cmdline = cmdline
        self.onPoweroff = onPoweroff
        self.onReboot = onReboot
        self.onCrash = onCrash
        self.disks = disks
        self.vifs = vifs
        self.warnings = warnings
    }
}

/// What xend does when a domain stops for a given reason.
public enum ShutdownAction: String, Sendable, Hashable, CaseIterable {
    /// Clean the domain up.
    case destroy
    /// Start a new domain in place of the old one.
    case restart
    /// Leave it until `xm destroy`.
    case preserve
    /// Keep the old domain under a new name and start a new one.
    case renameRestart = "rename-restart"
}

/// A set of physical CPUs from xm's `cpus` syntax: comma-separated numbers
/// and ranges, where `^n` removes n from what came before ("0-3,^1" is
/// {0, 2, 3}).
public struct CPUSet: Sendable, Hashable, CustomStringConvertible {
    /// The text as written in the config, e.g. `0-3,^1`.
    public var specification: String
    public var members: Set<Int>

    /// Highest CPU number accepted; keeps "0-999999999" from allocating.
    public static let maximumCPU = 4095

    /// Parses xm's syntax; `nil` for malformed text or an empty result.
    public init?(parsing specification: String) {
        var members = Set<Int>()
        for rawPart in specification.split(separator: ",", omittingEmptySubsequences: false) {
            let part = rawPart.trimmingSpaces()
            if part.hasPrefix("^") {
                guard let cpu = Self.cpu(part.dropFirst()) else { return nil }
                members.remove(cpu)
            } else if let dash = part.firstIndex(of: "-") {
                guard let low = Self.cpu(part[..<dash]),
                    let high = Self.cpu(part[part.index(after: dash)...]), low <= high
                else { return nil }
                members.formUnion(low...high)
            } else {
                guard let cpu = Self.cpu(part) else { return nil }
                members.insert(cpu)
            }
        }
        guard !members.isEmpty else { return nil }
        self.specification = specification
        self.members = members
    }

    private static func cpu(_ text: Substring) -> Int? {
        let trimmed = text.trimmingSpaces()
        guard !trimmed.isEmpty, trimmed.allSatisfy(\.isASCII), let value = Int(trimmed),
            value >= 0, value <= maximumCPU
        else { return nil }
        return value
    }

    /// Members in ascending order.
    public var sorted: [Int] { members.sorted() }

    public var description: String { specification }
}

/// One `disk` entry: `TYPE:TARGET,VDEV,MODE[,BACKEND]`.
public struct DiskSpec: Sendable, Equatable {
    /// The first field as written, e.g. `file:/mnt/root.img`, `phy:hdc`.
    public var uname: String
    /// What dom0 serves the disk from.
    public var source: DiskSource
    /// The second field as written, e.g. `hda1`, `hdc:cdrom`.
    public var dev: String
    /// The virtual device name without a `:cdrom`/`:disk` suffix.
    public var virtualDevice: String
    /// The number the guest sees (see ``VirtualDevice``), e.g. 769 for hda1.
    public var deviceNumber: Int
    public var deviceType: DiskDeviceType
    public var mode: DiskMode

    public init(
        uname: String, source: DiskSource, dev: String, virtualDevice: String,
        deviceNumber: Int, deviceType: DiskDeviceType = .disk, mode: DiskMode
    ) {
        self.uname = uname
        self.source = source
        self.dev = dev
        self.virtualDevice = virtualDevice
        self.deviceNumber = deviceNumber
        self.deviceType = deviceType
        self.mode = mode
    }

    /// The backend's `type` key as xend wrote it: the uname up to its
    /// first colon (`file`, `phy`, `tap`).
    public var backendType: String {
        String(uname.prefix(while: { $0 != ":" }))
    }

    /// The backend's `params` key as xend wrote it: the uname after its
    /// first colon (`/mnt/root.img`, `hdc`, `aio:/srv/a.img`).
    public var backendParams: String {
        guard let colon = uname.firstIndex(of: ":") else { return "" }
        return String(uname[uname.index(after: colon)...])
    }
}

/// Where a virtual disk's data lives in dom0.
public enum DiskSource: Sendable, Hashable {
    /// `file:PATH` — an image file (xend looped it; our blkback opens it).
    case file(path: String)
    /// `phy:DEV` — a dom0 block device; a relative name gets `/dev/`.
    case phy(path: String)
    /// `tap:aio:PATH` — blktap's asynchronous-I/O file driver.
    case tapAio(path: String)

    /// The dom0 path to open.
    public var path: String {
        switch self {
        case .file(let path), .phy(let path), .tapAio(let path): return path
        }
    }
}

public enum DiskDeviceType: String, Sendable, Hashable {
    case disk
    case cdrom
}

/// Access mode: `r`, `w`, or `w!` (writable even if another domain has it
/// writable — xend's override of its sharing check).
public enum DiskMode: String, Sendable, Hashable {
    case readOnly = "r"
    case readWrite = "w"
    case forceReadWrite = "w!"

    public var isWritable: Bool { self != .readOnly }
}

/// One `vif` entry: comma-separated `key=value` options, all optional.
public struct VifSpec: Sendable, Equatable {
    /// The guest's MAC address.
    public var mac: MACAddress
    /// True when `mac` was not given and was generated (00:16:3e:…).
    public var macGenerated: Bool
    /// Bridge for vif-bridge; `nil` lets the script pick the first bridge.
    public var bridge: String?
    /// Addresses from `ip=` (space-separated in the config), for vif-route
    /// and anti-spoofing rules.
    public var ip: [String]
    /// Hotplug script name, e.g. `vif-bridge`; `nil` for xend's default.
    public var script: String?
    /// Rate limit, e.g. `10Mb/s@50ms`.
    public var rate: VifRate?
    /// Backend interface name instead of `vifD.N`.
    public var vifname: String?
    public var type: VifType

    public init(
        mac: MACAddress, macGenerated: Bool = false, bridge: String? = nil, ip: [String] = [],
        script: String? = nil, rate: VifRate? = nil, vifname: String? = nil,
        type: VifType = .netfront
    ) {
        self.mac = mac
        self.macGenerated = macGenerated
        self.bridge = bridge
        self.ip = ip
        self.script = script
        self.rate = rate
        self.vifname = vifname
        self.type = type
    }
}

/// `type=` of a vif: a PV frontend, or only a backend for an emulated NIC.
public enum VifType: String, Sendable, Hashable {
    case netfront
    case ioemu
}

/// A 48-bit Ethernet address.
public struct MACAddress: Sendable, Hashable, CustomStringConvertible {
    public var bytes: [UInt8]

    /// Xensource's OUI, which xend used for generated addresses.
    public static let xenPrefix: [UInt8] = [0x00, 0x16, 0x3e]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 6 else { return nil }
        self.bytes = bytes
    }

    /// Six colon-separated groups of two hex digits, either case.
    public init?(parsing text: String) {
        let groups = text.split(separator: ":", omittingEmptySubsequences: false)
        guard groups.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for group in groups {
            guard group.count == 2, group.allSatisfy(\.isHexDigit),
                let byte = UInt8(group, radix: 16)
            else { return nil }
            bytes.append(byte)
        }
        self.bytes = bytes
    }

    /// xend's `randomMAC()`: 00:16:3e, then 7 random bits and 16 random bits
    /// (the top bit of the fourth byte stays clear).
    public static func random(using generator: inout some RandomNumberGenerator) -> MACAddress {
        let suffix: [UInt8] = [
            UInt8.random(in: 0...0x7f, using: &generator),
            UInt8.random(in: 0...0xff, using: &generator),
            UInt8.random(in: 0...0xff, using: &generator),
        ]
        return MACAddress(uncheckedBytes: xenPrefix + suffix)
    }

    private init(uncheckedBytes: [UInt8]) {
        self.bytes = uncheckedBytes
    }

    /// All zeros; a placeholder while a vif's options are parsed.
    static let unset = MACAddress(uncheckedBytes: [0, 0, 0, 0, 0, 0])

    /// The group bit: such an address cannot belong to one NIC.
    public var isMulticast: Bool { bytes[0] & 1 == 1 }

    /// Lower-case, colon-separated.
    public var description: String {
        bytes.map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined(separator: ":")
    }
}

/// A vif rate limit as xend parsed it: `N[GMK]{B|b}/s[@T[m|u]s]`, with a
/// 50 ms window when none is given. Netback credits `bytesPerInterval`
/// bytes every `intervalMicroseconds`.
public struct VifRate: Sendable, Hashable, CustomStringConvertible {
    /// As written, e.g. `10Mb/s@50ms`.
    public var text: String
    public var bytesPerSecond: UInt64
    public var intervalMicroseconds: UInt64

    /// Parses xend's syntax (netif.py `parseRate`); `nil` when malformed or
    /// when the credit per window would be 0 or exceed 32 bits (where xend
    /// silently fell back to "unlimited").
    public init?(parsing text: String) {
        var rest = Substring(text)
        let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty, digits.count <= 12, var bytesPerSecond = UInt64(digits) else {
            return nil
        }
        rest = rest.dropFirst(digits.count)
        let multiplier: UInt64
        switch rest.first {
        case "G": multiplier = 1_000_000_000
        case "M": multiplier = 1_000_000
        case "K": multiplier = 1000
        default: multiplier = 1
        }
        if multiplier != 1 { rest = rest.dropFirst() }
        let (scaled, scaleOverflow) = bytesPerSecond.multipliedReportingOverflow(by: multiplier)
        guard !scaleOverflow else { return nil }
        bytesPerSecond = scaled
        switch rest.first {
        case "b": bytesPerSecond /= 8
        case "B": break
        default: return nil
        }
        rest = rest.dropFirst()
        guard rest.hasPrefix("/s") else { return nil }
        rest = rest.dropFirst(2)
        var interval: UInt64 = 50_000
        if !rest.isEmpty {
            guard rest.first == "@" else { return nil }
            rest = rest.dropFirst()
            let windowDigits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            guard !windowDigits.isEmpty, windowDigits.count <= 12,
                var window = UInt64(windowDigits)
            else { return nil }
            rest = rest.dropFirst(windowDigits.count)
            switch rest {
            case "s": window *= 1_000_000
            case "ms": window *= 1000
            case "us": break
            default: return nil
            }
            interval = window
        }
        let (product, overflow) = bytesPerSecond.multipliedReportingOverflow(by: interval)
        guard !overflow, interval > 0, interval <= 0xffff_ffff else { return nil }
        let perInterval = product / 1_000_000
        guard perInterval > 0, perInterval <= 0xffff_ffff else { return nil }
        self.text = text
        self.bytesPerSecond = bytesPerSecond
        self.intervalMicroseconds = interval
    }

    /// Bytes of credit per window.
    public var bytesPerInterval: UInt64 { bytesPerSecond * intervalMicroseconds / 1_000_000 }

    /// The backend's `rate` key as xend wrote it: "bytes,microseconds".
    public var xenstoreValue: String { "\(bytesPerInterval),\(intervalMicroseconds)" }

    public var description: String { text }
}
