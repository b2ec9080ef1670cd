import Testing

@testable import Provisioning

@Suite("tar reader")
struct TarTests {
    @Test func readsFilesAndDirectories() throws {
        var tar = TarBuilder()
        tar.directory("xen/")
        tar.file("xen/web", "kernel = \"/k\"\n")
        tar.file("auto", "web\n")
        let archive = tar.finished()
        let members = try Tar.members(of: archive)
        #expect(members.map(\.name) == ["xen/", "xen/web", "auto"])
        #expect(members[0].kind == .directory)
        #expect(members[1].kind == .file)
        #expect(members[1].size == 14)
        #expect(
            Array(archive[members[1].dataOffset..<members[1].dataOffset + 14])
                == Array("kernel = \"/k\"\n".utf8))
        #expect(members[1].mode == 0o644)
    }

    @Test func ustarPrefixJoinsTheName() throws {
        var tar = TarBuilder()
        tar.add(TarBuilder.Header(name: "web", prefix: "xen"), data: Array("x".utf8))
        #expect(try Tar.members(of: tar.finished()).map(\.name) == ["xen/web"])
    }

    @Test func linksAndSpecialFilesKeepTheirKind() throws {
        var tar = TarBuilder()
        tar.add(TarBuilder.Header(name: "a", type: UInt8(ascii: "2"), link: "/etc/passwd"))
        tar.add(TarBuilder.Header(name: "b", type: UInt8(ascii: "1"), link: "../x"))
        tar.add(TarBuilder.Header(name: "c", type: UInt8(ascii: "3")))
        tar.add(TarBuilder.Header(name: "d", type: UInt8(ascii: "6")))
        let kinds = try Tar.members(of: tar.finished()).map(\.kind)
        #expect(
            kinds == [
                .symbolicLink(target: "/etc/passwd"), .hardLink(target: "../x"), .special("3"),
                .special("6"),
            ])
    }

    @Test func badChecksumIsRefused() {
        var tar = TarBuilder()
        tar.add(TarBuilder.Header(name: "auto", checksumDelta: 1), data: Array("x".utf8))
        #expect(throws: Tar.Error.badChecksum(offset: 0, name: "auto")) {
            try Tar.members(of: tar.finished())
        }
    }

    @Test func truncatedHeaderIsRefused() {
        var tar = TarBuilder()
        tar.file("auto", "web\n")
        let archive =
            tar.bytes + TarBuilder.header(TarBuilder.Header(name: "x"), size: 0).prefix(300)
        #expect(throws: Tar.Error.truncatedHeader(offset: 1024)) { try Tar.members(of: archive) }
    }

    @Test func truncatedDataIsRefused() {
        var tar = TarBuilder()
        tar.file("xen/web", String(repeating: "k", count: 2000))
        let archive = Array(tar.bytes.prefix(512 + 1000))
        #expect(throws: Tar.Error.truncatedData(name: "xen/web", offset: 0)) {
            try Tar.members(of: archive)
        }
    }

    @Test func hugeSizeIsRefusedBeforeReading() {
        var tar = TarBuilder()
        // 8 GiB - 1 claimed, nothing behind it.
        tar.add(TarBuilder.Header(name: "xen/big", sizeField: "77777777777"))
        #expect(throws: Tar.Error.tooLarge(name: "xen/big", size: 0o77777777777, limit: 16 << 20)) {
            try Tar.members(of: tar.bytes)
        }
    }

    @Test(arguments: ["0000001x", "\u{80}0000000000", "", "12 34"])
    func malformedNumbersAreRefused(_ field: String) {
        var tar = TarBuilder()
        tar.add(TarBuilder.Header(name: "auto", sizeField: field))
        #expect(throws: Tar.Error.badNumber(field: "size", offset: 0)) {
            try Tar.members(of: tar.finished())
        }
    }

    @Test func emptyArchiveAndNoTrailerAreAccepted() throws {
        #expect(try Tar.members(of: []).isEmpty)
        #expect(try Tar.members(of: [UInt8](repeating: 0, count: 1024)).isEmpty)
        var tar = TarBuilder()
        tar.file("auto", "web\n")
        #expect(try Tar.members(of: tar.bytes).count == 1)
    }

    @Test func gnuLongNameAndPaxPathWin() throws {
        var tar = TarBuilder()
        let long = "xen/" + String(repeating: "n", count: 60)
        tar.add(
            TarBuilder.Header(name: "././@LongLink", type: UInt8(ascii: "L")),
            data: Array((long + "\u{0}").utf8))
        tar.file("short", "a")
        let record = " path=../etc/passwd\n"
        let length = record.utf8.count + 2
        tar.add(
            TarBuilder.Header(name: "PaxHeaders/x", type: UInt8(ascii: "x")),
            data: Array("\(length)\(record)".utf8))
        tar.file("innocent", "b")
        let names = try Tar.members(of: tar.finished()).map(\.name)
        #expect(names == [long, "../etc/passwd"])
    }

    @Test func malformedPaxHeaderIsRefused() {
        var tar = TarBuilder()
        tar.add(
            TarBuilder.Header(name: "PaxHeaders/x", type: UInt8(ascii: "x")),
            data: Array("99 path=x\n".utf8))
        tar.file("innocent", "b")
        #expect(throws: Tar.Error.badExtendedHeader(offset: 0)) {
            try Tar.members(of: tar.finished())
        }
    }

    @Test func tooManyMembersIsRefused() {
        var tar = TarBuilder()
        for index in 0..<5 { tar.file("f\(index)", "") }
        #expect(throws: Tar.Error.tooManyMembers(limit: 4)) {
            try Tar.members(of: tar.finished(), memberLimit: 4)
        }
    }

    /// Every prefix of a valid archive is refused or read: never a trap.
    @Test func everyTruncationIsContained() {
        var tar = TarBuilder()
        tar.file("xen/web", String(repeating: "w", count: 700))
        tar.file("auto", "web\n")
        let archive = tar.finished()
        for length in stride(from: 0, through: archive.count, by: 7) {
            _ = try? Tar.members(of: Array(archive.prefix(length)))
        }
    }
}
