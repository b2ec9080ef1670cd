/// The settings `xm create` knew (Xen 3.0.3 tools/python/xen/xm/create.py,
/// plus a few names later xm releases added), how a command-line value for
/// each is converted, and whether Proxenos uses it.
enum XmOption {
    enum Kind {
        /// `set_value`: kept as a string.
        case string
        /// `set_int`: `int(value)`.
        case integer
        /// `set_bool`: `yes` → 1, `no` → 0.
        case boolean
        /// `append_value`: each occurrence adds one entry to a list.
        case list
    }

    struct Info {
        var kind: Kind
        /// Used to build the spec; otherwise accepted and ignored with a warning.
        var supported: Bool
        /// Why an ignored option does not apply, for the warning.
        var reason: String = ""
    }

    static let hvm = "applies to HVM guests, Proxenos runs PV guests only"

    static let table: [String: Info] = {
        var table: [String: Info] = [:]
        func add(_ names: [String], _ kind: Kind, supported: Bool, reason: String = "") {
            for name in names {
                table[name] = Info(kind: kind, supported: supported, reason: reason)
            }
        }
        add(
            [
                "name", "kernel", "ramdisk", "builder", "cpus", "root", "extra", "ip", "gateway",
                "netmask", "hostname", "interface", "dhcp", "nfs_server", "nfs_root", "uuid",
                "restart", "on_poweroff", "on_reboot", "on_crash",
            ], .string, supported: true)
        add(["memory", "maxmem", "cpu", "vcpus", "nics"], .integer, supported: true)
        add(["disk", "vif"], .list, supported: true)
        add(
            ["bootloader", "bootargs", "bootentry"], .string, supported: false,
            reason: "boot loaders (pygrub) are not supported; give kernel= and ramdisk=")
        add(
            ["features"], .string, supported: false,
            reason: "guest feature flags are not supported")
        add(
            ["shadow_memory"], .integer, supported: false,
            reason: "shadow memory is managed by Xen")
        add(
            ["cpu_weight", "cpu_cap"], .string, supported: false,
            reason: "scheduler settings are not supported")
        add(["vcpu_avail"], .integer, supported: false, reason: "all VCPUs start online")
        add(
            ["blkif", "netif"], .boolean, supported: false,
            reason: "driver domains are not supported; dom0 serves all devices")
        add(["tpmif", "vtpm"], .list, supported: false, reason: "virtual TPMs are not supported")
        add(
            ["pci", "ioports", "irq", "usbport"], .list, supported: false,
            reason: "device pass-through is not supported")
        add(
            ["access_control"], .list, supported: false,
            reason: "ACM security labels are not supported")
        add(["vfb"], .list, supported: false, reason: "virtual frame buffers are not supported")
        add(
            [
                "pae", "acpi", "apic", "timer_mode", "vhpt",
            ], .integer, supported: false, reason: hvm)
        add(
            [
                "localtime", "usb", "stdvga", "isa", "nographic", "vncunused", "vncviewer",
                "vncconsole", "monitor",
            ], .boolean, supported: false, reason: hvm)
        add(
            [
                "device_model", "fda", "fdb", "serial", "usbdevice", "boot", "soundhw", "vnc",
                "vncdisplay", "vnclisten", "vncpasswd", "sdl", "display", "xauthority", "keymap",
                "guest_os_type", "rtc_timeoffset",
            ], .string, supported: false, reason: hvm)
        add(
            ["on_xend_start", "on_xend_stop"], .string, supported: false,
            reason: "domains are not started or stopped with xend")
        return table
    }()
}

/// The `VAR=VALUE` words of an `xm create` command line, split as xm did:
/// names of xm settings (`memory=512`, `vif=…`) override the config file
/// after it ran; any other name (`vmid=3`) is a variable the config file
/// can read while it runs.
public struct XmCreateArguments: Sendable, Equatable {
    public struct Setting: Sendable, Equatable {
        public var name: String
        public var value: String
        /// The word as typed, for messages.
        public var argument: String
    }

    /// Script variables, defined before the config file runs. A value made
    /// only of decimal digits (optionally signed) becomes an integer, so
    /// `"VM%d" % vmid` and `7 + vmid` work even in configs without a check
    /// function; xm passed strings and left the conversion to an `xm_vars`
    /// check such as xmexample2's `int(val)`, which gives the same integer.
    public var variables: [Setting]
    /// Settings of xm options, applied after the config file ran; they win
    /// over the file. Repeating a list option (`vif=… vif=…`) adds entries,
    /// and the command-line entries replace the file's list.
    public var overrides: [Setting]

    public init() {
        variables = []
        overrides = []
    }

    /// Splits `name=value` words. Flags such as `-c` or `--dryrun` belong to
    /// the caller and are not accepted here.
    public init(_ arguments: [String]) throws(DomainConfigError) {
        self.init()
        for argument in arguments {
            guard let equals = argument.firstIndex(of: "=") else {
                throw .invalidArgument(argument, "expected NAME=VALUE")
            }
            let name = String(argument[..<equals]).trimmingSpaces()
            let value = String(argument[argument.index(after: equals)...]).trimmingSpaces()
            guard let first = name.unicodeScalars.first,
                first == "_" || (first.isASCII && first.properties.isAlphabetic),
                name.unicodeScalars.allSatisfy({
                    $0 == "_" || ($0.isASCII && $0.properties.isAlphabetic)
                        || ("0"..."9").contains($0)
                })
            else {
                throw .invalidArgument(argument, "'\(name)' is not a valid variable name")
            }
            let setting = Setting(name: name, value: value, argument: argument)
            if let option = XmOption.table[name] {
                _ = try Self.convert(setting, kind: option.kind)
                overrides.append(setting)
            } else {
                variables.append(setting)
            }
        }
    }

    /// The value a command-line setting gives its option, converted as xm's
    /// `set_int`/`set_bool`/`set_value` did.
    static func convert(_ setting: Setting, kind: XmOption.Kind) throws(DomainConfigError)
        -> ConfigValue
    {
        switch kind {
        case .string, .list:
            return .string(setting.value)
        case .integer:
            guard let value = parseDecimal(setting.value) else {
                throw .invalidArgument(setting.argument, "'\(setting.name)' needs an integer")
            }
            return .integer(value)
        case .boolean:
            switch setting.value {
            case "yes": return .integer(1)
            case "no": return .integer(0)
            default:
                throw .invalidArgument(setting.argument, "'\(setting.name)' needs yes or no")
            }
        }
    }

    /// The value a script variable has inside the config.
    var variableValues: [(name: String, value: ConfigValue, origin: SettingOrigin)] {
        variables.map { setting in
            let value: ConfigValue =
                parseDecimal(setting.value).map { .integer($0) } ?? .string(setting.value)
            return (setting.name, value, .commandLine(argument: setting.argument))
        }
    }
}
