/// Turns the variables left after a config ran into a validated
/// `DomainSpec`, applying xm's conversions and xend's defaults.
struct SpecBuilder<Generator: RandomNumberGenerator> {
    var variables: [String: Variable]
    var order: [String]
    /// The config file path, for messages and the default name.
    var file: String
    var workingDirectory: String
    var commandLineVariables: Set<String>
    var generator: Generator
    var warnings: [DomainConfigWarning] = []

    /// Defaults from xm create.py's option table.
    static var defaultMemory: Int { 128 }
    /// Upper bounds that keep later arithmetic (KiB, pages) far from overflow.
    static var maximumMemory: Int { 16 << 20 }  // 16 TiB in MiB
    static var maximumVCPUs: Int { CPUSet.maximumCPU + 1 }

    init(
        evaluator: Evaluator, file: String, workingDirectory: String,
        commandLineVariables: Set<String>, generator: Generator
    ) {
        self.variables = evaluator.variables
        self.order = evaluator.order
        self.file = file
        self.workingDirectory = workingDirectory
        self.commandLineVariables = commandLineVariables
        self.generator = generator
    }

    /// xm semantics: an option given on the command line replaces the
    /// file's value; list options collect every command-line occurrence.
    mutating func apply(_ overrides: [XmCreateArguments.Setting]) throws(DomainConfigError) {
        var lists: [String: [ConfigItem]] = [:]
        for setting in overrides {
            guard let option = XmOption.table[setting.name] else { continue }
            let value = try XmCreateArguments.convert(setting, kind: option.kind)
            let origin = SettingOrigin.commandLine(argument: setting.argument)
            if option.kind == .list {
                lists[setting.name, default: []].append(ConfigItem(value: value, location: nil))
                if variables[setting.name] == nil { order.append(setting.name) }
                variables[setting.name] = Variable(
                    value: .list(lists[setting.name] ?? []), origin: origin)
            } else {
                if variables[setting.name] == nil { order.append(setting.name) }
                variables[setting.name] = Variable(value: value, origin: origin)
            }
        }
    }

    // MARK: typed access

    private func origin(_ key: String) -> SettingOrigin {
        variables[key]?.origin ?? .file(SourceLocation(file: file, line: 0))
    }

    private func invalid(_ key: String, _ message: String) -> DomainConfigError {
        .invalidSetting(key: key, origin: origin(key), message)
    }

    /// A string setting; `nil` when unset, None or empty (xm skipped false
    /// values).
    private func string(_ key: String) throws(DomainConfigError) -> String? {
        guard let value = variables[key]?.value else { return nil }
        switch value {
        case .none: return nil
        case .string(let text): return text.isEmpty ? nil : text
        default:
            throw invalid(key, "must be a string, not \(value.typeName) \(value.pythonRepr)")
        }
    }

    /// An integer setting; a decimal string is accepted because xend ran
    /// `int()` over these values.
    private func integer(_ key: String) throws(DomainConfigError) -> Int? {
        guard let value = variables[key]?.value else { return nil }
        switch value {
        case .none: return nil
        case .integer(let number): return number
        case .string(let text):
            guard let number = parseDecimal(text) else {
                throw invalid(key, "must be an integer, not \(value.pythonRepr)")
            }
            return number
        default:
            throw invalid(key, "must be an integer, not \(value.typeName) \(value.pythonRepr)")
        }
    }

    /// A list of strings (`disk`, `vif`) with each entry's origin.
    private func stringList(_ key: String) throws(DomainConfigError) -> [(String, SettingOrigin)] {
        guard let variable = variables[key] else { return [] }
        let items: [ConfigItem]
        switch variable.value {
        case .none: return []
        case .list(let elements), .tuple(let elements): items = elements
        default:
            throw invalid(
                key,
                "must be a list of strings such as [ '...' ], not \(variable.value.typeName) "
                    + variable.value.pythonRepr)
        }
        var result: [(String, SettingOrigin)] = []
        for (index, item) in items.enumerated() {
            let itemOrigin = item.location.map { SettingOrigin.file($0) } ?? variable.origin
            guard case .string(let text) = item.value else {
                throw .invalidSetting(
                    key: "\(key)[\(index)]", origin: itemOrigin,
                    "must be a string, not \(item.value.typeName) \(item.value.pythonRepr)")
            }
            result.append((text, itemOrigin))
        }
        return result
    }

    // MARK: building

