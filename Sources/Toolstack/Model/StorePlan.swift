import DomainConfig
import XenStore

/// One xenstore node xend writes: its value and, where it differs from
/// what it would inherit from its parent, its access list.
public struct StoreNode: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var value: String
    /// Owner first; nil keeps what xenstored gives a new node (its
    /// parent's list).
    public var permissions: [XenStorePermission]?

    public init(_ path: String, _ value: String = "", permissions: [XenStorePermission]? = nil) {
        self.path = path
        self.value = value
        self.permissions = permissions
    }

    public var description: String {
        let perms = permissions.map { " [" + $0.map(\.description).joined(separator: " ") + "]" }
        return "\(path) = \"\(value)\"" + (perms ?? "")
    }
}

/// Where xend keeps things in xenstore.
public enum StorePaths {
    /// The guest's home directory.
    public static func domain(_ domid: UInt32) -> String { "/local/domain/\(domid)" }
    /// The guest's `/vm/UUID` directory.
    public static func vm(_ uuid: DomainUUID) -> String { "/vm/\(uuid)" }
    /// xend's private record of a domain it manages (dom0 only): the
    /// config, so a restarted xend knows its domains again.
    public static func xend(_ domid: UInt32) -> String { "/proxenos/xend/domain/\(domid)" }
    public static let xendRoot = "/proxenos/xend/domain"
    /// A backend's frontend-facing directory for one device.
    public static func backend(_ type: String, domid: UInt32, device: Int, backendDomid: UInt32 = 0)
        -> String
    {
        "\(domain(backendDomid))/backend/\(type)/\(domid)/\(device)"
    }
    /// All of one domain's devices of a type in a backend domain.
    public static func backends(_ type: String, domid: UInt32, backendDomid: UInt32 = 0) -> String {
        "\(domain(backendDomid))/backend/\(type)/\(domid)"
    }
    /// The guest's side of one device.
    public static func frontend(_ type: String, domid: UInt32, device: Int) -> String {
        "\(domain(domid))/device/\(type)/\(device)"
    }

    /// A backend daemon announces that it serves a device type by writing
    /// its pid here (`/proxenos/backend/vbd`, `/proxenos/backend/vif`) and
    /// removes the node when it stops. xend writes device trees only for
    /// types whose backend runs.
    public static func backendMarker(_ type: String) -> String { "/proxenos/backend/\(type)" }

    /// The device types xend knows: block and network.
    public static let deviceTypes = ["vbd", "vif"]
}

/// Which nodes, values and permissions xend writes for a domain and its
/// devices (the layout of docs/ARCHITECTURE.md). Pure: the caller writes
/// the nodes in order, parents before children.
public enum StorePlan {
    /// Owner dom0, the guest may read (libxl's `roperm`).
    public static func readOnly(for domid: UInt32) -> [XenStorePermission] {
        [
            XenStorePermission(domid: 0, access: .none),
            XenStorePermission(domid: domid, access: .read),
        ]
    }

    /// Owned by the guest (libxl's `rwperm`).
    public static func guestOwned(by domid: UInt32) -> [XenStorePermission] {
        [XenStorePermission(domid: domid, access: .none)]
    }

    /// A frontend directory: owned by the guest, readable by the backend.
    public static func frontend(domid: UInt32, backendDomid: UInt32 = 0) -> [XenStorePermission] {
        [
            XenStorePermission(domid: domid, access: .none),
            XenStorePermission(domid: backendDomid, access: .read),
        ]
    }

    /// A backend directory: owned by the backend, readable by the guest.
    public static func backend(domid: UInt32, backendDomid: UInt32 = 0) -> [XenStorePermission] {
        [
            XenStorePermission(domid: backendDomid, access: .none),
            XenStorePermission(domid: domid, access: .read),
        ]
    }

    /// dom0 only.
    public static let privateToDom0 = [XenStorePermission(domid: 0, access: .none)]

    /// Console ring buffer limit xenconsoled applies (xend wrote 1 MiB).
    public static let consoleLimit = 1_048_576

    /// What a running domain's rings are.
    public struct Rings: Sendable, Equatable {
        public var storeMFN: UInt64
        public var storePort: UInt32
        public var consoleMFN: UInt64
        public var consolePort: UInt32

        public init(storeMFN: UInt64, storePort: UInt32, consoleMFN: UInt64, consolePort: UInt32) {
            self.storeMFN = storeMFN
            self.storePort = storePort
            self.consoleMFN = consoleMFN
            self.consolePort = consolePort
        }
    }

