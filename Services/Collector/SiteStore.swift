import Foundation
import TributaryPostgres

/// A site as the collector needs it to accept requests.
struct SiteRecord: Sendable, Codable, Hashable {
    var siteID: Int64
    var name: String
    var isDisabled: Bool
    var allowedOrigins: [String]
    var rateLimitPerSecond: Double?
    var timeZone: String
    /// Whether the browser tracker may keep an anonymous id (and user id) in the browser;
    /// `nil` (an older snapshot) is `false`: cookie-less.
    var trackerCookies: Bool?
    /// Whether the tracker sends nothing for visitors with Do Not Track or Global Privacy Control on.
    var honorDNT: Bool?
}

/// A write key as listed (never the key itself).
struct WriteKeyRecord: Sendable, Codable, Hashable {
    var keyID: Int64
    var kind: String
    var prefix: String
    var createdAt: Date
    var revokedAt: Date?
}

/// The SQL of the collector schema's sites and write keys.
struct SiteStore: Sendable {
    let postgres: PostgresClient

    /// Every site with its active key hashes (for the in-memory directory).
    func loadDirectory() async throws -> [(site: SiteRecord, keyHashes: [String])] {
        let rows = try await postgres.query("""
            SELECT s.site_id, s.name, s.disabled_at IS NOT NULL AS disabled, s.allowed_origins::text AS origins,
                   s.rate_limit_per_second, s.time_zone, s.tracker_cookies, s.honor_dnt,
                   coalesce(string_agg(k.key_hash, ',') FILTER (WHERE k.revoked_at IS NULL AND k.kind = 'write'), '') AS hashes
            FROM collector.sites s LEFT JOIN collector.write_keys k ON k.site_id = s.site_id
            GROUP BY s.site_id
            """).rows
        return try rows.map { row in
            let hashes = (try row.string("hashes") ?? "").split(separator: ",").map(String.init)
            return (try Self.site(row), hashes)
        }
    }

    static func site(_ row: PostgresRow) throws -> SiteRecord {
        let origins = try JSONDecoder().decode([String].self, from: Data((try row.string("origins") ?? "[]").utf8))
        return SiteRecord(siteID: try row.int("site_id") ?? 0, name: try row.string("name") ?? "",
                          isDisabled: try row.bool("disabled") ?? false, allowedOrigins: origins,
                          rateLimitPerSecond: try row.double("rate_limit_per_second"),
                          timeZone: try row.string("time_zone") ?? "UTC",
                          trackerCookies: try row.bool("tracker_cookies"), honorDNT: try row.bool("honor_dnt"))
    }

    /// Creates a site with a first write key and read key; returns the site and the keys (shown once).
    func addSite(name: String, timeZone: String, allowedOrigins: [String]) async throws -> (SiteRecord, String, String) {
        let key = WriteKey.generate()
        let readKey = WriteKey.generate(.read)
        let origins = String(decoding: try JSONEncoder().encode(allowedOrigins), as: UTF8.self)
        let site = try await postgres.withTransaction { tx -> SiteRecord in
            let row = try await tx.query("""
                INSERT INTO collector.sites (name, time_zone, allowed_origins) VALUES ($1, $2, $3::jsonb)
                RETURNING site_id, name, false AS disabled, allowed_origins::text AS origins, rate_limit_per_second, time_zone,
                    tracker_cookies, honor_dnt
                """, [name, timeZone, PostgresValue.json(origins)]).first!
            let site = try Self.site(row)
            for (k, kind) in [(key, WriteKey.Kind.write), (readKey, .read)] {
                try await tx.query("INSERT INTO collector.write_keys (site_id, key_prefix, key_hash, kind) VALUES ($1, $2, $3, $4)",
                                   [site.siteID, WriteKey.prefix(k), WriteKey.hash(k), kind.rawValue])
            }
            return site
        }
        return (site, key, readKey)
    }

    /// Finds a site by id (digits) or name.
    func findSite(_ reference: String) async throws -> SiteRecord? {
        let sql = """
            SELECT site_id, name, disabled_at IS NOT NULL AS disabled, allowed_origins::text AS origins,
                   rate_limit_per_second, time_zone, tracker_cookies, honor_dnt
            FROM collector.sites WHERE
            """
        if let id = Int64(reference) {
            return try await postgres.query(sql + " site_id = $1", [id]).first.map(Self.site)
        }
        return try await postgres.query(sql + " name = $1", [reference]).first.map(Self.site)
    }

