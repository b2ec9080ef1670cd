import Synchronization
import Testing

@testable import InMemoryXenStore
@testable import XenStore

/// Runs `body` with a fresh store and a dom0 client, stopping the store
/// afterwards.
func withStore<R>(
    _ body: (InMemoryXenStore, XenStoreClient) async throws -> R
) async throws -> R {
    let store = InMemoryXenStore()
    defer { store.stop() }
    let dom0 = try store.connect()
    defer { dom0.close() }
    return try await body(store, dom0)
}

/// The next event of `watch`, failing the test instead of waiting forever.
func nextEvent(_ watch: XenStoreWatch, within milliseconds: Int = 2000) async throws -> String? {
    try await withThrowingTaskGroup(of: String?.self) { group in
        group.addTask { try await watch.next()?.path }
        group.addTask {
            try await Task.sleep(for: .milliseconds(milliseconds))
            return "<timeout>"
        }
        let first = try await group.next() ?? nil
        group.cancelAll()
        return first
    }
}

/// Expects no event within a short while.
func expectQuiet(_ watch: XenStoreWatch, _ comment: Comment? = nil) async throws {
    let event = try await nextEvent(watch, within: 100)
    #expect(event == "<timeout>", comment)
}

@Suite(.timeLimit(.minutes(1))) struct NodeTests {
    @Test func writeReadMkdirDirectoryRemove() async throws {
        try await withStore { store, xs in
            try await xs.write("/local/domain/5/name", "guest")
            #expect(try await xs.read("/local/domain/5/name") == "guest")
            // Parents were created with empty values.
            #expect(try await xs.read("/local/domain/5") == "")
            #expect(try await xs.directory("/local/domain") == ["5"])
            try await xs.mkdir("/local/domain/5/device/vbd")
            try await xs.mkdir("/local/domain/5/device/vbd")  // existing: fine
            #expect(try await xs.directory("/local/domain/5") == ["name", "device"])
            try await xs.write("/bin", bytes: [0, 1, 0xff])
            #expect(try await xs.readBytes("/bin") == [0, 1, 0xff])

            try await xs.remove("/local/domain/5")
            #expect(try await xs.readIfPresent("/local/domain/5/name") == nil)
            #expect(try await xs.directory("/local/domain") == [])
            try await xs.remove("/local/domain/5")  // missing: fine
            try await xs.remove("/no/such/parent")  // missing parent: still fine for the client
            await #expect(throws: XenStoreError.noEntry("/nothing")) {
                try await xs.read("/nothing")
            }
            await #expect(throws: XenStoreError.noEntry("/nothing")) {
                try await xs.directory("/nothing")
            }
            await #expect(throws: XenStoreError.errno("EINVAL", request: "RM /")) {
                try await xs.remove("/")
            }
            #expect(store.value(at: "/bin") == "\u{0}\u{1}\u{FFFD}")
        }
    }

    @Test func domainPathAndRelativePaths() async throws {
        try await withStore { store, dom0 in
            #expect(try await dom0.domainPath(7) == "/local/domain/7")
            try await dom0.mkdir("/local/domain/7")
            try await dom0.setPermissions("/local/domain/7", [.init(domid: 7, access: .none)])
            let guest = try store.connect(domid: 7)
            try await guest.write("data/x", "rel")
            #expect(store.value(at: "/local/domain/7/data/x") == "rel")
            #expect(try await guest.read("/local/domain/7/data/x") == "rel")
            #expect(try await guest.directory("data") == ["x"])
            // Dom0's relative paths are under /local/domain/0.
            try await dom0.write("name", "Domain-0")
            #expect(store.value(at: "/local/domain/0/name") == "Domain-0")
        }
    }

    @Test func permissionsInheritAndGuestsOwnWhatTheyCreate() async throws {
        try await withStore { store, dom0 in
            try await dom0.mkdir("/local/domain/4")
            try await dom0.setPermissions(
                "/local/domain/4",
                [.init(domid: 4, access: .none), .init(domid: 9, access: .read)])
            // Dom0 creating below: perms copied from the parent.
            try await dom0.write("/local/domain/4/by0", "x")
            #expect(
                try await dom0.permissions("/local/domain/4/by0") == [
                    .init(domid: 4, access: .none), .init(domid: 9, access: .read),
                ])
            // The guest creating: it becomes the owner, the rest inherited.
            let guest = try store.connect(domid: 4)
            try await guest.write("/local/domain/4/a/b", "y")
            #expect(
                store.permissions(of: "/local/domain/4/a/b") == [
                    .init(domid: 4, access: .none), .init(domid: 9, access: .read),
                ])
            #expect(
                try await guest.permissions("/local/domain/4/a")
                    == store.permissions(of: "/local/domain/4/a"))
        }
    }

    @Test func guestPermissionDenials() async throws {
        try await withStore { store, dom0 in
            // Frontend dir owned by 3 with read for dom0's backend; backend
            // dir owned by dom0 with read for 3 (the architecture's layout).
            try await dom0.mkdir("/local/domain/3/device/vbd/51712")
            try await dom0.setPermissions(
                "/local/domain/3/device/vbd/51712",
                [.init(domid: 3, access: .none), .init(domid: 0, access: .read)])
            try await dom0.write("/local/domain/0/backend/vbd/3/51712/state", "1")
            try await dom0.setPermissions(
                "/local/domain/0/backend/vbd/3/51712",
                [.init(domid: 0, access: .none), .init(domid: 3, access: .read)])
            try await dom0.setPermissions(
                "/local/domain/0/backend/vbd/3/51712/state",
                [.init(domid: 0, access: .none), .init(domid: 3, access: .read)])
            try await dom0.write("/secret", "s")
            let guest = try store.connect(domid: 3)

            // Its own node: full access.
            try await guest.write("/local/domain/3/device/vbd/51712/state", "3")
            // The backend: read but not write.
            #expect(try await guest.read("/local/domain/0/backend/vbd/3/51712/state") == "1")
            let denied = XenStoreError.permissionDenied("/local/domain/0/backend/vbd/3/51712/state")
            await #expect(throws: denied) {
                try await guest.write("/local/domain/0/backend/vbd/3/51712/state", "6")
            }
            await #expect(throws: denied) {
                try await guest.remove("/local/domain/0/backend/vbd/3/51712/state")
            }
            // Dom0-only nodes: no read, no create below, and a missing node
            // there is reported as EACCES too, revealing nothing.
            await #expect(throws: XenStoreError.permissionDenied("/secret")) {
                try await guest.read("/secret")
            }
            await #expect(throws: XenStoreError.permissionDenied("/secret/x")) {
                try await guest.write("/secret/x", "1")
            }
            await #expect(throws: XenStoreError.permissionDenied("/missing")) {
                try await guest.read("/missing")
            }
            await #expect(throws: XenStoreError.permissionDenied("/")) {
                try await guest.directory("/")
            }
            // Only dom0 may give a node away, and domain operations are dom0's.
            await #expect(
                throws: XenStoreError.permissionDenied("/local/domain/3/device/vbd/51712")
            ) {
                try await guest.setPermissions(
                    "/local/domain/3/device/vbd/51712", [.init(domid: 5, access: .both)])
            }
            await #expect(throws: XenStoreError.permissionDenied("domain 8")) {
                try await guest.introduceDomain(8, mfn: 1, eventChannel: 1)
            }
            await #expect(throws: XenStoreError.permissionDenied("domain 3")) {
                try await guest.releaseDomain(3)
            }
            // The owner may change the rest of its list.
            try await guest.setPermissions(
                "/local/domain/3/device/vbd/51712",
                [.init(domid: 3, access: .none), .init(domid: 0, access: .both)])
            #expect(store.value(at: "/local/domain/3/device/vbd/51712/state") == "3")
            #expect(store.value(at: "/secret/x") == nil)
        }
    }

    @Test func introduceReleaseAndQueries() async throws {
        try await withStore { store, dom0 in
            #expect(try await dom0.isDomainIntroduced(0))
            #expect(try await dom0.isDomainIntroduced(6) == false)
            try await dom0.introduceDomain(6, mfn: 0xfeff0, eventChannel: 3)
            #expect(try await dom0.isDomainIntroduced(6))
            #expect(store.isIntroduced(6))
            try await dom0.resumeDomain(6)
            try await dom0.releaseDomain(6)
            #expect(try await dom0.isDomainIntroduced(6) == false)
            await #expect(throws: XenStoreError.noEntry("domain 6")) {
                try await dom0.releaseDomain(6)
            }
            await #expect(throws: XenStoreError.self) {
                try await dom0.introduceDomain(0, mfn: 1, eventChannel: 1)
            }
            #expect(try await dom0.control(["help"]).contains("print"))
        }
    }

    @Test func largeDirectoryIsFetchedInParts() async throws {
        try await withStore { store, dom0 in
            // 600 children of 10 bytes with NULs: 6000 bytes, over one reply.
            let names = (0..<600).map { "child-\(1000 + $0)" }
            try await dom0.transaction { tx in
                for name in names { try await tx.mkdir("/big/\(name)") }
            }
            #expect(store.children(of: "/big")?.count == 600)
            #expect(try await dom0.directory("/big") == names)
            await #expect(throws: XenStoreError.errno("E2BIG", request: "DIRECTORY /big")) {
                try await dom0.perform(.directory("/big"), transaction: 0)
            }
        }
    }

    @Test func manyConcurrentRequestsOnOneConnection() async throws {
        try await withStore { store, dom0 in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        try await dom0.write("/c/\(index)", "v\(index)")
                        #expect(try await dom0.read("/c/\(index)") == "v\(index)")
                    }
                }
                try await group.waitForAll()
            }
            #expect(store.children(of: "/c")?.count == 200)
        }
    }
}