    mutating func build() throws(DomainConfigError) -> DomainSpec {
        if let builder = try string("builder"), builder != "linux" {
            throw invalid(
                "builder", "only 'linux' (paravirtual) guests are supported, not '\(builder)'")
        }
        let name = try domainName()
        let uuid = try self.uuid()
        guard let kernelText = try string("kernel") else {
            var message = "no kernel given; set kernel = '/boot/vmlinuz-...'"
            if variables["bootloader"]?.value.isTruthy == true {
                message += " (boot loaders such as pygrub are not supported)"
            }
            throw .missingSetting(key: "kernel", file: file, message)
        }
        let kernel = absolutePath(kernelText)
        let ramdisk = try string("ramdisk").map(absolutePath)

        let memory = try integer("memory") ?? Self.defaultMemory
        guard memory > 0, memory <= Self.maximumMemory else {
            throw invalid(
                "memory",
                "must be a positive number of MiB (at most \(Self.maximumMemory)), got \(memory)")
        }
        var maxmem = memory
        if let given = try integer("maxmem") {
            guard given > 0, given <= Self.maximumMemory else {
                throw invalid(
                    "maxmem",
                    "must be a positive number of MiB (at most \(Self.maximumMemory)), got \(given)"
                )
            }
            // xend: "if maxmem < memory: maxmem = memory".
            maxmem = max(given, memory)
        }
        let vcpus = try integer("vcpus") ?? 1
        guard vcpus >= 1, vcpus <= Self.maximumVCPUs else {
            throw invalid("vcpus", "must be between 1 and \(Self.maximumVCPUs), got \(vcpus)")
        }
        let cpus = try cpuSet()
        let (onPoweroff, onReboot, onCrash) = try shutdownActions()

        let ipConfiguration = try kernelIPConfiguration()
        var root = try string("root")
        // xm stripped a "root=" the admin had already written.
        if let given = root, given.hasPrefix("root=") { root = String(given.dropFirst(5)) }
        var extra = try string("extra")
        if let nfsRoot = try string("nfs_root") {
            guard let server = try string("nfs_server") else {
                throw invalid("nfs_root", "nfs_root needs nfs_server as well")
            }
            extra = "nfsroot=\(server):\(nfsRoot)" + (extra.map { " " + $0 } ?? "")
        }
        var arguments: [String] = []
        if let ipConfiguration { arguments.append("ip=" + ipConfiguration) }
        if let root { arguments.append("root=" + root) }
        if let extra { arguments.append(extra) }

        let disks = try self.disks()
        let vifs = try self.vifs()
        warnAboutUnusedSettings()

        return DomainSpec(
            name: name, uuid: uuid, kernel: kernel, ramdisk: ramdisk, memory: memory,
            maxmem: maxmem, vcpus: vcpus, cpus: cpus, ipConfiguration: ipConfiguration,
            root: root, extra: extra, cmdline: arguments.joined(separator: " "),
            onPoweroff: onPoweroff, onReboot: onReboot, onCrash: onCrash, disks: disks,
            vifs: vifs, warnings: warnings)
    }

