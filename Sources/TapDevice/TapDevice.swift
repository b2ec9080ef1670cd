import CLinux
import LinuxSystem
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// What went wrong with a TAP device, for the admin.
public enum TapError: Error, Sendable, Equatable, CustomStringConvertible {
    /// /dev/net/tun is missing or cannot be opened (module `tun` not loaded?).
    case cannotOpen(Errno)
    /// A `TUNSET*` ioctl failed.
    case ioctl(name: String, operation: String, errno: Errno)
    case invalidName(String)

    public var description: String {
        switch self {
        case .cannotOpen(let errno):
            return "cannot open /dev/net/tun: \(errno) (is the tun module loaded?)"
        case .ioctl(let name, let operation, let errno):
            return "TAP \(name): \(operation) failed: \(errno)"
        case .invalidName(let name):
            return
                "TAP name \(name) is not a valid interface name (1 to 15 bytes, no '/' or spaces)"
        }
    }
}

/// A TAP interface opened the way netback needs it: Ethernet frames
/// without the packet-information prefix (`IFF_TAP | IFF_NO_PI`), each
/// preceded by a ``VirtioNetHeader``-sized header (`IFF_VNET_HDR`,
/// `TUNSETVNETHDRSZ` 10), with the offloads the guest can take
/// (`TUNSETOFFLOAD`), and one descriptor per queue (`IFF_MULTI_QUEUE` when
/// more than one). Descriptors are non-blocking and close-on-exec. The
/// interface is not persistent: it disappears when the last descriptor
/// closes, so a killed backend leaves no TAP behind and its successor
/// creates it anew.
public final class TapDevice: Sendable {
    /// `TUN_F_*`: what the kernel may hand us (and so what we must pass on).
    public struct Offloads: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// Partial checksums (`TUN_F_CSUM`); the others need it.
        public static let checksum = Offloads(rawValue: 0x01)
        /// TCPv4 segmentation (`TUN_F_TSO4`).
        public static let tcpv4 = Offloads(rawValue: 0x02)
        /// TCPv6 segmentation (`TUN_F_TSO6`).
        public static let tcpv6 = Offloads(rawValue: 0x04)
    }

    /// The interface name the kernel gave (`vifD.N`).
    public let name: String
    /// One descriptor per queue.
    public let queues: [FileDescriptor]
    /// Set by the first ``close()``: a descriptor number closed twice may
    /// by then belong to someone else (another vif's ring, a socket).
    private let closed = Atomic<Bool>(false)

    /// The virtio header size told to the TAP.
    public static let headerSize: Int32 = 10

    // linux/if_tun.h
    static let tunSetInterface: UInt = 0x4004_54ca
    static let tunSetOffload: UInt = 0x4004_54d0
    static let tunSetVnetHeaderSize: UInt = 0x4004_54d8
    static let iffTap: UInt16 = 0x0002
    static let iffNoPI: UInt16 = 0x1000
    static let iffVnetHeader: UInt16 = 0x4000
    static let iffMultiQueue: UInt16 = 0x0100

    private init(name: String, queues: [FileDescriptor]) {
        self.name = name
        self.queues = queues
    }

    /// Creates TAP `name` (in the calling thread's network namespace) with
    /// `queueCount` queues and `offloads`. A half-created TAP closes what
    /// it opened, which removes the interface.
    public static func create(name: String, queueCount: Int = 1, offloads: Offloads)
        throws(TapError) -> TapDevice
    {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 15,
            !bytes.contains(where: { $0 <= 0x20 || $0 == 0x2F })
        else { throw .invalidName(name) }
        var opened: [FileDescriptor] = []
        var actualName = name
        do throws(TapError) {
            for _ in 0..<max(1, queueCount) {
                let fd = try openQueue(
                    name: actualName, multiQueue: queueCount > 1, offloads: offloads)
                opened.append(fd.descriptor)
                actualName = fd.name
            }
        } catch {
            for fd in opened { try? fd.close() }
            throw error
        }
        return TapDevice(name: actualName, queues: opened)
    }

    private static func openQueue(name: String, multiQueue: Bool, offloads: Offloads)
        throws(TapError) -> (descriptor: FileDescriptor, name: String)
    {
        let raw: Int32
        switch retryingSyscall({ clinux_open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC, 0) })
        {
        case .success(let fd): raw = fd
        case .failure(let errno): throw .cannotOpen(errno)
        }
        let descriptor = FileDescriptor(rawValue: raw)
        func fail(_ operation: String) -> TapError {
            let error = TapError.ioctl(
                name: name, operation: operation, errno: Errno(rawValue: errno))
            try? descriptor.close()
            return error
        }
        // struct ifreq: the 16-byte name, then ifr_flags (a short) in the union.
        var request = [UInt8](repeating: 0, count: 40)
        for (index, byte) in name.utf8.enumerated() { request[index] = byte }
        var flags = iffTap | iffNoPI | iffVnetHeader
        if multiQueue { flags |= iffMultiQueue }
        request[16] = UInt8(flags & 0xFF)
        request[17] = UInt8(flags >> 8)
        let status = request.withUnsafeMutableBytes { buffer in
            // SAFETY: the ioctl reads and writes within the 40-byte ifreq.
            clinux_ioctl_ptr(raw, tunSetInterface, buffer.baseAddress)
        }
        guard status == 0 else { throw fail("TUNSETIFF") }
        let kernelName = String(decoding: request.prefix(16).prefix { $0 != 0 }, as: UTF8.self)
        var size = headerSize
        guard
            withUnsafeMutablePointer(to: &size, { clinux_ioctl_ptr(raw, tunSetVnetHeaderSize, $0) })
                == 0
        else { throw fail("TUNSETVNETHDRSZ \(headerSize)") }
        guard clinux_ioctl_int(raw, tunSetOffload, UInt(offloads.rawValue)) == 0 else {
            throw fail("TUNSETOFFLOAD 0x\(String(offloads.rawValue, radix: 16))")
        }
        return (descriptor, kernelName)
    }

    /// Closes every queue; the interface disappears with the last one.
    /// Only the first call closes anything.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for queue in queues { try? queue.close() }
    }
}

