/// Makes guest console output safe to show on an admin's terminal: escape
/// sequences that act on the terminal beyond drawing, or make it answer,
/// are shown as visible text (`^[]0;title^G`) instead of passed through.
///
/// A guest owns every byte of its console, and a terminal that interprets
/// them will set its window title, write the clipboard (OSC 52), load
/// fonts or key mappings (DCS), or answer requests (ENQ's answerback, DA,
/// DSR, DECRQM, CSI 21 t's title report) with bytes that go back to the
/// guest as if the admin had typed them. Colours, cursor movement and
/// erasing (the CSI sequences a shell, `top` or an editor draw with) pass,
/// so ordinary programs look as they should.
///
/// | guest sends | shown as |
/// |---|---|
/// | OSC `ESC ]`, DCS `ESC P`, SOS `ESC X`, PM `ESC ^`, APC `ESC _` up to BEL or ST | visible text, e.g. `^[]52;c;...^G` |
/// | CSI ending in `c` `n` `t` `x` `i`, or `$ p` (requests and window ops) | visible text |
/// | `ESC Z` (DECID), ENQ, and C0 controls other than BEL BS TAB LF CR | caret notation (`^E`) |
/// | a CSI longer than 64 bytes | visible text (nothing is buffered without bound) |
///
/// Streaming: the filter keeps at most one pending CSI (64 bytes) between
/// calls, so a sequence split across reads is judged whole, and a string
/// that never ends costs nothing: its bytes are shown as they come.
public struct EscapeFilter: Sendable {
    private enum State: Sendable {
        case ground
        /// After ESC; `pending` holds ESC and any intermediates.
        case escape
        /// Inside CSI; `pending` holds the sequence so far.
        case csi
        /// A CSI that grew too long: shown as text up to its final byte.
        case csiOverflow
        /// Inside an OSC/DCS/SOS/PM/APC string: shown as text.
        case string
        /// ESC inside a string: `\` ends it (ST), anything else starts anew.
        case stringEscape
    }

    /// The longest CSI judged as a whole.
    public static let maximumSequence = 64

    private var state = State.ground
    private var pending: [UInt8] = []

    public init() {
        pending.reserveCapacity(Self.maximumSequence)
    }

    /// Whether a byte sequence is held back waiting for its end.
    public var isHoldingSequence: Bool { !pending.isEmpty }

    /// Filters `input`, appending what the terminal may see to `output`.
    public mutating func filter<Bytes: Sequence<UInt8>>(_ input: Bytes, into output: inout [UInt8])
    {
        for byte in input { step(byte, &output) }
    }

    private mutating func step(_ byte: UInt8, _ output: inout [UInt8]) {
        switch state {
        case .ground:
            ground(byte, &output)
        case .escape:
            escape(byte, &output)
        case .csi:
            if byte >= 0x40 && byte <= 0x7e {
                pending.append(byte)
                if Self.isRequest(pending) {
                    Self.appendVisible(pending, &output)
                } else {
                    output.append(contentsOf: pending)
                }
                reset()
            } else if byte >= 0x20 && byte <= 0x3f {
                if pending.count >= Self.maximumSequence {
                    Self.appendVisible(pending, &output)
                    Self.appendVisible(byte, &output)
                    pending.removeAll(keepingCapacity: true)
                    state = .csiOverflow
                } else {
                    pending.append(byte)
                }
            } else {
                // A control or high byte aborts the sequence: show what was
                // held and treat the byte afresh.
                Self.appendVisible(pending, &output)
                reset()
                ground(byte, &output)
            }
        case .csiOverflow:
            Self.appendVisible(byte, &output)
            if byte >= 0x40 && byte <= 0x7e || byte < 0x20 { state = .ground }
        case .string:
            if byte == 0x07 {
                Self.appendVisible(byte, &output)
                state = .ground
            } else if byte == 0x1b {
                state = .stringEscape
            } else {
                Self.appendVisible(byte, &output)
            }
        case .stringEscape:
            Self.appendVisible(0x1b, &output)
            if byte == UInt8(ascii: "\\") {
                Self.appendVisible(byte, &output)
                state = .ground
            } else {
                state = .ground
                pending = [0x1b]
                state = .escape
                escape(byte, &output)
            }
        }
    }

    private mutating func ground(_ byte: UInt8, _ output: inout [UInt8]) {
        switch byte {
        case 0x1b:
            pending.append(byte)
            state = .escape
        case 0x07, 0x08, 0x09, 0x0a, 0x0d:
            output.append(byte)
        case 0x00..<0x20:
            Self.appendVisible(byte, &output)
        default:
            output.append(byte)
        }
    }

    private mutating func escape(_ byte: UInt8, _ output: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "[") where pending.count == 1:
            pending.append(byte)
            state = .csi
        case UInt8(ascii: "]"), UInt8(ascii: "P"), UInt8(ascii: "X"), UInt8(ascii: "^"),
            UInt8(ascii: "_"):
            // A string that acts on the terminal: shown, body and all.
            pending.append(byte)
            Self.appendVisible(pending, &output)
            pending.removeAll(keepingCapacity: true)
            state = .string
        case 0x20...0x2f:
            // Intermediates (ESC ( B chooses a character set): wait for the
            // final byte, bounded like a CSI.
            if pending.count >= 4 {
                Self.appendVisible(pending, &output)
                Self.appendVisible(byte, &output)
                reset()
            } else {
                pending.append(byte)
            }
        case UInt8(ascii: "Z") where pending.count == 1:
            // DECID: the terminal answers with its identity.
            pending.append(byte)
            Self.appendVisible(pending, &output)
            reset()
        case 0x30...0x7e:
            pending.append(byte)
            output.append(contentsOf: pending)
            reset()
        default:
            // ESC before a control or high byte: show the ESC, then the byte
            // afresh.
            Self.appendVisible(pending, &output)
            reset()
            ground(byte, &output)
        }
    }

    private mutating func reset() {
        pending.removeAll(keepingCapacity: true)
        state = .ground
    }

    /// Whether a complete CSI (ESC [ ... final) makes the terminal answer
    /// or acts on its window rather than its text.
    static func isRequest(_ sequence: [UInt8]) -> Bool {
        guard let final = sequence.last else { return false }
        switch final {
        case UInt8(ascii: "c"), UInt8(ascii: "n"), UInt8(ascii: "t"), UInt8(ascii: "x"),
            UInt8(ascii: "i"):
            // DA, DSR/CPR, window operations (title report), DECREQTPARM,
            // media copy.
            return true
        case UInt8(ascii: "p"):
            // DECRQM (CSI ? Ps $ p) asks for a mode report; DECSTR (CSI ! p)
            // and DECSCL (CSI " p) reconfigure the terminal.
            return sequence.dropLast().contains {
                $0 == UInt8(ascii: "$") || $0 == 0x21 || $0 == 0x22
            }
        default:
            return false
        }
    }

    /// Appends `byte` so it shows as itself: printable and UTF-8 bytes as
    /// they are, ESC as `^[`, other C0 controls as `^X`, DEL as `^?`.
    static func appendVisible(_ byte: UInt8, _ output: inout [UInt8]) {
        switch byte {
        case 0x00..<0x20:
            output.append(UInt8(ascii: "^"))
            output.append(byte + 0x40)
        case 0x7f:
            output.append(UInt8(ascii: "^"))
            output.append(UInt8(ascii: "?"))
        default:
            output.append(byte)
        }
    }

    static func appendVisible(_ bytes: [UInt8], _ output: inout [UInt8]) {
        for byte in bytes { appendVisible(byte, &output) }
    }
}