    func listSites() async throws -> [(site: SiteRecord, keys: [WriteKeyRecord])] {
        let sites = try await postgres.query("""
            SELECT site_id, name, disabled_at IS NOT NULL AS disabled, allowed_origins::text AS origins,
                   rate_limit_per_second, time_zone, tracker_cookies, honor_dnt
            FROM collector.sites ORDER BY site_id
            """).rows.map(Self.site)
        let keys = try await postgres.query("""
            SELECT site_id, key_id, kind, key_prefix, created_at, revoked_at FROM collector.write_keys ORDER BY key_id
            """).rows
        var bySite: [Int64: [WriteKeyRecord]] = [:]
        for row in keys {
            let record = WriteKeyRecord(keyID: try row.int("key_id") ?? 0, kind: try row.string("kind") ?? "write", prefix: try row.string("key_prefix") ?? "",
                                        createdAt: try row.date("created_at") ?? Date(), revokedAt: try row.date("revoked_at"))
            bySite[try row.int("site_id") ?? 0, default: []].append(record)
        }
        return sites.map { ($0, bySite[$0.siteID] ?? []) }
    }

    /// Issues a new key of `kind` for the site; with `revokeOthers`, every older key of that kind stops working.
    func rotateKey(siteID: Int64, kind: WriteKey.Kind = .write, revokeOthers: Bool) async throws -> String {
        let key = WriteKey.generate(kind)
        try await postgres.withTransaction { tx in
            if revokeOthers {
                try await tx.query("""
                    UPDATE collector.write_keys SET revoked_at = now() WHERE site_id = $1 AND kind = $2 AND revoked_at IS NULL
                    """, [siteID, kind.rawValue])
            }
            try await tx.query("INSERT INTO collector.write_keys (site_id, key_prefix, key_hash, kind) VALUES ($1, $2, $3, $4)",
                               [siteID, WriteKey.prefix(key), WriteKey.hash(key), kind.rawValue])
            try await tx.query("UPDATE collector.sites SET updated_at = now() WHERE site_id = $1", [siteID])
        }
        return key
    }

    /// Revokes the site's keys whose prefix starts with `prefix` (or all with `nil`);
    /// returns how many were revoked.
    func revokeKeys(siteID: Int64, prefix: String?) async throws -> Int {
        let result: PostgresResult
        if let prefix {
            result = try await postgres.query("""
                UPDATE collector.write_keys SET revoked_at = now()
                WHERE site_id = $1 AND revoked_at IS NULL AND starts_with(key_prefix, $2)
                """, [siteID, prefix])
        } else {
            result = try await postgres.query(
                "UPDATE collector.write_keys SET revoked_at = now() WHERE site_id = $1 AND revoked_at IS NULL", [siteID])
        }
        return result.affectedRows
    }

    /// Whether the site's raw IP addresses are kept downstream (hydration reads this).
    func setKeepRawIP(siteID: Int64, _ keep: Bool) async throws {
        try await postgres.query("UPDATE collector.sites SET keep_raw_ip = $2, updated_at = now() WHERE site_id = $1",
                                 [siteID, keep])
    }

    /// The browser origins allowed to send for the site (empty: any).
    func setAllowedOrigins(siteID: Int64, _ origins: [String]) async throws {
        let json = String(decoding: try JSONEncoder().encode(origins), as: UTF8.self)
        try await postgres.query("UPDATE collector.sites SET allowed_origins = $2::jsonb, updated_at = now() WHERE site_id = $1",
                                 [siteID, PostgresValue.json(json)])
    }

    /// The browser tracker's privacy settings for the site (either may be left as it is).
    func setTrackerPrivacy(siteID: Int64, cookies: Bool?, honorDNT: Bool?) async throws {
        try await postgres.query("""
            UPDATE collector.sites SET tracker_cookies = coalesce($2, tracker_cookies), honor_dnt = coalesce($3, honor_dnt),
                updated_at = now()
            WHERE site_id = $1
            """, [siteID, cookies, honorDNT])
    }

    /// Whether the site's events are only stored, and sent nowhere (hydration reads this).
    func setStoreOnly(siteID: Int64, _ storeOnly: Bool) async throws {
        try await postgres.query("UPDATE collector.sites SET store_only = $2, updated_at = now() WHERE site_id = $1",
                                 [siteID, storeOnly])
    }

    /// The site's time zone for daily statistics (the aggregator reads it).
    func setTimeZone(siteID: Int64, _ zone: String) async throws {
        try await postgres.query("UPDATE collector.sites SET time_zone = $2, updated_at = now() WHERE site_id = $1",
                                 [siteID, zone])
    }

    /// The custom event properties the aggregator breaks down per day.
    func setStatsProps(siteID: Int64, _ keys: [String]) async throws {
        let json = String(decoding: try JSONEncoder().encode(keys), as: UTF8.self)
        try await postgres.query("UPDATE collector.sites SET stats_props = $2::jsonb, updated_at = now() WHERE site_id = $1",
                                 [siteID, PostgresValue.json(json)])
    }

    /// Disables (or re-enables) a site: its requests get 403 while disabled.
    func setDisabled(siteID: Int64, _ disabled: Bool) async throws {
        try await postgres.query("""
            UPDATE collector.sites SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END, updated_at = now()
            WHERE site_id = $1
            """, [siteID, disabled])
    }
}
