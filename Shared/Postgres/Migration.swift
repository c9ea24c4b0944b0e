/// One step of a schema's history. Migrations are ordered by `version`, append-only:
/// once applied, a migration's SQL must never change (the migrator checks a checksum).
public struct Migration: Sendable, Hashable {
    public let version: Int
    /// A short name, e.g. `create_sites`.
    public let name: String
    /// The SQL, run in one transaction with the migration's record. Static text only.
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// A stable checksum of the SQL (FNV-1a, 64 bit, hex).
    public var checksum: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in sql.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return String(hash, radix: 16)
    }
}
