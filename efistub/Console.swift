// The admin's view of the UEFI stub: the firmware console (ConOut, all its
// screens and terminals) and COM1, unless ConOut reaches a serial port
// already (then every line would appear twice there). Embedded-only.

/// ConOut plus, where ConOut has no serial device, COM1 at 115200 8n1.
struct EFIConsole: HighlightingSink {
    private let conOut: Pointer?
    /// Whether the stub writes COM1 itself.
    let ownSerial: Bool
    private var line = InlineArray<132, UInt16>(repeating: 0)
    private var count = 0

    init(conOut: Pointer?, ownSerial: Bool) {
        self.conOut = conOut
        self.ownSerial = ownSerial
        if ownSerial {
            COM1.initialize()
        }
    }

    /// EFI text attributes: light grey on black, or white on red.
    mutating func highlight(_ on: Bool) {
        flush()
        guard let conOut else { return }
        _ = conOut.load(fromByteOffset: 40, as: SetAttributeFn.self)(conOut, on ? 0x4F : 0x07)
    }

    mutating func put(_ byte: UInt8) {
        if ownSerial {
            if byte == UInt8(ascii: "\n") { COM1.write(UInt8(ascii: "\r")) }
            COM1.write(byte)
        }
        if byte == UInt8(ascii: "\n") {
            line[count] = 0x0D
            line[count + 1] = 0x0A
            count += 2
            flush()
            return
        }
        line[count] = UInt16(byte)
        count += 1
        if count >= 128 { flush() }
    }

    /// Hands the buffered characters to ConOut.
    mutating func flush() {
        guard count > 0 else { return }
        line[count] = 0
        count = 0
        guard let conOut else { return }
        let output = conOut.load(fromByteOffset: 8, as: OutputStringFn.self)
        withUnsafeBytes(of: &line) { _ = output(conOut, $0.baseAddress) }
    }

}
