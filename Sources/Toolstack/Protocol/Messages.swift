import DomainConfig

/// A request to xend. On the wire: one S-expression headed by the
/// operation, e.g. `(pause (domain demo))`.
public enum XendRequest: Sendable, Equatable {
    /// Create a domain from a config xm evaluated. `skipDevices` creates it
    /// without the devices no backend serves; `paused` leaves it paused.
    case create(DomainSpec, skipDevices: Bool, paused: Bool)
    /// Domains with hypervisor state; nil lists all.
    case list(domain: String?)
    case destroy(domain: String)
    /// Ask the guest to power off (or reboot); with `wait`, return once
    /// the domain is gone, destroying it after `timeoutSeconds`.
    case shutdown(domain: String, reboot: Bool, wait: Bool, timeoutSeconds: Int)
    /// Ask every guest at once to power off (or reboot) and wait until
    /// each is gone, destroying those left after `timeoutSeconds`; the
    /// answer is one line per guest. `host`: the appliance is going down,
    /// so from now on no domain is created, restored or restarted.
    case shutdownAll(reboot: Bool, timeoutSeconds: Int, host: Bool)
    case pause(domain: String)
    case unpause(domain: String)
    /// Save to a file in dom0 (absolute path) and destroy the domain.
    case save(domain: String, path: String)
    case restore(path: String, paused: Bool)
    case info
    /// Xen's console ring.
    case dmesg(clear: Bool)
    /// Hot plug: add a disk to a running domain.
    case blockAttach(domain: String, disk: DiskSpec)
    /// Hot unplug a disk (`device`: its name, e.g. `xvdb`, or number);
    /// `force` removes it even if the guest does not let go.
    case blockDetach(domain: String, device: String, force: Bool)
    /// A domain's disks as `xm block-list` prints them.
    case blockList(domain: String)

    public var sxp: DomainSXP {
        switch self {
        case .create(let spec, let skipDevices, let paused):
            return .list([
                .atom("create"), SpecCodec.encode(spec),
                sxpField("skip-devices", skipDevices ? 1 : 0), sxpField("paused", paused ? 1 : 0),
            ])
        case .list(let domain):
            return .list([.atom("list")] + (domain.map { [sxpField("domain", $0)] } ?? []))
        case .destroy(let domain):
            return .list([.atom("destroy"), sxpField("domain", domain)])
        case .shutdown(let domain, let reboot, let wait, let timeout):
            return .list([
                .atom("shutdown"), sxpField("domain", domain), sxpField("reboot", reboot ? 1 : 0),
                sxpField("wait", wait ? 1 : 0), sxpField("timeout", timeout),
            ])
        case .shutdownAll(let reboot, let timeout, let host):
            return .list([
                .atom("shutdown-all"), sxpField("reboot", reboot ? 1 : 0),
                sxpField("timeout", timeout), sxpField("host", host ? 1 : 0),
            ])
        case .pause(let domain):
            return .list([.atom("pause"), sxpField("domain", domain)])
        case .unpause(let domain):
            return .list([.atom("unpause"), sxpField("domain", domain)])
        case .save(let domain, let path):
            return .list([.atom("save"), sxpField("domain", domain), sxpField("file", path)])
        case .restore(let path, let paused):
            return .list([
                .atom("restore"), sxpField("file", path), sxpField("paused", paused ? 1 : 0),
            ])
        case .info:
            return .list([.atom("info")])
        case .dmesg(let clear):
            return .list([.atom("dmesg"), sxpField("clear", clear ? 1 : 0)])
        case .blockAttach(let domain, let disk):
            return .list([
                .atom("block-attach"), sxpField("domain", domain),
                sxpField("device", SpecCodec.encodeDisk(disk)),
            ])
        case .blockDetach(let domain, let device, let force):
            return .list([
                .atom("block-detach"), sxpField("domain", domain), sxpField("device", device),
                sxpField("force", force ? 1 : 0),
            ])
        case .blockList(let domain):
            return .list([.atom("block-list"), sxpField("domain", domain)])
        }
    }

