import CLinux
import Foundation
import InMemoryXenStore
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Whether host integration tests can run: they create network namespaces.
let runningAsRoot = getuid() == 0

/// The result of a command.
struct CommandResult {
    var status: Int32
    var output: String
    var errors: String
    var succeeded: Bool { status == 0 }
}

enum LabError: Error, CustomStringConvertible {
    case command([String], CommandResult)
    case setup(String)

    var description: String {
        switch self {
        case .command(let arguments, let result):
            return "\(arguments.joined(separator: " ")) exited \(result.status): \(result.errors)"
        case .setup(let message):
            return message
        }
    }
}

/// Runs a program and collects its output.
@discardableResult
func run(_ arguments: [String]) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read before waiting: a full pipe would otherwise block the child.
    let outData = output.fileHandleForReading.readDataToEndOfFile()
    let errData = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CommandResult(
        status: process.terminationStatus, output: String(decoding: outData, as: UTF8.self),
        errors: String(decoding: errData, as: UTF8.self))
}

/// Runs a program that must succeed; returns its standard output.
@discardableResult
func must(_ arguments: [String]) throws -> String {
    let result = try run(arguments)
    guard result.succeeded else { throw LabError.command(arguments, result) }
    return result.output
}

/// Two TAP devices whose frames a thread copies to each other: the test's
/// stand-in for netback and a guest. One end is the vif in dom0's
/// namespace, the other the guest's eth0 in its own namespace, so the guest
/// is a real kernel stack that answers pings.
final class TapRelay: Sendable {
    let first: Int32
    let second: Int32
    private let stopping = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)

    init(first: Int32, second: Int32) {
        self.first = first
        self.second = second
        let thread = Thread { [self] in self.loop() }
        thread.start()
    }

    private func loop() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var fds = [
            pollfd(fd: first, events: Int16(POLLIN), revents: 0),
            pollfd(fd: second, events: Int16(POLLIN), revents: 0),
        ]
        while !stopping.load(ordering: .acquiring) {
            guard poll(&fds, 2, 100) > 0 else { continue }
            for (index, entry) in fds.enumerated() where entry.revents & Int16(POLLIN) != 0 {
                let count = buffer.withUnsafeMutableBytes {
                    Glibc.read(entry.fd, $0.baseAddress, $0.count)
                }
                guard count > 0 else { continue }
                let target = index == 0 ? second : first
                // A TAP that is down refuses frames (EIO); a real link would drop them too.
                _ = buffer.withUnsafeBytes { Glibc.write(target, $0.baseAddress, count) }
            }
        }
        finished.store(true, ordering: .releasing)
    }

    /// Stops the thread and closes both TAPs (their interfaces disappear
    /// unless their namespace took them already).
    func close() {
        stopping.store(true, ordering: .releasing)
        for _ in 0..<50 where !finished.load(ordering: .acquiring) { usleep(20_000) }
        _ = Glibc.close(first)
        _ = Glibc.close(second)
    }

    /// Opens a new TAP device named `name` in the test's own namespace.
    static func openTap(_ name: String) throws -> Int32 {
        let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw LabError.setup("cannot open /dev/net/tun: errno \(errno)") }
        // struct ifreq: 16-byte name, then short flags: IFF_TAP | IFF_NO_PI.
        var request = [UInt8](repeating: 0, count: 40)
        for (index, byte) in name.utf8.prefix(15).enumerated() { request[index] = byte }
        let flags: UInt16 = 0x0002 | 0x1000
        request[16] = UInt8(flags & 0xff)
        request[17] = UInt8(flags >> 8)
        let status = request.withUnsafeMutableBytes {
            clinux_ioctl_ptr(fd, 0x4004_54ca, $0.baseAddress)  // TUNSETIFF
        }
        guard status == 0 else {
            _ = Glibc.close(fd)
            throw LabError.setup("TUNSETIFF \(name) failed: errno \(errno)")
        }
        return fd
    }
}

