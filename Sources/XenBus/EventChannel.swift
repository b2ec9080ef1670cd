import SystemPackage

/// One handle on the event channel device (libxenevtchn's `xenevtchn_handle`):
/// binds ports, sends and receives notifications.
///
/// Delivery works like /dev/xen/evtchn: when a bound port fires, the kernel
/// masks it and queues its number; ``pending()`` returns it and the port stays
/// silent until ``unmask(_:)``. ``pending()`` hands out whichever port of the
/// handle fired, so a handle must have exactly one reader: DataPath's
/// `DataPathWorker` owns one handle and routes each port to the ring bound
/// to it.
public protocol EventChannel: Sendable {
    /// A descriptor that polls readable while a port is pending.
    var fileDescriptor: FileDescriptor { get }

    /// Binds a local port to `remotePort` of `remoteDomain`, which that
    /// domain allocated for us as unbound (`IOCTL_EVTCHN_BIND_INTERDOMAIN`).
    func bindInterdomain(remoteDomain: DomainID, remotePort: EventChannelPort)
        throws(XenBusError) -> EventChannelPort

    /// Allocates a local port that `remoteDomain` may bind to later
    /// (`IOCTL_EVTCHN_BIND_UNBOUND_PORT`).
    func allocateUnbound(remoteDomain: DomainID) throws(XenBusError) -> EventChannelPort

    /// Closes a local port bound or allocated through this handle.
    func unbind(_ port: EventChannelPort) throws(XenBusError)

    /// Sends a notification on a local port to whatever it is bound to.
    func notify(_ port: EventChannelPort) throws(XenBusError)

    /// Re-enables delivery for a port after ``pending()`` returned it.
    func unmask(_ port: EventChannelPort) throws(XenBusError)

    /// The next port that fired; blocks until one does (poll
    /// ``fileDescriptor`` first to avoid blocking). On a non-blocking
    /// descriptor with nothing pending it throws
    /// `.eventChannel(errno: .resourceTemporarilyUnavailable)`.
    func pending() throws(XenBusError) -> EventChannelPort
}

/// A bound event channel that is unbound exactly once, when the last
/// reference goes away.
public final class EventChannelBinding: Sendable {
    /// The handle the port belongs to.
    public let channel: any EventChannel
    /// The local port.
    public let port: EventChannelPort

    /// Binds to a frontend's unbound port.
    public init(
        channel: any EventChannel, remoteDomain: DomainID, remotePort: EventChannelPort
    ) throws(XenBusError) {
        self.channel = channel
        self.port = try channel.bindInterdomain(
            remoteDomain: remoteDomain, remotePort: remotePort)
    }

    /// Notifies the other end.
    public func notify() throws(XenBusError) {
        try channel.notify(port)
    }

    /// Re-enables delivery after the port fired.
    public func unmask() throws(XenBusError) {
        try channel.unmask(port)
    }

    deinit {
        // Nothing useful can be done about a failed unbind at teardown: the
        // port dies with the handle at the latest.
        try? channel.unbind(port)
    }
}