    public init(_ sxp: DomainSXP) throws(ToolstackError) {
        func domain() throws(ToolstackError) -> String {
            guard let name = sxp.field("domain")?.stringValue, !name.isEmpty else {
                throw .malformedMessage("(\(sxp.head ?? "?") ...) names no domain")
            }
            return name
        }
        func flag(_ key: String) -> Bool { sxp.field(key)?.intValue == 1 }
        func file() throws(ToolstackError) -> String {
            guard let path = sxp.field("file")?.stringValue, path.hasPrefix("/") else {
                throw .malformedMessage("(\(sxp.head ?? "?") ...) needs an absolute (file ...)")
            }
            return path
        }
        switch sxp.head {
        case "create":
            guard let vm = sxp.children("vm").first else {
                throw .malformedMessage("(create ...) carries no (vm ...)")
            }
            self = .create(
                try SpecCodec.decode(vm), skipDevices: flag("skip-devices"), paused: flag("paused"))
        case "list":
            self = .list(domain: sxp.field("domain")?.stringValue)
        case "destroy":
            self = .destroy(domain: try domain())
        case "shutdown":
            let timeout = sxp.field("timeout")?.intValue ?? 0
            guard timeout >= 0, timeout <= 86_400 else {
                throw .malformedMessage("shutdown timeout \(timeout) s is out of range")
            }
            self = .shutdown(
                domain: try domain(), reboot: flag("reboot"), wait: flag("wait"),
                timeoutSeconds: timeout)
        case "shutdown-all":
            let timeout = sxp.field("timeout")?.intValue ?? -1
            guard timeout >= 0, timeout <= 86_400 else {
                throw .malformedMessage("shutdown-all timeout \(timeout) s is out of range")
            }
            self = .shutdownAll(reboot: flag("reboot"), timeoutSeconds: timeout, host: flag("host"))
        case "pause":
            self = .pause(domain: try domain())
        case "unpause":
            self = .unpause(domain: try domain())
        case "save":
            self = .save(domain: try domain(), path: try file())
        case "restore":
            self = .restore(path: try file(), paused: flag("paused"))
        case "info":
            self = .info
        case "dmesg":
            self = .dmesg(clear: flag("clear"))
        case "block-attach":
            guard let disk = sxp.children("device").first?.tail.first else {
                throw .malformedMessage("(block-attach ...) carries no (device (vbd ...))")
            }
            self = .blockAttach(domain: try domain(), disk: try SpecCodec.decodeDisk(disk))
        case "block-detach":
            guard let device = sxp.field("device")?.stringValue, !device.isEmpty else {
                throw .malformedMessage("(block-detach ...) names no (device ...)")
            }
            self = .blockDetach(domain: try domain(), device: device, force: flag("force"))
        case "block-list":
            self = .blockList(domain: try domain())
        case let head:
            throw .malformedMessage("unknown request '\(head ?? "?")'")
        }
    }
}

/// xend's answer. On the wire: `(ok ...)` or `(error (kind K) (message M))`.
public enum XendResponse: Sendable, Equatable {
    case done
    /// A message for the admin (e.g. what a shutdown did).
    case message(String)
    case created(domid: UInt32, name: String)
    case domains([DomainSummary])
    case info([(String, String)])
    case text(String)
    /// What became of each guest (`shutdown-all`).
    case outcomes([GuestStopOutcome])
    case failure(kind: String, message: String)

    public static func == (lhs: XendResponse, rhs: XendResponse) -> Bool {
        switch (lhs, rhs) {
        case (.done, .done): return true
        case (.message(let a), .message(let b)): return a == b
        case (.created(let a, let b), .created(let c, let d)): return a == c && b == d
        case (.domains(let a), .domains(let b)): return a == b
        case (.info(let a), .info(let b)):
            return a.map(\.0) == b.map(\.0) && a.map(\.1) == b.map(\.1)
        case (.text(let a), .text(let b)): return a == b
        case (.outcomes(let a), .outcomes(let b)): return a == b
        case (.failure(let a, let b), .failure(let c, let d)): return a == c && b == d
        default: return false
        }
    }

    /// The response for an error xend hit.
    public init(_ error: ToolstackError) {
        self = .failure(kind: error.kind, message: error.description)
    }

    public var sxp: DomainSXP {
        switch self {
        case .done:
            return .list([.atom("ok")])
        case .message(let text):
            return .list([.atom("ok"), sxpField("message", text)])
        case .created(let domid, let name):
            return .list([.atom("ok"), sxpField("domid", Int(domid)), sxpField("name", name)])
        case .domains(let domains):
            return .list([.atom("ok"), .list([.atom("domains")] + domains.map(Self.encode))])
        case .info(let pairs):
            return .list([.atom("ok"), .list([.atom("info")] + pairs.map { sxpField($0.0, $0.1) })])
        case .text(let text):
            return .list([.atom("ok"), sxpField("text", text)])
        case .outcomes(let outcomes):
            return .list([.atom("ok"), .list([.atom("outcomes")] + outcomes.map(Self.encode))])
        case .failure(let kind, let message):
            return .list([.atom("error"), sxpField("kind", kind), sxpField("message", message)])
        }
    }

