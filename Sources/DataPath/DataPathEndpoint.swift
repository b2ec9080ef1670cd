import XenBus

/// One thing a data-path worker serves: a ring (woken by its event
/// channel port) or another source (woken by a descriptor: an io_uring
/// completion queue, a TAP, a client socket). Backends implement it; the
/// worker loop exists once, in ``DataPathWorker``.
///
/// An endpoint lives on its worker's thread: the worker calls it from
/// there only, one call at a time.
public protocol DataPathEndpoint: AnyObject {
    /// Does at most `budget` units of work (requests, packets, bytes
    /// chunks: the endpoint's choice) and returns whether work is left that
    /// needs no further wakeup. A ring endpoint returns false only after its
    /// final check (`RING_FINAL_CHECK_FOR_REQUESTS`) found nothing, so a
    /// request pushed meanwhile always brings a notification.
    ///
    /// A thrown error stops this endpoint only: the worker detaches it and
    /// reports the error (a guest fault ends that guest's device, nobody
    /// else's).
    func serve(budget: Int) throws(XenBusError) -> Bool
}

/// Identifies an endpoint within its worker.
public struct EndpointID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int

    public var description: String { "endpoint \(rawValue)" }
}