/// A comparable picture of a namespace's network, read through netlink
/// (`ip -j`), /proc/sys and nftables: links, addresses, routes of every
/// table, the forwarding and proxy ARP settings, and the rule set.
struct NetworkPicture: Equatable, CustomStringConvertible {
    var lines: [String]

    var description: String { lines.joined(separator: "\n") }

    func contains(_ fragment: String) -> Bool { lines.contains { $0.contains(fragment) } }
    func matching(_ fragment: String) -> [String] { lines.filter { $0.contains(fragment) } }
}

/// A set of network namespaces for one test: dom0 (the appliance), a peer
/// on dom0's eth0 link, and guests behind TAP relays. Names are unique per
/// test run; `destroy` removes everything, also after a failed test.
final class NamespaceLab {
    private static let counter = Atomic<Int>(0)

    let tag: String
    let dom0: String
    let peer: String
    private(set) var guests: [String] = []
    private var relays: [TapRelay] = []
    let stateDirectory: String
    let workDirectory: String
    let binary: String
    /// The lab's xenstored: xend's backend entries for `vif online`.
    let xenstore = InMemoryXenStore()

    init() throws {
        let number = Self.counter.wrappingAdd(1, ordering: .relaxed).newValue
        let pid = Int(getpid()) % 100_000
        tag = "\(pid)x\(number)"
        dom0 = "pxnc-\(tag)-dom0"
        peer = "pxnc-\(tag)-peer"
        workDirectory = NSTemporaryDirectory() + "pxnc-\(tag)"
        stateDirectory = workDirectory + "/state"
        binary = try Self.locateBinary()
        try FileManager.default.createDirectory(
            atPath: workDirectory, withIntermediateDirectories: true)
        try xenstore.serve(socketPath: xenstoreSocket)
        do {
            try must(["ip", "netns", "add", dom0])
            try must(["ip", "netns", "add", peer])
            // eth0 in dom0 and eth0 in the peer namespace are the two ends
            // of one veth pair: dom0's "physical" link.
            try must([
                "ip", "link", "add", "eth0", "netns", dom0, "type", "veth", "peer", "name", "eth0",
                "netns", peer,
            ])
            for namespace in [dom0, peer] {
                try ip(namespace, "link", "set", "lo", "up")
                try ip(namespace, "link", "set", "eth0", "up")
            }
        } catch {
            destroy()
            throw error
        }
    }

    /// The `proxenos` executable `swift test` built next to the test bundle.
    static func locateBinary() throws -> String {
        var candidates: [String] = []
        if let executable = try? FileManager.default.destinationOfSymbolicLink(
            atPath: "/proc/self/exe")
        {
            var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
            // Bundles nest the executable in .xctest/ on some layouts.
            for _ in 0..<4 {
                candidates.append(directory.appendingPathComponent("proxenos").path)
                directory.deleteLastPathComponent()
            }
        }
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(package.appendingPathComponent(".build/debug/proxenos").path)
        for path in candidates where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        throw LabError.setup(
            "the proxenos executable was not found (looked in \(candidates)); `swift test` builds it"
        )
    }

    @discardableResult
    func ip(_ namespace: String, _ arguments: String...) throws -> String {
        try must(["ip", "-n", namespace] + arguments)
    }

    /// Runs a program inside a namespace.
    @discardableResult
    func exec(_ namespace: String, _ arguments: [String]) throws -> CommandResult {
        try run(["ip", "netns", "exec", namespace] + arguments)
    }

    /// Runs `proxenos netconf ARGS` inside dom0 with this lab's state
    /// directory and this lab's xenstore.
    func netconf(_ arguments: [String], config: String) throws -> CommandResult {
        try exec(
            dom0,
            ["env", "XENSTORED_PATH=\(xenstoreSocket)", binary, "netconf"] + arguments + [
                "--config", config, "--state-dir", stateDirectory,
            ])
    }

