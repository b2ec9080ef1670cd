import DomainConfig

/// A `DomainSpec` as an S-expression, losslessly: xm sends it to xend with
/// `create`, xend keeps it in xenstore to survive its own restart and puts
/// it in save files. Unlike the `--dryrun` form it carries every field
/// (generated MACs included), so the domain comes back the same.
public enum SpecCodec {
    /// Highest VCPU count accepted from the wire (Xen's PV limit is higher;
    /// this only bounds hostile input).
    public static let maximumVCPUs = 512

    public static func encode(_ spec: DomainSpec) -> DomainSXP {
        var vm: [DomainSXP] = [.atom("vm"), sxpField("name", spec.name)]
        if let uuid = spec.uuid { vm.append(sxpField("uuid", uuid)) }
        vm.append(sxpField("kernel", spec.kernel))
        if let ramdisk = spec.ramdisk { vm.append(sxpField("ramdisk", ramdisk)) }
        vm.append(sxpField("memory", spec.memory))
        vm.append(sxpField("maxmem", spec.maxmem))
        vm.append(sxpField("vcpus", spec.vcpus))
        if let cpus = spec.cpus { vm.append(sxpField("cpus", cpus.specification)) }
        if let ip = spec.ipConfiguration { vm.append(sxpField("ip", ip)) }
        if let root = spec.root { vm.append(sxpField("root", root)) }
        if let extra = spec.extra { vm.append(sxpField("extra", extra)) }
        vm.append(sxpField("cmdline", spec.cmdline))
        vm.append(sxpField("on_poweroff", spec.onPoweroff.rawValue))
        vm.append(sxpField("on_reboot", spec.onReboot.rawValue))
        vm.append(sxpField("on_crash", spec.onCrash.rawValue))
        for disk in spec.disks { vm.append(sxpField("device", encodeDisk(disk))) }
        for vif in spec.vifs {
            var entry: [DomainSXP] = [
                .atom("vif"), sxpField("mac", vif.mac.description),
                sxpField("mac-generated", vif.macGenerated ? 1 : 0),
            ]
            if let bridge = vif.bridge { entry.append(sxpField("bridge", bridge)) }
            for address in vif.ip { entry.append(sxpField("ip", address)) }
            if let script = vif.script { entry.append(sxpField("script", script)) }
            if let rate = vif.rate { entry.append(sxpField("rate", rate.text)) }
            if let vifname = vif.vifname { entry.append(sxpField("vifname", vifname)) }
            entry.append(sxpField("type", vif.type.rawValue))
            vm.append(sxpField("device", .list(entry)))
        }
        return .list(vm)
    }

    /// A disk as `(vbd (uname ...) ...)`, the form inside `(device ...)`.
    static func encodeDisk(_ disk: DiskSpec) -> DomainSXP {
        let kind: String
        switch disk.source {
        case .file: kind = "file"
        case .phy: kind = "phy"
        case .tapAio: kind = "tap:aio"
        }
        return .list([
            .atom("vbd"), sxpField("uname", disk.uname),
            sxpField("source-type", kind), sxpField("source-path", disk.source.path),
            sxpField("dev", disk.dev), sxpField("virtual-device", disk.virtualDevice),
            sxpField("device-number", disk.deviceNumber),
            sxpField("device-type", disk.deviceType.rawValue),
            sxpField("mode", disk.mode.rawValue),
        ])
    }

