import Foundation
import InMemoryXenStore
import Testing
import XenStore

@testable import Commands

/// Xen's own C clients (libxenstore, Debian's xenstore-utils) against the
/// in-memory store: the server speaks the protocol they expect, and our
/// `ls` prints what xenstore-ls prints. Runs when xenstore-utils is
/// installed (`apt-get install xenstore-utils`).
@Suite(
    .timeLimit(.minutes(1)),
    .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/xenstore-ls"))
)
struct InteropTests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a xenstore-utils tool against `socket` (libxenstore reads
    /// XENSTORED_PATH).
    static func tool(_ name: String, _ arguments: [String], socket: String) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/\(name)")
        process.arguments = arguments
        process.environment = ["XENSTORED_PATH": socket]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }

    @Test func readWriteListRemoveWithLibxenstore() async throws {
        try await withServedStore { store, socket in
            let xs = try store.connect()
            try await xs.write("/local/domain/0/name", "Domain-0")
            let write = try Self.tool("xenstore-write", ["/c/d", "from C"], socket: socket)
            #expect(write.status == 0, "\(write.stderr)")
            #expect(try await xs.read("/c/d") == "from C")
            let read = try Self.tool("xenstore-read", ["/local/domain/0/name"], socket: socket)
            #expect(read.stdout == "Domain-0\n")
            let missing = try Self.tool("xenstore-read", ["/missing"], socket: socket)
            #expect(missing.status != 0)
            let exists = try Self.tool("xenstore-exists", ["/c/d"], socket: socket)
            #expect(exists.status == 0)
            let chmod = try Self.tool("xenstore-chmod", ["/c/d", "b5", "r0"], socket: socket)
            #expect(chmod.status == 0, "\(chmod.stderr)")
            #expect(
                try await xs.permissions("/c/d") == [
                    .init(domid: 5, access: .both), .init(domid: 0, access: .read),
                ])
            let remove = try Self.tool("xenstore-rm", ["/c"], socket: socket)
            #expect(remove.status == 0)
            #expect(store.value(at: "/c") == nil)
        }
    }

    @Test func largeDirectoryThroughDirectoryPart() async throws {
        try await withServedStore { store, socket in
            let names = (0..<500).map { "child-\(1000 + $0)" }
            let xs = try store.connect()
            try await xs.transaction { tx in
                for name in names { try await tx.mkdir("/big/\(name)") }
            }
            // 5500 bytes of names: libxenstore must fall back to DIRECTORY_PART.
            let list = try Self.tool("xenstore-list", ["/big"], socket: socket)
            #expect(list.status == 0, "\(list.stderr)")
            #expect(list.stdout.split(separator: "\n").map(String.init) == names)
        }
    }

    @Test func lsMatchesXenstoreLs() async throws {
        try await withServedStore { store, socket in
            let xs = try store.connect()
            try await xs.write("/local/domain/0/name", "Domain-0")
            try await xs.write("/local/domain/3/device/vif/0/mac", "00:16:3e:00:00:03")
            try await xs.write("/vm/x", "a\\b\t\"q\"\u{1}\n")
            try await xs.mkdir("/tool")
            let theirs = try Self.tool("xenstore-ls", ["/"], socket: socket)
            #expect(theirs.status == 0)
            let lines = Lines()
            let command = try Proxenos.parseAsRoot(["xenstore", "ls", "--socket", socket])
            guard let list = command as? XenStoreCommand.List else {
                Issue.record("not ls")
                return
            }
            try await list.execute(output: lines.write)
            #expect(lines.all == theirs.stdout.split(separator: "\n").map(String.init))
        }
    }

    @Test func watchWithLibxenstore() async throws {
        try await withServedStore { store, socket in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/xenstore-watch")
            process.arguments = ["-n", "2", "/w"]
            process.environment = ["XENSTORED_PATH": socket]
            let out = Pipe()
            process.standardOutput = out
            try process.run()
            for _ in 0..<2000 where store.watchCount == 0 {
                try await Task.sleep(for: .milliseconds(1))
            }
            try store.write("/w/x", "1")
            for _ in 0..<2000 where process.isRunning {
                try await Task.sleep(for: .milliseconds(1))
            }
            if process.isRunning { process.terminate() }
            let stdout = out.fileHandleForReading.readDataToEndOfFile()
            #expect(String(decoding: stdout, as: UTF8.self) == "/w\n/w/x\n")
        }
    }
}
