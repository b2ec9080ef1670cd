import DataPath
import XenBus

/// The echo backend's data path: takes up to a budget of requests, answers
/// each, pushes, notifies the frontend if it asked, and before going idle
/// makes the ring's final check. The model for a backend's endpoint: the
/// ring is journaled, so a killed backend's successor answers every
/// request exactly once.
public final class EchoEndpoint: DataPathEndpoint {
    private var ring: JournaledBackRing<EchoRequest, EchoResponse>
    private let binding: EventChannelBinding
    private var taken: [(RequestToken, EchoRequest)] = []
    /// Requests answered so far by this endpoint.
    public private(set) var answered = 0

    /// Serves `ring`, notifying the frontend through `binding`.
    public init(
        ring: consuming JournaledBackRing<EchoRequest, EchoResponse>,
        binding: EventChannelBinding
    ) {
        self.ring = ring
        self.binding = binding
        taken.reserveCapacity(256)
    }

    public func serve(budget: Int) throws(XenBusError) -> Bool {
        // Take a batch first and answer it afterwards, as a backend with
        // real I/O would: requests are in flight (journaled, unanswered)
        // between the two.
        while taken.count < budget, let next = try ring.nextRequest() {
            taken.append(next)
        }
        for (token, request) in taken {
            try ring.respond(
                to: token,
                with: EchoResponse(
                    id: request.id, value: EchoResponse.echo(request.value, id: request.id)))
        }
        let full = taken.count == budget
        answered += taken.count
        taken.removeAll(keepingCapacity: true)
        if ring.pushResponses() { try binding.notify() }
        if full { return true }
        return try ring.finalCheckForRequests()
    }
}
