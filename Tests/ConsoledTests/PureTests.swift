import Consoled
import Testing

@Suite("consoled: escape filter")
struct EscapeFilterTests {
    func filtered(_ text: String, chunk: Int = Int.max) -> String {
        var filter = EscapeFilter()
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            let end = min(bytes.count, index + chunk)
            filter.filter(bytes[index..<end], into: &out)
            index = end
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test(
        "colours, cursor movement, erasing and plain text pass unchanged, whole or a byte at a time"
    )
    func harmlessPasses() {
        let text =
            "\u{1b}[1;31mred\u{1b}[0m \u{1b}[2J\u{1b}[H\u{1b}[10;5H\tx\r\n\u{1b}(B\u{1b}7\u{1b}8é\u{7}"
        #expect(filtered(text) == text)
        #expect(filtered(text, chunk: 1) == text)
    }

    @Test("OSC title and clipboard writes are shown, not obeyed, whether BEL or ST ends them")
    func oscShown() {
        #expect(filtered("a\u{1b}]0;pwned\u{7}b") == "a^[]0;pwned^Gb")
        #expect(
            filtered("\u{1b}]52;c;ZWNobyBoaQ==\u{1b}\\ok", chunk: 1) == "^[]52;c;ZWNobyBoaQ==^[\\ok"
        )
        // An OSC that never ends costs nothing and shows its bytes.
        let long = String(repeating: "A", count: 100_000)
        #expect(filtered("\u{1b}]2;" + long) == "^[]2;" + long)
    }

    @Test("device-control strings, answerback and report requests are escaped")
    func requestsEscaped() {
        #expect(filtered("\u{1b}P+q544e\u{1b}\\") == "^[P+q544e^[\\")
        #expect(filtered("\u{5}") == "^E")
        #expect(filtered("\u{1b}[c\u{1b}[>0c\u{1b}[6n\u{1b}[21t") == "^[[c^[[>0c^[[6n^[[21t")
        #expect(filtered("\u{1b}[?1$p\u{1b}Z") == "^[[?1$p^[Z")
        #expect(
            filtered("\u{1b}_app\u{1b}\\\u{1b}^pm\u{7}\u{1b}Xsos\u{7}")
                == "^[_app^[\\^[^pm^G^[Xsos^G")
    }

    @Test(
        "a CSI longer than the bound is shown, not buffered; other C0 controls use caret notation")
    func bounded() {
        let params = String(repeating: "1;", count: 100)
        let out = filtered("\u{1b}[" + params + "m after", chunk: 7)
        #expect(out.hasPrefix("^[[1;1;"))
        #expect(out.hasSuffix("m after"))
        var filter = EscapeFilter()
        var sink: [UInt8] = []
        filter.filter(Array(("\u{1b}[" + params).utf8), into: &sink)
        #expect(!filter.isHoldingSequence || sink.count > 0)
        #expect(filtered("\u{0}\u{e}\u{f}\u{7f}") == "^@^N^O\u{7f}")
    }
}

@Suite("consoled: replay history, byte queue, rate limiter, wire")
struct BufferTests {
    @Test(
        "the history replays the last N lines and the unfinished one; it never grows past its capacity"
    )
    func history() {
        var history = ReplayHistory(capacity: 100)
        for line in 0..<30 { history.append(Array("line \(line)\n".utf8)) }
        history.append(Array("# ".utf8))
        #expect(String(decoding: history.lastLines(2), as: UTF8.self) == "line 28\nline 29\n# ")
        #expect(String(decoding: history.lastLines(0), as: UTF8.self) == "# ")
        #expect(history.count == 100)
        // More lines asked than held: what is held, no more.
        #expect(history.lastLines(1000).count == 100)
        var big = ReplayHistory(capacity: 16)
        big.append(Array(repeating: UInt8(ascii: "x"), count: 1000) + Array("\nend".utf8))
        #expect(String(decoding: big.lastLines(5), as: UTF8.self) == "xxxxxxxxxxxx\nend")
    }

    @Test("a full byte queue drops its oldest bytes and counts them")
    func queue() {
        var queue = ByteQueue(capacity: 8)
        #expect(queue.append(Array("abcdef".utf8)) == 0)
        #expect(queue.append(Array("ghij".utf8)) == 2)
        var seen: [UInt8] = []
        while !queue.isEmpty {
            queue.withContiguousFront { bytes in
                seen += bytes
                return bytes.count
            }
        }
        #expect(String(decoding: seen, as: UTF8.self) == "cdefghij")
        #expect(queue.takeDropped() == 2)
        #expect(queue.takeDropped() == 0)
        #expect(queue.append(Array(repeating: 1, count: 20)) == 12)
        #expect(queue.count == 8)
    }

