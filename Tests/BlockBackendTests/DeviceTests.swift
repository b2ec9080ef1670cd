import BlockBackend
import Foundation
import Testing
import XenBus

/// `phy:` on a real block device: a loop device over a file (host
/// integration, as root; skipped where loop devices cannot be made).
@Suite("blkback on a block device")
struct DeviceTests {
    static func losetup(_ arguments: [String]) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/losetup")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = Pipe()
        guard (try? process.run()) != nil else { return nil }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static var canMakeLoopDevices: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/losetup")
            && FileManager.default.fileExists(atPath: "/dev/loop-control")
    }

    @Test(
        "a loop device: O_DIRECT, unaligned-in-page segments, flush, discard, data in the file",
        .enabled(if: canMakeLoopDevices))
    func loopDevice() throws {
        let original = patternBytes(8192 * 512, seed: 31)
        let file = try temporaryFile(original)
        defer { file.remove() }
        let device = try #require(Self.losetup(["-f", "--show", file.path]))
        var attached = true
        defer { if attached { _ = Self.losetup(["-d", device]) } }
        let storage = try FileStorage(BlockBacking(kind: .device, path: device, writable: true))
        #expect(storage.isDirect, "512-byte logical blocks: O_DIRECT")
        #expect(storage.sectorCount == 8192)
        let rig = try BlockRig<BlkifRequest64, BlkifResponse64>(
            storage: storage,
            limits: BlockDiskLimits(
                sectors: storage.sectorCount, readOnly: false,
                discard: storage.discardSupport != nil))
        var expected = original
        // A write of partial pages (sectors 1...6 of each) at sector 3,
        // then a flush, then a read of it back in one batch.
        let source = rig.pages(4, writable: false)
        source.bytes.copyBytes(from: patternBytes(4 * 4096, seed: 32))
        try rig.submit(
            rwRequest(BlkifOperation.write, id: 1, sector: 3, refs: source.refs, first: 1, last: 6))
        try rig.submit(BlkifRequest(operation: BlkifOperation.flushDiskCache, id: 2))
        let target = rig.pages(4)
        try rig.submit(
            rwRequest(BlkifOperation.read, id: 3, sector: 3, refs: target.refs, first: 1, last: 6))
        try rig.serve()
        let responses = try rig.responses()
        #expect(responses.map(\.status) == [0, 0, 0])
        var offset = 3 * 512
        for page in 0..<4 {
            let data = Array(source.bytes[(page * 4096 + 512)..<(page * 4096 + 3584)])
            expected.replaceSubrange(offset..<(offset + 3072), with: data)
            #expect(Array(target.bytes[(page * 4096 + 512)..<(page * 4096 + 3584)]) == data)
            offset += 3072
        }
        if storage.discardSupport != nil {
            var discard = BlkifRequest(operation: BlkifOperation.discard, id: 4)
            discard.sector = 4096
            discard.discardSectors = 2048
            #expect(try rig.run(discard)?.status == BlkifStatus.okay)
            expected.replaceSubrange(
                (4096 * 512)..<(6144 * 512), with: repeatElement(0, count: 2048 * 512))
        }
        _ = Self.losetup(["-d", device])
        attached = false
        #expect(fileBytes(file.path) == expected)
    }
}
