import DomainConfig
import InMemoryXenStore
import Testing
import XenStore

@testable import Toolstack

/// The seed's configs drive what xend would write for their devices.
@Suite struct StorePlanTests {
    func perms(_ text: String) throws -> [XenStorePermission] {
        try text.split(separator: " ").map { try XenStorePermission(parsing: $0) }
    }

    func node(_ nodes: [StoreNode], _ path: String) throws -> StoreNode {
        try #require(nodes.first { $0.path == path }, "\(path) is planned")
    }

    @Test func debian1HasThreeDisksAndOneVif() throws {
        let spec = try Seed.spec(Seed.debian1)
        let nodes = StorePlan.deviceNodes(domid: 5, spec: spec, types: ["vbd", "vif"])

        // hda1 = 3 << 8 | 1, hda2 = 3 << 8 | 2, hdb = 3 << 8 | 64.
        let disks: [(Int, String, String, String, String)] = [
            (769, "hda1", "/mnt/xensys2-root.img", "file", "w"),
            (770, "hda2", "/mnt/xensys2-swap.img", "file", "w"),
            (832, "hdb", "/dev/hdc", "phy", "r"),
        ]
        for (number, dev, params, type, mode) in disks {
            let front = "/local/domain/5/device/vbd/\(number)"
            let back = "/local/domain/0/backend/vbd/5/\(number)"
            #expect(try node(nodes, front).permissions == perms("n5 r0"))
            #expect(try node(nodes, back).permissions == perms("n0 r5"))
            let expected: [String: String] = [
                "\(front)/backend": back, "\(front)/backend-id": "0", "\(front)/state": "1",
                "\(front)/virtual-device": "\(number)", "\(front)/device-type": "disk",
                "\(back)/frontend": front, "\(back)/frontend-id": "5", "\(back)/params": params,
                "\(back)/type": type, "\(back)/mode": mode, "\(back)/dev": dev,
                "\(back)/state": "1", "\(back)/online": "1", "\(back)/removable": "0",
            ]
            for (path, value) in expected {
                let planned = try node(nodes, path)
                #expect(planned.value == value, "\(path)")
                #expect(planned.permissions == nil, "\(path) inherits its directory's permissions")
            }
        }

        let front = "/local/domain/5/device/vif/0"
        let back = "/local/domain/0/backend/vif/5/0"
        #expect(try node(nodes, front).permissions == perms("n5 r0"))
        #expect(try node(nodes, back).permissions == perms("n0 r5"))
        #expect(try node(nodes, "\(front)/mac").value == "00:16:3e:7f:ff:ff")
        #expect(try node(nodes, "\(front)/handle").value == "0")
        #expect(try node(nodes, "\(back)/mac").value == "00:16:3e:7f:ff:ff")
        #expect(try node(nodes, "\(back)/frontend-id").value == "5")
        #expect(try node(nodes, "\(back)/script").value == "vif-bridge")
        #expect(!nodes.contains { $0.path == "\(back)/bridge" })
        // xend-config.sxp's vif-script for a vif that names none.
        let routed = StorePlan.deviceNodes(
            domid: 5, spec: spec, types: ["vif"], vifScript: "vif-route")
        #expect(try node(routed, "\(back)/script").value == "vif-route")

        // Parents precede children, so writing in order never creates a
        // directory with the wrong owner.
        for (index, planned) in nodes.enumerated() {
            let parent = String(planned.path[..<planned.path.lastIndex(of: "/")!])
            if let parentIndex = nodes.firstIndex(where: { $0.path == parent }) {
                #expect(parentIndex < index, "\(parent) before \(planned.path)")
            }
        }
        #expect(
            StorePlan.backendStatePaths(domid: 5, spec: spec, types: ["vbd", "vif"]) == [
                "/local/domain/0/backend/vbd/5/769/state",
                "/local/domain/0/backend/vbd/5/770/state",
                "/local/domain/0/backend/vbd/5/832/state", "/local/domain/0/backend/vif/5/0/state",
            ])
    }

    @Test func netbsdVifAndDisks() throws {
        let spec = try Seed.spec(Seed.netbsd)
        let nodes = StorePlan.deviceNodes(domid: 9, spec: spec, types: ["vbd", "vif"])
        #expect(try node(nodes, "/local/domain/0/backend/vif/9/0/mac").value == "00:11:85:13:37:dd")
        #expect(try node(nodes, "/local/domain/0/backend/vif/9/0/bridge").value == "xenbr0")
        // 0x3 is a raw device number; cd0a is NetBSD's name for a CD drive.
        let vbds = Set(
            nodes.filter { $0.path.hasPrefix("/local/domain/9/device/vbd/") }
                .map { $0.path.split(separator: "/")[5] })
        #expect(vbds.contains("3"))
        #expect(vbds.count == 2)
    }

    @Test func onlyServedTypesArePlanned() throws {
        let spec = try Seed.spec(Seed.freebsd)
        #expect(StorePlan.deviceNodes(domid: 2, spec: spec, types: []).isEmpty)
        let disksOnly = StorePlan.deviceNodes(domid: 2, spec: spec, types: ["vbd"])
        #expect(disksOnly.allSatisfy { !$0.path.contains("/vif") })
        #expect(disksOnly.contains { $0.path == "/local/domain/0/backend/vbd/2/769/params" })
    }

    @Test func domainTreeLayoutAndPermissions() throws {
        var spec = try Seed.spec(Seed.debian1)
        spec.vcpus = 2
        let uuid = try #require(DomainUUID(parsing: "12345678-9abc-def0-1234-56789abcdef0"))
        let nodes = StorePlan.domainNodes(
            domid: 7, spec: spec, uuid: uuid,
            rings: .init(storeMFN: 0x1234, storePort: 3, consoleMFN: 0x5678, consolePort: 4),
            startTime: 1_700_000_000.5, createdAt: 42.25)
        let home = "/local/domain/7"
        let vm = "/vm/12345678-9abc-def0-1234-56789abcdef0"
        let values: [String: String] = [
            "\(home)/name": "debian1", "\(home)/domid": "7", "\(home)/vm": vm,
            "\(home)/memory/target": "262144", "\(home)/memory/static-max": "262144",
            "\(home)/cpu/0/availability": "online", "\(home)/cpu/1/availability": "online",
            "\(home)/store/ring-ref": "\(0x1234)", "\(home)/store/port": "3",
            "\(home)/console/ring-ref": "\(0x5678)", "\(home)/console/port": "4",
            "\(home)/console/type": "xenconsoled", "\(home)/control/shutdown": "",
            "\(vm)/uuid": uuid.description, "\(vm)/name": "debian1",
            "\(vm)/image/cmdline": "root=/dev/hda1 ro 4", "\(vm)/start_time": "1700000000.50",
            "/proxenos/xend/domain/7/created": "42.25",
        ]
        for (path, value) in values {
            #expect(try node(nodes, path).value == value, "\(path)")
        }
        #expect(try node(nodes, home).permissions == perms("n0 r7"))
        #expect(try node(nodes, "\(home)/control").permissions == perms("n0 r7"))
        #expect(try node(nodes, "\(home)/control/shutdown").permissions == perms("n7"))
        #expect(try node(nodes, "\(home)/console").permissions == perms("n0 r7"))
        #expect(try node(nodes, "\(home)/data").permissions == perms("n7"))
        #expect(try node(nodes, vm).permissions == perms("n0 r7"))
        #expect(try node(nodes, "/proxenos/xend/domain/7").permissions == perms("n0"))
        let config = try node(nodes, "/proxenos/xend/domain/7/config").value
        let decoded = try SpecCodec.decode(try XendWire.parse(config))
        #expect(decoded.uuid == uuid.description)
        #expect(decoded.disks == spec.disks)
    }

    @Test func cleanupCoversEveryTree() throws {
        let uuid = try #require(DomainUUID(parsing: "12345678-9abc-def0-1234-56789abcdef0"))
        let paths = StorePlan.cleanupPaths(domid: 4, uuid: uuid)
        for expected in [
            "/local/domain/4", "/vm/12345678-9abc-def0-1234-56789abcdef0",
            "/local/domain/0/backend/vbd/4", "/local/domain/0/backend/vif/4",
            "/proxenos/xend/domain/4",
        ] {
            #expect(paths.contains(expected), "\(expected)")
        }
    }

    /// The planned permissions, applied by xend to a xenstored, give the
    /// guest exactly the access the layout promises.
    @Test func guestAccessInTheStore() async throws {
        let harness = try Harness()
        let backends = try harness.runBackends()
        defer { backends.cancel() }
        var spec = try Seed.spec(Seed.debian1)
        spec.kernel = CommandLine.arguments[0]
        guard
            case .created(let domid, _) = await harness.response(
                .create(spec, skipDevices: false, paused: false))
        else {
            Issue.record("create failed")
            return
        }
        let guest = try harness.store.connect(domid: domid)
        let home = "/local/domain/\(domid)"
        let front = "\(home)/device/vbd/769"
        let back = "/local/domain/0/backend/vbd/\(domid)/769"
        // The guest reads its frontend and its backend ...
        #expect(try await guest.read("\(back)/params") == "/mnt/xensys2-root.img")
        #expect(try await guest.read("\(front)/virtual-device") == "769")
        // ... writes its frontend state and control nodes ...
        try await guest.write("\(front)/state", "3")
        try await guest.write("\(home)/control/shutdown", "")
        try await guest.write("\(home)/data/note", "hello")
        // ... but not the backend, its name, its console or xend's record.
        for path in [
            "\(back)/params", "\(home)/name", "\(home)/console/tty", "\(home)/memory/target",
        ] {
            await #expect(throws: XenStoreError.self, "\(path)") {
                try await guest.write(path, "evil")
            }
        }
        await #expect(throws: XenStoreError.self) {
            try await guest.read("/proxenos/xend/domain/\(domid)/config")
        }
        // Another guest sees none of it.
        let other = try harness.store.connect(domid: domid + 100)
        await #expect(throws: XenStoreError.self) { try await other.read("\(back)/params") }
        await #expect(throws: XenStoreError.self) { try await other.read("\(home)/name") }
    }
}
