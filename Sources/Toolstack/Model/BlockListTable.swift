/// One row of `xm block-list`: a disk's frontend as the guest published it.
public struct BlockDeviceRow: Sendable, Equatable {
    /// The device number (`Vdev`).
    public var vdev: Int
    /// `backend-id`, -1 when absent (as xm printed a missing field).
    public var backendID: Int
    /// `handle`, 0 when absent.
    public var handle: Int
    /// The frontend's xenbus `state`, -1 when absent.
    public var state: Int
    /// `event-channel`, -1 before the guest connected.
    public var eventChannel: Int
    /// `ring-ref` (`ring-ref0` of a multi-page ring), -1 before the guest connected.
    public var ringRef: Int
    /// The `backend` path, `??` when absent.
    public var backendPath: String

    public init(
        vdev: Int, backendID: Int, handle: Int, state: Int, eventChannel: Int, ringRef: Int,
        backendPath: String
    ) {
        self.vdev = vdev
        self.backendID = backendID
        self.handle = handle
        self.state = state
        self.eventChannel = eventChannel
        self.ringRef = ringRef
        self.backendPath = backendPath
    }
}

/// `xm block-list DOMAIN`: xm 3's header and its printf widths
/// (`%-3d    %-3d%-3d   %-3d    %-3d    %-5d %-30s  `), so scripts that
/// split its columns keep working. No disks: no output at all, as xm.
public enum BlockListTable {
    public static let header = "Vdev  BE handle state evt-ch ring-ref BE-path"

    public static func render(_ rows: [BlockDeviceRow]) -> String {
        guard !rows.isEmpty else { return "" }
        var lines = [header]
        for row in rows {
            lines.append(
                left(row.vdev, 3) + "    " + left(row.backendID, 3) + left(row.handle, 3) + "   "
                    + left(row.state, 3) + "    " + left(row.eventChannel, 3) + "    "
                    + left(row.ringRef, 5) + " " + pad(row.backendPath, 30) + "  ")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func left(_ value: Int, _ width: Int) -> String { pad(String(value), width) }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}
