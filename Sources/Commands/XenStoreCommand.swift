import ArgumentParser
import LinuxSystem
import Synchronization
import XenStore

#if canImport(Glibc)
    import Glibc
#endif

/// `proxenos xenstore ls|read|write|rm|watch`: the xenstore-* tools.
public struct XenStoreCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "xenstore",
        abstract: "List, read, write, remove and watch xenstore nodes.",
        subcommands: [List.self, Read.self, Write.self, Remove.self, Watch.self]
    )

    public init() {}

    /// Where to reach xenstored.
    struct Connection: ParsableArguments {
        @Option(
            name: .long,
            help: ArgumentHelp(
                "xenstored's Unix socket (default: \(XenStoreClient.defaultSocketPath),"
                    + " else \(XenStoreClient.defaultDevicePath)).",
                valueName: "path"))
        var socket: String?

        func open() throws -> XenStoreClient {
            if let socket { return try XenStoreClient.connect(socketPath: socket) }
            return try XenStoreClient.connectDefault()
        }
    }

    /// Prints the tree below a path as `name = "value"` lines, one space of
    /// indent per level (like xenstore-ls).
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls", abstract: "Print the tree below PATH (default /).")

        @OptionGroup var connection: Connection
        @Argument(help: "The node whose subtree is printed.") var path = "/"

        func validate() throws { try checkPath(path) }

        func run() throws {
            try runBlocking { try await self.execute(output: standardOutput) }
        }

        func execute(output: @Sendable (String) -> Void) async throws {
            let client = try connection.open()
            defer { client.close() }
            try await XenStoreCommand.list(client, below: path, depth: 0, output: output)
        }
    }

    /// Prints each node's value on its own line.
    struct Read: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "read", abstract: "Print the value of each PATH.")

        @OptionGroup var connection: Connection
        @Argument(help: "Nodes to read.") var paths: [String]

        func validate() throws {
            guard !paths.isEmpty else { throw ValidationError("Name at least one path.") }
            for path in paths { try checkPath(path) }
        }

        func run() throws {
            try runBlocking { try await self.execute(output: standardOutput) }
        }

        func execute(output: @Sendable (String) -> Void) async throws {
            let client = try connection.open()
            defer { client.close() }
            for path in paths { output(try await client.read(path)) }
        }
    }

    /// Writes values, creating nodes as needed.
    struct Write: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "write", abstract: "Set PATH to VALUE (pairs may repeat).")

        @OptionGroup var connection: Connection
        @Argument(help: ArgumentHelp("Path and value pairs.", valueName: "path value"))
        var pairs: [String]

        func validate() throws {
            guard !pairs.isEmpty, pairs.count.isMultiple(of: 2) else {
                throw ValidationError("Give a value for every path: PATH VALUE [PATH VALUE ...].")
            }
            for index in stride(from: 0, to: pairs.count, by: 2) { try checkPath(pairs[index]) }
        }

        func run() throws {
            try runBlocking { try await self.execute(output: standardOutput) }
        }

        func execute(output: @Sendable (String) -> Void) async throws {
            let client = try connection.open()
            defer { client.close() }
            for index in stride(from: 0, to: pairs.count, by: 2) {
                try await client.write(pairs[index], pairs[index + 1])
            }
        }
    }

    /// Removes subtrees.
    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rm", abstract: "Remove each PATH and everything below it.")

        @OptionGroup var connection: Connection
        @Argument(help: "Nodes to remove.") var paths: [String]

        func validate() throws {
            guard !paths.isEmpty else { throw ValidationError("Name at least one path.") }
            for path in paths { try checkPath(path) }
        }

        func run() throws {
            try runBlocking { try await self.execute(output: standardOutput) }
        }

        func execute(output: @Sendable (String) -> Void) async throws {
            let client = try connection.open()
            defer { client.close() }
            for path in paths { try await client.remove(path) }
        }
    }

    /// Prints the path of every watch firing, including the initial one.
    struct Watch: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "watch",
            abstract: "Print each path that changes at or below PATH, one a line.",
            discussion: "The first line is PATH itself: xenstored fires every new watch once.")

        @OptionGroup var connection: Connection
        @Option(name: .long, help: "Stop after this many events (default: run until killed).")
        var count: Int?
        @Argument(help: "The node (or @introduceDomain, @releaseDomain) to watch.")
        var path: String

        func validate() throws {
            try checkPath(path, allowSpecial: true)
            if let count, count < 1 { throw ValidationError("--count must be at least 1.") }
        }

        func run() throws {
            try runBlocking { try await self.execute(output: standardOutput) }
        }

        func execute(output: @Sendable (String) -> Void) async throws {
            let client = try connection.open()
            defer { client.close() }
            let watch = try await client.watch(path)
            var seen = 0
            for try await event in watch {
                output(event.path)
                seen += 1
                if let count, seen >= count { break }
            }
            await watch.cancel()
        }
    }

    /// Walks the subtree below `path` depth first, printing each child.
    /// Nodes that vanish meanwhile are skipped; unreadable ones are marked.
    static func list(
        _ client: XenStoreClient, below path: String, depth: Int,
        output: @Sendable (String) -> Void
    ) async throws {
        let children: [String]
        do {
            children = try await client.directory(path)
        } catch XenStoreError.noEntry where depth > 0 {
            return
        } catch XenStoreError.permissionDenied where depth > 0 {
            return
        }
        let indent = String(repeating: " ", count: depth)
        for child in children {
            let childPath = XenStorePath.join(path, child)
            let shown: String
            do {
                shown = "\"" + escape(try await client.readBytes(childPath)) + "\""
            } catch XenStoreError.noEntry {
                continue
            } catch XenStoreError.permissionDenied {
                shown = "(permission denied)"
            }
            output("\(indent)\(child) = \(shown)")
            try await list(client, below: childPath, depth: depth + 1, output: output)
        }
    }

    /// Printable ASCII as is; backslash, tab, newline, return and other
    /// bytes escaped (`\\`, `\t`, `\n`, `\r`, `\ooo` octal), as xenstore-ls
    /// shows values.
    static func escape(_ value: [UInt8]) -> String {
        var text = ""
        for byte in value {
            switch byte {
            case UInt8(ascii: "\\"): text += "\\\\"
            case UInt8(ascii: "\t"): text += "\\t"
            case UInt8(ascii: "\n"): text += "\\n"
            case UInt8(ascii: "\r"): text += "\\r"
            case 0x20...0x7e: text.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let octal = String(byte, radix: 8)
                text += "\\" + String(repeating: "0", count: 3 - octal.count) + octal
            }
        }
        return text
    }
}

/// Turns a bad path into a usage error before connecting.
private func checkPath(_ path: String, allowSpecial: Bool = false) throws {
    do {
        try XenStorePath.validate(path, allowSpecial: allowSpecial)
    } catch {
        throw ValidationError(error.description)
    }
}

/// Prints a line and flushes, so `watch` output reaches pipes at once.
@Sendable private func standardOutput(_ line: String) {
    print(line)
    fflush(nil)
}
