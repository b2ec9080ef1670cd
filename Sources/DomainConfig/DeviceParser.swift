/// Parsers for the `disk` and `vif` entry strings.
enum DeviceParser {
    /// Backend domain names that mean dom0, the only backend we have.
    static func isDom0(_ backend: String) -> Bool {
        backend == "0" || backend == "Domain-0"
    }

    /// `TYPE:TARGET,VDEV[:cdrom],MODE[,BACKEND]` (xm's preprocess_disk and
    /// xend's BlkifController).
    static func disk(_ text: String, index: Int, origin: SettingOrigin) throws(DomainConfigError)
        -> DiskSpec
    {
        func fail(_ message: String) -> DomainConfigError {
            .invalidDisk(index: index, spec: text, origin: origin, message)
        }
        let fields = text.split(separator: ",", omittingEmptySubsequences: false).map {
            String($0).trimmingSpaces()
        }
        guard fields.count == 3 || fields.count == 4 else {
            throw fail(
                "expected 'TYPE:TARGET,VDEV,MODE' such as 'file:/images/root.img,xvda1,w' "
                    + "(found \(fields.count) comma-separated field\(fields.count == 1 ? "" : "s"))"
            )
        }
        let uname = fields[0]
        guard let colon = uname.firstIndex(of: ":") else {
            throw fail("'\(uname)' needs a type prefix: file:, phy: or tap:aio:")
        }
        let type = String(uname[..<colon])
        let target = String(uname[uname.index(after: colon)...])
        let source: DiskSource
        switch type {
        case "file":
            guard !target.isEmpty else { throw fail("no path after 'file:'") }
            source = .file(path: target)
        case "phy":
            guard !target.isEmpty else { throw fail("no device after 'phy:'") }
            // xend: a phy: name without a leading slash lives in /dev.
            source = .phy(path: target.hasPrefix("/") ? target : "/dev/" + target)
        case "tap":
            guard let driverEnd = target.firstIndex(of: ":") else {
                throw fail("'tap:' needs a driver: tap:aio:PATH")
            }
            let driver = target[..<driverEnd]
            let path = String(target[target.index(after: driverEnd)...])
            guard driver == "aio" else {
                throw fail("blktap driver 'tap:\(driver):' is not supported (only tap:aio:)")
            }
            guard !path.isEmpty else { throw fail("no path after 'tap:aio:'") }
            source = .tapAio(path: path)
        default:
            throw fail("disk type '\(type):' is not supported (file:, phy:, tap:aio:)")
        }

        let dev = fields[1]
        var name = Substring(dev)
        // xend dropped an "ioemu:" prefix (meant for HVM device models).
        if name.hasPrefix("ioemu:") { name = name.dropFirst(6) }
        var deviceType = DiskDeviceType.disk
        if let colon = name.firstIndex(of: ":") {
            let suffix = String(name[name.index(after: colon)...])
            guard let parsed = DiskDeviceType(rawValue: suffix) else {
                throw fail(
                    "device type ':\(suffix)' after '\(name[..<colon])' must be :disk or :cdrom")
            }
            deviceType = parsed
            name = name[..<colon]
        }
        guard !name.isEmpty else { throw fail("no virtual device name (second field)") }
        let virtualDevice = String(name)
        guard let number = VirtualDevice.number(for: virtualDevice) else {
            throw fail(VirtualDevice.explainUnmappable(virtualDevice))
        }

        guard let mode = DiskMode(rawValue: fields[2]) else {
            throw fail(
                "mode '\(fields[2])' must be r (read-only), w (read-write) or w! (shared write)")
        }
        if fields.count == 4, !isDom0(fields[3]) {
            throw fail(
                "backend domain '\(fields[3])' is not supported: dom0 serves every disk")
        }
        return DiskSpec(
            uname: uname, source: source, dev: dev, virtualDevice: virtualDevice,
            deviceNumber: number, deviceType: deviceType, mode: mode)
    }

