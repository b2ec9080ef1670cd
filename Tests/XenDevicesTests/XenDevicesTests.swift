import CXen
import Glibc
import Testing
import XenBus
import XenDevices

// Without Xen (this build host) the devices must fail to open with an error,
// not a trap. In a dom0 (/dev/xen present) the same tests exercise the real
// devices against dom0 itself: an event channel looped back to our own
// domain, and a page we grant ourselves through gntalloc.

let haveEventChannelDevice = access("/dev/xen/evtchn", F_OK) == 0
let haveGrantDevices =
    access("/dev/xen/gntdev", F_OK) == 0 && access("/dev/xen/gntalloc", F_OK) == 0

@Suite("Linux Xen devices")
struct XenDevicesTests {
    @Test("without /dev/xen/evtchn, opening is an error", .enabled(if: !haveEventChannelDevice))
    func eventChannelMissing() {
        #expect {
            _ = try LinuxEventChannel()
        } throws: { error in
            guard case .eventChannel(let operation, _) = error as? XenBusError else { return false }
            return operation.contains("/dev/xen/evtchn")
        }
    }

    @Test(
        "without /dev/xen/gntdev, opening is an error",
        .enabled(if: access("/dev/xen/gntdev", F_OK) != 0))
    func grantTableMissing() {
        #expect {
            _ = try LinuxGrantTable()
        } throws: { error in
            guard case .grantTable(let operation, _) = error as? XenBusError else { return false }
            return operation.contains("/dev/xen/gntdev")
        }
    }

    @Test(
        "dom0 loopback: allocate unbound, bind, notify, pending, unmask",
        .enabled(if: haveEventChannelDevice))
    func eventChannelLoopback() throws {
        let offering = try LinuxEventChannel()
        let binding = try LinuxEventChannel()
        let self0 = DomainID(0)
        let offered = try offering.allocateUnbound(remoteDomain: self0)
        let local = try binding.bindInterdomain(remoteDomain: self0, remotePort: offered)
        try binding.notify(local)
        var descriptor = pollfd(fd: offering.fileDescriptor.rawValue, events: Int16(POLLIN), revents: 0)
        #expect(poll(&descriptor, 1, 1000) == 1)
        #expect(try offering.pending() == offered)
        try offering.unmask(offered)
        try binding.unbind(local)
        try offering.unbind(offered)
        #expect(throws: XenBusError.self) { try binding.notify(local) }
    }

    @Test(
        "dom0 self-grant: map through gntdev, grant copy both ways", .enabled(if: haveGrantDevices))
    func grantSelf() throws {
        guard let sharer = xengntshr_open(nil, 0) else {
            Issue.record("xengntshr_open failed: \(errno)")
            return
        }
        defer { xengntshr_close(sharer) }
        var refs = [UInt32](repeating: 0, count: 2)
        guard let shared = xengntshr_share_pages(sharer, 0, 2, &refs, 1) else {
            Issue.record("xengntshr_share_pages failed: \(errno)")
            return
        }
        defer { xengntshr_unshare(sharer, shared, 2) }
        let page = shared.bindMemory(to: UInt8.self, capacity: 2 * xenPageSize)
        page[5] = 0x5A

        let table = try LinuxGrantTable()
        do {
            let mapping = try table.map(
                domain: DomainID(0), refs: refs.map { GrantRef($0) }, writable: true)
            #expect(mapping.bytes[5] == 0x5A)
            try mapping.writableBytes()[xenPageSize + 1] = 0xA5
            #expect(page[xenPageSize + 1] == 0xA5)
        }
        #expect(table.unmapFailureCount == 0)

        let local = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 64)
        defer { local.deallocate() }
        local.initializeMemory(as: UInt8.self, repeating: 0x11)
        let statuses = try table.copy(
            [
                GrantCopySegment(
                    .fromGuest, domain: DomainID(0), ref: GrantRef(refs[0]), offset: 0, length: 8,
                    localOffset: 0),
                GrantCopySegment(
                    .toGuest, domain: DomainID(0), ref: GrantRef(refs[1]), offset: 100, length: 8,
                    localOffset: 32),
                GrantCopySegment(
                    .toGuest, domain: DomainID(0), ref: GrantRef(refs[1]), offset: 4090, length: 8,
                    localOffset: 32),
            ], local: local)
        #expect(statuses == [.okay, .okay, .badCopyArgument])
        #expect(local[5] == 0x5A)
        #expect(page[xenPageSize + 100] == 0x11)
    }
}
