/// `xm console`'s keyboard. Ctrl-] detaches at once, wherever it falls in
/// a chunk of input (bytes before it still go to the guest, none after it
/// do), as xm's console always did: scripts and fingers type on right
/// after it, into the shell xm returns to. Ctrl-^ (Ctrl-6) opens the
/// escape menu, and the next key acts:
///
///     Ctrl-]            detach
///     Ctrl-^ w          who is attached       Ctrl-^ r   replay the last lines
///     Ctrl-^ f          force write access    Ctrl-^ s   give write access up
///     Ctrl-^ .          detach                Ctrl-^ ?   help
///     Ctrl-^ Ctrl-^     a literal Ctrl-^ to the guest (vi's alternate file)
///     Ctrl-^ other key  back to the console (the key is not sent)
///
/// The menu has a key of its own because a menu behind Ctrl-] would have
/// to wait for a second key before detaching and would swallow what is
/// typed after a detach.
public struct EscapeMenu: Sendable {
    /// Ctrl-]: detach.
    public static let detachKey: UInt8 = 0x1d
    /// Ctrl-^: the escape menu.
    public static let menuKey: UInt8 = 0x1e
    /// Lines `r` replays.
    public static let replayLines = 50

    /// What the client does.
    public enum Action: Sendable, Equatable {
        case forward([UInt8])
        case showMenu
        case showHelp
        case command(ConsoleCommand)
        case resume
        case detach
    }

    /// Whether the menu waits for its key.
    public private(set) var isOpen = false

    public init() {}

    /// Interprets typed bytes. After `.detach` the rest is dropped.
    public mutating func feed(_ bytes: [UInt8]) -> [Action] {
        var actions: [Action] = []
        var pending: [UInt8] = []
        func flush() {
            if !pending.isEmpty { actions.append(.forward(pending)) }
            pending = []
        }
        for byte in bytes {
            if isOpen {
                isOpen = false
                switch byte {
                case Self.menuKey: pending.append(byte)
                case UInt8(ascii: "."), Self.detachKey:
                    flush()
                    actions.append(.detach)
                    return actions
                case UInt8(ascii: "w"):
                    flush()
                    actions.append(.command(.who))
                case UInt8(ascii: "r"):
                    flush()
                    actions.append(.command(.replay(Self.replayLines)))
                case UInt8(ascii: "f"):
                    flush()
                    actions.append(.command(.force))
                case UInt8(ascii: "s"):
                    flush()
                    actions.append(.command(.spy))
                case UInt8(ascii: "?"), UInt8(ascii: "h"):
                    flush()
                    actions.append(.showHelp)
                default:
                    flush()
                    actions.append(.resume)
                }
            } else if byte == Self.detachKey {
                flush()
                actions.append(.detach)
                return actions
            } else if byte == Self.menuKey {
                flush()
                isOpen = true
                actions.append(.showMenu)
            } else {
                pending.append(byte)
            }
        }
        flush()
        return actions
    }

    /// The one-line menu shown on Ctrl-^.
    public static let menuLine =
        "menu: w who  r replay  f force write  s spy  . detach  ? help  (any other key: back)"

    /// The help `?` shows.
    public static let help = """
        Ctrl-] detaches. Ctrl-^ (Ctrl-6) opens this menu; then:
          w   who is attached (rw: the writer; spy: read-only)
          r   replay the last \(replayLines) lines
          f   force write access (the writer becomes a spy and is told)
          s   give write access up (become a spy)
          .   detach
          Ctrl-^  send a Ctrl-^ to the guest
          any other key: back to the console
        """
}