    /// Comma-separated `key=value` options (xm's comma_sep_kv_to_dict);
    /// the empty string is a vif with all defaults.
    static func vif(
        _ text: String, index: Int, origin: SettingOrigin,
        using generator: inout some RandomNumberGenerator
    ) throws(DomainConfigError) -> (vif: VifSpec, warnings: [DomainConfigWarning]) {
        func fail(_ message: String) -> DomainConfigError {
            .invalidVif(index: index, spec: text, origin: origin, message)
        }
        var warnings: [DomainConfigWarning] = []
        var mac: MACAddress?
        // The MAC is filled in below; the placeholder is never returned.
        var vif = VifSpec(mac: .unset)
        var seen: Set<String> = []
        let trimmed = text.trimmingSpaces()
        let parts =
            trimmed.isEmpty ? [] : trimmed.split(separator: ",", omittingEmptySubsequences: false)
        for part in parts {
            guard let equals = part.firstIndex(of: "=") else {
                throw fail("'\(part.trimmingSpaces())' should be a key=value pair")
            }
            let key = String(part[..<equals]).trimmingSpaces()
            let value = String(part[part.index(after: equals)...]).trimmingSpaces()
            guard seen.insert(key).inserted else { throw fail("option '\(key)' is given twice") }
            guard !value.isEmpty else { throw fail("option '\(key)' has an empty value") }
            switch key {
            case "mac":
                guard let parsed = MACAddress(parsing: value) else {
                    throw fail(
                        "bad MAC address '\(value)' (want six two-digit hex groups such as "
                            + "00:16:3e:12:34:56)")
                }
                guard !parsed.isMulticast else {
                    throw fail(
                        "MAC address '\(value)' is a multicast address (lowest bit of the first "
                            + "byte set); a NIC needs a unicast one")
                }
                mac = parsed
            case "bridge":
                vif.bridge = value
            case "ip":
                let addresses = value.split(whereSeparator: \.isWhitespace).map(String.init)
                for address in addresses where !isIPv4(address) {
                    throw fail("'\(address)' in ip= is not an IPv4 address (a.b.c.d[/n])")
                }
                vif.ip = addresses
            case "script":
                vif.script = value
            case "rate":
                guard let rate = VifRate(parsing: value) else {
                    throw fail(
                        "bad rate '\(value)' (want e.g. 10Mb/s@50ms: N[G|M|K]{B|b}/s[@T{s|ms|us}], "
                            + "1 to 2^32-1 bytes per window)")
                }
                vif.rate = rate
            case "vifname":
                // Linux interface names: at most 15 bytes, no '/', ':' or spaces.
                guard value.utf8.count <= 15, value != ".", value != "..",
                    !value.contains(where: { $0 == "/" || $0 == ":" || $0.isWhitespace })
                else {
                    throw fail(
                        "vifname '\(value)' is not a valid interface name (1-15 characters, "
                            + "no '/', ':' or spaces)")
                }
                vif.vifname = value
            case "type":
                guard let type = VifType(rawValue: value) else {
                    throw fail("type '\(value)' must be netfront or ioemu")
                }
                vif.type = type
            case "backend":
                guard isDom0(value) else {
                    throw fail("backend domain '\(value)' is not supported: dom0 serves every vif")
                }
            case "model", "accel":
                warnings.append(
                    DomainConfigWarning(
                        key: "vif[\(index)]", origin: origin,
                        message: "option '\(key)' applies to HVM guests; ignored"))
            default:
                throw fail(
                    "unknown option '\(key)' (xm knows mac, bridge, ip, script, rate, vifname, "
                        + "type, backend)")
            }
        }
        if let mac {
            vif.mac = mac
        } else {
            // xend generated missing MACs (netif.py randomMAC).
            vif.mac = MACAddress.random(using: &generator)
            vif.macGenerated = true
        }
        return (vif, warnings)
    }

    /// Dotted quad with an optional /prefix length.
    static func isIPv4(_ text: String) -> Bool {
        let pieces = text.split(separator: "/", omittingEmptySubsequences: false)
        guard pieces.count == 1 || pieces.count == 2 else { return false }
        if pieces.count == 2 {
            guard !pieces[1].isEmpty, pieces[1].count <= 2, pieces[1].allSatisfy(\.isASCII),
                let length = Int(pieces[1]), length <= 32
            else { return false }
        }
        let octets = pieces[0].split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4
            && octets.allSatisfy { octet in
                !octet.isEmpty && octet.count <= 3 && octet.allSatisfy { $0.isASCII && $0.isNumber }
                    && (Int(octet) ?? 256) <= 255
            }
    }
}
