import Provisioning

/// One provisioning attempt: fetch the bundle, check its digest and every
/// member, install it.
public struct Provision: Sendable {
    /// What the attempt came to; its word goes into provision.done.
    public enum Outcome: Sendable {
        case installed(Bundle, files: [String])
        /// The bundle was fetched but is not installed; nothing of it was.
        case refused(String)
        /// The server could not be reached (or had no bundle): try again.
        case unreachable(String)

        public var word: String {
            switch self {
            case .installed: return "installed"
            case .refused: return "refused"
            case .unreachable: return "unreachable"
            }
        }
    }

    public var url: FetchURL
    /// The bundle's SHA-256 as given by `proxenos.config.sha256=` (lower case).
    public var sha256: String?
    public var fetcher: Fetcher
    public var installer: Installer

    public init(url: FetchURL, sha256: String?, fetcher: Fetcher, installer: Installer) {
        self.url = url
        self.sha256 = sha256?.lowercased()
        self.fetcher = fetcher
        self.installer = installer
    }

    /// A 64-hex-digit digest, or nil.
    public static func isDigest(_ text: String) -> Bool {
        text.utf8.count == 64
            && text.utf8.allSatisfy {
                ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 102)
            }
    }

    public func attempt() -> Outcome {
        let archive: [UInt8]
        do {
            archive = try fetcher.fetch(url)
        } catch {
            switch error {
            case .unreachable(let why): return .unreachable(why)
            case .untrusted(let why): return .refused(why)
            }
        }
        if let sha256 {
            let actual = sha256Hex(archive)
            guard actual == sha256 else {
                return .refused(
                    "\(url): SHA-256 mismatch: proxenos.config.sha256 is \(sha256), "
                        + "the bundle's is \(actual)")
            }
        }
        let bundle: Bundle
        do {
            bundle = try Bundle.plan(archive: archive)
        } catch {
            return .refused("\(url): \(error); nothing from it was installed")
        }
        do {
            let files = try installer.install(bundle, archive: archive)
            return .installed(bundle, files: files)
        } catch {
            return .refused("\(url): installing failed: \(error)")
        }
    }
}
