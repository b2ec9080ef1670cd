import BootStubCore
import Foundation
import Testing

@Suite struct SHA256Tests {
    // FIPS 180-2 appendix B and NIST CSRC example values.
    @Test func emptyMessage() {
        #expect(sha256("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func oneBlockABC() {
        #expect(sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func twoBlock448Bits() {
        #expect(
            sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func multiBlock896Bits() {
        let message =
            "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
        #expect(
            sha256(message) == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
    }

    @Test func millionA() {
        let a = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(
            hex(sha256(a)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func millionAFedInOddChunks() {
        var h = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 999)
        var left = 1_000_000
        while left > 0 {
            let n = min(left, chunk.count)
            chunk.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            left -= n
        }
        #expect(
            hex(h.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func byteAtATimeMatchesOneShotAroundPaddingBoundaries() {
        for length in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000] {
            let data = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            var h = SHA256()
            data.withUnsafeBytes { raw in
                for i in 0..<raw.count {
                    h.update(UnsafeRawBufferPointer(rebasing: raw[i..<i + 1]))
                }
            }
            #expect(h.finalize() == sha256(data), "length \(length)")
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl")))
    func agreesWithOpenSSL() throws {
        let data = (0..<100_003).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sha-\(getpid())")
        try Data(data).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["dgst", "-sha256", "-r", path.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let expected = String(decoding: output.prefix(64), as: UTF8.self)
        #expect(hex(sha256(data)) == expected)
    }

    @Test func digestHexRoundTrip() throws {
        let text = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
        let parsed = try #require(withBuffer(text) { SHA256Digest(hex: $0) })
        #expect(hex(parsed) == text.lowercased())
        #expect(parsed.byte(0) == 0xe3 && parsed.byte(31) == 0x55)
        #expect(withBuffer(String(text.dropLast())) { SHA256Digest(hex: $0) } == nil)
        #expect(withBuffer(String(text.dropLast()) + "g") { SHA256Digest(hex: $0) } == nil)
    }
}
