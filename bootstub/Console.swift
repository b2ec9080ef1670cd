// The admin's view of the stub: COM1 at 115200 8n1 and the VGA text screen,
// written together. Embedded-only.

/// COM1 plus VGA text mode, as one text sink.
struct Console: HighlightingSink {
    private static let vgaColumns = 80
    private static let vgaRows = 25
    private var row = 0
    private var column = 0
    /// VGA attribute: grey on black, or white on red for warnings.
    var attribute: UInt8 = 0x07

    init() {
        COM1.initialize()
        // Start below whatever the loader left on screen.
        row = Console.vgaRows - 1
        newLine()
    }

    mutating func highlight(_ on: Bool) { attribute = on ? 0x4F : 0x07 }

    mutating func put(_ byte: UInt8) {
        if byte == UInt8(ascii: "\n") {
            COM1.write(UInt8(ascii: "\r"))
            COM1.write(byte)
            newLine()
            return
        }
        COM1.write(byte)
        if column >= Console.vgaColumns { newLine() }
        vgaCell(row: row, column: column, value: UInt16(attribute) << 8 | UInt16(byte))
        column += 1
    }

    private func vgaCell(row: Int, column: Int, value: UInt16) {
        guard let screen = UnsafeMutablePointer<UInt16>(bitPattern: 0xB8000) else { return }
        // The text buffer is memory-mapped VGA RAM at 0xB8000, 80×25 cells.
        screen[row * Console.vgaColumns + column] = value
    }

    private mutating func newLine() {
        column = 0
        if row < Console.vgaRows - 1 {
            row += 1
        } else if let screen = UnsafeMutablePointer<UInt16>(bitPattern: 0xB8000) {
            let cells = Console.vgaColumns * (Console.vgaRows - 1)
            screen.update(from: screen + Console.vgaColumns, count: cells)
            for c in 0..<Console.vgaColumns { screen[cells + c] = 0x0720 }
        }
        // Move the hardware cursor (CRTC registers 0x0E/0x0F) to the new line.
        let position = UInt16(row * Console.vgaColumns)
        outb(0x3D4, 0x0E)
        outb(0x3D5, UInt8(truncatingIfNeeded: position >> 8))
        outb(0x3D4, 0x0F)
        outb(0x3D5, UInt8(truncatingIfNeeded: position))
    }
}