/// Packet I/O on a descriptor that keeps packet boundaries (a TAP queue, or
/// a datagram socket standing in for one in tests): one read is one frame,
/// one write is one frame.
public enum PacketIO {
    /// Reads one packet: the virtio header into `header`, the frame into
    /// `frame`. Returns the frame's length, nil when nothing is waiting
    /// (EAGAIN), or the error. A frame longer than `frame` is cut short:
    /// give one byte more than the longest acceptable frame to notice.
    public static func read(
        _ descriptor: FileDescriptor, header: UnsafeMutableRawBufferPointer,
        frame: UnsafeMutableRawBufferPointer
    ) -> Result<Int?, Errno> {
        var vectors = [
            iovec(iov_base: header.baseAddress, iov_len: header.count),
            iovec(iov_base: frame.baseAddress, iov_len: frame.count),
        ]
        let result = vectors.withUnsafeMutableBufferPointer { pointer in
            retryingSyscall { readv(descriptor.rawValue, pointer.baseAddress, 2) }
        }
        switch result {
        case .success(let count):
            return .success(max(0, count - header.count))
        case .failure(let errno):
            if errno == .resourceTemporarilyUnavailable { return .success(nil) }
            return .failure(errno)
        }
    }

    /// Writes one packet: the virtio header, then the frame. Returns false
    /// when the descriptor would block (the packet is not sent).
    public static func write(
        _ descriptor: FileDescriptor, header: UnsafeRawBufferPointer,
        frame: UnsafeRawBufferPointer
    ) -> Result<Bool, Errno> {
        var vectors = [
            iovec(
                iov_base: UnsafeMutableRawPointer(mutating: header.baseAddress),
                iov_len: header.count),
            iovec(
                iov_base: UnsafeMutableRawPointer(mutating: frame.baseAddress), iov_len: frame.count
            ),
        ]
        let result = vectors.withUnsafeMutableBufferPointer { pointer in
            retryingSyscall { writev(descriptor.rawValue, pointer.baseAddress, 2) }
        }
        switch result {
        case .success: return .success(true)
        case .failure(let errno):
            if errno == .resourceTemporarilyUnavailable { return .success(false) }
            return .failure(errno)
        }
    }
}
