import DomainConfig
import XenStore

extension Xend {
    /// Watches `@releaseDomain` (fired when a domain shuts down or dies)
    /// and applies on_poweroff/on_reboot/on_crash. Returns when the watch
    /// ends: the xenstore connection broke, and the caller exits so the
    /// supervisor restarts xend, which then recovers its view.
    public func monitor() async throws {
        let watch = try await store.watch("@releaseDomain")
        for try await _ in watch {
            await reconcile()
        }
    }

    /// Compares xend's domains with the hypervisor's and acts on every
    /// domain that stopped or vanished. Concurrent calls coalesce.
    public func reconcile() async {
        if reconciling {
            reconcileAgain = true
            return
        }
        reconciling = true
        defer { reconciling = false }
        repeat {
            reconcileAgain = false
            await reconcileOnce()
        } while reconcileAgain
    }

    private func reconcileOnce() async {
        let infos: [DomainInfo]
        do {
            infos = try hypervisor.listDomains()
        } catch {
            log.error("cannot list domains: \(error)")
            return
        }
        let byId = Dictionary(infos.map { ($0.domid, $0) }, uniquingKeysWith: { first, _ in first })
        for domid in domains.keys.sorted() {
            // Re-read: an earlier iteration may have awaited and changed it.
            guard let record = domains[domid],
                record.phase != .saving && record.phase != .destroying
            else { continue }
            guard let info = byId[domid] else {
                log.warning("\(record.spec.name) (\(domid)) vanished; removing its nodes")
                await removeNodes(domid: domid, uuid: record.uuid)
                domains[domid] = nil
                continue
            }
            guard record.phase == .running, info.isShutdown else { continue }
            let uptime = Int(monotonicSeconds() - record.createdAt)
            // Going down with the host: a guest that stopped stays stopped.
            let decision =
                hostShuttingDown
                ? .destroy
                : LifecyclePolicy.decide(
                    reason: info.shutdownReason, spec: record.spec, uptimeSeconds: uptime,
                    saving: false, minimumRestartSeconds: settings.minimumRestartSeconds)
            let reason = info.shutdownReason?.description ?? "an unknown reason"
            await apply(decision, to: record, reason: reason)
        }
    }

    private func apply(_ decision: LifecycleDecision, to record: ManagedDomain, reason: String)
        async
    {
        let name = record.spec.name
        let domid = record.domid
        switch decision {
        case .ignore:
            return
        case .destroy:
            await destroyQuietly(domid, reason: "stopped (\(reason)); destroyed")
        case .preserve:
            domains[domid]?.phase = .preserved
            log.info("\(name) (\(domid)) stopped (\(reason)); preserved until xm destroy")
        case .refuseRestart(let uptime):
            log.error(
                "\(name) (\(domid)) stopped (\(reason)) \(uptime) s after starting; refusing to restart it to avoid a loop"
            )
            await destroyQuietly(domid, reason: "destroyed instead of restarted")
        case .restart:
            await destroyQuietly(domid, reason: "stopped (\(reason)); restarting it")
            await restart(record)
        case .renameRestart:
            await renameForRestart(record, reason: reason)
            await restart(record)
        }
    }

    private func destroyQuietly(_ domid: UInt32, reason: String) async {
        do {
            try await destroy(domid, reason: reason)
        } catch {
            log.error("domain \(domid): \(error)")
        }
    }

    /// Starts a stopped domain's config again (same name and UUID).
    private func restart(_ record: ManagedDomain) async {
        let name = record.spec.name
        do {
            try ensureXenstoreIntact()
            try await ensureNameFree(name)
            let types = try await servedDeviceTypes(for: record.spec, skipMissing: false)
            let domid = try await start(
                record.spec, uuid: record.uuid, deviceTypes: types, paused: false)
            log.info("\(name) restarted as domain \(domid)")
        } catch {
            log.error("\(name): restart failed: \(error)")
        }
    }

