import DomainConfig

/// One line of `xm list`: what xend knows of a domain, hypervisor state
/// included.
public struct DomainSummary: Sendable, Equatable {
    public var name: String
    public var domid: UInt32
    public var memoryMiB: Int
    public var vcpus: Int
    public var state: DomainStateFlags
    /// CPU time in nanoseconds.
    public var cpuTime: UInt64
    /// The config, for domains xend created (nil for dom0 and strangers).
    public var spec: DomainSpec?

    public init(
        name: String, domid: UInt32, memoryMiB: Int, vcpus: Int, state: DomainStateFlags,
        cpuTime: UInt64, spec: DomainSpec? = nil
    ) {
        self.name = name
        self.domid = domid
        self.memoryMiB = memoryMiB
        self.vcpus = vcpus
        self.state = state
        self.cpuTime = cpuTime
        self.spec = spec
    }

    /// CPU time in seconds with one decimal, rounded (`123.4`).
    public var cpuSeconds: String {
        let tenths = (cpuTime + 50_000_000) / 100_000_000
        return "\(tenths / 10).\(tenths % 10)"
    }
}

/// The `xm list` table, as xm 3.x printed it:
///
///     Name                                        ID   Mem VCPUs      State   Time(s)
///     Domain-0                                     0  1024     2     r-----     123.4
public enum XmListTable {
    public static let header = row("Name", "ID", "Mem", "VCPUs", "State", "Time(s)")

    /// The header and one line per domain, each ending in a newline.
    public static func render(_ domains: [DomainSummary]) -> String {
        var out = header + "\n"
        for domain in domains {
            out +=
                row(
                    domain.name, String(domain.domid), String(domain.memoryMiB),
                    String(domain.vcpus), domain.state.description, domain.cpuSeconds) + "\n"
        }
        return out
    }

    /// xm's `%-40s %5s %5s %5s %10s %9s`.
    static func row(
        _ name: String, _ id: String, _ memory: String, _ vcpus: String, _ state: String,
        _ time: String
    ) -> String {
        [
            pad(name, 40, left: true), pad(id, 5), pad(memory, 5), pad(vcpus, 5),
            pad(state, 10), pad(time, 9),
        ].joined(separator: " ")
    }

    static func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return left ? text + fill : fill + text
    }

    /// `xm list -l`: one `(domain ...)` expression per domain.
    public static func renderLong(_ domains: [DomainSummary]) -> String {
        var out = ""
        for domain in domains {
            var items: [DomainSXP] = [
                .atom("domain"), sxpField("domid", Int(domain.domid)),
                sxpField("name", domain.name), sxpField("memory", domain.memoryMiB),
                sxpField("vcpus", domain.vcpus), sxpField("state", domain.state.description),
                sxpField("cpu_time", domain.cpuSeconds),
            ]
            if let spec = domain.spec {
                items.append(
                    contentsOf: SpecCodec.encode(spec).tail.filter {
                        !["name", "memory", "vcpus"].contains($0.head ?? "")
                    })
            }
            out += DomainSXP.list(items).prettyPrinted()
        }
        return out
    }
}
