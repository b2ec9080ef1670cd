import ArgumentParser
import Foundation
import InMemoryXenStore
import Synchronization
import Testing
import XenStore

@testable import Commands

/// Collects output lines.
final class Lines: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    var write: @Sendable (String) -> Void { { line in self.lines.withLock { $0.append(line) } } }
}

/// A store served on a fresh Unix socket under /tmp.
func withServedStore<R>(
    _ body: (InMemoryXenStore, String) async throws -> R
) async throws -> R {
    let store = InMemoryXenStore()
    let path = "/tmp/proxenos-xs-\(UInt32.random(in: .min ... .max)).sock"
    defer { store.stop() }
    try store.serve(socketPath: path)
    return try await body(store, path)
}

/// `proxenos xenstore ...` against the in-memory store over its socket:
/// arguments parsed by the real command tree, output captured.
@Suite(.timeLimit(.minutes(1))) struct CommandTests {
    func run(_ arguments: [String], socket: String) async throws -> [String] {
        let lines = Lines()
        let command = try Proxenos.parseAsRoot(["xenstore"] + arguments + ["--socket", socket])
        switch command {
        case let list as XenStoreCommand.List: try await list.execute(output: lines.write)
        case let read as XenStoreCommand.Read: try await read.execute(output: lines.write)
        case let write as XenStoreCommand.Write: try await write.execute(output: lines.write)
        case let remove as XenStoreCommand.Remove: try await remove.execute(output: lines.write)
        case let watch as XenStoreCommand.Watch: try await watch.execute(output: lines.write)
        default: Issue.record("unexpected command \(command)")
        }
        return lines.all
    }

    @Test func writeReadListRemove() async throws {
        try await withServedStore { store, socket in
            _ = try await run(
                ["write", "/local/domain/0/name", "Domain-0", "/vm/x", "a\\b\t\"q\""],
                socket: socket)
            #expect(store.value(at: "/local/domain/0/name") == "Domain-0")
            #expect(
                try await run(["read", "/local/domain/0/name", "/vm/x"], socket: socket) == [
                    "Domain-0", "a\\b\t\"q\"",
                ])
            #expect(
                try await run(["ls"], socket: socket) == [
                    "local = \"\"",
                    " domain = \"\"",
                    "  0 = \"\"",
                    "   name = \"Domain-0\"",
                    "vm = \"\"",
                    " x = \"a\\\\b\\t\"q\"\"",
                ])
            #expect(
                try await run(["ls", "/local/domain"], socket: socket) == [
                    "0 = \"\"", " name = \"Domain-0\"",
                ])
            _ = try await run(["rm", "/local", "/not/there"], socket: socket)
            #expect(store.children(of: "/") == ["vm"])
        }
    }

    @Test func watchPrintsEachFiringUntilCount() async throws {
        try await withServedStore { store, socket in
            let lines = Lines()
            let command = try Proxenos.parseAsRoot(
                ["xenstore", "watch", "--count", "3", "--socket", socket, "/w"])
            guard let watch = command as? XenStoreCommand.Watch else {
                Issue.record("not a watch command")
                return
            }
            let running = Task { try await watch.execute(output: lines.write) }
            for _ in 0..<1000 where store.watchCount == 0 {
                try await Task.sleep(for: .milliseconds(1))
            }
            try store.write("/w/a", "1")
            try store.write("/elsewhere", "1")
            try store.write("/w/b", "2")
            try await running.value
            #expect(lines.all == ["/w", "/w/a", "/w/b"])
        }
    }

    @Test func errorsAreReported() async throws {
        try await withServedStore { store, socket in
            await #expect(throws: XenStoreError.noEntry("/missing")) {
                _ = try await run(["read", "/missing"], socket: socket)
            }
            // Bad arguments are usage errors before any connection.
            #expect(throws: (any Error).self) {
                _ = try Proxenos.parseAsRoot(["xenstore", "read", "/a//b"])
            }
            #expect(throws: (any Error).self) {
                _ = try Proxenos.parseAsRoot(["xenstore", "write", "/a"])
            }
            await #expect(throws: XenStoreError.self) {
                _ = try await run(["ls"], socket: socket + ".nonexistent")
            }
        }
    }

    @Test func escapesValuesLikeXenstoreLs() {
        #expect(XenStoreCommand.escape(Array("plain \"text\"".utf8)) == "plain \"text\"")
        #expect(XenStoreCommand.escape([0x5c, 0x09, 0x0a, 0x0d]) == "\\\\\\t\\n\\r")
        #expect(XenStoreCommand.escape([0x00, 0x7f, 0xff]) == "\\000\\177\\377")
    }

    /// The built `proxenos` binary, run as a separate process against the
    /// served store (exit status, stdout and stderr). Skipped when the
    /// product has not been built next to the test bundle.
    @Test func binaryAgainstServedStore() async throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0])
            .deletingLastPathComponent().appendingPathComponent("proxenos")
        let bundleDirectory = Bundle.main.bundleURL.appendingPathComponent("proxenos")
        let candidates = [binary, bundleDirectory] + Self.buildDirectoryBinaries()
        guard
            let executable = candidates.first(where: {
                FileManager.default.isExecutableFile(atPath: $0.path)
            })
        else {
            Issue.record("no proxenos binary found; build it with `swift build` first")
            return
        }
        try await withServedStore { store, socket in
            try store.write("/cli/a", "1")
            let ok = try Self.spawn(executable, ["xenstore", "read", "--socket", socket, "/cli/a"])
            #expect(ok.status == 0)
            #expect(ok.stdout == "1\n")
            let missing = try Self.spawn(
                executable, ["xenstore", "read", "--socket", socket, "/cli/b"])
            #expect(missing.status != 0)
            #expect(missing.stdout.isEmpty)
            #expect(missing.stderr.contains("/cli/b: no such node"))
            let watched = try Self.spawn(
                executable, ["xenstore", "watch", "--count", "1", "--socket", socket, "/cli"])
            #expect(watched.stdout == "/cli\n")
        }
    }

    /// `.build/<config>/proxenos` of this package, found from this file.
    static func buildDirectoryBinaries() -> [URL] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return ["debug", "release"].map {
            root.appendingPathComponent(".build/\($0)/proxenos")
        }
    }

    static func spawn(_ executable: URL, _ arguments: [String]) throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: stdout, as: UTF8.self),
            String(decoding: stderr, as: UTF8.self)
        )
    }
}
