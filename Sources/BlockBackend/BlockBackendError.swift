import SystemPackage
import XenBus

/// blkback's own failures: the disk's configuration and its backing.
/// Guest faults stay ``XenBusError``s (a hostile ring closes its device);
/// a bad request is answered, never thrown.
public enum BlockBackendError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The backend directory describes a disk blkback cannot serve.
    case configuration(String)
    /// The backing file or device failed.
    case backing(path: String, String, Errno)

    public var description: String {
        switch self {
        case .configuration(let text): return "disk configuration: \(text)"
        case .backing(let path, let operation, let errno):
            return "disk backing \(path): \(operation) failed: \(errno)"
        }
    }
}
