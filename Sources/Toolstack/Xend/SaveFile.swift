import DomainConfig
import SystemPackage

/// xend's save file: a header carrying the domain's config, then
/// libxenguest's save stream (what `xc_domain_save` writes and
/// `xc_domain_restore` reads).
///
///     "Proxenos xend save v1\n"    22 bytes of magic
///     length                       4 bytes, big-endian, ≤ 1 MiB
///     (vm ...)                     the config, SpecCodec's S-expression
///     libxenguest stream           to the end of the file
public enum SaveFile {
    public static let magic = Array("Proxenos xend save v1\n".utf8)
    public static let maximumConfigSize = 1 << 20

    /// The header for a domain's config (its `uuid` set).
    public static func header(for spec: DomainSpec) throws(ToolstackError) -> [UInt8] {
        let config = Array(XendWire.render(SpecCodec.encode(spec)).utf8)
        guard config.count <= maximumConfigSize else {
            throw .invalidSpec("the config is \(config.count) bytes, over the save file's limit")
        }
        let length = UInt32(config.count)
        return magic + [
            UInt8(length >> 24), UInt8((length >> 16) & 0xff), UInt8((length >> 8) & 0xff),
            UInt8(length & 0xff),
        ] + config
    }

    /// Parses a header from the start of `bytes`: the config and how many
    /// bytes the header took.
    public static func parseHeader(_ bytes: [UInt8], path: String) throws(ToolstackError)
        -> (spec: DomainSpec, size: Int)
    {
        guard bytes.count >= magic.count, Array(bytes.prefix(magic.count)) == magic else {
            throw .badSaveFile(path: path, reason: "it does not start with xend's save header")
        }
        guard bytes.count >= magic.count + 4 else {
            throw .badSaveFile(path: path, reason: "the header is cut short")
        }
        let at = magic.count
        let length =
            Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8
            | Int(bytes[at + 3])
        guard length <= maximumConfigSize else {
            throw .badSaveFile(path: path, reason: "its config claims \(length) bytes")
        }
        guard bytes.count >= at + 4 + length else {
            throw .badSaveFile(path: path, reason: "the config is cut short")
        }
        let text = Array(bytes[(at + 4)..<(at + 4 + length)])
        do throws(ToolstackError) {
            let spec = try SpecCodec.decode(try XendWire.parse(text))
            guard spec.uuid != nil else {
                throw ToolstackError.invalidSpec("the config has no uuid")
            }
            return (spec, at + 4 + length)
        } catch {
            throw .badSaveFile(path: path, reason: "\(error)")
        }
    }

    /// Reads the header from a file positioned at its start and leaves the
    /// file positioned at the save stream.
    public static func readHeader(from fd: FileDescriptor, path: String) throws(ToolstackError)
        -> DomainSpec
    {
        var bytes = try readExactly(fd, count: magic.count + 4, path: path)
        if bytes.count == magic.count + 4, Array(bytes.prefix(magic.count)) == magic {
            let at = magic.count
            let length =
                Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8
                | Int(bytes[at + 3])
            if length <= maximumConfigSize {
                bytes += try readExactly(fd, count: length, path: path)
            }
        }
        return try parseHeader(bytes, path: path).spec
    }

    /// Up to `count` bytes (fewer only at end of file).
    static func readExactly(_ fd: FileDescriptor, count: Int, path: String) throws(ToolstackError)
        -> [UInt8]
    {
        var result = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let got: Int
            do {
                got = try result.withUnsafeMutableBytes { raw in
                    try fd.read(
                        into: UnsafeMutableRawBufferPointer(rebasing: raw[filled...]),
                        retryOnInterrupt: true)
                }
            } catch let error as Errno {
                throw .badSaveFile(path: path, reason: "\(error)")
            } catch {
                throw .badSaveFile(path: path, reason: "\(error)")
            }
            if got == 0 { break }
            filled += got
        }
        return Array(result.prefix(filled))
    }
}