@Suite(.timeLimit(.minutes(1))) struct WatchTests {
    @Test func firesOnSetUpAndForChangesBelow() async throws {
        try await withStore { store, xs in
            let watch = try await xs.watch("/local/domain/1/device")
            #expect(try await nextEvent(watch) == "/local/domain/1/device")
            try await xs.write("/local/domain/1/device/vif/0/state", "1")
            #expect(try await nextEvent(watch) == "/local/domain/1/device/vif/0/state")
            try await xs.write("/local/domain/1/devices", "not below")  // prefix, not child
            try await xs.write("/local/domain/1/other", "x")
            try await expectQuiet(watch)
            try await xs.mkdir("/local/domain/1/device/vbd")
            #expect(try await nextEvent(watch) == "/local/domain/1/device/vbd")
            try await xs.setPermissions(
                "/local/domain/1/device/vbd", [.init(domid: 1, access: .none)])
            #expect(try await nextEvent(watch) == "/local/domain/1/device/vbd")
            // Removing a subtree fires once for its root.
            try await xs.remove("/local/domain/1/device/vif")
            #expect(try await nextEvent(watch) == "/local/domain/1/device/vif")
            try await expectQuiet(watch)
            // Removing a parent of the watched path fires with the watched path.
            try await xs.remove("/local/domain/1")
            #expect(try await nextEvent(watch) == "/local/domain/1/device")
            await watch.cancel()
            #expect(store.watchCount == 0)
            try await xs.write("/local/domain/1/device/x", "1")
            #expect(try await watch.next() == nil)
        }
    }

    @Test func iteratesAsAnAsyncSequence() async throws {
        try await withStore { store, xs in
            let watch = try await xs.watch("/seq")
            let writer = Task {
                for index in 0..<3 { try await xs.write("/seq/\(index)", "x") }
            }
            var seen: [String] = []
            for try await event in watch {
                seen.append(event.path)
                if seen.count == 4 { break }
            }
            try await writer.value
            #expect(seen == ["/seq", "/seq/0", "/seq/1", "/seq/2"])
            // A second loop continues after the first.
            try await xs.write("/seq/again", "x")
            for try await event in watch {
                #expect(event.path == "/seq/again")
                break
            }
        }
    }

    @Test func tokensAreUniqueSoTwoWatchesOnOnePathBothFire() async throws {
        try await withStore { store, xs in
            let first = try await xs.watch("/same")
            let second = try await xs.watch("/same")
            #expect(try await nextEvent(first) == "/same")
            #expect(try await nextEvent(second) == "/same")
            try await xs.write("/same", "1")
            #expect(try await nextEvent(first) == "/same")
            #expect(try await nextEvent(second) == "/same")
            await first.cancel()
            try await xs.write("/same", "2")
            #expect(try await nextEvent(second) == "/same")
            #expect(store.watchCount == 1)
        }
    }

    @Test func droppedWatchIsRemoved() async throws {
        try await withStore { store, xs in
            do {
                let watch = try await xs.watch("/dropped")
                #expect(try await nextEvent(watch) == "/dropped")
                #expect(store.watchCount == 1)
            }
            for _ in 0..<1000 where store.watchCount > 0 {
                try await Task.sleep(for: .milliseconds(1))
            }
            #expect(store.watchCount == 0)
        }
    }

    @Test func guestWatchesSeeOnlyWhatTheyMayRead() async throws {
        try await withStore { store, dom0 in
            try await dom0.mkdir("/local/domain/2")
            try await dom0.setPermissions("/local/domain/2", [.init(domid: 2, access: .none)])
            let guest = try store.connect(domid: 2)
            let own = try await guest.watch("control")  // relative
            #expect(try await nextEvent(own) == "control")
            let everything = try await guest.watch("/")
            #expect(try await nextEvent(everything) == "/")
            try await dom0.write("/local/domain/2/control/shutdown", "poweroff")
            #expect(try await nextEvent(own) == "control/shutdown")  // relative back
            #expect(try await nextEvent(everything) == "/local/domain/2/control/shutdown")
            try await dom0.write("/local/domain/0/private", "x")  // unreadable for 2
            try await expectQuiet(everything)
        }
    }

    @Test func specialWatches() async throws {
        try await withStore { store, dom0 in
            let introduced = try await dom0.watch("@introduceDomain")
            let released = try await dom0.watch("@releaseDomain")
            #expect(try await nextEvent(introduced) == "@introduceDomain")
            #expect(try await nextEvent(released) == "@releaseDomain")
            try await dom0.introduceDomain(9, mfn: 1, eventChannel: 2)
            #expect(try await nextEvent(introduced) == "@introduceDomain")
            try await expectQuiet(released)
            try await dom0.releaseDomain(9)
            #expect(try await nextEvent(released) == "@releaseDomain")
            // Ordinary writes do not fire special watches.
            try await dom0.write("/x", "1")
            try await expectQuiet(introduced)

            // A guest hears of releases only if the special node lets it read.
            let guest = try store.connect(domid: 4)
            let guestWatch = try await guest.watch("@releaseDomain")
            #expect(try await nextEvent(guestWatch) == "@releaseDomain")
            try await dom0.introduceDomain(10, mfn: 1, eventChannel: 2)
            try await dom0.releaseDomain(10)
            try await expectQuiet(guestWatch)
            try await dom0.setPermissions(
                "@releaseDomain", [.init(domid: 0, access: .none), .init(domid: 4, access: .read)])
            // The permission change itself fires (as xenstored's SET_PERMS does).
            #expect(try await nextEvent(guestWatch) == "@releaseDomain")
            try await expectQuiet(guestWatch)
            try await dom0.introduceDomain(10, mfn: 1, eventChannel: 2)
            try await dom0.releaseDomain(10)
            #expect(try await nextEvent(guestWatch) == "@releaseDomain")
        }
    }

    @Test func directWritesOfTheStoreFireWatches() async throws {
        try await withStore { store, xs in
            let watch = try await xs.watch("/direct")
            #expect(try await nextEvent(watch) == "/direct")
            try store.write("/direct/a", "1")
            #expect(try await nextEvent(watch) == "/direct/a")
            #expect(try await xs.read("/direct/a") == "1")
            try store.remove("/direct")
            #expect(try await nextEvent(watch) == "/direct")
            #expect(store.dump("/").contains("/ = \"\" (n0)"))
        }
    }

    @Test func resetWatchesStopsEvents() async throws {
        try await withStore { store, xs in
            let watch = try await xs.watch("/r")
            #expect(try await nextEvent(watch) == "/r")
            try await xs.resetWatches()
            #expect(store.watchCount == 0)
            try await xs.write("/r/x", "1")
            try await expectQuiet(watch)
        }
    }
}

