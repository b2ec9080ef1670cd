/// A tar archive's members, read from its bytes without trusting them: every
/// header's checksum, number fields and size are checked before the member
/// is believed, and the archive must hold the data each header announces.
/// Reads ustar (with its name prefix), GNU long names (`L`, `K`) and pax
/// extended headers (`x`: `path`, `linkpath`); global pax headers
/// (`g`) are skipped.
public enum Tar {
    /// One member of an archive.
    public struct Member: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            case file
            case directory
            case symbolicLink(target: String)
            case hardLink(target: String)
            /// Character or block device, FIFO, or a type we do not know
            /// (the type flag, as a character).
            case special(Character)
        }

        /// The name as the archive gives it (no normalization).
        public var name: String
        public var kind: Kind
        /// Permission bits from the header (installers choose their own).
        public var mode: UInt32
        /// Where the member's data starts in the archive, and its length.
        public var dataOffset: Int
        public var size: Int
    }

    /// Why an archive was not read, with the byte offset of the header.
    public enum Error: Swift.Error, Sendable, Equatable, CustomStringConvertible {
        case truncatedHeader(offset: Int)
        case badChecksum(offset: Int, name: String)
        case badNumber(field: String, offset: Int)
        case tooLarge(name: String, size: Int, limit: Int)
        case truncatedData(name: String, offset: Int)
        case badName(offset: Int)
        case tooManyMembers(limit: Int)
        case badExtendedHeader(offset: Int)

        public var description: String {
            switch self {
            case .truncatedHeader(let offset):
                return "the archive ends inside the header at byte \(offset)"
            case .badChecksum(let offset, let name):
                return "the header at byte \(offset) (\(name)) has a wrong checksum"
            case .badNumber(let field, let offset):
                return "the header at byte \(offset) has a malformed \(field) field"
            case .tooLarge(let name, let size, let limit):
                return "member \(name) claims \(size) bytes, more than the \(limit) allowed"
            case .truncatedData(let name, let offset):
                return "the archive ends inside the data of \(name) (header at byte \(offset))"
            case .badName(let offset):
                return "the header at byte \(offset) has an empty or non-UTF-8 name"
            case .tooManyMembers(let limit):
                return "the archive has more than \(limit) members"
            case .badExtendedHeader(let offset):
                return "the extended header at byte \(offset) is malformed"
            }
        }
    }

    static let blockSize = 512

    /// The members of an archive. `sizeLimit` bounds each member's data
    /// (and every extended header), `memberLimit` their number.
    public static func members(
        of archive: [UInt8], sizeLimit: Int = 16 << 20, memberLimit: Int = 1024
    ) throws(Error) -> [Member] {
        var members: [Member] = []
        var offset = 0
        var longName: String?
        var longLink: String?
        var pax: [String: String] = [:]
        while true {
            // Two zero blocks end an archive; an archive that simply ends
            // on a block boundary (or after one zero block) is accepted too.
            if offset == archive.count { break }
            guard archive.count - offset >= blockSize else {
                throw .truncatedHeader(offset: offset)
            }
            let header = archive[offset..<offset + blockSize]
            if header.allSatisfy({ $0 == 0 }) { break }

            let stored = try number(header, 148, 8, field: "checksum", offset: offset)
            var unsigned = 0
            var signed = 0
            for (index, byte) in header.enumerated() {
                let value = (148..<156).contains(index) ? 0x20 : byte
                unsigned += Int(value)
                signed += Int(Int8(bitPattern: value))
            }
            let rawName = string(header, 0, 100)
            guard stored == unsigned || stored == signed else {
                throw .badChecksum(offset: offset, name: rawName ?? "?")
            }
            let size = try number(header, 124, 12, field: "size", offset: offset)
            let mode = try number(header, 100, 8, field: "mode", offset: offset)
            let type = header[header.startIndex + 156]
            let dataOffset = offset + blockSize
            let limit = type == UInt8(ascii: "x") || type == UInt8(ascii: "g") ? 1 << 20 : sizeLimit
            let nameForErrors = longName ?? pax["path"] ?? rawName ?? "?"
            guard size <= limit else {
                throw .tooLarge(name: nameForErrors, size: size, limit: limit)
            }
            guard archive.count - dataOffset >= size else {
                throw .truncatedData(name: nameForErrors, offset: offset)
            }
            let data = archive[dataOffset..<dataOffset + size]
            let padded = (size + blockSize - 1) / blockSize * blockSize
            // The last member's padding may be missing; nothing follows it.
            offset = min(archive.count, dataOffset + padded)

            switch type {
            case UInt8(ascii: "L"):
                longName = try cString(data, offset: offset)
                continue
            case UInt8(ascii: "K"):
                longLink = try cString(data, offset: offset)
                continue
            case UInt8(ascii: "x"):
                pax = try paxRecords(data, offset: dataOffset - blockSize)
                continue
            case UInt8(ascii: "g"):
                continue
            default:
                break
            }

            var name = rawName ?? ""
            // ustar: a prefix joined with a slash (magic "ustar", version "00"
            // or GNU's "ustar  ").
            if header[header.startIndex + 257..<header.startIndex + 262].elementsEqual(
                "ustar".utf8), let prefix = string(header, 345, 155), !prefix.isEmpty
            {
                name = prefix + "/" + name
            }
            if let longName { name = longName }
            if let path = pax["path"] { name = path }
            guard !name.isEmpty, rawName != nil || longName != nil || pax["path"] != nil else {
                throw .badName(offset: dataOffset - blockSize)
            }
            var linkTarget = string(header, 157, 100) ?? ""
            if let longLink { linkTarget = longLink }
            if let path = pax["linkpath"] { linkTarget = path }

            let kind: Member.Kind
            switch type {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"):
                kind = name.hasSuffix("/") ? .directory : .file
            case UInt8(ascii: "5"): kind = .directory
            case UInt8(ascii: "2"): kind = .symbolicLink(target: linkTarget)
            case UInt8(ascii: "1"): kind = .hardLink(target: linkTarget)
            default: kind = .special(Character(Unicode.Scalar(type)))
            }
            members.append(
                Member(
                    name: name, kind: kind, mode: UInt32(truncatingIfNeeded: mode) & 0o7777,
                    dataOffset: dataOffset, size: kind == .file ? size : 0))
            guard members.count <= memberLimit else { throw .tooManyMembers(limit: memberLimit) }
            longName = nil
            longLink = nil
            pax = [:]
        }
        return members
    }

    /// An octal field (NUL- or space-terminated, leading spaces allowed).
    /// Base-256 (GNU's for sizes above 8 GiB) is refused as malformed: no
    /// member of a bundle is anywhere near that.
    static func number(
        _ header: ArraySlice<UInt8>, _ start: Int, _ length: Int, field: String, offset: Int
    ) throws(Error) -> Int {
        var value = 0
        var seenDigit = false
        var ended = false
        for byte in header[header.startIndex + start..<header.startIndex + start + length] {
            if ended {
                guard byte == 0 || byte == 0x20 else {
                    throw .badNumber(field: field, offset: offset)
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                value = value * 8 + Int(byte - UInt8(ascii: "0"))
                seenDigit = true
                guard value < 1 << 40 else { throw .badNumber(field: field, offset: offset) }
            case 0x20 where !seenDigit:
                continue
            case 0, 0x20:
                ended = true
            default:
                throw .badNumber(field: field, offset: offset)
            }
        }
        guard seenDigit else { throw .badNumber(field: field, offset: offset) }
        return value
    }

    /// A NUL-terminated field as UTF-8; nil if empty or not UTF-8.
    static func string(_ header: ArraySlice<UInt8>, _ start: Int, _ length: Int) -> String? {
        let field = header[header.startIndex + start..<header.startIndex + start + length]
        let bytes = field.prefix(while: { $0 != 0 })
        guard !bytes.isEmpty else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }

    static func cString(_ data: ArraySlice<UInt8>, offset: Int) throws(Error) -> String {
        let bytes = data.prefix(while: { $0 != 0 })
        guard !bytes.isEmpty, let text = String(validating: bytes, as: UTF8.self) else {
            throw .badName(offset: offset)
        }
        return text
    }

    /// pax records: `LENGTH KEY=VALUE\n`, LENGTH counting the whole record.
    static func paxRecords(_ data: ArraySlice<UInt8>, offset: Int) throws(Error) -> [String: String]
    {
        var records: [String: String] = [:]
        var index = data.startIndex
        while index < data.endIndex {
            if data[index] == 0 { break }
            guard let space = data[index...].firstIndex(of: 0x20) else {
                throw .badExtendedHeader(offset: offset)
            }
            guard let lengthText = String(validating: data[index..<space], as: UTF8.self),
                let length = Int(lengthText), length > space - index + 1,
                index + length <= data.endIndex, data[index + length - 1] == 0x0a
            else { throw .badExtendedHeader(offset: offset) }
            let body = data[(space + 1)..<(index + length - 1)]
            guard let equals = body.firstIndex(of: UInt8(ascii: "=")),
                let key = String(validating: body[..<equals], as: UTF8.self),
                let value = String(validating: body[(equals + 1)...], as: UTF8.self)
            else { throw .badExtendedHeader(offset: offset) }
            records[key] = value
            index += length
        }
        return records
    }
}
