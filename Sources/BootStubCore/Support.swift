// Shared building blocks of the boot stub's pure code. Everything in this
// module also compiles under Embedded Swift for i686-unknown-none-elf, where
// the stub runs without a heap: no Foundation, no existentials, no arrays in
// the paths the stub takes; fixed-capacity storage lives inline.

/// A list with a fixed capacity stored inline (no heap), for the stub's
/// module lists, memory maps and load plans.
public struct BoundedList<let capacity: Int, Element: Copyable & Sendable>: Sendable {
    private var storage: InlineArray<capacity, Element>
    /// Number of elements stored.
    public private(set) var count: Int = 0

    /// An empty list; `filler` only initialises the unused slots.
    public init(filler: Element) {
        storage = InlineArray(repeating: filler)
    }

    /// Whether the list holds no element.
    public var isEmpty: Bool { count == 0 }

    /// Appends `element`; returns false (and stores nothing) when full.
    @discardableResult
    public mutating func append(_ element: Element) -> Bool {
        guard count < capacity else { return false }
        storage[count] = element
        count += 1
        return true
    }

    /// The element at `index`, or nil outside `0..<count`.
    public func at(_ index: Int) -> Element? {
        guard index >= 0, index < count else { return nil }
        return storage[index]
    }

    /// Replaces the element at `index`; returns false outside `0..<count`.
    @discardableResult
    public mutating func set(_ index: Int, _ element: Element) -> Bool {
        guard index >= 0, index < count else { return false }
        storage[index] = element
        return true
    }
}

/// A half-open range of physical addresses, `[start, end)`.
public struct PhysicalRange: Equatable, Sendable {
    /// First byte.
    public var start: UInt64
    /// One past the last byte.
    public var end: UInt64

    /// A range from `start` to `end` (an inverted pair becomes empty).
    public init(start: UInt64, end: UInt64) {
        self.start = start
        self.end = end < start ? start : end
    }

    /// Number of bytes covered.
    public var length: UInt64 { end - start }

    /// Whether the two ranges share at least one byte.
    public func overlaps(_ other: PhysicalRange) -> Bool {
        start < other.end && other.start < end && length > 0 && other.length > 0
    }

    /// Whether `other` lies entirely inside this range.
    public func contains(_ other: PhysicalRange) -> Bool {
        other.start >= start && other.end <= end
    }
}

/// A string that lives in physical memory (a loader's command line or
/// module string), by address and length without its terminating NUL.
public struct MemoryString: Equatable, Sendable {
    /// Physical address of the first byte.
    public var address: UInt32
    /// Length in bytes.
    public var length: UInt32

    /// A string at `address` of `length` bytes.
    public init(address: UInt32, length: UInt32) {
        self.address = address
        self.length = length
    }
}

/// Read access to physical memory. The stub reads identity-mapped memory
/// directly; host tests supply a byte buffer placed at a chosen address.
public protocol PhysicalMemory {
    /// The bytes `[address, address + count)`, or nil where any of them is
    /// not readable.
    func bytes(at address: UInt64, count: UInt64) -> UnsafeRawBufferPointer?
}

extension PhysicalMemory {
    /// Little-endian 32-bit value at `address`.
    public func load32(_ address: UInt64) -> UInt32? {
        guard let b = bytes(at: address, count: 4) else { return nil }
        return UInt32(littleEndian: b.loadUnaligned(as: UInt32.self))
    }

    /// Little-endian 64-bit value at `address`.
    public func load64(_ address: UInt64) -> UInt64? {
        guard let b = bytes(at: address, count: 8) else { return nil }
        return UInt64(littleEndian: b.loadUnaligned(as: UInt64.self))
    }

    /// The NUL-terminated string at `address`, at most `limit` bytes long.
    /// Nil if unreadable or unterminated within the limit.
    public func cString(at address: UInt32, limit: UInt32 = 4096) -> MemoryString? {
        guard address != 0 else { return nil }
        var length: UInt32 = 0
        while length < limit {
            guard let b = bytes(at: UInt64(address) + UInt64(length), count: 1) else {
                return nil
            }
            if b[0] == 0 { return MemoryString(address: address, length: length) }
            length += 1
        }
        return nil
    }

    /// The bytes of `string`.
    public func bytes(of string: MemoryString) -> UnsafeRawBufferPointer? {
        bytes(at: UInt64(string.address), count: UInt64(string.length))
    }
}

/// Memory backed by one buffer placed at `base`: host tests use it for
/// literal multiboot structures, the stub for its own static buffers.
public struct BufferMemory: PhysicalMemory {
    /// Physical address of the buffer's first byte.
    public let base: UInt64
    /// The buffer.
    public let buffer: UnsafeRawBufferPointer

    /// Memory consisting of `buffer` at physical address `base`.
    public init(base: UInt64, buffer: UnsafeRawBufferPointer) {
        self.base = base
        self.buffer = buffer
    }

    public func bytes(at address: UInt64, count: UInt64) -> UnsafeRawBufferPointer? {
        guard address >= base, count <= UInt64(buffer.count) else { return nil }
        let offset = address - base
        guard offset <= UInt64(buffer.count) - count else { return nil }
        return UnsafeRawBufferPointer(rebasing: buffer[Int(offset)..<Int(offset + count)])
    }
}

/// A byte-wise text output: the serial line and VGA in the stub, a byte
/// array in host tests. Formatting lives in extensions so both share it.
public protocol TextSink {
    /// Writes one byte.
    mutating func put(_ byte: UInt8)
}

extension TextSink {
    /// Writes a static string.
    public mutating func write(_ text: StaticString) {
        text.withUTF8Buffer { buffer in
            for byte in buffer { put(byte) }
        }
    }

    /// Writes raw bytes; bytes outside printable ASCII appear as `?` so a
    /// hostile command line cannot drive the terminal.
    public mutating func write(bytes: UnsafeRawBufferPointer) {
        for byte in bytes {
            put((byte >= 0x20 && byte < 0x7f) ? byte : UInt8(ascii: "?"))
        }
    }

    /// Writes `value` in decimal.
    public mutating func write(decimal value: UInt64) {
        var digits = InlineArray<20, UInt8>(repeating: 0)
        var n = value
        var count = 0
        repeat {
            digits[count] = UInt8(truncatingIfNeeded: n % 10) + UInt8(ascii: "0")
            n /= 10
            count += 1
        } while n != 0
        while count > 0 {
            count -= 1
            put(digits[count])
        }
    }

    /// Writes `value` as `0x` followed by exactly `digits` hex digits.
    public mutating func write(hex value: UInt64, digits: Int = 8) {
        write("0x")
        writeHexDigits(value, digits: digits)
    }

    /// Writes the low `digits` nibbles of `value` in lower-case hex.
    public mutating func writeHexDigits(_ value: UInt64, digits: Int) {
        var shift = (digits - 1) * 4
        while shift >= 0 {
            put(hexDigit(UInt8(truncatingIfNeeded: (value >> UInt64(shift)) & 0xf)))
            shift -= 4
        }
    }
}

/// The lower-case hex digit for a nibble.
@inline(__always)
func hexDigit(_ nibble: UInt8) -> UInt8 {
    nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
}
