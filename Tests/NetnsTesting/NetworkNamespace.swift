import CLinux
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Host integration needs root: it creates network namespaces.
public let runningAsRoot = getuid() == 0

public struct NamespaceError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// Runs a program; returns its exit status and standard output.
@discardableResult
public func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A network namespace of one test (`ip netns add`), removed by `destroy`,
/// with a way to run code on a thread inside it: a TAP device is created in
/// the namespace of the thread that opens it, so the host's own network is
/// never touched.
public final class NetworkNamespace: Sendable {
    private static let counter = Atomic<Int>(0)
    public let name: String

    public init() throws {
        let number = Self.counter.wrappingAdd(1, ordering: .relaxed).newValue
        name = "pxnb-\(getpid() % 100_000)-\(number)"
        guard try run(["ip", "netns", "add", name]).status == 0 else {
            throw NamespaceError(description: "ip netns add \(name) failed")
        }
        try ip("link", "set", "lo", "up")
    }

    /// `ip -n NAME ARGS`, which must succeed.
    @discardableResult
    public func ip(_ arguments: String...) throws -> String {
        let result = try run(["ip", "-n", name] + arguments)
        guard result.status == 0 else {
            throw NamespaceError(
                description: "ip -n \(name) \(arguments.joined(separator: " ")) failed")
        }
        return result.output
    }

    /// Runs a program inside the namespace.
    @discardableResult
    public func exec(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try run(["ip", "netns", "exec", name] + arguments)
    }

    /// Runs `body` on a new thread that entered this namespace (setns), and
    /// waits for it.
    public func inside<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let result = Mutex<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let path = "/var/run/netns/\(name)"
        let thread = Thread {
            defer { done.signal() }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0, clinux_setns_network(fd) == 0 else {
                let error = NamespaceError(description: "setns \(path): errno \(errno)")
                result.withLock { $0 = .failure(error) }
                return
            }
            close(fd)
            let value = Result { try body() }
            result.withLock { $0 = value }
        }
        thread.start()
        done.wait()
        return try result.withLock { $0! }.get()
    }

    public func destroy() {
        _ = try? run(["ip", "netns", "delete", name])
    }
}
