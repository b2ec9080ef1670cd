import LinuxSystem
import XenBus

/// A ring journal's file on tmpfs (`/run/proxenos/journal/...` in the
/// appliance): it survives the backend process, not the host. One file per
/// ring; removed when the connection ends cleanly.
public final class RingJournalFile: @unchecked Sendable {
    // @unchecked: the mapping never changes; its content belongs to the
    // ring's worker.

    /// Where the appliance's backends keep their journals.
    public static let defaultDirectory = "/run/proxenos/journal"

    /// The mapped file.
    public let file: SharedFileMapping

    /// Opens or creates the journal file `directory/name` sized for a ring
    /// of `slots` entries. `resuming` keeps what a previous process left;
    /// otherwise the file starts empty.
    public init(
        directory: String = RingJournalFile.defaultDirectory, name: String, slots: UInt32,
        requestSize: Int, responseSize: Int, resuming: Bool
    ) throws(XenBusError) {
        let size = RingJournal.byteCount(
            slots: slots, requestSize: requestSize, responseSize: responseSize)
        do throws(SystemCallError) {
            file = try SharedFileMapping(path: "\(directory)/\(name)", size: size, reset: !resuming)
        } catch {
            throw .driver("ring journal \(directory)/\(name): \(error)")
        }
    }

    /// Removes the file (the connection ended: nothing is in flight).
    public func unlink() { file.unlink() }
}

extension JournaledBackRing {
    /// Attaches a backend to a frontend's ring with its journal in
    /// `journalFile`: a fresh connection starts both empty; a resumed one
    /// (``BackendDeviceContext/isResuming``) recovers the journal if it
    /// belongs to this connection (`identity`), and otherwise starts a new
    /// journal at the ring's published `rsp_prod`, re-reading every
    /// unanswered request from the ring (``recoveredJournal`` says which).
    public init(
        mapping: GrantMapping, journalFile: RingJournalFile, identity: UInt64, resuming: Bool
    ) throws(XenBusError) {
        let buffer = try mapping.writableBytes()
        let geometry = try RingGeometry(
            bufferSize: buffer.count, request: Request.self, response: Response.self)
        let slots = geometry.entryCount
        let memory = journalFile.file.bytes
        guard resuming else {
            let journal = try RingJournal(
                formatting: memory, slots: slots, requestSize: Request.wireSize,
                responseSize: Response.wireSize, identity: identity)
            self.init(ring: try BackRing(mapping: mapping), journal: journal)
            return
        }
        if let journal = RingJournal(
            recovering: memory, slots: slots, requestSize: Request.wireSize,
            responseSize: Response.wireSize, identity: identity)
        {
            try self.init(resuming: buffer, keepAlive: mapping, journal: journal)
            return
        }
        let published = try BackRing<Request, Response>(
            resuming: buffer, requestConsumer: nil
        ).responseProducer
        let journal = try RingJournal(
            formatting: memory, slots: slots, requestSize: Request.wireSize,
            responseSize: Response.wireSize, identity: identity, requestConsumer: published)
        try self.init(resuming: buffer, keepAlive: mapping, journal: journal, recovered: false)
    }
}
