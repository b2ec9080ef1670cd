import Consoled
import DataPath
import LinuxSystem
import Synchronization
import Testing
import XenBus
import XenBusTesting

#if canImport(Glibc)
    import Glibc
#endif

@Suite("consoled: the server over fake rings", .serialized)
struct ServerTests {
    @Test(
        "output crosses the wrapping ring in order to the client and the log; input goes back in pieces"
    )
    func wrapAroundAndPartial() async throws {
        let harness = try Harness()
        // Indices near 2^32: the guest's 10 KiB wrap the free-running
        // counters and the 2 KiB ring several times.
        let guest = try harness.addGuest(3, name: "wrap", startIndex: UInt32.max - 700)
        let client = try harness.connect("wrap")
        #expect(client.wait { $0.accepted != nil })
        var expected = ""
        for line in 0..<400 { expected += "line \(line) of the wrap test\n" }
        try guest.writeAll(expected)
        #expect(client.wait { $0.text.count >= expected.count })
        #expect(client.text == expected)
        // 3000 typed bytes into a 1 KiB input ring: they arrive whole, in
        // order, as the guest reads.
        let typed = (0..<3000).map { UInt8(ascii: "a") + UInt8($0 % 26) }
        try client.send(.input(typed))
        var received: [UInt8] = []
        #expect(
            eventually {
                received += (try? guest.readInput()) ?? []
                return received.count >= typed.count
            })
        #expect(received == typed)
        let log = harness.logText("wrap")
        #expect(log.contains("line 399 of the wrap test"))
        await harness.stop()
    }

    @Test("two clients receive the same bytes; a spy's input is ignored and it is told")
    func twoClientsAndSpy() async throws {
        let harness = try Harness()
        let guest = try harness.addGuest(4, name: "pair")
        let writer = try harness.connect("pair")
        let spy = try harness.connect("pair", request: .spy)
        #expect(writer.wait { $0.accepted?.mode == .write })
        #expect(spy.wait { $0.accepted?.mode == .spy })
        try guest.writeAll("hello both\r\n# ")
        #expect(writer.wait { $0.text.hasSuffix("# ") })
        #expect(spy.wait { $0.text.hasSuffix("# ") })
        #expect(writer.text == spy.text)
        try spy.type("rm -rf /\r")
        #expect(spy.wait { $0.notices.contains { $0.contains("spy") && $0.contains("ignored") } })
        try writer.type("uptime\r")
        var received: [UInt8] = []
        #expect(
            eventually {
                received += (try? guest.readInput()) ?? []
                return received.count >= 7
            })
        #expect(String(decoding: received, as: UTF8.self) == "uptime\r")
        // A second read-write attach while a writer exists becomes a spy.
        let third = try harness.connect("pair")
        #expect(third.wait { $0.accepted != nil })
        #expect(third.accepted?.mode == .spy)
        await harness.stop()
    }

    @Test(
        "a forced attach bumps the writer to spy and tells it; attach, bump and detach are logged")
    func forceBumps() async throws {
        let harness = try Harness()
        let guest = try harness.addGuest(5, name: "force")
        let first = try harness.connect("force", user: "alice")
        #expect(first.wait { $0.accepted?.mode == .write })
        let second = try harness.connect("force", request: .force, user: "bob")
        #expect(second.wait { $0.accepted?.mode == .write })
        #expect(first.wait { $0.modes.last == .spy })
        #expect(first.notices.contains { $0.contains("bob") && $0.contains("spy") })
        try first.type("from alice\r")
        try second.type("from bob\r")
        var received: [UInt8] = []
        #expect(
            eventually {
                received += (try? guest.readInput()) ?? []
                return received.count >= 9
            })
        usleep(100_000)
        received += try guest.readInput()
        #expect(String(decoding: received, as: UTF8.self) == "from bob\r")
        // Escape menu commands: who lists both, force takes write back.
        try first.send(.command(.who))
        #expect(
            first.wait {
                $0.notices.contains {
                    $0.contains("2 attached") && $0.contains("alice") && $0.contains("bob")
                }
            })
        try first.send(.command(.force))
        #expect(second.wait { $0.modes.last == .spy })
        try second.descriptor.close()
        let log = { harness.logText("force") }
        #expect(eventually { log().contains("detach bob") })
        let text = log()
        #expect(text.contains("attach read-write by alice"))
        #expect(text.contains("attach read-write by bob"))
        #expect(text.contains("bump alice (uid"))
        #expect(text.contains("from test"))
        await harness.stop()
    }

    @Test("attach replays the last lines and the prompt")
    func replay() async throws {
        let harness = try Harness()
        let guest = try harness.addGuest(6, name: "replay")
        var text = ""
        for line in 0..<40 { text += "boot message \(line)\n" }
        try guest.writeAll(text + "demo login: ")
        #expect(eventually { harness.logText("replay").contains("boot message 39") })
        let client = try harness.connect("replay", replay: 3)
        #expect(client.wait { $0.text.hasSuffix("login: ") })
        #expect(client.text == "boot message 37\nboot message 38\nboot message 39\ndemo login: ")
        await harness.stop()
    }

    @Test(
        "a stalled client does not stall the guest or the other client; it loses its oldest output, counted"
    )
    func stalledClient() async throws {
        let harness = try Harness { settings in
            settings.rateBytesPerSecond = 1 << 30
            settings.burstBytes = 1 << 30
            settings.clientBufferBytes = 64 * 1024
        }
        let guest = try harness.addGuest(7, name: "stall")
        let stalled = try harness.connect("stall", request: .spy)
        let reader = try harness.connect("stall", request: .spy)
        #expect(stalled.wait { $0.accepted != nil })
        #expect(reader.wait { $0.accepted != nil })
        // 2 MiB: far more than the stalled client's socket and queue hold.
        let line = String(repeating: "x", count: 1023) + "\n"
        let total = 2048
        // A thread of its own, as a guest's vCPU: the test's cooperative
        // threads block while they pump.
        let written = Atomic<Int>(0)
        try Threads.spawn(name: "guest-writer") {
            for _ in 0..<total {
                guard (try? guest.writeAll(line)) != nil else { return }
                written.add(1, ordering: .relaxed)
            }
        }
        #expect(reader.wait(20) { $0.output.count >= total * line.utf8.count })
        #expect(eventually { written.load(ordering: .relaxed) == total })
        #expect(reader.output.count == total * line.utf8.count)
        // Now the stalled client reads: a notice counts what it lost.
        #expect(stalled.wait(5) { $0.notices.contains { $0.contains("dropped") } })
        stalled.pump(0.3)
        #expect(stalled.output.count < total * line.utf8.count)
        await harness.stop()
    }

    @Test("a flooding guest is held to its rate; another guest's console answers at once meanwhile")
    func rateLimit() async throws {
        let harness = try Harness { settings in
            settings.rateBytesPerSecond = 40_000
            settings.burstBytes = 8_000
        }
        let flood = try harness.addGuest(8, name: "flood")
        let quiet = try harness.addGuest(9, name: "quiet")
        let floodClient = try harness.connect("flood", request: .spy)
        let quietClient = try harness.connect("quiet")
        #expect(floodClient.wait { $0.accepted != nil } && quietClient.wait { $0.accepted != nil })
        let stop = Atomic<Bool>(false)
        let started = monotonicSeconds()
        let finished = Atomic<Bool>(false)
        try Threads.spawn(name: "guest-flood") {
            let chunk = [UInt8](repeating: UInt8(ascii: "f"), count: 2048)
            while !stop.load(ordering: .relaxed) {
                if (try? flood.write(chunk)) == 0 { usleep(200) }
            }
            finished.store(true, ordering: .releasing)
        }
        usleep(300_000)
        // The other guest's output reaches its client within a second.
        let sent = monotonicSeconds()
        try quiet.writeAll("pong\r\n")
        #expect(quietClient.wait(1) { $0.text.contains("pong") })
        #expect(monotonicSeconds() - sent < 1)
        floodClient.pump(1.5)
        stop.store(true, ordering: .relaxed)
        #expect(eventually { finished.load(ordering: .acquiring) })
        let elapsed = monotonicSeconds() - started
        let received = Double(floodClient.output.count)
        // burst + rate × time, with room for timer slack; the guest tried
        // to write far more (its ring stayed full).
        #expect(received <= 8_000 + 40_000 * elapsed + 4096)
        #expect(received >= 40_000 * (elapsed - 0.5))
        let throttles = harness.onWorker { $0.counters(DomainID(8))?.throttles ?? 0 } ?? 0
        #expect(throttles > 0)
        await harness.stop()
    }

    @Test(
        "escape sequences are shown escaped to clients, raw clients get every byte; the log keeps them"
    )
    func escapeFilterOnTheWire() async throws {
        let harness = try Harness()
        let guest = try harness.addGuest(10, name: "hostile")
        let safe = try harness.connect("hostile")
        let raw = try harness.connect("hostile", request: .spy, raw: true)
        #expect(safe.wait { $0.accepted != nil } && raw.wait { $0.accepted != nil })
        let hostile =
            "\u{1b}]52;c;cm0gLXJmIC8K\u{7}\u{1b}[21t\u{1b}P$q\"p\u{1b}\\\u{5}\u{1b}[32mok\u{1b}[0m\n"
        try guest.writeAll(hostile)
        #expect(safe.wait { $0.text.hasSuffix("\n") })
        #expect(raw.wait { $0.text.hasSuffix("\n") })
        #expect(safe.text == "^[]52;c;cm0gLXJmIC8K^G^[[21t^[P$q\"p^[\\^E\u{1b}[32mok\u{1b}[0m\n")
        #expect(raw.text == hostile)
        #expect(!safe.output.contains(0x07) && !safe.output.contains(0x05))
        await harness.stop()
    }

    @Test(
        "log lines are timestamped and rotated past their cap; unread ring output is taken on a restart"
    )
    func logsAndRestart() async throws {
        let harness = try Harness { settings in
            settings.logMaximumBytes = 8192
            settings.logKeep = 2
        }
        let guest = try FakeGuest(
            domain: DomainID(11), grants: harness.grants, events: harness.events)
        // Written while no consoled ran: the notification went nowhere.
        try guest.write(Array("written while consoled was down\n".utf8))
        try harness.serve(guest, name: "rotate")
        #expect(
            eventually { harness.logText("rotate").contains("written while consoled was down") })
        #expect(try guest.unreadOutput() == 0)
        // A restarted consoled: the session goes (as with the process) and
        // a new one adopts the page's indices; output since is not lost
        // and not repeated.
        harness.removeGuest(guest)
        try guest.write(Array("written during the restart\n".utf8))
        try harness.serve(guest, name: "rotate")
        #expect(eventually { harness.logText("rotate").contains("written during the restart") })
        let once = harness.logText("rotate").ranges(of: "written while consoled was down").count
        #expect(once == 1)
        for line in 0..<600 { try guest.writeAll("rotation line \(line)\n") }
        let directory = harness.settings.logDirectory
        #expect(eventually { harness.logText("rotate").contains("rotation line 599") })
        #expect(Files.exists("\(directory)/guest-rotate.log.1"))
        #expect(Files.exists("\(directory)/guest-rotate.log.2"))
        #expect(!Files.exists("\(directory)/guest-rotate.log.3"))
        let current = harness.logText("rotate")
        #expect(current.utf8.count <= 8192 + 64)
        let stamp = #/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (rotation line \d+|\[consoled\] .*)$/#
        for line in current.split(separator: "\n") {
            #expect(line.wholeMatch(of: stamp) != nil, "unstamped log line: \(line)")
        }
        await harness.stop()
    }

    @Test("a guest scribbling on its indices is resynchronised and its console goes on")
    func hostileIndices() async throws {
        let harness = try Harness()
        let guest = try harness.addGuest(12, name: "scribble")
        let client = try harness.connect("scribble")
        #expect(client.wait { $0.accepted != nil })
        // out_prod far beyond out_cons: more than the ring holds.
        guest.grant.bytes.storeBytes(
            of: UInt32(1_000_000), toByteOffset: ConsoleRingLayout.outputProducerOffset,
            as: UInt32.self)
        try guest.channel.notify(guest.port)
        #expect(
            eventually { (harness.onWorker { $0.counters(DomainID(12))?.faults ?? 0 } ?? 0) > 0 })
        // The guest starts over from where the index now is.
        let front = try ConsoleFrontRingBox(attaching: guest.grant.bytes)
        try front.write("after the fault\n")
        try guest.channel.notify(guest.port)
        #expect(client.wait { $0.text.contains("after the fault") })
        #expect(harness.faults.all.isEmpty)
        await harness.stop()
    }

    @Test(
        "an unknown domain is refused with the names served; a released domain closes its clients")
    func refusalAndRelease() async throws {
        let harness = try Harness()
        let guest = try harness.addGuest(13, name: "leaving")
        let nobody = try harness.connect("nosuch")
        #expect(nobody.wait { $0.refused != nil })
        #expect(nobody.refused?.contains("leaving") == true)
        #expect(nobody.wait { $0.closed })
        let client = try harness.connect("13")
        #expect(client.wait { $0.accepted?.domainName == "leaving" })
        harness.removeGuest(guest)
        #expect(client.wait { $0.closed })
        #expect(client.notices.contains { $0.contains("gone") })
        await harness.stop()
    }
}

/// The guest re-attaching to its page after a fault (adopting the
/// indices as they are).
final class ConsoleFrontRingBox {
    var ring: ConsoleFrontRing
    init(attaching bytes: UnsafeMutableRawBufferPointer) throws {
        ring = try ConsoleFrontRing(attaching: bytes)
    }
    func write(_ text: String) throws {
        _ = try Array(text.utf8).withUnsafeBytes { try ring.writeOutput($0) }
    }
}
