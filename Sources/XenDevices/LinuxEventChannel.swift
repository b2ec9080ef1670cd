import CXen
import LinuxSystem
import SystemPackage
import XenBus

#if canImport(Glibc)
    import Glibc
#endif

/// ``EventChannel`` over libxenevtchn (/dev/xen/evtchn). One instance is one
/// handle: one descriptor, any number of ports. Closing happens in deinit,
/// which also unbinds every port still bound through the handle.
public final class LinuxEventChannel: EventChannel, @unchecked Sendable {
    // @unchecked: libxenevtchn's calls are single ioctl/read/write calls on
    // one descriptor, safe from several threads; the handle never changes.
    private let handle: OpaquePointer

    /// Opens /dev/xen/evtchn (close-on-exec).
    public init() throws(XenBusError) {
        guard let handle = xenevtchn_open(nil, 0) else {
            throw .eventChannel(operation: "open /dev/xen/evtchn", errno: Errno(rawValue: errno))
        }
        self.handle = handle
    }

    deinit {
        xenevtchn_close(handle)
    }

    public var fileDescriptor: FileDescriptor { FileDescriptor(rawValue: xenevtchn_fd(handle)) }

    public func bindInterdomain(remoteDomain: DomainID, remotePort: EventChannelPort)
        throws(XenBusError) -> EventChannelPort
    {
        try port("bind interdomain \(remoteDomain):\(remotePort)") {
            xenevtchn_bind_interdomain(handle, UInt32(remoteDomain.rawValue), remotePort.rawValue)
        }
    }

    public func allocateUnbound(remoteDomain: DomainID) throws(XenBusError) -> EventChannelPort {
        try port("allocate unbound for \(remoteDomain)") {
            xenevtchn_bind_unbound_port(handle, UInt32(remoteDomain.rawValue))
        }
    }

    public func unbind(_ port: EventChannelPort) throws(XenBusError) {
        try call("unbind \(port)") { xenevtchn_unbind(handle, port.rawValue) }
    }

    public func notify(_ port: EventChannelPort) throws(XenBusError) {
        try call("notify \(port)") { xenevtchn_notify(handle, port.rawValue) }
    }

    public func unmask(_ port: EventChannelPort) throws(XenBusError) {
        try call("unmask \(port)") { xenevtchn_unmask(handle, port.rawValue) }
    }

    public func pending() throws(XenBusError) -> EventChannelPort {
        try port("pending") { xenevtchn_pending(handle) }
    }

    private func call(_ operation: String, _ body: () -> Int32) throws(XenBusError) {
        if case .failure(let error) = retryingSyscall(body) {
            throw .eventChannel(operation: operation, errno: error)
        }
    }

    private func port(_ operation: String, _ body: () -> Int32) throws(XenBusError)
        -> EventChannelPort
    {
        switch retryingSyscall(body) {
        case .success(let port): return EventChannelPort(UInt32(bitPattern: port))
        case .failure(let error): throw .eventChannel(operation: operation, errno: error)
        }
    }
}
