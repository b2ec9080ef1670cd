import BootStubCore

/// Little-endian byte assembly for literal test structures.
struct Bytes {
    var data: [UInt8] = []

    mutating func u16(_ v: UInt16) {
        for i in 0..<2 { data.append(UInt8(truncatingIfNeeded: v >> (8 * i))) }
    }
    mutating func u32(_ v: UInt32) {
        for i in 0..<4 { data.append(UInt8(truncatingIfNeeded: v >> (8 * i))) }
    }
    mutating func u64(_ v: UInt64) {
        for i in 0..<8 { data.append(UInt8(truncatingIfNeeded: v >> (8 * i))) }
    }
    mutating func string(_ s: String) { data.append(contentsOf: Array(s.utf8) + [0]) }
    mutating func pad(to count: Int) { while data.count < count { data.append(0) } }
    mutating func align(_ n: Int) { while data.count % n != 0 { data.append(0) } }
    var count: Int { data.count }
}

@discardableResult
/// Runs `body` with `bytes` visible as physical memory at `base`.
func withMemory<R>(_ bytes: [UInt8], at base: UInt64, _ body: (BufferMemory) throws -> R) rethrows
    -> R
{
    try bytes.withUnsafeBytes { try body(BufferMemory(base: base, buffer: $0)) }
}

func text(of string: MemoryString?, in memory: BufferMemory) -> String? {
    guard let s = string, let b = memory.bytes(of: s) else { return nil }
    return String(decoding: b, as: UTF8.self)
}

func hex(_ digest: SHA256Digest) -> String {
    var sink = StringSink()
    digest.write(to: &sink)
    return sink.string
}

func sha256(_ bytes: [UInt8]) -> SHA256Digest {
    bytes.withUnsafeBytes { SHA256.hash($0) }
}

func sha256(_ string: String) -> String { hex(sha256(Array(string.utf8))) }

@discardableResult
func withBuffer<R>(_ s: String, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    try Array(s.utf8).withUnsafeBytes { try body($0) }
}