    /// The guest's home directory, `/vm/UUID` and xend's private record:
    /// everything but the devices.
    public static func domainNodes(
        domid: UInt32, spec: DomainSpec, uuid: DomainUUID, rings: Rings, startTime: Double,
        createdAt: Double
    ) -> [StoreNode] {
        let home = StorePaths.domain(domid)
        let vm = StorePaths.vm(uuid)
        let ro = readOnly(for: domid)
        let rw = guestOwned(by: domid)
        var nodes: [StoreNode] = [
            StoreNode(home, permissions: ro),
            StoreNode("\(home)/vm", vm),
            StoreNode("\(home)/name", spec.name),
            StoreNode("\(home)/domid", "\(domid)"),
            StoreNode("\(home)/cpu", permissions: ro),
        ]
        for vcpu in 0..<spec.vcpus {
            nodes.append(StoreNode("\(home)/cpu/\(vcpu)/availability", "online"))
        }
        nodes += [
            StoreNode("\(home)/memory", permissions: ro),
            StoreNode("\(home)/memory/static-max", "\(spec.maxmem * 1024)"),
            StoreNode("\(home)/memory/target", "\(spec.memory * 1024)"),
            StoreNode("\(home)/device", permissions: ro),
            StoreNode("\(home)/device/suspend/event-channel", permissions: rw),
            StoreNode("\(home)/control", permissions: ro),
            StoreNode("\(home)/control/shutdown", permissions: rw),
            StoreNode("\(home)/control/feature-poweroff", permissions: rw),
            StoreNode("\(home)/control/feature-reboot", permissions: rw),
            StoreNode("\(home)/control/feature-suspend", permissions: rw),
            StoreNode("\(home)/control/sysrq", permissions: rw),
            StoreNode("\(home)/control/platform-feature-multiprocessor-suspend", "1"),
            StoreNode("\(home)/control/platform-feature-xs_reset_watches", "1"),
            StoreNode("\(home)/data", permissions: rw),
            StoreNode("\(home)/drivers", permissions: rw),
            StoreNode("\(home)/feature", permissions: rw),
            StoreNode("\(home)/attr", permissions: rw),
            StoreNode("\(home)/error", permissions: rw),
            StoreNode("\(home)/store/port", "\(rings.storePort)"),
            StoreNode("\(home)/store/ring-ref", "\(rings.storeMFN)"),
            // Owned by dom0 (libxl gives the guest this directory): the
            // guest never writes here for its first console, and a guest
            // that could would choose which tty `xm console` opens.
            StoreNode("\(home)/console", permissions: ro),
            StoreNode("\(home)/console/ring-ref", "\(rings.consoleMFN)"),
            StoreNode("\(home)/console/port", "\(rings.consolePort)"),
            StoreNode("\(home)/console/limit", "\(consoleLimit)"),
            StoreNode("\(home)/console/type", "xenconsoled"),
            StoreNode("\(home)/console/output", "pty"),
        ]
        nodes += [
            StoreNode(vm, permissions: ro),
            StoreNode("\(vm)/uuid", uuid.description),
            StoreNode("\(vm)/name", spec.name),
            StoreNode("\(vm)/memory", "\(spec.memory)"),
            StoreNode("\(vm)/maxmem", "\(spec.maxmem)"),
            StoreNode("\(vm)/vcpus", "\(spec.vcpus)"),
            StoreNode("\(vm)/on_poweroff", spec.onPoweroff.rawValue),
            StoreNode("\(vm)/on_reboot", spec.onReboot.rawValue),
            StoreNode("\(vm)/on_crash", spec.onCrash.rawValue),
            StoreNode("\(vm)/image/ostype", "linux"),
            StoreNode("\(vm)/image/kernel", spec.kernel),
        ]
        if let ramdisk = spec.ramdisk { nodes.append(StoreNode("\(vm)/image/ramdisk", ramdisk)) }
        nodes += [
            StoreNode("\(vm)/image/cmdline", spec.cmdline),
            StoreNode("\(vm)/start_time", formatSeconds(startTime)),
        ]
        var saved = spec
        saved.uuid = uuid.description
        let xend = StorePaths.xend(domid)
        nodes += [
            StoreNode(xend, permissions: privateToDom0),
            StoreNode("\(xend)/config", XendWire.render(SpecCodec.encode(saved))),
            StoreNode("\(xend)/created", formatSeconds(createdAt)),
        ]
        return nodes
    }

    /// A virtual block device: the guest's frontend directory and dom0's
    /// backend directory, both in state 1 (Initialising).
    public static func vbdNodes(domid: UInt32, disk: DiskSpec, backendDomid: UInt32 = 0)
        -> [StoreNode]
    {
        let number = disk.deviceNumber
        let front = StorePaths.frontend("vbd", domid: domid, device: number)
        let back = StorePaths.backend(
            "vbd", domid: domid, device: number, backendDomid: backendDomid)
        return [
            StoreNode(front, permissions: frontend(domid: domid, backendDomid: backendDomid)),
            StoreNode("\(front)/backend", back),
            StoreNode("\(front)/backend-id", "\(backendDomid)"),
            StoreNode("\(front)/state", "1"),
            StoreNode("\(front)/virtual-device", "\(number)"),
            StoreNode("\(front)/device-type", disk.deviceType.rawValue),
            StoreNode(back, permissions: backend(domid: domid, backendDomid: backendDomid)),
            StoreNode("\(back)/frontend", front),
            StoreNode("\(back)/frontend-id", "\(domid)"),
            StoreNode("\(back)/params", disk.backendParams),
            StoreNode("\(back)/type", disk.backendType),
            StoreNode("\(back)/mode", disk.mode.isWritable ? "w" : "r"),
            StoreNode("\(back)/dev", disk.virtualDevice),
            StoreNode("\(back)/device-type", disk.deviceType.rawValue),
            StoreNode("\(back)/removable", disk.deviceType == .cdrom ? "1" : "0"),
            StoreNode("\(back)/bootable", "1"),
            StoreNode("\(back)/online", "1"),
            StoreNode("\(back)/state", "1"),
        ]
    }

