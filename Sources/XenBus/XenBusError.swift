import SystemPackage

/// Every failure of the Xen plumbing. Guest faults (a frontend that wrote
/// something impossible) are their own cases so a backend can tell a hostile
/// or broken guest from a broken host; ``isGuestFault`` says which is which.
public enum XenBusError: Error, Equatable, Sendable, CustomStringConvertible {
    // MARK: guest (frontend) faults

    /// The frontend's `state` node holds text that is not a xenbus state.
    case frontendStateInvalid(path: String, value: String)
    /// The frontend entered a state this backend does not implement
    /// (Reconfiguring, Reconfigured).
    case frontendStateUnsupported(path: String, state: XenbusState)
    /// The frontend claims a state it cannot reach from where the backend is,
    /// e.g. Connected before the backend ever offered InitWait.
    case frontendStateJump(path: String, frontend: XenbusState, backend: XenbusState)
    /// The frontend directory the backend was told to serve does not exist.
    case frontendMissing(path: String)
    /// A node the protocol requires from the frontend is absent.
    case frontendNodeMissing(path: String)
    /// A frontend node holds a value outside what the protocol allows.
    case frontendNodeInvalid(path: String, value: String, expected: String)
    /// A shared ring's producer index is further ahead than the ring can
    /// hold: `producer - base > ringSize`, where `base` is the oldest
    /// index the other end may still own.
    case ringProducerOverflow(producer: UInt32, base: UInt32, ringSize: UInt32)
    /// A shared ring's producer index moved backwards, behind entries this
    /// side already consumed.
    case ringProducerRegressed(producer: UInt32, consumer: UInt32)
    /// A data path reported the guest broke its protocol (bad request, ...).
    case guestProtocol(String)

    // MARK: toolstack / configuration faults

    /// A node the toolstack must write in the backend directory is absent.
    case backendNodeMissing(path: String)
    /// A backend node the toolstack wrote holds an unusable value.
    case backendNodeInvalid(path: String, value: String, expected: String)

    // MARK: misuse of a ring or mapping by our own code (reported, not trapped)

    /// The buffer handed to a ring cannot hold one (size, alignment).
    case ringBufferInvalid(String)
    /// A request was queued on a front ring with no free slot.
    case ringFull
    /// A response was queued on a back ring with no consumed request left to
    /// answer; writing it would overwrite a request the frontend still owns.
    case ringResponseWithoutRequest
    /// A writable view was asked of a read-only grant mapping.
    case mappingReadOnly

    // MARK: host failures

    /// An event channel operation failed in the kernel or hypervisor.
    case eventChannel(operation: String, errno: Errno)
    /// A grant table operation failed in the kernel or hypervisor.
    case grantTable(operation: String, errno: Errno)
    /// The hypervisor (or the fake) refused a grant for a mapping.
    case grantRefused(domain: DomainID, ref: GrantRef, status: GrantStatus)
    /// A xenstore request failed.
    case store(operation: String, path: String, reason: String)
    /// A device driver failed for a reason of its own.
    case driver(String)

    /// True for faults caused by the guest, false for host or config faults.
    public var isGuestFault: Bool {
        switch self {
        case .frontendStateInvalid, .frontendStateUnsupported, .frontendStateJump,
            .frontendMissing, .frontendNodeMissing, .frontendNodeInvalid,
            .ringProducerOverflow, .ringProducerRegressed, .guestProtocol:
            return true
        case .grantRefused:
            // A ref the guest never granted is the guest's fault.
            return true
        default:
            return false
        }
    }

    /// The positive errno value `xenbus_dev_fatal` puts in front of the
    /// message in the device's `error` node.
    public var errnoValue: Int32 {
        switch self {
        case .frontendMissing, .frontendNodeMissing, .backendNodeMissing:
            return Errno.noSuchFileOrDirectory.rawValue
        case .frontendStateUnsupported:
            return Errno.noFunction.rawValue
        case .ringFull:
            return Errno.noSpace.rawValue
        case .eventChannel(_, let errno), .grantTable(_, let errno):
            return errno.rawValue
        case .grantRefused:
            return Errno.permissionDenied.rawValue
        case .store, .driver:
            return Errno.ioError.rawValue
        default:
            return Errno.invalidArgument.rawValue
        }
    }

    public var description: String {
        switch self {
        case .frontendStateInvalid(let path, let value):
            return "frontend wrote \(quoted(value)) to \(path), which is not a xenbus state"
        case .frontendStateUnsupported(let path, let state):
            return "frontend entered state \(state) at \(path), which this backend does not support"
        case .frontendStateJump(let path, let frontend, let backend):
            return
                "frontend at \(path) jumped to \(frontend) while the backend is \(backend); "
                + "it must go through Initialising and wait for the backend's InitWait"
        case .frontendMissing(let path):
            return "missing other end: frontend directory \(path) does not exist"
        case .frontendNodeMissing(let path):
            return "reading \(path): node missing"
        case .frontendNodeInvalid(let path, let value, let expected):
            return "reading \(path): \(quoted(value)) is not \(expected)"
        case .ringProducerOverflow(let producer, let base, let size):
            return
                "frontend provided bogus ring producer index \(producer) (\(producer &- base) "
                + "entries past \(base), ring holds \(size)); halting ring processing"
        case .ringProducerRegressed(let producer, let consumer):
            return
                "frontend moved ring producer index back to \(producer), behind consumed index "
                + "\(consumer); halting ring processing"
        case .guestProtocol(let text):
            return "guest protocol violation: \(text)"
        case .backendNodeMissing(let path):
            return "reading \(path): node missing (the toolstack must write it)"
        case .backendNodeInvalid(let path, let value, let expected):
            return "reading \(path): \(quoted(value)) is not \(expected)"
        case .ringBufferInvalid(let text):
            return "unusable ring buffer: \(text)"
        case .ringFull:
            return "no free slot on the front ring"
        case .ringResponseWithoutRequest:
            return "response queued with no outstanding request on the back ring"
        case .mappingReadOnly:
            return "grant mapping is read-only"
        case .eventChannel(let operation, let errno):
            return "event channel \(operation) failed: \(errno)"
        case .grantTable(let operation, let errno):
            return "grant table \(operation) failed: \(errno)"
        case .grantRefused(let domain, let ref, let status):
            return "domain \(domain) grant \(ref) refused: \(status)"
        case .store(let operation, let path, let reason):
            return "xenstore \(operation) \(path) failed: \(reason)"
        case .driver(let text):
            return text
        }
    }
}

/// Quotes guest-written text for a log or error node, escaping control
/// characters and cutting it short, so a hostile value cannot forge lines.
func quoted(_ value: String, limit: Int = 64) -> String {
    var out = "'"
    for (index, scalar) in value.unicodeScalars.enumerated() {
        if index == limit {
            out += "..."
            break
        }
        if scalar.value < 0x20 || scalar.value == 0x7F || scalar == "'" || scalar == "\\" {
            out += scalar.escaped(asASCII: true)
        } else {
            out.unicodeScalars.append(scalar)
        }
    }
    return out + "'"
}