@Suite(.timeLimit(.minutes(1))) struct TransactionTests {
    @Test func commitIsAtomicAndEventsWaitForIt() async throws {
        try await withStore { store, xs in
            let watch = try await xs.watch("/t")
            #expect(try await nextEvent(watch) == "/t")
            let other = try store.connect()
            try await xs.transaction { tx in
                try await tx.write("/t/a", "1")
                try await tx.write("/t/b", "2")
                #expect(try await tx.read("/t/a") == "1")
                // Not visible outside before the commit, and no events yet.
                #expect(try await other.readIfPresent("/t/a") == nil)
                try await expectQuiet(watch, "events before commit")
            }
            #expect(try await other.read("/t/b") == "2")
            var fired: Set<String?> = []
            fired.insert(try await nextEvent(watch))
            fired.insert(try await nextEvent(watch))
            #expect(fired == ["/t/a", "/t/b"])
            #expect(store.transactionCount == 0)
        }
    }

    @Test func conflictRetriesTheWholeBody() async throws {
        try await withStore { store, xs in
            try await xs.write("/counter", "0")
            let rival = try store.connect()
            let attempts = Mutex(0)
            let result = try await xs.transaction { tx in
                let attempt = attempts.withLock {
                    $0 += 1
                    return $0
                }
                let value = Int(try await tx.read("/counter")) ?? -1
                if attempt == 1 {
                    // Another writer changes what this transaction read.
                    try await rival.write("/counter", "100")
                }
                try await tx.write("/counter", String(value + 1))
                return value + 1
            }
            #expect(attempts.withLock { $0 } == 2)
            #expect(result == 101)
            #expect(try await xs.read("/counter") == "101")
        }
    }

    @Test func untouchedChangesDoNotConflict() async throws {
        try await withStore { store, xs in
            // Both parents exist: creating a child changes its parent, so
            // creating /mine and /theirs would both touch "/".
            try await xs.mkdir("/mine")
            try await xs.mkdir("/theirs")
            let rival = try store.connect()
            let attempts = Mutex(0)
            try await xs.transaction { tx in
                attempts.withLock { $0 += 1 }
                try await tx.write("/mine/a", "1")
                try await rival.write("/theirs/b", "2")
            }
            #expect(attempts.withLock { $0 } == 1)
            #expect(store.value(at: "/mine/a") == "1")
            #expect(store.value(at: "/theirs/b") == "2")
        }
    }

    @Test func conflictOnANodeReadAsMissing() async throws {
        try await withStore { store, xs in
            let rival = try store.connect()
            let attempts = Mutex(0)
            try await xs.transaction { tx in
                let attempt = attempts.withLock {
                    $0 += 1
                    return $0
                }
                if try await tx.readIfPresent("/lock") == nil {
                    if attempt == 1 { try await rival.write("/lock", "rival") }
                    try await tx.write("/lock", "me")
                }
            }
            #expect(attempts.withLock { $0 } == 2)
            #expect(store.value(at: "/lock") == "rival")
        }
    }

    @Test func exhaustedRetriesGiveAClearError() async throws {
        try await withStore { store, xs in
            let rival = try store.connect()
            let attempts = Mutex(0)
            await #expect(throws: XenStoreError.transactionRetriesExhausted(attempts: 3)) {
                try await xs.transaction(maxAttempts: 3) { tx in
                    let attempt = attempts.withLock {
                        $0 += 1
                        return $0
                    }
                    _ = try await tx.readIfPresent("/hot")
                    try await rival.write("/hot", String(attempt))
                    try await tx.write("/hot", "mine")
                }
            }
            #expect(attempts.withLock { $0 } == 3)
            #expect(store.transactionCount == 0)
        }
    }

    @Test func failingBodyAbandonsTheTransaction() async throws {
        struct Oops: Error {}
        try await withStore { store, xs in
            await #expect(throws: Oops.self) {
                try await xs.transaction { tx in
                    try await tx.write("/abandoned", "1")
                    throw Oops()
                }
            }
            #expect(store.value(at: "/abandoned") == nil)
            #expect(store.transactionCount == 0)
        }
    }

    @Test func removeAndPermissionsInsideATransaction() async throws {
        try await withStore { store, xs in
            try await xs.write("/tx/keep", "1")
            try await xs.write("/tx/drop/deep", "2")
            try await xs.transaction { tx in
                try await tx.remove("/tx/drop")
                try await tx.setPermissions("/tx/keep", [.init(domid: 5, access: .read)])
                #expect(try await tx.directory("/tx") == ["keep"])
                #expect(try await tx.permissions("/tx/keep") == [.init(domid: 5, access: .read)])
            }
            #expect(store.children(of: "/tx") == ["keep"])
            #expect(store.value(at: "/tx/drop/deep") == nil)
            #expect(store.permissions(of: "/tx/keep") == [.init(domid: 5, access: .read)])
        }
    }

    @Test func staleTransactionIDIsRejected() async throws {
        try await withStore { store, xs in
            let id = try await xs.startTransaction()
            try await xs.endTransaction(id, commit: false)
            await #expect(throws: XenStoreError.self) {
                try await xs.endTransaction(id, commit: true)
            }
            // Another connection cannot use it either.
            let id2 = try await xs.startTransaction()
            let other = try store.connect()
            await #expect(throws: XenStoreError.self) {
                try await other.perform(.read("/"), transaction: id2)
            }
            try await xs.endTransaction(id2, commit: false)
        }
    }
}
