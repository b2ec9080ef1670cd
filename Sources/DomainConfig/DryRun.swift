/// An S-expression as xm and xend exchanged domain configurations.
public indirect enum DomainSXP: Sendable, Hashable {
    case atom(String)
    case integer(Int)
    case list([DomainSXP])

    /// One line, as xend's `sxp.show` wrote it: strings that are not plain
    /// atoms are quoted with Python's `repr`.
    public var text: String {
        switch self {
        case .integer(let value):
            return String(value)
        case .atom(let value):
            return Self.isPlainAtom(value) ? value : pythonStringRepr(value)
        case .list(let items):
            return "(" + items.map(\.text).joined(separator: " ") + ")"
        }
    }

    /// xend's `sxp.atomp`: letters, digits and `.-_:/~` print bare (and
    /// so does a lone `@`).
    static func isPlainAtom(_ value: String) -> Bool {
        value == "@"
            || value.unicodeScalars.allSatisfy { scalar in
                scalar.isASCII
                    && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
                        || ".-_:/~".unicodeScalars.contains(scalar))
            }
    }

    /// Pretty-printed like xend's `PrettyPrint.prettyprint` (an Oppen-style
    /// printer, 80 columns): a list that fits on the rest of the line is
    /// printed flat; otherwise its head follows the parenthesis, every other
    /// element starts a new line indented 4 past the parenthesis, and the
    /// closing parenthesis gets its own line under the opening one.
    /// Ends with a newline, as `print` did.
    public func prettyPrinted(width: Int = 80) -> String {
        var out = ""
        render(column: 0, width: width, into: &out)
        return out + "\n"
    }

    private func render(column: Int, width: Int, into out: inout String) {
        let flat = text
        guard case .list(let items) = self, column + flat.utf8.count > width else {
            out += flat
            return
        }
        out += "("
        for (index, item) in items.enumerated() {
            if index == 0 {
                item.render(column: column + 1, width: width, into: &out)
            } else {
                out += "\n" + String(repeating: " ", count: column + 4)
                item.render(column: column + 4, width: width, into: &out)
            }
        }
        out += "\n" + String(repeating: " ", count: column) + ")"
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
