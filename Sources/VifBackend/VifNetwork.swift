import NetConf
import Synchronization
import SystemPackage
import TapDevice
import XenBus

/// What the driver decided for one vif before its packet port exists.
public struct VifPlan: Sendable, Equatable {
    public var key: BackendDeviceKey
    /// The interface name: `vifD.N`, or the backend's `vifname`.
    public var name: String
    public var queueCount: Int
    /// What the TAP may hand us (what the guest takes).
    public var offloads: TapDevice.Offloads
    /// The backend's `mtu` (toolstack), 1500 without one.
    public var mtu: UInt32
    /// The backend entries the vif-script reads (bridge, ip, mac, script).
    public var entries: VifBackendEntries

    public init(
        key: BackendDeviceKey, name: String, queueCount: Int, offloads: TapDevice.Offloads,
        mtu: UInt32, entries: VifBackendEntries
    ) {
        self.key = key
        self.name = name
        self.queueCount = queueCount
        self.offloads = offloads
        self.mtu = mtu
        self.entries = entries
    }
}

/// A vif's packet port in dom0: one descriptor per queue that keeps packet
/// boundaries and carries a virtio header before each frame.
public final class VifAttachment: Sendable {
    public let name: String
    public let queues: [FileDescriptor]
    private let release: @Sendable (_ offline: Bool) -> Void
    /// Set by the first detach or close: the port is released once (its
    /// descriptors closed twice could be someone else's by then).
    private let released = Atomic<Bool>(false)

    public init(
        name: String, queues: [FileDescriptor],
        release: @escaping @Sendable (_ offline: Bool) -> Void
    ) {
        self.name = name
        self.queues = queues
        self.release = release
    }
}

/// Where vifs meet dom0's network: a TAP brought online by the vif-script
/// in production, a socket pair in tests.
public protocol VifNetwork: Sendable {
    /// Creates the vif's port with `plan.queueCount` queues and brings it
    /// online. Throws with what went wrong; nothing is left behind then.
    func attach(_ plan: VifPlan) throws -> VifAttachment
}

extension VifAttachment {
    /// Takes the vif offline (the vif-script's offline) and removes its
    /// port. Only the first detach or close does anything.
    public func detach() { releaseOnce(offline: true) }

    /// Removes the port only, for a backend handing the vif to its
    /// successor (which creates it again and brings it online).
    public func close() { releaseOnce(offline: false) }

    private func releaseOnce(offline: Bool) {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        release(offline)
    }
}

/// What netconf's operations failed with, wrapped for the driver.
public struct VifNetworkError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The production network: `TapDevice` queues with virtio headers, the
/// vif's MTU and dom0's conventional `fe:ff:ff:ff:ff:ff` MAC (so a bridge
/// never takes a vif's address as its own), then the same vif-script
/// `proxenos netconf vif online` runs, in process; offline and removal on
/// detach.
public struct HostVifNetwork: VifNetwork {
    public let configPath: String
    public let stateDirectory: String

    /// The MAC dom0's side of every vif gets (Linux netback's).
    public static let dom0MAC: [UInt8] = [0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]

    public init(
        configPath: String = "/etc/xen/xend-config.sxp",
        stateDirectory: String = "/run/proxenos/netconf"
    ) {
        self.configPath = configPath
        self.stateDirectory = stateDirectory
    }

    func spec(_ plan: VifPlan) throws(NetConfError) -> VifSpec {
        let config = try XendConfig.load(path: configPath) ?? XendConfig.defaults(file: configPath)
        var entries = plan.entries
        entries.vifname = plan.name
        return try VifSpec.resolve(
            domid: Int(plan.key.frontendDomain.rawValue), devid: Int(plan.key.deviceID),
            entries: entries, config: config)
    }

    public func attach(_ plan: VifPlan) throws -> VifAttachment {
        let spec: VifSpec
        do { spec = try self.spec(plan) } catch { throw VifNetworkError("\(plan.name): \(error)") }
        let tap = try TapDevice.create(
            name: plan.name, queueCount: plan.queueCount, offloads: plan.offloads)
        do throws(NetConfError) {
            let host = try NetworkHost.system(recordDirectory: stateDirectory)
            let link = try host.netlink.requireLink(tap.name)
            try host.netlink.changeLink(
                link.index, LinkChange(mtu: plan.mtu, mac: Self.dom0MAC))
            try VifScripts.online(spec, on: host)
        } catch {
            tap.close()
            throw VifNetworkError("\(plan.name) online: \(error)")
        }
        let directory = stateDirectory
        return VifAttachment(name: tap.name, queues: tap.queues) { offline in
            if offline, let host = try? NetworkHost.system(recordDirectory: directory) {
                // Offline undoes what online did (filters, routes, bridge);
                // a failure leaves only what removing the TAP removes anyway.
                try? VifScripts.offline(spec, on: host)
            }
            tap.close()
        }
    }
}