    /// `name`, or (as xm 3.0.3 did) the config file's base name.
    private func domainName() throws(DomainConfigError) -> String {
        let name: String
        if let given = try string("name") {
            name = given
        } else {
            let base = file.split(separator: "/").last.map(String.init) ?? ""
            guard !base.isEmpty else {
                throw .missingSetting(key: "name", file: file, "no name given; set name = '...'")
            }
            name = base
        }
        // xend's check_name: letters, digits and _-.:/+ only.
        let allowed = name.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII
                && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
                    || "_-.:/+".unicodeScalars.contains(scalar))
        }
        guard allowed else {
            let message = "'\(name)' is not a valid domain name (letters, digits and _-.:/+ only)"
            if variables["name"] != nil { throw invalid("name", message) }
            throw .missingSetting(key: "name", file: file, message + "; set name = '...'")
        }
        return name
    }

    private func uuid() throws(DomainConfigError) -> String? {
        guard let text = try string("uuid") else { return nil }
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.map(\.count) == [8, 4, 4, 4, 12],
            groups.allSatisfy({ $0.allSatisfy(\.isHexDigit) })
        else {
            throw invalid(
                "uuid",
                "'\(text)' is not a UUID (want 8-4-4-4-12 hex digits, e.g. "
                    + "06ed00fe-1162-4fc4-b5d8-11993ee4a8b9)")
        }
        return text.lowercased()
    }

    /// `cpu` (VCPU 0's CPU, legacy) joined before `cpus`, as xend did.
    private func cpuSet() throws(DomainConfigError) -> CPUSet? {
        var spec: String?
        var key = "cpus"
        if let value = variables["cpus"]?.value {
            switch value {
            case .none: spec = nil
            case .string(let text): spec = text.isEmpty ? nil : text
            case .integer(let number): spec = String(number)
            default:
                throw invalid(
                    "cpus",
                    "must be a string such as \"0-3,^1\", not \(value.typeName) \(value.pythonRepr)"
                )
            }
        }
        if let cpu = try integer("cpu") {
            spec = spec.map { "\(cpu),\($0)" } ?? String(cpu)
            if variables["cpus"]?.value.isTruthy != true { key = "cpu" }
        }
        guard let spec else { return nil }
        guard let set = CPUSet(parsing: spec) else {
            throw invalid(
                key,
                "'\(spec)' is not a CPU list (numbers 0-\(CPUSet.maximumCPU), ranges a-b, "
                    + "exclusions ^n, comma-separated, selecting at least one CPU)")
        }
        return set
    }

    private mutating func shutdownActions() throws(DomainConfigError)
        -> (ShutdownAction, ShutdownAction, ShutdownAction)
    {
        func action(_ key: String) throws(DomainConfigError) -> ShutdownAction? {
            guard let text = try string(key) else { return nil }
            guard let action = ShutdownAction(rawValue: text) else {
                throw invalid(
                    key, "'\(text)' is not one of destroy, restart, preserve, rename-restart")
            }
            return action
        }
        var poweroff = try action("on_poweroff")
        var reboot = try action("on_reboot")
        var crash = try action("on_crash")
        // The deprecated `restart` option fills in what on_* leave unset.
        if let restart = try string("restart") {
            let implied: (ShutdownAction, ShutdownAction, ShutdownAction)?
            switch restart {
            case "onreboot": implied = (.destroy, .restart, .destroy)
            case "always": implied = (.restart, .restart, .restart)
            case "never": implied = (.destroy, .destroy, .destroy)
            default: implied = nil
            }
            if let implied {
                poweroff = poweroff ?? implied.0
                reboot = reboot ?? implied.1
                crash = crash ?? implied.2
                warn("restart", "deprecated; use on_poweroff, on_reboot and on_crash")
            } else {
                warn(
                    "restart",
                    "'\(restart)' is not onreboot, always or never; ignored (as xend did)")
            }
        }
        // xend's defaults.
        return (poweroff ?? .destroy, reboot ?? .restart, crash ?? .restart)
    }

    /// xm's `ip=` kernel argument: `ip:nfs_server:gateway:netmask:hostname:
    /// interface:dhcp`, built when `ip` is set or `dhcp` is not "off".
    private func kernelIPConfiguration() throws(DomainConfigError) -> String? {
        let ip = try string("ip") ?? ""
        let dhcp = try string("dhcp") ?? "off"
        guard !ip.isEmpty || dhcp != "off" else { return nil }
        let fields = [
            ip,
            try string("nfs_server") ?? "1.2.3.4",  // xm's placeholder when there is none
            try string("gateway") ?? "",
            try string("netmask") ?? "",
            try string("hostname") ?? "",
            try string("interface") ?? "eth0",
            dhcp,
        ]
        let joined = fields.joined(separator: ":")
        return joined.hasPrefix("ip=") ? String(joined.dropFirst(3)) : joined
    }

    /// os.path.abspath: relative to the working directory, normalised.
    private func absolutePath(_ path: String) -> String {
        let full = path.hasPrefix("/") ? path : workingDirectory + "/" + path
        var parts: [Substring] = []
        for part in full.split(separator: "/") {
            switch part {
            case ".": continue
            case "..": _ = parts.popLast()
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }

    private mutating func warn(_ key: String, _ message: String) {
        warnings.append(
            DomainConfigWarning(key: key, origin: variables[key]?.origin, message: message))
    }

    // MARK: devices

    private func disks() throws(DomainConfigError) -> [DiskSpec] {
        var disks: [DiskSpec] = []
        var seen: [Int: String] = [:]
        for (index, (text, origin)) in try stringList("disk").enumerated() {
            let disk = try DeviceParser.disk(text, index: index, origin: origin)
            if let first = seen[disk.deviceNumber] {
                throw .duplicateVirtualDevice(
                    device: disk.virtualDevice, number: disk.deviceNumber, first: first,
                    second: text, origin: origin)
            }
            seen[disk.deviceNumber] = text
            disks.append(disk)
        }
        return disks
    }

    private mutating func vifs() throws(DomainConfigError) -> [VifSpec] {
        var entries = try stringList("vif")
        // Deprecated `nics`: pad with default vifs up to that many.
        if let nics = try integer("nics") {
            if nics > 0 {
                guard nics <= 1024 else { throw invalid("nics", "\(nics) is too many interfaces") }
                warn("nics", "deprecated; use empty vif entries instead: vif = [ '' ]")
                while entries.count < nics { entries.append(("", origin("nics"))) }
            } else if nics == 0 {
                warn("nics", "deprecated; remove it")
            }
        }
        var vifs: [VifSpec] = []
        var macs: [MACAddress: Int] = [:]
        for (index, (text, origin)) in entries.enumerated() {
            let parsed = try DeviceParser.vif(text, index: index, origin: origin, using: &generator)
            warnings += parsed.warnings
            if let other = macs[parsed.vif.mac] {
                warnings.append(
                    DomainConfigWarning(
                        key: "vif[\(index)]", origin: origin,
                        message: "MAC \(parsed.vif.mac) is also used by vif[\(other)]"))
            }
            macs[parsed.vif.mac] = index
            vifs.append(parsed.vif)
        }
        return vifs
    }

    /// Names xm would have ignored silently, and options we do not use.
    private mutating func warnAboutUnusedSettings() {
        for key in order {
            guard let variable = variables[key] else { continue }
            if let option = XmOption.table[key] {
                if !option.supported && variable.value.isTruthy {
                    warn(key, "not supported by Proxenos (\(option.reason)); ignored")
                }
            } else if !commandLineVariables.contains(key) {
                warn(key, "not an xm setting; ignored (fine if it is a helper variable)")
            }
        }
    }
}