    public init(_ sxp: DomainSXP) throws(ToolstackError) {
        switch sxp.head {
        case "error":
            self = .failure(
                kind: sxp.field("kind")?.stringValue ?? "unknown",
                message: sxp.field("message")?.stringValue ?? "xend reported an error")
        case "ok":
            if let message = sxp.field("message")?.stringValue {
                self = .message(message)
            } else if let text = sxp.field("text")?.stringValue {
                self = .text(text)
            } else if let domid = sxp.field("domid")?.intValue,
                let name = sxp.field("name")?.stringValue
            {
                guard domid >= 0, domid <= Int(UInt32.max) else {
                    throw .malformedMessage("domid \(domid) out of range")
                }
                self = .created(domid: UInt32(domid), name: name)
            } else if let info = sxp.children("info").first {
                self = .info(
                    info.tail.compactMap { item in
                        guard let key = item.head, let value = item.tail.first?.stringValue else {
                            return nil
                        }
                        return (key, value)
                    })
            } else if let list = sxp.children("outcomes").first {
                var outcomes: [GuestStopOutcome] = []
                for item in list.children("guest") { outcomes.append(try Self.decodeOutcome(item)) }
                self = .outcomes(outcomes)
            } else if let list = sxp.children("domains").first {
                var domains: [DomainSummary] = []
                for item in list.children("domain") { domains.append(try Self.decodeDomain(item)) }
                self = .domains(domains)
            } else if sxp.tail.isEmpty {
                self = .done
            } else {
                throw .malformedMessage("an (ok ...) reply xm does not understand")
            }
        case let head:
            throw .malformedMessage("unknown reply '\(head ?? "?")'")
        }
    }

    static func encode(_ domain: DomainSummary) -> DomainSXP {
        var items: [DomainSXP] = [
            .atom("domain"), sxpField("name", domain.name), sxpField("domid", Int(domain.domid)),
            sxpField("memory", domain.memoryMiB), sxpField("vcpus", domain.vcpus),
            sxpField("state", domain.state.description),
            // As text: an Int holds 2^63 ns (292 years) but stays exact.
            sxpField("cpu-time", String(domain.cpuTime)),
        ]
        if let spec = domain.spec { items.append(SpecCodec.encode(spec)) }
        return .list(items)
    }

    static func encode(_ outcome: GuestStopOutcome) -> DomainSXP {
        var items: [DomainSXP] = [
            .atom("guest"), sxpField("name", outcome.name), sxpField("domid", Int(outcome.domid)),
            sxpField("reboot", outcome.reboot ? 1 : 0),
        ]
        switch outcome.result {
        case .stopped(let seconds):
            // Milliseconds: the wire carries integers.
            items += [
                sxpField("result", "stopped"), sxpField("ms", Int((seconds * 1000).rounded())),
            ]
        case .wasStopped:
            items.append(sxpField("result", "was-stopped"))
        case .destroyed(let deadline):
            items += [sxpField("result", "destroyed"), sxpField("deadline", deadline)]
        case .failed(let reason):
            items += [sxpField("result", "failed"), sxpField("reason", reason)]
        }
        return .list(items)
    }

    static func decodeOutcome(_ sxp: DomainSXP) throws(ToolstackError) -> GuestStopOutcome {
        guard let name = sxp.field("name")?.stringValue,
            let domid = sxp.field("domid")?.intValue, domid >= 0, domid <= Int(UInt32.max),
            let kind = sxp.field("result")?.stringValue
        else { throw .malformedMessage("a (guest ...) outcome lacks its name, domid or result") }
        let result: GuestStopOutcome.Result
        switch kind {
        case "stopped":
            guard let ms = sxp.field("ms")?.intValue, ms >= 0 else {
                throw .malformedMessage("a stopped guest's outcome has no (ms N)")
            }
            result = .stopped(seconds: Double(ms) / 1000)
        case "was-stopped":
            result = .wasStopped
        case "destroyed":
            guard let deadline = sxp.field("deadline")?.intValue, deadline >= 0 else {
                throw .malformedMessage("a destroyed guest's outcome has no (deadline N)")
            }
            result = .destroyed(deadline: deadline)
        case "failed":
            result = .failed(sxp.field("reason")?.stringValue ?? "unknown")
        default:
            throw .malformedMessage("unknown guest outcome '\(kind)'")
        }
        return GuestStopOutcome(
            name: name, domid: UInt32(domid), reboot: sxp.field("reboot")?.intValue == 1,
            result: result)
    }

    static func decodeDomain(_ sxp: DomainSXP) throws(ToolstackError) -> DomainSummary {
        guard let name = sxp.field("name")?.stringValue,
            let domid = sxp.field("domid")?.intValue, domid >= 0, domid <= Int(UInt32.max),
            let memory = sxp.field("memory")?.intValue, let vcpus = sxp.field("vcpus")?.intValue,
            let stateText = sxp.field("state")?.stringValue,
            let state = DomainStateFlags(parsing: stateText),
            let cpuText = sxp.field("cpu-time")?.stringValue, let cpuTime = UInt64(cpuText)
        else { throw .malformedMessage("a (domain ...) entry lacks a field or has a bad one") }
        var spec: DomainSpec?
        if let vm = sxp.children("vm").first { spec = try SpecCodec.decode(vm) }
        return DomainSummary(
            name: name, domid: UInt32(domid), memoryMiB: memory, vcpus: vcpus, state: state,
            cpuTime: cpuTime, spec: spec)
    }
}

/// Encoding requests and responses into frames and back.
public enum XendWire {
    public static func frame(_ sxp: DomainSXP) throws(ToolstackError) -> [UInt8] {
        try Framing.encode(Array(XendWire.render(sxp).utf8))
    }
}
