import Foundation
import NetBackend
import NetnsTesting
import SystemPackage
import TapDevice
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Reads one packet from `queue`, waiting up to `seconds`, skipping frames
/// `skip` says to (IPv6 router solicitations and the like).
func readPacket(
    _ queue: FileDescriptor, seconds: Double = 30, skip: ([UInt8]) -> Bool = { _ in false }
) throws -> (VirtioNetHeader, [UInt8])? {
    let header = UnsafeMutableRawBufferPointer.allocate(byteCount: 10, alignment: 8)
    let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_600, alignment: 8)
    defer {
        header.deallocate()
        frame.deallocate()
    }
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        switch PacketIO.read(queue, header: header, frame: frame) {
        case .success(let length?):
            let bytes = Array(frame.prefix(length))
            if skip(bytes) { continue }
            return (VirtioNetHeader(decoding: UnsafeRawBufferPointer(header))!, bytes)
        case .success(nil):
            usleep(10_000)
        case .failure(let errno):
            throw NamespaceError(description: "read from the TAP: \(errno)")
        }
    }
    return nil
}

func etherType(_ frame: [UInt8]) -> UInt16 { UInt16(frame[12]) << 8 | UInt16(frame[13]) }

@Suite("TAP devices with virtio headers (host integration, network namespaces)")
struct TapDeviceTests {
    @Test("invalid names are refused before the kernel is asked")
    func names() {
        #expect(throws: TapError.invalidName("a/b")) {
            try TapDevice.create(name: "a/b", offloads: [])
        }
        #expect(throws: TapError.invalidName("")) { try TapDevice.create(name: "", offloads: []) }
        #expect(throws: TapError.invalidName("vif1234567.89012")) {
            try TapDevice.create(name: "vif1234567.89012", offloads: [])
        }
    }

    @Test(
        "a TAP in a namespace: frames cross both ways, the kernel's UDP checksum arrives partial",
        .enabled(if: runningAsRoot, "creates network namespaces"))
    func frames() throws {
        let namespace = try NetworkNamespace()
        defer { namespace.destroy() }
        let tap = try namespace.inside {
            try TapDevice.create(name: "vif9.0", offloads: [.checksum, .tcpv4, .tcpv6])
        }
        defer { tap.close() }
        #expect(tap.name == "vif9.0")
        #expect(try namespace.ip("link", "show", "vif9.0").contains("vif9.0"))
        try namespace.ip("link", "set", "vif9.0", "address", "fe:ff:ff:ff:ff:ff")
        try namespace.ip("addr", "add", "10.9.0.1/24", "dev", "vif9.0")
        try namespace.ip("link", "set", "vif9.0", "up")
        let guestMAC: [UInt8] = [0x00, 0x16, 0x3e, 0x09, 0x00, 0x01]
        try namespace.ip(
            "neigh", "add", "10.9.0.2", "lladdr", "00:16:3e:09:00:01", "dev", "vif9.0")
        let queue = tap.queues[0]
        let notIPv4 = { (frame: [UInt8]) in frame.count < 14 || etherType(frame) != 0x0800 }

        // dom0's stack → the TAP: a UDP datagram with its checksum left to
        // the "hardware" (TUN_F_CSUM): NEEDS_CSUM at the UDP header.
        let sent = try namespace.exec([
            "python3", "-c",
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                + "s.sendto(b'x' * 200, ('10.9.0.2', 9))",
        ])
        #expect(sent.status == 0)
        let (header, frame) = try #require(try readPacket(queue, skip: notIPv4))
        #expect(Array(frame[0..<6]) == guestMAC)
        #expect(frame[23] == 17)  // IPv4 protocol: UDP
        #expect(header.flags.contains(.needsChecksum))
        #expect(header.checksumStart == 34 && header.checksumOffset == 6)

        // The TAP → dom0's stack: an ICMP echo request from the "guest" is
        // answered by the kernel with an echo reply out of the TAP.
        var request: [UInt8] = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff] + guestMAC + [0x08, 0x00]
        var ip: [UInt8] = [0x45, 0, 0, 28, 0x12, 0x34, 0, 0, 64, 1, 0, 0, 10, 9, 0, 2, 10, 9, 0, 1]
        let ipSum = internetChecksum(ip)
        ip[10] = UInt8(ipSum >> 8)
        ip[11] = UInt8(ipSum & 0xFF)
        var icmp: [UInt8] = [8, 0, 0, 0, 0x42, 0x42, 0, 1]
        let icmpSum = internetChecksum(icmp)
        icmp[2] = UInt8(icmpSum >> 8)
        icmp[3] = UInt8(icmpSum & 0xFF)
        request += ip + icmp
        let written = VirtioNetHeader().bytes.withUnsafeBytes { header in
            request.withUnsafeBytes { PacketIO.write(queue, header: header, frame: $0) }
        }
        #expect(written == .success(true))
        let reply = try #require(
            try readPacket(queue, skip: { notIPv4($0) || $0[23] != 1 }))
        #expect(reply.1[34] == 0)  // ICMP echo reply
        #expect(Array(reply.1[38..<40]) == [0x42, 0x42])  // our identifier

        // The interface goes with its last descriptor.
        tap.close()
        #expect(try namespace.exec(["ip", "link", "show", "vif9.0"]).status != 0)
    }

    @Test(
        "closing twice closes once: the descriptor number, reused meanwhile, is left alone",
        .enabled(if: runningAsRoot, "creates network namespaces"))
    func closeOnce() throws {
        let namespace = try NetworkNamespace()
        defer { namespace.destroy() }
        let tap = try namespace.inside { try TapDevice.create(name: "vif9.2", offloads: []) }
        let number = tap.queues[0].rawValue
        tap.close()
        // The lowest free number from `number` up is the one just closed
        // (unless a parallel test took it: then there is nothing to check).
        let reused = fcntl(2, F_DUPFD_CLOEXEC, number)
        guard reused == number else {
            close(reused)
            return
        }
        tap.close()
        #expect(fcntl(number, F_GETFD) >= 0, "a second close must not close the reused number")
        close(number)
    }

    @Test(
        "two queues of one TAP (IFF_MULTI_QUEUE)",
        .enabled(if: runningAsRoot, "creates network namespaces"))
    func multiQueue() throws {
        let namespace = try NetworkNamespace()
        defer { namespace.destroy() }
        let tap = try namespace.inside {
            try TapDevice.create(name: "vif9.1", queueCount: 2, offloads: [.checksum])
        }
        defer { tap.close() }
        #expect(tap.queues.count == 2)
        #expect(try namespace.ip("link", "show", "vif9.1").contains("vif9.1"))
    }
}

/// The Internet checksum (RFC 1071) of `bytes`.
func internetChecksum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var index = 0
    while index + 1 < bytes.count {
        sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
        index += 2
    }
    if index < bytes.count { sum += UInt32(bytes[index]) << 8 }
    while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
    return ~UInt16(sum)
}
