import CMaxMindDB
import Foundation

/// Country, region and city of an IP address, from a MaxMind-format database
/// (GeoLite2 City or compatible) through libmaxminddb.
///
/// Thread safety: the `MMDB_s` is a C struct owned by this object, opened once
/// (memory-mapped) and only read afterwards; libmaxminddb documents lookups on an opened
/// database as safe from any number of threads. It is closed and freed in `deinit`.
/// Lookups are memory reads (no I/O), so they run on the caller's thread.
public final class GeoIP: @unchecked Sendable {
    /// What a lookup found.
    public struct Location: Sendable, Hashable {
        public var country: String?
        public var region: String?
        public var city: String?
    }

    /// A database that cannot be opened.
    public struct OpenError: Error, CustomStringConvertible {
        public let path: String
        public let code: Int32
        public var description: String { "cannot open the GeoIP database \(path) (libmaxminddb error \(code))" }
    }

    private let database: UnsafeMutablePointer<MMDB_s>

    /// Opens the database at `path`.
    public init(path: String) throws {
        database = .allocate(capacity: 1)
        let status = MMDB_open(path, UInt32(MMDB_MODE_MMAP), database)
        guard status == MMDB_SUCCESS else {
            database.deallocate()
            throw OpenError(path: path, code: status)
        }
    }

    deinit {
        MMDB_close(database)
        database.deallocate()
    }

    /// The location of `ip` (IPv4 or IPv6 text); `nil` if the address is malformed or unknown.
    public func locate(_ ip: String) -> Location? {
        var gaiError: Int32 = 0
        var mmdbError: Int32 = 0
        var result = MMDB_lookup_string(database, ip, &gaiError, &mmdbError)
        guard gaiError == 0, mmdbError == MMDB_SUCCESS, result.found_entry else { return nil }
        func string(_ path: [String]) -> String? {
            var data = MMDB_entry_data_s()
            let cPath = path.map { strdup($0) } + [nil]
            defer { cPath.forEach { free($0) } }
            let status = cPath.withUnsafeBufferPointer { buffer in
                buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: cPath.count) {
                    MMDB_aget_value(&result.entry, &data, $0)
                }
            }
            guard status == MMDB_SUCCESS, data.has_data, data.type == UInt32(MMDB_DATA_TYPE_UTF8_STRING),
                  let text = data.utf8_string else { return nil }
            return String(decoding: UnsafeRawBufferPointer(start: text, count: Int(data.data_size)), as: UTF8.self)
        }
        let location = Location(country: string(["country", "iso_code"]),
                                region: string(["subdivisions", "0", "names", "en"]),
                                city: string(["city", "names", "en"]))
        return location.country == nil && location.city == nil ? nil : location
    }
}