    /// A vif's `script` when neither its config nor xend-config.sxp names
    /// one (xend's default).
    public static let defaultVifScript = "vif-bridge"

    /// A virtual network interface `index` (vifD.index).
    public static func vifNodes(
        domid: UInt32, index: Int, vif: VifSpec, defaultScript: String = defaultVifScript,
        backendDomid: UInt32 = 0
    ) -> [StoreNode] {
        let front = StorePaths.frontend("vif", domid: domid, device: index)
        let back = StorePaths.backend(
            "vif", domid: domid, device: index, backendDomid: backendDomid)
        var nodes = [
            StoreNode(front, permissions: frontend(domid: domid, backendDomid: backendDomid)),
            StoreNode("\(front)/backend", back),
            StoreNode("\(front)/backend-id", "\(backendDomid)"),
            StoreNode("\(front)/state", "1"),
            StoreNode("\(front)/handle", "\(index)"),
            StoreNode("\(front)/mac", vif.mac.description),
            StoreNode(back, permissions: backend(domid: domid, backendDomid: backendDomid)),
            StoreNode("\(back)/frontend", front),
            StoreNode("\(back)/frontend-id", "\(domid)"),
            StoreNode("\(back)/handle", "\(index)"),
            StoreNode("\(back)/mac", vif.mac.description),
            StoreNode("\(back)/script", vif.script ?? defaultScript),
        ]
        if let bridge = vif.bridge { nodes.append(StoreNode("\(back)/bridge", bridge)) }
        if !vif.ip.isEmpty {
            nodes.append(StoreNode("\(back)/ip", vif.ip.joined(separator: " ")))
        }
        if let rate = vif.rate { nodes.append(StoreNode("\(back)/rate", rate.xenstoreValue)) }
        if let vifname = vif.vifname { nodes.append(StoreNode("\(back)/vifname", vifname)) }
        nodes += [
            StoreNode("\(back)/type", vif.type == .ioemu ? "ioemu" : "vif"),
            StoreNode("\(back)/online", "1"),
            StoreNode("\(back)/state", "1"),
        ]
        return nodes
    }

    /// Every device node of a spec, for the device types in `types`.
    /// `vifScript`: the `script` of a vif whose config names none
    /// (xend-config.sxp's vif-script).
    public static func deviceNodes(
        domid: UInt32, spec: DomainSpec, types: Set<String>, vifScript: String = defaultVifScript
    ) -> [StoreNode] {
        var nodes: [StoreNode] = []
        if types.contains("vbd") {
            for disk in spec.disks { nodes += vbdNodes(domid: domid, disk: disk) }
        }
        if types.contains("vif") {
            for (index, vif) in spec.vifs.enumerated() {
                nodes += vifNodes(domid: domid, index: index, vif: vif, defaultScript: vifScript)
            }
        }
        return nodes
    }

    /// The backend `state` nodes xend waits on after writing devices.
    public static func backendStatePaths(domid: UInt32, spec: DomainSpec, types: Set<String>)
        -> [String]
    {
        var paths: [String] = []
        if types.contains("vbd") {
            paths += spec.disks.map {
                StorePaths.backend("vbd", domid: domid, device: $0.deviceNumber) + "/state"
            }
        }
        if types.contains("vif") {
            paths += spec.vifs.indices.map {
                StorePaths.backend("vif", domid: domid, device: $0) + "/state"
            }
        }
        return paths
    }

    /// What to remove when a domain is gone: its home, its `/vm` entry,
    /// xend's record, and every backend directory for it.
    public static func cleanupPaths(domid: UInt32, uuid: DomainUUID?) -> [String] {
        var paths = [StorePaths.domain(domid)]
        if let uuid { paths.append(StorePaths.vm(uuid)) }
        paths += StorePaths.deviceTypes.map { StorePaths.backends($0, domid: domid) }
        paths += ["console", "vkbd", "vfb", "qdisk", "pci"].map {
            StorePaths.backends($0, domid: domid)
        }
        paths.append(StorePaths.xend(domid))
        return paths
    }

    /// Seconds with two decimals, as libxl wrote `start_time`.
    static func formatSeconds(_ seconds: Double) -> String {
        let hundredths = Int64((seconds * 100).rounded())
        let fraction = hundredths % 100
        return "\(hundredths / 100)." + (fraction < 10 ? "0" : "") + "\(fraction)"
    }
}
