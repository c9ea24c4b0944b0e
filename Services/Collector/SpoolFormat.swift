import Foundation
import TributaryModels

/// The spool's on-disk record format: `TRBS` | length (UInt32, big-endian) | CRC-32 of
/// the body (UInt32, big-endian) | body (the record as JSON). A torn record at the end
/// of a segment (a crash mid-append: it was never acknowledged) fails its length or
/// checksum and is dropped; a damaged record elsewhere is skipped by searching for the
/// next `TRBS` marker.
enum SpoolFormat {
    static let magic: [UInt8] = Array("TRBS".utf8)
    static let headerSize = 12

    static func encode(_ record: RawBatchRecord) throws -> [UInt8] {
        let body = try TributaryJSON.encode(record)
        var out = magic
        out.reserveCapacity(headerSize + body.count)
        withUnsafeBytes(of: UInt32(body.count).bigEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: CRC32.checksum(body).bigEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: body)
        return out
    }

    /// The records in `data`, in order, and how many damaged byte ranges were skipped.
    static func decode(_ data: [UInt8]) -> (records: [RawBatchRecord], skipped: Int) {
        var records: [RawBatchRecord] = []
        var skipped = 0
        var i = 0
        func readUInt32(_ at: Int) -> UInt32 {
            data[at..<(at + 4)].reduce(0) { $0 << 8 | UInt32($1) }
        }
        while i + headerSize <= data.count {
            if Array(data[i..<(i + 4)]) == magic {
                let length = Int(readUInt32(i + 4))
                let crc = readUInt32(i + 8)
                let start = i + headerSize
                if start + length <= data.count {
                    let body = data[start..<(start + length)]
                    if CRC32.checksum(body) == crc,
                       let record = try? TributaryJSON.decode(RawBatchRecord.self, from: body) {
                        records.append(record)
                        i = start + length
                        continue
                    }
                }
            }
            // Damaged or torn: look for the next record marker.
            skipped += 1
            var next = i + 1
            while next + 4 <= data.count, Array(data[next..<(next + 4)]) != magic { next += 1 }
            i = next + 4 <= data.count ? next : data.count
        }
        if i < data.count { skipped += 1 }  // a torn header at the end
        return (records, skipped)
    }
}
