import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Reads config files; swapped for an in-memory fake in tests.
public protocol ConfigFileReader: Sendable {
    /// The bytes of the file at the absolute `path`, or `nil` when nothing
    /// exists there.
    func read(_ path: String) throws(DomainConfigError) -> [UInt8]?
}

/// Reads config files from the local file system.
public struct LocalConfigFileReader: ConfigFileReader {
    /// Config files are small; anything bigger is a mistake (a disk image
    /// named by accident) and is refused rather than read into memory.
    public static let maximumSize = 1 << 20

    public init() {}

    public func read(_ path: String) throws(DomainConfigError) -> [UInt8]? {
        let descriptor: FileDescriptor
        do {
            descriptor = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
        } catch let error as Errno {
            if error == .noSuchFileOrDirectory || error == .notDirectory { return nil }
            throw .unreadable(path: path, reason: "\(error)")
        } catch {
            throw .unreadable(path: path, reason: "\(error)")
        }
        defer { try? descriptor.close() }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count: Int
            do {
                count = try chunk.withUnsafeMutableBytes { try descriptor.read(into: $0) }
            } catch {
                throw .unreadable(path: path, reason: "\(error)")
            }
            if count == 0 { break }
            contents += chunk[..<count]
            if contents.count > Self.maximumSize {
                throw .unreadable(path: path, reason: "larger than \(Self.maximumSize) bytes")
            }
        }
        return contents
    }
}

/// A config file found by ``DomainConfigLoader/locate(_:)``.
public struct ConfigFile: Sendable, Equatable {
    /// The absolute path it was read from.
    public var path: String
    public var contents: [UInt8]
}

/// Finds config files the way `xm create NAME` did and evaluates them.
public struct DomainConfigLoader: Sendable {
    /// Directories searched after NAME itself; xm used /etc/xen.
    public var searchDirectories: [String]
    /// Where relative names, kernel and ramdisk paths are resolved (xm used
    /// its current directory).
    public var workingDirectory: String
    public var reader: any ConfigFileReader

    public init(
        searchDirectories: [String] = ["/etc/xen"], workingDirectory: String? = nil,
        reader: any ConfigFileReader = LocalConfigFileReader()
    ) {
        self.searchDirectories = searchDirectories
        self.workingDirectory = workingDirectory ?? currentDirectory()
        self.reader = reader
    }

    /// The paths tried for `name`, in order: as given, then in each search
    /// directory (an absolute name is only tried as given).
    public func candidates(for name: String) -> [String] {
        if name.hasPrefix("/") { return [name] }
        return [join(workingDirectory, name)] + searchDirectories.map { join($0, name) }
    }

    /// Reads the first candidate that exists.
    public func locate(_ name: String) throws(DomainConfigError) -> ConfigFile {
        guard !name.isEmpty else { throw .configNotFound(name: name, searched: []) }
        let paths = candidates(for: name)
        for path in paths {
            if let contents = try reader.read(path) {
                return ConfigFile(path: path, contents: contents)
            }
        }
        throw .configNotFound(name: name, searched: paths)
    }

    /// Locates, runs and validates the config `name` with the `xm create`
    /// arguments, generating missing MACs with `generator`.
    public func load(
        _ name: String, arguments: XmCreateArguments = XmCreateArguments(),
        using generator: inout some RandomNumberGenerator
    ) throws(DomainConfigError) -> DomainSpec {
        let file = try locate(name)
        return try DomainConfigFile.evaluate(
            file.contents, file: file.path, arguments: arguments,
            workingDirectory: workingDirectory, using: &generator)
    }

    /// Like ``load(_:arguments:using:)`` with the system's random generator.
    public func load(_ name: String, arguments: XmCreateArguments = XmCreateArguments())
        throws(DomainConfigError) -> DomainSpec
    {
        var generator = SystemRandomNumberGenerator()
        return try load(name, arguments: arguments, using: &generator)
    }

    private func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}

/// Evaluating config text that is already in memory.
public enum DomainConfigFile {
    /// Runs the config `text` (named `file` in messages and for the default
    /// domain name): command-line variables first, then the file, then the
    /// command-line overrides; then validates the result.
    public static func evaluate(
        _ text: [UInt8], file: String, arguments: XmCreateArguments = XmCreateArguments(),
        workingDirectory: String = "/", using generator: inout some RandomNumberGenerator
    ) throws(DomainConfigError) -> DomainSpec {
        let statements = try Parser.parse(text, file: file)
        var evaluator = Evaluator(predefined: arguments.variableValues)
        try evaluator.run(statements)
        var builder = SpecBuilder(
            evaluator: evaluator, file: file, workingDirectory: workingDirectory,
            // Variables the command line sets or the config declares with
            // xm_vars.var are the script's own, not misspelt settings.
            commandLineVariables: Set(arguments.variables.map(\.name))
                .union(evaluator.declared.map(\.name)), generator: generator)
        try builder.apply(arguments.overrides)
        let spec = try builder.build()
        generator = builder.generator
        return spec
    }

    /// ``evaluate(_:file:arguments:workingDirectory:using:)`` for a `String`.
    public static func evaluate(
        _ text: String, file: String, arguments: XmCreateArguments = XmCreateArguments(),
        workingDirectory: String = "/", using generator: inout some RandomNumberGenerator
    ) throws(DomainConfigError) -> DomainSpec {
        try evaluate(
            Array(text.utf8), file: file, arguments: arguments,
            workingDirectory: workingDirectory, using: &generator)
    }

    /// ``evaluate(_:file:arguments:workingDirectory:using:)`` with the
    /// system's random generator for MAC addresses.
    public static func evaluate(
        _ text: String, file: String, arguments: XmCreateArguments = XmCreateArguments(),
        workingDirectory: String = "/"
    ) throws(DomainConfigError) -> DomainSpec {
        var generator = SystemRandomNumberGenerator()
        return try evaluate(
            Array(text.utf8), file: file, arguments: arguments,
            workingDirectory: workingDirectory, using: &generator)
    }
}

/// The process's current directory, or "/" if it cannot be determined.
private func currentDirectory() -> String {
    #if canImport(Glibc)
        guard let buffer = getcwd(nil, 0) else { return "/" }
        defer { free(buffer) }
        return String(cString: buffer)
    #else
        return "/"
    #endif
}
