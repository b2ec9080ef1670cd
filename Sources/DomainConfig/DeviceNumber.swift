/// Virtual block device names → the device number written to the guest's
/// `device/vbd/N/virtual-device` (and used as N).
///
/// The rules are xend's `blkdev_name_to_number` from Xen 3.0.3
/// (tools/python/xen/util/blkif.py), which mirror the Linux majors the
/// 2.6.16-xen blkfront registers for these names:
///
/// - `sd[a-p]` + partition 1–15:  major 8 (SCSI),  `8 << 8 | 16·disk + part`
/// - `hd[a-t]` + partition 1–63:  IDE majors 3, 22, 33, 34, 56, 57, 88, 89,
///   90, 91, two disks per major: `major << 8 | 64·(disk % 2) + part`
/// - `xvd[a-p]` + partition 1–15: major 202 (Xen),  `202 << 8 | 16·disk + part`
/// - otherwise, a name made only of hex digits, with or without `0x`, is
///   taken as the number itself in hex. That is how xend treated the
///   NetBSD names in the seed talk: `0x3` is 3, and `cd0a` — whose letters
///   all happen to be hex digits — is 0xcd0a = 52490. The NetBSD guest does
///   not care: its xbd driver numbers disks in the order it finds them.
///
/// Deliberate differences from xend:
/// - xend first `stat`ed `/dev/NAME` in dom0 and used that node's number;
///   dom0's device nodes say nothing about the guest, so we don't.
/// - xend's regular expressions matched only a prefix (`sda16` became
///   `sda1` plus 15, i.e. sdb); we require the whole name to match.
/// - A name that fits no rule is an error (xend 3.0.3 crashed with a
///   Python TypeError when writing `None` into the store).
public enum VirtualDevice {
    static let ideMajors = [3, 22, 33, 34, 56, 57, 88, 89, 90, 91]

    /// The device number for a virtual device name such as `hda1`, `xvdb`,
    /// `sda1`, `0x3` or `/dev/hdb`; `nil` when no rule applies.
    public static func number(for name: String) -> Int? {
        let bare = name.hasPrefix("/dev/") ? String(name.dropFirst(5)) : name
        if let (disk, partition) = split(bare, prefix: "sd", disks: 16, maxPartition: 15) {
            return 8 << 8 | (16 * disk + partition)
        }
        if let (disk, partition) = split(bare, prefix: "hd", disks: 20, maxPartition: 63) {
            return ideMajors[disk / 2] << 8 | (64 * (disk % 2) + partition)
        }
        if let (disk, partition) = split(bare, prefix: "xvd", disks: 16, maxPartition: 15) {
            return 202 << 8 | (16 * disk + partition)
        }
        // xend matched the hex rule against the name as given (no /dev/).
        var hex = Substring(name)
        if hex.hasPrefix("0x") || hex.hasPrefix("0X") { hex = hex.dropFirst(2) }
        guard !hex.isEmpty, hex.count <= 8, hex.allSatisfy(\.isHexDigit) else { return nil }
        return Int(hex, radix: 16)
    }

    /// `prefix` + one disk letter + an optional partition without leading
    /// zero, within the given limits.
    private static func split(_ name: String, prefix: String, disks: Int, maxPartition: Int)
        -> (disk: Int, partition: Int)?
    {
        guard name.hasPrefix(prefix) else { return nil }
        let rest = Array(name.utf8.dropFirst(prefix.utf8.count))
        guard let letter = rest.first, letter >= UInt8(ascii: "a"),
            Int(letter - UInt8(ascii: "a")) < disks
        else { return nil }
        let digits = rest.dropFirst()
        if digits.isEmpty { return (Int(letter - UInt8(ascii: "a")), 0) }
        guard digits.first != UInt8(ascii: "0"), digits.count <= 2,
            digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let partition = Int(String(decoding: digits, as: UTF8.self)),
            partition <= maxPartition
        else { return nil }
        return (Int(letter - UInt8(ascii: "a")), partition)
    }

    /// Why `name` has no number, in words that point at the fix.
    static func explainUnmappable(_ name: String) -> String {
        "virtual device '\(name)' has no device number: xend accepts sd[a-p] (partitions "
            + "1-15), hd[a-t] (1-63), xvd[a-p] (1-15), or a hex number such as 0x301"
    }
}