    @Test("the rate limiter lets a burst through, then the rate, and says when tokens are back")
    func limiter() {
        var limiter = RateLimiter(rate: 1000, burst: 500, now: 0)
        #expect(limiter.allowance(now: 0) == 500)
        limiter.consume(500)
        #expect(limiter.allowance(now: 0) == 0)
        #expect(limiter.delay(until: 100, now: 0) == 100_000_000)
        #expect(limiter.allowance(now: 100_000_000) == 100)
        // A long quiet spell refills to the burst, not beyond.
        #expect(limiter.allowance(now: 10_000_000_000) == 500)
        // Over 10 s at most burst + rate × 10 bytes pass.
        var strict = RateLimiter(rate: 1000, burst: 500, now: 0)
        var taken = 0
        for step in 0...1000 {
            let now = UInt64(step) * 10_000_000
            let allowed = strict.allowance(now: now)
            strict.consume(allowed)
            taken += allowed
        }
        #expect(taken <= 500 + 10_000 && taken >= 10_000)
    }

    @Test("frames decode fed whole and a byte at a time; a frame too long or unknown is refused")
    func wire() throws {
        let frames: [ConsoleFrame] = [
            .hello(
                ConsoleHello(
                    domain: "demo", request: .force, replay: 7, raw: true, user: "root",
                    origin: "ttyS0")),
            .input(Array("ls\r".utf8)), .command(.replay(5)), .command(.who), .notice("hi"),
            .mode(.spy), .accepted(ConsoleAccepted(domainName: "demo", domainID: 3, mode: .write)),
            .output([0, 1, 2, 0x1b]), .refused("no"),
        ]
        let bytes = frames.flatMap(\.encoded)
        var whole = ConsoleFrameDecoder()
        whole.feed(bytes)
        var decoded: [ConsoleFrame] = []
        while let frame = try whole.next() { decoded.append(frame) }
        #expect(decoded == frames)
        var single = ConsoleFrameDecoder()
        decoded = []
        for byte in bytes {
            single.feed([byte])
            while let frame = try single.next() { decoded.append(frame) }
        }
        #expect(decoded == frames)
        var bad = ConsoleFrameDecoder()
        bad.feed([UInt8(ascii: "O"), 0xff, 0xff])
        #expect(throws: ConsoledError.self) { try bad.next() }
        var unknown = ConsoleFrameDecoder()
        unknown.feed([UInt8(ascii: "Z"), 0, 0])
        #expect(throws: ConsoledError.self) { try unknown.next() }
    }

    @Test("log file names keep only safe characters")
    func logNames() {
        #expect(ConsoleServer.logFileName("demo") == "guest-demo.log")
        #expect(ConsoleServer.logFileName("../../etc/x") == "guest-_._.._etc_x.log")
        #expect(ConsoleServer.logFileName("a b/c") == "guest-a_b_c.log")
    }
}

@Suite("consoled: escape menu")
struct EscapeMenuTests {
    @Test("Ctrl-] anywhere in a chunk detaches at once: bytes before go to the guest, none after")
    func detachInAnyChunk() {
        var menu = EscapeMenu()
        #expect(
            menu.feed(Array("abc\u{1d}true; echo".utf8)) == [.forward(Array("abc".utf8)), .detach])
        var first = EscapeMenu()
        #expect(first.feed([0x1d]) == [.detach])
        var open = EscapeMenu()
        #expect(open.feed([0x1e]) == [.showMenu])
        #expect(open.feed([0x1d, 0x61]) == [.detach])
    }

    @Test(
        "menu keys: w who, r replay, f force, s spy, . detach, ? help; Ctrl-^ twice sends one; others go back"
    )
    func keys() {
        var menu = EscapeMenu()
        #expect(menu.feed([0x1e, UInt8(ascii: "w")]) == [.showMenu, .command(.who)])
        #expect(!menu.isOpen)
        #expect(
            menu.feed(Array("ab\u{1e}fls".utf8)) == [
                .forward(Array("ab".utf8)), .showMenu, .command(.force), .forward(Array("ls".utf8)),
            ])
        #expect(
            menu.feed(Array("\u{1e}r".utf8)) == [
                .showMenu, .command(.replay(EscapeMenu.replayLines)),
            ])
        #expect(menu.feed(Array("\u{1e}s".utf8)) == [.showMenu, .command(.spy)])
        #expect(menu.feed(Array("\u{1e}?".utf8)) == [.showMenu, .showHelp])
        #expect(menu.feed(Array("\u{1e}z".utf8)) == [.showMenu, .resume])
        #expect(menu.feed([0x1e, 0x1e, 0x41]) == [.showMenu, .forward([0x1e, 0x41])])
        // The key may come in the next chunk (a human types it later).
        #expect(menu.feed([0x1e]) == [.showMenu])
        #expect(menu.isOpen)
        #expect(menu.feed(Array(".rest".utf8)) == [.detach])
    }
}
