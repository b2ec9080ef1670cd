import DomainConfig
import XenStore

/// Hot plug of disks (`xm block-attach`, `block-detach`, `block-list`).
extension Xend {
    /// The managed, running domain `name`; dom0 and domains xend does not
    /// manage have no device trees of xend's to change.
    func managedForDevices(_ name: String) async throws -> ManagedDomain {
        let (domid, managed) = try await resolve(name)
        try refuseDom0(domid, name, "has no virtual block devices of xend's")
        guard let managed, managed.phase == .running else {
            throw ToolstackError.notAllowed(
                domain: name, reason: "xend does not run it (only its own running domains)")
        }
        return managed
    }

    /// Writes the disk's device trees (state 1) while the guest runs, waits
    /// for the backend to offer InitWait (the guest's blkfront then finds
    /// the new device through its watch) and records the disk in the
    /// domain's config, so it survives xend's restart and `xm save`.
    func blockAttach(_ name: String, disk: DiskSpec) async throws {
        let managed = try await managedForDevices(name)
        let domid = managed.domid
        guard try await backendRuns("vbd") else {
            throw ToolstackError.backendMissing(deviceType: "vbd", count: 1)
        }
        let number = disk.deviceNumber
        let front = StorePaths.frontend("vbd", domid: domid, device: number)
        let back = StorePaths.backend("vbd", domid: domid, device: number)
        if managed.spec.disks.contains(where: { $0.deviceNumber == number }) {
            throw ToolstackError.notAllowed(
                domain: name, reason: "it already has a disk \(disk.virtualDevice) (\(number))")
        }
        // A stale backend tree of an earlier, failed attach goes; a live
        // frontend the guest still has means the number is taken.
        if try await store.readIfPresent("\(front)/state") != nil {
            throw ToolstackError.notAllowed(
                domain: name, reason: "device \(number) is still present in the guest")
        }
        try await writeNodes(StorePlan.vbdNodes(domid: domid, disk: disk), replacing: [back])
        do {
            try await waitForBackends(["\(back)/state"])
        } catch {
            try? await store.remove(front)
            try? await store.remove(back)
            throw error
        }
        var spec = managed.spec
        spec.disks.append(disk)
        try await record(domid, spec: spec)
        domains[domid]?.deviceTypes.insert("vbd")
        log.info("\(name): attached \(disk.uname) as \(disk.virtualDevice) (\(number))")
    }

    /// Unplugs a disk the way xl does: the backend is taken offline and
    /// asked to close (state 5); the guest's blkfront lets go, the backend
    /// closes (6), and both trees are removed. A guest that does not let go
    /// within the backend timeout keeps the disk unless `force`.
    func blockDetach(_ name: String, device: String, force: Bool) async throws {
        let managed = try await managedForDevices(name)
        let domid = managed.domid
        // A bare number is the device number block-list shows (51728);
        // anything else a name (xvdb, hda1, 0x3).
        guard let number = Int(device) ?? VirtualDevice.number(for: device), number >= 0 else {
            throw ToolstackError.invalidSpec("'\(device)' is not a virtual block device name")
        }
        let front = StorePaths.frontend("vbd", domid: domid, device: number)
        let back = StorePaths.backend("vbd", domid: domid, device: number)
        guard
            try await store.readIfPresent("\(back)/state") != nil
                || managed.spec.disks.contains(where: { $0.deviceNumber == number })
        else {
            throw ToolstackError.notAllowed(domain: name, reason: "it has no disk \(device)")
        }
        try await store.transaction { tx in
            try await tx.write("\(back)/online", "0")
            try await tx.write("\(back)/state", "5")
        }
        let deadline = monotonicSeconds() + Double(settings.backendTimeoutSeconds)
        while true {
            let state = try await store.readIfPresent("\(back)/state")
            if state == nil || state == "6" { break }
            if monotonicSeconds() > deadline {
                guard force else {
                    throw ToolstackError.guestTimeout(
                        domid: domid,
                        what: "release disk \(device) (xm block-detach --force "
                            + "removes it anyway)", seconds: settings.backendTimeoutSeconds)
                }
                log.warning("\(name): disk \(device) not released; removing it by force")
                break
            }
            try await Task.sleep(for: settings.pollInterval)
        }
        try await store.remove(back)
        try await store.remove(front)
        if let current = domains[domid] {
            var spec = current.spec
            spec.disks.removeAll { $0.deviceNumber == number }
            try await record(domid, spec: spec)
        }
        log.info("\(name): detached disk \(device) (\(number))")
    }

    /// The domain's disks from the guest's frontend directories.
    func blockList(_ name: String) async throws -> [BlockDeviceRow] {
        let (domid, _) = try await resolve(name)
        let base = "\(StorePaths.domain(domid))/device/vbd"
        let numbers = try await store.directory(base).compactMap { Int($0) }.sorted()
        var rows: [BlockDeviceRow] = []
        for number in numbers {
            let path = "\(base)/\(number)"
            func value(_ node: String) async throws -> String? {
                try await store.readIfPresent("\(path)/\(node)")?.trimmingSpaces()
            }
            func int(_ node: String, _ absent: Int) async throws -> Int {
                guard let text = try await value(node) else { return absent }
                return Int(text) ?? absent
            }
            var ring = try await int("ring-ref", -1)
            if ring == -1 { ring = try await int("ring-ref0", -1) }
            rows.append(
                BlockDeviceRow(
                    vdev: number, backendID: try await int("backend-id", -1),
                    handle: try await int("handle", 0), state: try await int("state", -1),
                    eventChannel: try await int("event-channel", -1), ringRef: ring,
                    backendPath: try await value("backend") ?? "??"))
        }
        return rows
    }

    /// A changed config in the registry and in xend's record.
    func record(_ domid: UInt32, spec: DomainSpec) async throws {
        domains[domid]?.spec = spec
        try await store.write(
            "\(StorePaths.xend(domid))/config", XendWire.render(SpecCodec.encode(spec)))
    }
}
