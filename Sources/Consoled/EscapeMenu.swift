/// `xm console`'s keyboard: Ctrl-] opens the escape menu, whatever chunk
/// of input it arrives in (bytes before it still go to the guest, none
/// after it do). A menu key then acts; with no key within
/// ``timeout`` the client detaches, so Ctrl-] alone detaches as in xm.
///
///     Ctrl-] .   Ctrl-] Ctrl-]   Ctrl-] Enter   detach at once
///     Ctrl-] w   who is attached        Ctrl-] r   replay the last lines
///     Ctrl-] f   force write access     Ctrl-] s   give write access up
///     Ctrl-] ?   help                   any other key: back to the console
public struct EscapeMenu: Sendable {
    /// Ctrl-].
    public static let escape: UInt8 = 0x1d
    /// Nanoseconds the menu waits for a key before detaching.
    public static let timeout: UInt64 = 1_500_000_000
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

    private var openedAt: UInt64?

    public init() {}

    /// Whether the menu is open.
    public var isOpen: Bool { openedAt != nil }

    /// Interprets typed bytes at time `now` (monotonic ns). After
    /// `.detach` the rest is ignored.
    public mutating func feed(_ bytes: [UInt8], now: UInt64) -> [Action] {
        var actions: [Action] = []
        var pending: [UInt8] = []
        for byte in bytes {
            if openedAt != nil {
                openedAt = nil
                switch byte {
                case UInt8(ascii: "."), Self.escape, 0x0d, 0x0a, UInt8(ascii: "q"):
                    if !pending.isEmpty { actions.append(.forward(pending)) }
                    actions.append(.detach)
                    return actions
                case UInt8(ascii: "w"): actions.append(.command(.who))
                case UInt8(ascii: "r"): actions.append(.command(.replay(Self.replayLines)))
                case UInt8(ascii: "f"): actions.append(.command(.force))
                case UInt8(ascii: "s"): actions.append(.command(.spy))
                case UInt8(ascii: "?"), UInt8(ascii: "h"): actions.append(.showHelp)
                default: actions.append(.resume)
                }
            } else if byte == Self.escape {
                if !pending.isEmpty {
                    actions.append(.forward(pending))
                    pending = []
                }
                openedAt = now
                actions.append(.showMenu)
            } else {
                pending.append(byte)
            }
        }
        if !pending.isEmpty { actions.append(.forward(pending)) }
        return actions
    }

    /// Whether the open menu waited long enough: detach.
    public func expired(now: UInt64) -> Bool {
        guard let openedAt else { return false }
        return now >= openedAt + Self.timeout
    }

    /// Nanoseconds until ``expired(now:)``, nil while closed.
    public func remaining(now: UInt64) -> UInt64? {
        guard let openedAt else { return nil }
        return openedAt + Self.timeout > now ? openedAt + Self.timeout - now : 0
    }

    /// The one-line menu shown on Ctrl-].
    public static let menuLine =
        "menu: . detach  w who  r replay  f force write  s spy  ? help  (detaching in 1.5 s)"

    /// The help `?` shows.
    public static let help = """
        Ctrl-] opens this menu; then:
          .  Ctrl-]  Enter   detach now (also after 1.5 s without a key)
          w   who is attached (rw: the writer; spy: read-only)
          r   replay the last \(replayLines) lines
          f   force write access (the writer becomes a spy and is told)
          s   give write access up (become a spy)
          any other key: back to the console
        """
}
