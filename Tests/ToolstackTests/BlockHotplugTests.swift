import DomainConfig
import Foundation
import InMemoryXenStore
import Testing
import XenStore

@testable import Toolstack

/// `xm block-attach`, `block-detach` and `block-list` against xend with a
/// fake hypervisor and an in-memory xenstored; the backend and the guest
/// are played by tasks that answer the way blkback and blkfront do.
@Suite struct BlockHotplugTests {
    func createDemo(_ harness: Harness) async throws -> UInt32 {
        let response = await harness.response(
            .create(try Harness.demoSpec(), skipDevices: false, paused: false))
        guard case .created(let domid, _) = response else {
            throw ToolstackError.remote("not created: \(response)")
        }
        return domid
    }

    /// Plays blkback and blkfront for unplugs: a backend asked to close
    /// (state 5) ends Closed (6).
    func closeOnRequest(_ store: InMemoryXenStore) -> Task<Void, Never> {
        Task.detached {
            while !Task.isCancelled {
                let base = "/local/domain/0/backend/vbd"
                for domid in store.children(of: base) ?? [] {
                    for device in store.children(of: "\(base)/\(domid)") ?? [] {
                        let state = "\(base)/\(domid)/\(device)/state"
                        if store.value(at: state) == "5" { try? store.write(state, "6") }
                    }
                }
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    @Test func attachListDetach() async throws {
        let harness = try Harness()
        let backends = try harness.runBackends()
        defer { backends.cancel() }
        let domid = try await createDemo(harness)
        let disk = try DiskSpec(attaching: "file:/srv/data.img", as: "xvdb", mode: "w")
        #expect(await harness.response(.blockAttach(domain: "demo", disk: disk)) == .done)
        let back = "/local/domain/0/backend/vbd/\(domid)/51728"
        let front = "/local/domain/\(domid)/device/vbd/51728"
        #expect(harness.store.value(at: "\(back)/params") == "/srv/data.img")
        #expect(harness.store.value(at: "\(back)/mode") == "w")
        #expect(harness.store.value(at: "\(back)/state") == "2", "the backend offered InitWait")
        #expect(harness.store.value(at: "\(front)/virtual-device") == "51728")
        // xend's record has the disk (it survives xend's restart and save).
        let config = try #require(harness.store.value(at: "/proxenos/xend/domain/\(domid)/config"))
        let recorded = try SpecCodec.decode(try XendWire.parse(config))
        #expect(recorded.disks == [disk])

        // The same device again is refused; so is a second disk at that number.
        let again = await harness.response(.blockAttach(domain: "demo", disk: disk))
        guard case .failure(let kind, _) = again else {
            Issue.record("a second attach of xvdb gave \(again)")
            return
        }
        #expect(kind == ToolstackError.notAllowed(domain: "", reason: "").kind)

        // The guest connects: block-list shows its ring and channel.
        try harness.store.write("\(front)/event-channel", "9")
        try harness.store.write("\(front)/ring-ref", "812")
        try harness.store.write("\(front)/state", "4")
        let listed = await harness.response(.blockList(domain: "demo"))
        #expect(
            listed
                == .text(
                    "Vdev  BE handle state evt-ch ring-ref BE-path\n"
                        + "51728    0  0     4      9      812   \(back)"
                        + String(repeating: " ", count: max(0, 30 - back.count)) + "  \n"))

        let closer = closeOnRequest(harness.store)
        defer { closer.cancel() }
        #expect(
            await harness.response(.blockDetach(domain: "demo", device: "xvdb", force: false))
                == .done)
        #expect(harness.store.value(at: back) == nil)
        #expect(harness.store.value(at: front) == nil)
        #expect(await harness.response(.blockList(domain: "demo")) == .text(""))
        let after = try #require(harness.store.value(at: "/proxenos/xend/domain/\(domid)/config"))
        #expect(try SpecCodec.decode(try XendWire.parse(after)).disks.isEmpty)
    }

    @Test func aGuestThatHoldsOnKeepsItsDiskUnlessForced() async throws {
        let harness = try Harness(settings: Harness.settings(backendTimeout: 1))
        let backends = try harness.runBackends()
        defer { backends.cancel() }
        let domid = try await createDemo(harness)
        let disk = try DiskSpec(attaching: "phy:loop0", as: "xvdc", mode: "r")
        #expect(await harness.response(.blockAttach(domain: "demo", disk: disk)) == .done)
        let back = "/local/domain/0/backend/vbd/\(domid)/51744"
        let held = await harness.response(
            .blockDetach(domain: "demo", device: "51744", force: false))
        guard case .failure(_, let message) = held else {
            Issue.record("detach of a held disk gave \(held)")
            return
        }
        #expect(message.contains("--force"))
        #expect(harness.store.value(at: "\(back)/online") == "0")
        #expect(harness.store.value(at: "\(back)/params") == "loop0", "kept")
        #expect(
            await harness.response(.blockDetach(domain: "demo", device: "51744", force: true))
                == .done)
        #expect(harness.store.value(at: back) == nil)
    }

    @Test func refusals() async throws {
        let harness = try Harness()
        let backends = try harness.runBackends()
        let domid = try await createDemo(harness)
        backends.cancel()
        try harness.store.remove(StorePaths.backendMarker("vbd"))
        let disk = try DiskSpec(attaching: "file:/srv/data.img", as: "xvdb", mode: "w")
        let missing = await harness.response(.blockAttach(domain: "demo", disk: disk))
        guard case .failure(let kind, _) = missing else {
            Issue.record("attach without blkback gave \(missing)")
            return
        }
        #expect(kind == "backend-missing")
        #expect(harness.store.value(at: "/local/domain/0/backend/vbd/\(domid)/51728") == nil)
        for (request, what) in [
            (XendRequest.blockDetach(domain: "demo", device: "xvdq", force: false), "no such disk"),
            (.blockDetach(domain: "demo", device: "floppy", force: false), "not a device name"),
            (.blockAttach(domain: "Domain-0", disk: disk), "dom0"),
            (.blockList(domain: "nosuch"), "no such domain"),
        ] {
            let response = await harness.response(request)
            guard case .failure = response else {
                Issue.record("\(what): \(response)")
                continue
            }
        }
        #expect(throws: DomainConfigError.self) {
            try DiskSpec(attaching: "file:/a.img", as: "xvdb", mode: "rw")
        }
    }

    @Test func wireRoundTrip() throws {
        let disk = try DiskSpec(attaching: "tap:aio:/srv/c.img", as: "hdb:cdrom", mode: "r")
        for request in [
            XendRequest.blockAttach(domain: "demo", disk: disk),
            .blockDetach(domain: "demo", device: "xvdb", force: true),
            .blockList(domain: "7"),
        ] {
            let text = XendWire.render(request.sxp)
            #expect(try XendRequest(try XendWire.parse(text)) == request, "\(text)")
        }
    }
}
