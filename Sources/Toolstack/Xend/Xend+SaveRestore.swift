import DomainConfig
import LinuxSystem
import Synchronization
import SystemPackage
import XenStore

#if canImport(Glibc)
    import Glibc
#endif

extension Xend {
    /// `xm save`: suspends the guest, writes the header and libxenguest's
    /// stream to `path`, then destroys the domain. On failure the file is
    /// removed and the guest runs on.
    func save(_ name: String, to path: String) async throws {
        let (domid, found) = try await resolve(name)
        try refuseDom0(domid, name, "cannot be saved")
        guard let managed = found else {
            throw ToolstackError.notAllowed(
                domain: name, reason: "xend did not create it, so it has no config to save")
        }
        guard managed.phase == .running else {
            throw ToolstackError.notAllowed(domain: name, reason: "it is \(managed.phase)")
        }
        if let info = try hypervisor.domain(domid), info.isShutdown {
            throw ToolstackError.notAllowed(domain: name, reason: "it has shut down")
        }
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(
                FilePath(path), .writeOnly, options: [.create, .truncate, .closeOnExec],
                permissions: [.ownerReadWrite])
        } catch {
            throw ToolstackError.system(
                operation: "creating the save file \(path)", error as? Errno ?? .ioError)
        }
        domains[domid]?.phase = .saving
        log.info("\(managed.spec.name) (\(domid)): saving to \(path)")
        let outcome = SuspendOutcome()
        do {
            let header = try SaveFile.header(for: managed.spec)
            do {
                _ = try fd.writeAll(header)
            } catch {
                throw ToolstackError.system(
                    operation: "writing \(path)", error as? Errno ?? .ioError)
            }
            let suspend = suspender(domid, outcome: outcome)
            let hypervisor = self.hypervisor
            try await offload { () throws(ToolstackError) in
                try hypervisor.save(domid, to: fd, suspend: suspend)
            }
            do {
                try fd.close()
            } catch {
                throw ToolstackError.system(
                    operation: "closing \(path)", error as? Errno ?? .ioError)
            }
        } catch {
            try? fd.close()
            _ = unlink(path)
            await cancelSuspend(domid)
            domains[domid]?.phase = .running
            if let timeout = outcome.failure { throw timeout }
            throw error
        }
        domains[domid]?.phase = .running
        try await destroy(domid, reason: "saved to \(path)")
    }

    /// The suspend callback for `xc_domain_save`: asks the guest through
    /// `control/shutdown` and waits until Xen reports it suspended. Runs on
    /// the save thread, never on the cooperative pool.
    nonisolated func suspender(_ domid: UInt32, outcome: SuspendOutcome) -> @Sendable () -> Bool {
        let store = self.store
        let hypervisor = self.hypervisor
        let timeout = settings.suspendTimeoutSeconds
        let path = "\(StorePaths.domain(domid))/control/shutdown"
        return {
            do {
                try runBlocking { try await store.write(path, "suspend") }
            } catch {
                outcome.fail(.xenstore("asking domain \(domid) to suspend: \(error)"))
                return false
            }
            let deadline = monotonicSeconds() + Double(timeout)
            while monotonicSeconds() < deadline {
                if let info = try? hypervisor.domain(domid), info.isShutdown {
                    if info.shutdownReason == .suspend { return true }
                    outcome.fail(
                        .guestFault(
                            domid: domid,
                            "it shut down (\(info.shutdownReason?.description ?? "unknown")) "
                                + "instead of suspending"))
                    return false
                }
                usleep(20_000)
            }
            outcome.fail(.guestTimeout(domid: domid, what: "suspend", seconds: timeout))
            return false
        }
    }

    /// After a failed save: a guest that did suspend carries on.
    func cancelSuspend(_ domid: UInt32) async {
        guard let info = try? hypervisor.domain(domid), info.isShutdown,
            info.shutdownReason == .suspend
        else {
            // Not suspended (yet): withdraw the request so it does not
            // suspend later with nobody saving it.
            try? await store.write("\(StorePaths.domain(domid))/control/shutdown", "")
            return
        }
        do {
            try hypervisor.resume(domid)
            try await store.resumeDomain(domid)
            log.info("domain \(domid): save failed, guest resumed")
        } catch {
            log.error("domain \(domid): save failed and resuming it failed too: \(error)")
        }
    }

    /// `xm restore`: a new domain from a save file, with new rings,
    /// introduced to xenstored, its devices written again.
    func restore(from path: String, paused: Bool) async throws -> (UInt32, String) {
        try ensureXenstoreIntact()
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
        } catch {
            throw ToolstackError.unreadableFile(
                role: "save file", path: path, reason: "\(error as? Errno ?? .ioError)")
        }
        defer { try? fd.close() }
        let spec = try SaveFile.readHeader(from: fd, path: path)
        guard let uuidText = spec.uuid, let uuid = DomainUUID(parsing: uuidText) else {
            throw ToolstackError.badSaveFile(path: path, reason: "its config has no valid uuid")
        }
        try await ensureNameFree(spec.name)
        if let other = domains.values.first(where: { $0.uuid == uuid }) {
            throw ToolstackError.notAllowed(
                domain: spec.name, reason: "uuid \(uuid) is already used by '\(other.spec.name)'")
        }
        pendingNames.insert(spec.name)
        defer { pendingNames.remove(spec.name) }
        let types = try await servedDeviceTypes(for: spec, skipMissing: false)
        let created = try hypervisor.createDomain(
            DomainCreation(
                handle: uuid.bytes, vcpus: spec.vcpus, cpus: spec.cpus?.sorted,
                maxMemoryKiB: UInt64(spec.maxmem) * 1024, restoring: true))
        let domid = created.domid
        log.info("\(spec.name): restoring from \(path) into domain \(domid)")
        let hypervisor = self.hypervisor
        _ = try await populate(
            created, spec: spec, uuid: uuid, deviceTypes: types, paused: paused,
            failure: "restoring into \(domid) failed"
        ) { () throws(ToolstackError) in
            try hypervisor.restore(created, from: fd)
        }
        log.info("\(spec.name): restored as domain \(domid)")
        return (domid, spec.name)
    }
}

/// Why the suspend callback gave up, for a better error than libxenguest's.
final class SuspendOutcome: Sendable {
    private let state = Mutex<ToolstackError?>(nil)

    func fail(_ error: ToolstackError) {
        state.withLock { $0 = error }
    }

    var failure: ToolstackError? { state.withLock { $0 } }
}