    /// The lab's xenstored (where `vif online` reads a vif's backend
    /// entries), served on a socket in the work directory.
    var xenstoreSocket: String { workDirectory + "/xenstored.sock" }

    /// Writes a configuration file for this test.
    func config(_ name: String, _ text: String) throws -> String {
        let path = workDirectory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The project's shipped configuration of that name.
    static func shippedConfig(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("netconf/\(name)").path
    }

    /// Pings (three tries, bounded) and reports whether any reply came.
    func ping(from namespace: String, _ address: String, source: String? = nil) throws -> Bool {
        var arguments = ["ping", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "2"]
        if let source { arguments += ["-I", source] }
        return try exec(namespace, arguments + [address]).succeeded
    }

    /// A guest namespace whose eth0 is relayed to a TAP named `vif` in dom0
    /// (down, as netback leaves it), with the given addresses and default
    /// gateway.
    func addGuest(vif: String, addresses: [String], gateway: String? = nil) throws -> String {
        let guest = "pxnc-\(tag)-g\(guests.count)"
        try must(["ip", "netns", "add", guest])
        guests.append(guest)
        let names = ("pxt\(tag)a\(guests.count)", "pxt\(tag)b\(guests.count)")
        let first = try TapRelay.openTap(names.0)
        let second: Int32
        do {
            second = try TapRelay.openTap(names.1)
        } catch {
            _ = Glibc.close(first)
            throw error
        }
        relays.append(TapRelay(first: first, second: second))
        try must(["ip", "link", "set", names.0, "netns", dom0])
        try ip(dom0, "link", "set", names.0, "name", vif)
        try must(["ip", "link", "set", names.1, "netns", guest])
        try ip(guest, "link", "set", names.1, "name", "eth0")
        try ip(guest, "link", "set", "lo", "up")
        try ip(guest, "link", "set", "eth0", "up")
        for address in addresses { try ip(guest, "addr", "add", address, "dev", "eth0") }
        if let gateway { try ip(guest, "route", "add", "default", "via", gateway) }
        return guest
    }

    /// Reads a namespace's network state.
    func picture(_ namespace: String) throws -> NetworkPicture {
        var lines: [String] = []
        let links = try json(["ip", "-n", namespace, "-j", "-d", "link", "show"])
        var names: [Int: String] = [:]
        for link in links {
            guard let name = link["ifname"] as? String else { continue }
            names[link["ifindex"] as? Int ?? -1] = name
            let flags = (link["flags"] as? [String]) ?? []
            let info = link["linkinfo"] as? [String: Any]
            var line = "link \(name) \(flags.contains("UP") ? "up" : "down")"
            line += " mtu=\(link["mtu"] as? Int ?? 0) mac=\(link["address"] as? String ?? "-")"
            line += " master=\(link["master"] as? String ?? "-")"
            line += " kind=\(info?["info_kind"] as? String ?? "-")"
            if let data = info?["info_data"] as? [String: Any],
                info?["info_kind"] as? String == "bridge"
            {
                line +=
                    " stp=\(data["stp_state"] ?? "?") forward_delay=\(data["forward_delay"] ?? "?")"
            }
            lines.append(line)
            let proxy = try exec(namespace, ["cat", "/proc/sys/net/ipv4/conf/\(name)/proxy_arp"])
            if proxy.succeeded {
                lines.append(
                    "proxy_arp \(name) \(proxy.output.trimmingCharacters(in: .whitespacesAndNewlines))"
                )
            }
        }
        for entry in try json(["ip", "-n", namespace, "-j", "addr", "show"]) {
            let name = entry["ifname"] as? String ?? "?"
            for info in (entry["addr_info"] as? [[String: Any]]) ?? [] {
                var line =
                    "addr \(name) \(info["family"] ?? "?") \(info["local"] ?? "?")/\(info["prefixlen"] ?? "?")"
                line += " scope=\(info["scope"] ?? "?")"
                if let label = info["label"] { line += " label=\(label)" }
                if let broadcast = info["broadcast"] { line += " brd=\(broadcast)" }
                lines.append(line)
            }
        }
        for family in ["-4", "-6"] {
            for route in try json([
                "ip", "-n", namespace, "-j", family, "route", "show", "table", "all",
            ]) {
                var line =
                    "route \(family) table=\(route["table"] ?? "main") \(route["type"] ?? "unicast")"
                line += " \(route["dst"] ?? "?")"
                if let gateway = route["gateway"] { line += " via \(gateway)" }
                if let dev = route["dev"] { line += " dev \(dev)" }
                line += " proto=\(route["protocol"] ?? "boot") scope=\(route["scope"] ?? "global")"
                line += " metric=\(route["metric"] ?? 0)"
                if let source = route["prefsrc"] { line += " src \(source)" }
                lines.append(line)
            }
        }
        let forward = try exec(namespace, ["cat", "/proc/sys/net/ipv4/ip_forward"])
        lines.append("ip_forward \(forward.output.trimmingCharacters(in: .whitespacesAndNewlines))")
        let rules = try exec(namespace, ["nft", "list", "ruleset"])
        for rule in rules.output.split(separator: "\n") {
            lines.append("nft " + rule.trimmingCharacters(in: .whitespaces))
        }
        return NetworkPicture(lines: lines.sorted())
    }

    /// The picture once it stops changing (IPv6 link-local addresses and
    /// bridge port states settle asynchronously after a change).
    func settledPicture(_ namespace: String) throws -> NetworkPicture {
        // IPv6 addresses are tentative until duplicate address detection
        // ends (about a second) and their local routes appear only then;
        // a bridge's own link-local address comes with its carrier.
        var previous: NetworkPicture?
        for _ in 0..<40 {
            let tentative = try hasTentativeAddresses(namespace)
            let current = try picture(namespace)
            if !tentative, current == previous { return current }
            previous = current
            usleep(300_000)
        }
        return try picture(namespace)
    }

    private func hasTentativeAddresses(_ namespace: String) throws -> Bool {
        try json(["ip", "-n", namespace, "-j", "addr", "show"]).contains { entry in
            ((entry["addr_info"] as? [[String: Any]]) ?? []).contains {
                ($0["tentative"] as? Bool) == true
            }
        }
    }

    private func json(_ arguments: [String]) throws -> [[String: Any]] {
        let text = try must(arguments)
        guard !text.isEmpty else { return [] }
        guard
            let value = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]]
        else {
            throw LabError.setup("\(arguments.joined(separator: " ")) did not print a JSON list")
        }
        return value
    }

    /// Whether a state record exists.
    func hasRecord(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: stateDirectory + "/" + name + ".sxp")
    }

    /// Removes every namespace (with all links and rules in it), closes the
    /// TAPs and deletes the files. Safe to call twice.
    func destroy() {
        xenstore.stop()
        for relay in relays { relay.close() }
        relays = []
        for namespace in guests + [dom0, peer] {
            _ = try? run(["ip", "netns", "delete", namespace])
        }
        guests = []
        try? FileManager.default.removeItem(atPath: workDirectory)
    }

    /// What of this lab is still on the host (for the clean-up check).
    func leftovers() throws -> [String] {
        let namespaces = try must(["ip", "netns", "list"]).split(separator: "\n")
            .map { String($0.split(separator: " ").first ?? "") }
            .filter { $0.hasPrefix("pxnc-\(tag)-") }
        let links = try must(["ip", "-o", "link", "show"]).split(separator: "\n")
            .filter { $0.contains("pxt\(tag)") }.map(String.init)
        return namespaces + links
    }
}

/// Runs a test body in a fresh lab and always tears it down, then checks
/// that nothing of it is left.
func withLab(_ body: (NamespaceLab) throws -> Void) throws {
    let lab = try NamespaceLab()
    defer {
        lab.destroy()
        #expect((try? lab.leftovers()) == [], "namespaces or links left behind")
    }
    try body(lab)
}
