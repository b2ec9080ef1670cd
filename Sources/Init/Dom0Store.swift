import LinuxSystem
import XenStore

/// Dom0's own xenstore entries, as Xen's xen-init-dom0 writes them for xl:
/// the toolstack, `xm list` and the guests' backends look dom0 up there.
public enum Dom0Store {
    /// Dom0's UUID is all zeros by convention.
    public static let uuid = "00000000-0000-0000-0000-000000000000"

    /// What to write: path → value.
    public static func entries(memoryKiB: UInt64?, onlineCPUs: [Int]) -> [(String, String)] {
        var entries: [(String, String)] = [
            ("/local/domain/0/domid", "0"),
            ("/local/domain/0/name", "Domain-0"),
            ("/local/domain/0/vm", "/vm/\(uuid)"),
            ("/vm/\(uuid)/name", "Domain-0"),
            ("/vm/\(uuid)/uuid", uuid),
            // The default cpupool's name: libxl (xl, the bench reference)
            // refuses to create domains without it.
            ("/local/pool/0/name", "Pool-0"),
        ]
        if let memory = memoryKiB {
            entries.append(("/local/domain/0/memory/target", "\(memory)"))
            entries.append(("/local/domain/0/memory/static-max", "\(memory)"))
        }
        for cpu in onlineCPUs {
            entries.append(("/local/domain/0/cpu/\(cpu)/availability", "online"))
        }
        return entries
    }

    /// Writes the entries in one transaction; entries already present (PID 1
    /// restarted xenstored, or ran before) are rewritten to the same values.
    public static func write(
        to store: XenStoreClient, memoryKiB: UInt64?, onlineCPUs: [Int]
    ) async throws {
        let entries = entries(memoryKiB: memoryKiB, onlineCPUs: onlineCPUs)
        try await store.transaction { transaction in
            for (path, value) in entries { try await transaction.write(path, value) }
        }
    }

    /// Dom0's current memory from the balloon driver, in KiB.
    public static func currentMemoryKiB() -> UInt64? {
        Files.readIfPresent("/sys/devices/system/xen_memory/xen_memory0/target_kb")
            .flatMap { UInt64($0.trimmingSpaces()) }
    }

    /// The online CPUs from a list such as "0-1,3".
    public static func onlineCPUs(_ list: String) -> [Int] {
        var cpus: [Int] = []
        for part in list.trimmingSpaces().split(separator: ",") {
            let bounds = part.split(separator: "-").compactMap { Int($0) }
            if bounds.count == 1 {
                cpus.append(bounds[0])
            } else if bounds.count == 2, bounds[0] <= bounds[1], bounds[1] - bounds[0] < 4096 {
                cpus += Array(bounds[0]...bounds[1])
            }
        }
        return cpus
    }

    /// The boot step PID 1 runs once xenstored listens.
    public static let bootStep = InitProcess.BootStep(
        name: "dom0 xenstore entries", after: .ready("xenstored")
    ) {
        let cpus = onlineCPUs(Files.readIfPresent("/sys/devices/system/cpu/online") ?? "0")
        let memory = currentMemoryKiB()
        try runBlocking {
            let store = try XenStoreClient.connect(socketPath: ServiceTable.xenstoredSocket)
            defer { store.close() }
            try await write(to: store, memoryKiB: memory, onlineCPUs: cpus)
        }
    }
}
