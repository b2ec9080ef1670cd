// SHA-256 (FIPS 180-4) without heap or Foundation, so the stub can check
// modules before anything else runs. Written for throughput under QEMU TCG:
// wrapping arithmetic, one 64-word schedule on the stack, blocks read
// straight from the input.

/// A SHA-256 digest: eight 32-bit words, most significant first.
public struct SHA256Digest: Equatable, Sendable {
    /// The eight state words H0…H7.
    public var words: InlineArray<8, UInt32>

    /// A digest from its eight words.
    public init(words: InlineArray<8, UInt32>) {
        self.words = words
    }

    /// Parses 64 hex digits (either case); nil on any other input.
    public init?(hex: UnsafeRawBufferPointer) {
        guard hex.count == 64 else { return nil }
        var words = InlineArray<8, UInt32>(repeating: 0)
        for i in 0..<64 {
            guard let nibble = hexValue(hex[i]) else { return nil }
            words[i / 8] = (words[i / 8] << 4) | UInt32(nibble)
        }
        self.words = words
    }

    /// Byte `index` (0..<32) of the digest in its canonical order.
    public func byte(_ index: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: words[index / 4] >> UInt32(24 - 8 * (index % 4)))
    }

    /// Writes the 64 lower-case hex digits.
    public func write<S: TextSink>(to sink: inout S) {
        for i in 0..<8 { sink.writeHexDigits(UInt64(words[i]), digits: 8) }
    }

    public static func == (lhs: SHA256Digest, rhs: SHA256Digest) -> Bool {
        var same = true
        for i in 0..<8 where lhs.words[i] != rhs.words[i] { same = false }
        return same
    }
}

/// The value of one hex digit, or nil.
@inline(__always)
func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return nil
    }
}

/// The round constants: the first 32 bits of the fractional parts of the
/// cube roots of the first 64 primes (FIPS 180-4 §4.2.2).
let sha256RoundConstants: InlineArray<64, UInt32> = [
    0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4,
    0xab1c_5ed5, 0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe,
    0x9bdc_06a7, 0xc19b_f174, 0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f,
    0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da, 0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7,
    0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967, 0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc,
    0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85, 0xa2bf_e8a1, 0xa81a_664b,
    0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070, 0x19a4_c116,
    0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
    0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7,
    0xc671_78f2,
]

/// Incremental SHA-256.
public struct SHA256: Sendable {
    private var state: InlineArray<8, UInt32> = [
        0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a,
        0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19,
    ]
    private var pending = InlineArray<64, UInt8>(repeating: 0)
    private var pendingCount = 0
    private var totalBytes: UInt64 = 0

    /// A fresh hash.
    public init() {}

    /// The digest of `data` in one call.
    public static func hash(_ data: UnsafeRawBufferPointer) -> SHA256Digest {
        var h = SHA256()
        h.update(data)
        return h.finalize()
    }

    /// Feeds `data`.
    public mutating func update(_ data: UnsafeRawBufferPointer) {
        guard let base = data.baseAddress, data.count > 0 else { return }
        totalBytes &+= UInt64(data.count)
        var offset = 0
        let count = data.count
        if pendingCount > 0 {
            while pendingCount < 64 && offset < count {
                pending[pendingCount] = data[offset]
                pendingCount += 1
                offset += 1
            }
            if pendingCount < 64 { return }
            compressPending()
        }
        while count - offset >= 64 {
            compress(base + offset)
            offset += 64
        }
        while offset < count {
            pending[pendingCount] = data[offset]
            pendingCount += 1
            offset += 1
        }
    }

    /// Pads, processes the last block(s) and returns the digest.
    public consuming func finalize() -> SHA256Digest {
        let bitLength = totalBytes &* 8
        pending[pendingCount] = 0x80
        pendingCount += 1
        if pendingCount > 56 {
            while pendingCount < 64 {
                pending[pendingCount] = 0
                pendingCount += 1
            }
            compressPending()
        }
        while pendingCount < 56 {
            pending[pendingCount] = 0
            pendingCount += 1
        }
        for i in 0..<8 {
            pending[56 + i] = UInt8(truncatingIfNeeded: bitLength >> UInt64(56 - 8 * i))
        }
        compressPending()
        return SHA256Digest(words: state)
    }

    private mutating func compressPending() {
        let block = pending
        withUnsafeBytes(of: block) { raw in
            // The tuple-like InlineArray is 64 contiguous bytes.
            if let base = raw.baseAddress { compress(base) }
        }
        pendingCount = 0
    }

    @inline(__always)
    private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 {
        (x &>> n) | (x &<< (32 &- n))
    }

    /// One round (FIPS 180-4 §6.2.2 step 3) with the caller renaming the
    /// working variables: `d` receives the new e, `h` the new a.
    @inline(__always)
    private static func round(
        _ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: inout UInt32,
        _ e: UInt32, _ f: UInt32, _ g: UInt32, _ h: inout UInt32, _ kw: UInt32
    ) {
        let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
        let ch = g ^ (e & (f ^ g))
        let t1 = h &+ s1 &+ ch &+ kw
        let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
        let maj = (a & b) | (c & (a | b))
        d &+= t1
        h = t1 &+ s0 &+ maj
    }

    /// One compression over the 64-byte block at `block`.
    @_optimize(speed)
    private mutating func compress(_ block: UnsafeRawPointer) {
        let k = sha256RoundConstants
        var w = InlineArray<64, UInt32>(repeating: 0)
        for t in 0..<16 {
            w[t] = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: t &* 4, as: UInt32.self))
        }
        for t in 16..<64 {
            let w15 = w[t &- 15]
            let w2 = w[t &- 2]
            let s0 = SHA256.rotr(w15, 7) ^ SHA256.rotr(w15, 18) ^ (w15 &>> 3)
            let s1 = SHA256.rotr(w2, 17) ^ SHA256.rotr(w2, 19) ^ (w2 &>> 10)
            w[t] = w[t &- 16] &+ s0 &+ w[t &- 7] &+ s1
        }
        var a = state[0]
        var b = state[1]
        var c = state[2]
        var d = state[3]
        var e = state[4]
        var f = state[5]
        var g = state[6]
        var h = state[7]
        // Eight rounds per iteration with the variables renamed instead of
        // shifted: i686 has too few registers for the textbook rotation,
        // and under QEMU TCG every spared move counts.
        var t = 0
        while t < 64 {
            SHA256.round(a, b, c, &d, e, f, g, &h, k[t] &+ w[t])
            SHA256.round(h, a, b, &c, d, e, f, &g, k[t &+ 1] &+ w[t &+ 1])
            SHA256.round(g, h, a, &b, c, d, e, &f, k[t &+ 2] &+ w[t &+ 2])
            SHA256.round(f, g, h, &a, b, c, d, &e, k[t &+ 3] &+ w[t &+ 3])
            SHA256.round(e, f, g, &h, a, b, c, &d, k[t &+ 4] &+ w[t &+ 4])
            SHA256.round(d, e, f, &g, h, a, b, &c, k[t &+ 5] &+ w[t &+ 5])
            SHA256.round(c, d, e, &f, g, h, a, &b, k[t &+ 6] &+ w[t &+ 6])
            SHA256.round(b, c, d, &e, f, g, h, &a, k[t &+ 7] &+ w[t &+ 7])
            t &+= 8
        }
        state[0] &+= a
        state[1] &+= b
        state[2] &+= c
        state[3] &+= d
        state[4] &+= e
        state[5] &+= f
        state[6] &+= g
        state[7] &+= h
    }
}
