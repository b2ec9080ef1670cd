import Foundation
import SeedConfigs
import Testing

@testable import DomainConfig

/// An in-memory file system keyed by absolute path.
struct FakeReader: ConfigFileReader {
    var files: [String: String]
    func read(_ path: String) throws(DomainConfigError) -> [UInt8]? {
        files[path].map { Array($0.utf8) }
    }
}

/// Finding configs as given, then in the search directories.
@Suite struct LoaderTests {
    @Test func foundAsGivenBeforeTheSearchDirectory() throws {
        let loader = DomainConfigLoader(
            searchDirectories: ["/etc/xen"], workingDirectory: "/root",
            reader: FakeReader(files: [
                "/root/debian1": kernelLine + "memory = 1\n",
                "/etc/xen/debian1": kernelLine + "memory = 2\n",
            ]))
        #expect(try loader.locate("debian1").path == "/root/debian1")
        var generator = ConstantGenerator()
        #expect(try loader.load("debian1", using: &generator).memory == 1)
    }

    @Test func foundInTheSearchDirectory() throws {
        let loader = DomainConfigLoader(
            searchDirectories: ["/etc/xen", "/srv/xen/"], workingDirectory: "/root",
            reader: FakeReader(files: ["/srv/xen/web": kernelLine]))
        var generator = ConstantGenerator()
        let spec = try loader.load("web", using: &generator)
        #expect(spec.name == "web")
    }

    @Test func absoluteNamesAreNotSearched() {
        let loader = DomainConfigLoader(
            searchDirectories: ["/etc/xen"], workingDirectory: "/root",
            reader: FakeReader(files: ["/etc/xen/srv/web": kernelLine]))
        #expect(throws: DomainConfigError.configNotFound(name: "/srv/web", searched: ["/srv/web"]))
        {
            try loader.locate("/srv/web")
        }
    }

    @Test func notFoundListsEveryPathTried() {
        let loader = DomainConfigLoader(
            searchDirectories: ["/etc/xen"], workingDirectory: "/root",
            reader: FakeReader(files: [:]))
        let error = #expect(throws: DomainConfigError.self) { try loader.locate("nope") }
        #expect(error == .configNotFound(name: "nope", searched: ["/root/nope", "/etc/xen/nope"]))
        #expect(
            error?.description
                == "cannot find config file 'nope' (looked at: /root/nope, /etc/xen/nope)")
    }

    @Test func errorsNameTheFileItWasFoundIn() {
        let loader = DomainConfigLoader(
            searchDirectories: ["/etc/xen"], workingDirectory: "/root",
            reader: FakeReader(files: ["/etc/xen/bad": kernelLine + "memory = 'x' + 1\n"]))
        var generator = ConstantGenerator()
        let error = #expect(throws: DomainConfigError.self) {
            try loader.load("bad", using: &generator)
        }
        #expect(error?.location?.file == "/etc/xen/bad")
        #expect(error?.location?.line == 2)
    }

    /// The real file system: a temporary directory stands in for /etc/xen.
    @Test func localFilesAndTheirErrors() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("domainconfig-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try SeedConfigs.netbsd.write(
            toFile: directory + "/netbsd", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(
            atPath: directory + "/adir", withIntermediateDirectories: true)

        let loader = DomainConfigLoader(
            searchDirectories: [directory], workingDirectory: "/nonexistent")
        var generator = ConstantGenerator()
        let spec = try loader.load("netbsd", using: &generator)
        #expect(spec.name == "netbsd")
        #expect(spec.disks.map(\.deviceNumber) == [3, 0xcd0a])

        // A directory with the config's name is an error, not "not found".
        let error = #expect(throws: DomainConfigError.self) { try loader.locate("adir") }
        guard case .unreadable(let path, _)? = error else {
            Issue.record("expected unreadable, got \(String(describing: error))")
            return
        }
        #expect(path == directory + "/adir")
        // A path through a regular file is simply not there.
        #expect(throws: DomainConfigError.self) { try loader.locate("netbsd/x") }
        #expect(try LocalConfigFileReader().read(directory + "/netbsd/x") == nil)
    }

    @Test func workingDirectoryDefaultsToTheProcesses() {
        let loader = DomainConfigLoader()
        #expect(loader.workingDirectory == FileManager.default.currentDirectoryPath)
        #expect(loader.searchDirectories == ["/etc/xen"])
    }
}
