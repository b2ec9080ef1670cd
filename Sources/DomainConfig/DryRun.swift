import SXP

/// An S-expression as xm and xend exchanged domain configurations: atoms
/// (xend's reader made every word and string one), integers and lists.
public indirect enum DomainSXP: Sendable, Hashable {
    case atom(String)
    case integer(Int)
    case list([DomainSXP])

    /// The tree as SXP nodes, atoms as symbols (the writer quotes those
    /// that need it).
    public var node: SXPNode {
        switch self {
        case .atom(let text): return SXPNode(.symbol(text))
        case .integer(let value): return SXPNode(.integer(Int64(value)))
        case .list(let items): return SXPNode(.list(items.map(\.node)))
        }
    }

    /// One line, as xend's `sxp.show` wrote it: strings that are not plain
    /// atoms are quoted with Python's `repr`.
    public var text: String { SXPWriter.python.render(node) }

    /// Pretty-printed like xend's `PrettyPrint.prettyprint` at `width`
    /// columns (``SXPWriter/prettyPrinted(_:width:)``), ending with a newline.
    public func prettyPrinted(width: Int = 80) -> String {
        SXPWriter.python.prettyPrinted(node.value, width: width)
    }
}

extension DomainSpec {
    /// The `(vm …)` form `xm create --dryrun` printed for this config
    /// (make_config in xm 3.0.3's create.py), with two differences: the
    /// on_poweroff/on_reboot/on_crash actions always appear with their
    /// effective values, and maxmem appears only when it differs from memory.
    public var sxp: DomainSXP {
        var vm: [DomainSXP] = [
            .atom("vm"), field("name", .atom(name)), field("memory", .integer(memory)),
        ]
        if maxmem != memory { vm.append(field("maxmem", .integer(maxmem))) }
        vm.append(field("on_poweroff", .atom(onPoweroff.rawValue)))
        vm.append(field("on_reboot", .atom(onReboot.rawValue)))
        vm.append(field("on_crash", .atom(onCrash.rawValue)))
        vm.append(field("vcpus", .integer(vcpus)))
        if let uuid { vm.append(field("uuid", .atom(uuid))) }
        if let cpus { vm.append(field("cpus", .atom(cpus.specification))) }

        var linux: [DomainSXP] = [.atom("linux"), field("kernel", .atom(kernel))]
        if let ramdisk { linux.append(field("ramdisk", .atom(ramdisk))) }
        if let ipConfiguration { linux.append(field("ip", .atom(ipConfiguration))) }
        if let root { linux.append(field("root", .atom(root))) }
        if let extra { linux.append(field("args", .atom(extra))) }
        vm.append(field("image", .list(linux)))

        for disk in disks {
            let kind = disk.uname.hasPrefix("tap:") ? "tap" : "vbd"
            vm.append(
                field(
                    "device",
                    .list([
                        .atom(kind), field("uname", .atom(disk.uname)),
                        field("dev", .atom(disk.dev)),
                        field("mode", .atom(disk.mode.rawValue)),
                    ])))
        }
        for vif in vifs {
            var entry: [DomainSXP] = [.atom("vif")]
            // A generated MAC is not part of the config: xend picked it later.
            if !vif.macGenerated { entry.append(field("mac", .atom(vif.mac.description))) }
            if let bridge = vif.bridge { entry.append(field("bridge", .atom(bridge))) }
            if !vif.ip.isEmpty { entry.append(field("ip", .atom(vif.ip.joined(separator: " ")))) }
            if let script = vif.script { entry.append(field("script", .atom(script))) }
            if let rate = vif.rate { entry.append(field("rate", .atom(rate.text))) }
            if let vifname = vif.vifname { entry.append(field("vifname", .atom(vifname))) }
            if vif.type == .ioemu { entry.append(field("type", .atom("ioemu"))) }
            vm.append(field("device", .list(entry)))
        }
        return .list(vm)
    }

    /// The text `xm create --dryrun` printed.
    public var dryRunText: String { sxp.prettyPrinted() }
}

private func field(_ name: String, _ value: DomainSXP) -> DomainSXP {
    .list([.atom(name), value])
}
