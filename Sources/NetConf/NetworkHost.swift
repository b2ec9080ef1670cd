/// The kernel interfaces netconf acts through, bundled: rtnetlink,
/// sysctls, nftables, and the record store.
public final class NetworkHost {
    public let netlink: any RouteNetlink
    public let sysctl: any SysctlAccess
    public let filter: any PacketFilter
    public let records: any RecordStore
    /// Every change made, in order, for the log and for tests.
    public private(set) var actions: [String] = []

    public init(
        netlink: any RouteNetlink, sysctl: any SysctlAccess, filter: any PacketFilter,
        records: any RecordStore
    ) {
        self.netlink = netlink
        self.sysctl = sysctl
        self.filter = filter
        self.records = records
    }

    /// The running system: libnl, /proc/sys and libnftables in the calling
    /// thread's network namespace.
    public static func system(
        recordDirectory: String = DirectoryRecordStore.defaultDirectory
    ) throws(NetConfError) -> NetworkHost {
        NetworkHost(
            netlink: try LibnlRoute(), sysctl: ProcSysctl(), filter: LibNftables(),
            records: DirectoryRecordStore(directory: recordDirectory))
    }

    func note(_ action: String) { actions.append(action) }
}

/// Undo steps of an operation in progress; on failure they run newest
/// first, returning the network to where it was.
struct UndoJournal {
    private var steps: [(what: String, undo: () throws(NetConfError) -> Void)] = []

    mutating func record(_ what: String, _ undo: @escaping () throws(NetConfError) -> Void) {
        steps.append((what, undo))
    }

    /// Runs every undo step; returns the ones that failed.
    func rollback() -> [String] {
        var failures: [String] = []
        for step in steps.reversed() {
            do {
                try step.undo()
            } catch {
                failures.append("undo \(step.what): \(error)")
            }
        }
        return failures
    }
}

/// Runs `body` with a journal; if it throws, undoes what it recorded and
/// rethrows (or reports that the undo failed as well).
func transaction<T>(
    _ body: (inout UndoJournal) throws(NetConfError) -> T
) throws(NetConfError) -> T {
    var journal = UndoJournal()
    do {
        return try body(&journal)
    } catch {
        let failures = journal.rollback()
        if failures.isEmpty { throw error }
        throw .rollbackIncomplete(cause: error.description, undoFailures: failures)
    }
}