    /// Decodes and checks a `(vm ...)` expression. Everything is validated:
    /// the text may come from a file an admin edited or a damaged node.
    public static func decode(_ sxp: DomainSXP) throws(ToolstackError) -> DomainSpec {
        guard sxp.head == "vm" else { throw .invalidSpec("expected (vm ...)") }
        func string(_ key: String) throws(ToolstackError) -> String {
            guard let value = sxp.field(key)?.stringValue else {
                throw .invalidSpec("(\(key) ...) is missing")
            }
            return value
        }
        func optional(_ key: String) -> String? { sxp.field(key)?.stringValue }
        func number(_ key: String) throws(ToolstackError) -> Int {
            guard let value = sxp.field(key)?.intValue else {
                throw .invalidSpec("(\(key) N) is missing or not a number")
            }
            return value
        }
        func action(_ key: String) throws(ToolstackError) -> ShutdownAction {
            let text = try string(key)
            guard let value = ShutdownAction(rawValue: text) else {
                throw .invalidSpec(
                    "\(key) '\(text)' is not destroy, restart, preserve or "
                        + "rename-restart")
            }
            return value
        }

        let name = try string("name")
        try checkName(name)
        let uuid = optional("uuid")
        if let uuid, DomainUUID(parsing: uuid) == nil {
            throw .invalidSpec("uuid '\(uuid)' is not in 8-4-4-4-12 form")
        }
        let kernel = try string("kernel")
        guard kernel.hasPrefix("/") else {
            throw .invalidSpec("kernel '\(kernel)' is not absolute")
        }
        let ramdisk = optional("ramdisk")
        if let ramdisk, !ramdisk.hasPrefix("/") {
            throw .invalidSpec("ramdisk '\(ramdisk)' is not absolute")
        }
        let memory = try number("memory")
        let maxmem = try number("maxmem")
        guard memory > 0, memory <= 1 << 30 else { throw .invalidSpec("memory \(memory) MiB") }
        guard maxmem >= memory, maxmem <= 1 << 30 else {
            throw .invalidSpec("maxmem \(maxmem) MiB is below memory \(memory) MiB or too big")
        }
        let vcpus = try number("vcpus")
        guard vcpus >= 1, vcpus <= maximumVCPUs else {
            throw .invalidSpec("vcpus \(vcpus) is not between 1 and \(maximumVCPUs)")
        }
        var cpus: CPUSet?
        if let text = optional("cpus") {
            guard let set = CPUSet(parsing: text) else {
                throw .invalidSpec("cpus '\(text)' is not a CPU list")
            }
            cpus = set
        }

        var disks: [DiskSpec] = []
        var vifs: [VifSpec] = []
        for device in sxp.children("device") {
            guard let body = device.tail.first else { continue }
            switch body.head {
            case "vbd": disks.append(try decodeDisk(body))
            case "vif": vifs.append(try decodeVif(body))
            default:
                throw .invalidSpec("unknown device '\(body.head ?? "?")'")
            }
        }
        return DomainSpec(
            name: name, uuid: uuid, kernel: kernel, ramdisk: ramdisk, memory: memory,
            maxmem: maxmem, vcpus: vcpus, cpus: cpus, ipConfiguration: optional("ip"),
            root: optional("root"), extra: optional("extra"), cmdline: try string("cmdline"),
            onPoweroff: try action("on_poweroff"), onReboot: try action("on_reboot"),
            onCrash: try action("on_crash"), disks: disks, vifs: vifs)
    }

    /// xend's rule for names: not empty, no `/` or control characters, and
    /// not all digits (a number means a domain id on the command line).
    public static func checkName(_ name: String) throws(ToolstackError) {
        guard !name.isEmpty, name.utf8.count <= 128 else {
            throw .invalidSpec("a domain name has 1 to 128 characters")
        }
        guard !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0 == "/" }) else {
            throw .invalidSpec("domain name '\(name)' contains '/' or control characters")
        }
        guard !name.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw .invalidSpec("domain name '\(name)' is all digits, which reads as a domain id")
        }
    }

    static func decodeDisk(_ body: DomainSXP) throws(ToolstackError) -> DiskSpec {
        func string(_ key: String) throws(ToolstackError) -> String {
            guard let value = body.field(key)?.stringValue, !value.isEmpty else {
                throw .invalidSpec("a vbd lacks (\(key) ...)")
            }
            return value
        }
        let path = try string("source-path")
        let source: DiskSource
        switch try string("source-type") {
        case "file": source = .file(path: path)
        case "phy": source = .phy(path: path)
        case "tap:aio": source = .tapAio(path: path)
        case let other: throw .invalidSpec("vbd source type '\(other)'")
        }
        guard let number = body.field("device-number")?.intValue, number >= 0 else {
            throw .invalidSpec("a vbd lacks a device number")
        }
        guard let type = DiskDeviceType(rawValue: try string("device-type")) else {
            throw .invalidSpec("vbd device type must be disk or cdrom")
        }
        guard let mode = DiskMode(rawValue: try string("mode")) else {
            throw .invalidSpec("vbd mode must be r, w or w!")
        }
        return DiskSpec(
            uname: try string("uname"), source: source, dev: try string("dev"),
            virtualDevice: try string("virtual-device"), deviceNumber: number, deviceType: type,
            mode: mode)
    }

    private static func decodeVif(_ body: DomainSXP) throws(ToolstackError) -> VifSpec {
        guard let macText = body.field("mac")?.stringValue, let mac = MACAddress(parsing: macText)
        else { throw .invalidSpec("a vif lacks a valid (mac ...)") }
        var rate: VifRate?
        if let text = body.field("rate")?.stringValue {
            guard let parsed = VifRate(parsing: text) else {
                throw .invalidSpec("vif rate '\(text)'")
            }
            rate = parsed
        }
        let typeText = body.field("type")?.stringValue ?? VifType.netfront.rawValue
        guard let type = VifType(rawValue: typeText) else {
            throw .invalidSpec("vif type '\(typeText)'")
        }
        return VifSpec(
            mac: mac, macGenerated: body.field("mac-generated")?.intValue == 1,
            bridge: body.field("bridge")?.stringValue,
            ip: body.children("ip").compactMap { $0.tail.first?.stringValue },
            script: body.field("script")?.stringValue, rate: rate,
            vifname: body.field("vifname")?.stringValue, type: type)
    }
}