    /// rename-restart: the stopped domain stays, as xend did it, under
    /// `Domain-<new uuid>` with that new UUID, so its old name and UUID are
    /// free for the fresh one.
    private func renameForRestart(_ record: ManagedDomain, reason: String) async {
        let domid = record.domid
        let uuid = DomainUUID.random()
        var renamed = record
        renamed.spec.name = "Domain-\(uuid)"
        renamed.spec.uuid = uuid.description
        renamed.uuid = uuid
        renamed.phase = .preserved
        domains[domid] = renamed
        let home = StorePaths.domain(domid)
        let vm = StorePaths.vm(uuid)
        let xend = StorePaths.xend(domid)
        do {
            try await writeNodes(
                [
                    StoreNode("\(home)/name", renamed.spec.name),
                    StoreNode("\(home)/vm", vm),
                    StoreNode(vm, permissions: StorePlan.readOnly(for: domid)),
                    StoreNode("\(vm)/uuid", uuid.description),
                    StoreNode("\(vm)/name", renamed.spec.name),
                    StoreNode("\(xend)/config", XendWire.render(SpecCodec.encode(renamed.spec))),
                ], replacing: [StorePaths.vm(record.uuid)])
        } catch {
            log.error("renaming domain \(domid) failed: \(error)")
        }
        log.info(
            "\(record.spec.name) (\(domid)) stopped (\(reason)); kept as \(renamed.spec.name)")
    }

    /// After xend's own restart: adopts every domain whose record is in
    /// xenstore and still exists, removes the nodes of those that are gone,
    /// then applies pending lifecycle actions. Running guests are untouched.
    public func recover() async {
        let infos: [DomainInfo]
        do {
            infos = try hypervisor.listDomains()
        } catch {
            log.error("recovery: cannot list domains: \(error)")
            return
        }
        let alive = Set(infos.map(\.domid))
        let entries = (try? await store.directory(StorePaths.xendRoot)) ?? []
        for entry in entries {
            guard let domid = UInt32(entry) else {
                log.warning("recovery: ignoring \(StorePaths.xendRoot)/\(entry)")
                continue
            }
            let path = StorePaths.xend(domid)
            let spec: DomainSpec?
            do {
                let text = try await store.read("\(path)/config")
                spec = try SpecCodec.decode(try XendWire.parse(text))
            } catch {
                log.error("recovery: \(path)/config is unusable (\(error)); leaving domain alone")
                spec = nil
            }
            guard alive.contains(domid) else {
                let uuid = spec?.uuid.flatMap(DomainUUID.init(parsing:))
                log.info("recovery: domain \(domid) is gone; removing its nodes")
                await removeNodes(domid: domid, uuid: uuid)
                continue
            }
            guard let spec, let uuidText = spec.uuid, let uuid = DomainUUID(parsing: uuidText)
            else { continue }
            let created = (try? await store.readIfPresent("\(path)/created")).flatMap {
                $0.flatMap(Double.init)
            }
            var types: Set<String> = []
            for type in StorePaths.deviceTypes {
                let devices = try? await store.directory(StorePaths.backends(type, domid: domid))
                if let devices, !devices.isEmpty { types.insert(type) }
            }
            domains[domid] = ManagedDomain(
                domid: domid, spec: spec, uuid: uuid,
                createdAt: created ?? monotonicSeconds(), phase: .running, deviceTypes: types)
            log.info("recovery: adopted \(spec.name) (\(domid))")
        }
        if let path = settings.xenstoreLossMarker, let note = lossNote(path) {
            // The guests xenstored's death orphaned: Xen runs them, but
            // their xenstore entries (and so xend's records) are gone.
            for info in infos where info.domid != 0 && domains[info.domid] == nil {
                log.error(
                    "recovery: domain \(info.domid) runs on but lost its xenstore state when xenstored died \(note); it is not managed until the appliance reboots"
                )
            }
        }
        await reconcile()
    }
}
