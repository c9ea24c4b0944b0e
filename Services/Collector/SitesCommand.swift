import ArgumentParser
import Foundation
import TributaryModels
import TributaryPostgres
import TributaryRuntime

/// `collector sites …`: manage sites and their write keys (in the collector schema).
/// Changes reach running collectors within `collector.sites.refreshSeconds`.
struct SitesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sites",
        abstract: "Manage sites and their write keys.",
        subcommands: [Add.self, List.self, Update.self, RotateKey.self, RevokeKey.self, Disable.self, Enable.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a site; prints its id, write key and read key (the keys are shown only now).")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The site's name (unique, 1-200 characters).") var name: String
        @Option(help: "The site's time zone for daily statistics (IANA name).") var timeZone = "UTC"
        @Option(name: .customLong("allowed-origin"), help: "A browser origin allowed to send (repeatable; none = any).")
        var allowedOrigins: [String] = []
        @Flag(help: "Print the result as JSON.") var json = false

        func validate() throws {
            guard (1...200).contains(name.count) else { throw ValidationError("the name must be 1-200 characters") }
            guard TimeZone(identifier: timeZone) != nil else { throw ValidationError("\(timeZone) is not a time zone") }
            try validateOrigins(allowedOrigins)
        }

        func run() async throws {
            try await withStore(options) { store in
                if try await store.findSite(name) != nil { throw DaemonError("a site named \(name) already exists") }
                let (site, key, readKey) = try await store.addSite(name: name, timeZone: timeZone,
                                                                   allowedOrigins: allowedOrigins.map { $0.lowercased() })
                if json {
                    printJSON(["siteId": site.siteID, "name": site.name, "writeKey": key, "readKey": readKey])
                } else {
                    print("site \(site.siteID) (\(site.name)) created")
                    print("write key: \(key)")
                    print("read key (statistics API): \(readKey)")
                    print("store them now: they cannot be shown again")
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List sites and their keys (prefixes only).")
        @OptionGroup var options: CommonOptions
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await withStore(options) { store in
                let sites = try await store.listSites()
                if json {
                    printJSON(sites.map { entry -> [String: Any] in
                        ["siteId": entry.site.siteID, "name": entry.site.name, "disabled": entry.site.isDisabled,
                         "timeZone": entry.site.timeZone, "allowedOrigins": entry.site.allowedOrigins,
                         "trackerCookies": entry.site.trackerCookies ?? false, "honorDnt": entry.site.honorDNT ?? false,
                         "keys": entry.keys.map { key -> [String: Any] in
                             ["keyId": key.keyID, "kind": key.kind, "prefix": key.prefix, "createdAt": ISO8601.format(key.createdAt),
                              "revoked": key.revokedAt != nil]
                         }]
                    })
                } else if sites.isEmpty {
                    print("no sites; add one with: collector sites add <name>")
                } else {
                    for entry in sites {
                        let active = entry.keys.filter { $0.revokedAt == nil }.map { "\($0.prefix) (\($0.kind))" }
                        print("\(entry.site.siteID)\t\(entry.site.name)\t\(entry.site.isDisabled ? "disabled" : "enabled")\tkeys: \(active.isEmpty ? "none" : active.joined(separator: ", "))")
                    }
                }
            }
        }
    }

    struct RotateKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-key",
            abstract: "Issue a new write key (or read key with --read) for a site and revoke its others of that kind (or keep them with --keep-old).")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The site's id or name.") var site: String
        @Flag(help: "Rotate the read key of the statistics API instead of the write key.") var read = false
        @Flag(help: "Keep the old keys working (revoke them later with revoke-key).") var keepOld = false
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await withStore(options) { store in
                let record = try await requireSite(site, store)
                let kind: WriteKey.Kind = read ? .read : .write
                let key = try await store.rotateKey(siteID: record.siteID, kind: kind, revokeOthers: !keepOld)
                if json {
                    printJSON(["siteId": record.siteID, read ? "readKey" : "writeKey": key, "oldKeysRevoked": !keepOld])
                } else {
                    print("new \(kind.rawValue) key for site \(record.siteID): \(key)")
                    print(keepOld ? "old keys still work" : "old keys are revoked")
                }
            }
        }
    }

    struct RevokeKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke-key",
            abstract: "Revoke a site's write or read key by prefix (as `sites list` shows), or all with --all.")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The site's id or name.") var site: String
        @Argument(help: "The key's prefix, e.g. trk_1a2b3c4d or trr_5e6f7a8b.") var prefix: String?
        @Flag(help: "Revoke every key of the site.") var all = false
        @Flag(help: "Print the result as JSON.") var json = false

        func validate() throws {
            guard (prefix != nil) != all else { throw ValidationError("give a key prefix or --all, not both") }
            if let prefix, prefix.count < 8 { throw ValidationError("the prefix must be at least 8 characters") }
        }

        func run() async throws {
            try await withStore(options) { store in
                let record = try await requireSite(site, store)
                let n = try await store.revokeKeys(siteID: record.siteID, prefix: all ? nil : prefix)
                guard n > 0 else { throw DaemonError("no active key of site \(record.siteID) matches") }
                if json { printJSON(["siteId": record.siteID, "revoked": n]) } else { print("revoked \(n) key(s)") }
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a site's settings.")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The site's id or name.") var site: String
        @Option(help: "Keep visitors' raw IP addresses downstream (true or false; off by default).")
        var keepRawIp: Bool?
        @Option(help: "Store the site's events and send them nowhere: no statistics, no sinks (true or false).")
        var storeOnly: Bool?
        @Option(help: "The site's time zone for daily statistics (IANA name, e.g. Europe/Paris).") var timeZone: String?
        @Option(name: .customLong("stats-prop"),
                help: "A custom event property the statistics break down per day (repeatable; replaces the list).")
        var statsProps: [String] = []
        @Flag(help: "Break down no custom event property.") var noStatsProps = false
        @Option(name: .customLong("allowed-origin"),
                help: "A browser origin allowed to send, like https://shop.example (repeatable; replaces the list).")
        var allowedOrigins: [String] = []
        @Flag(help: "Accept requests from any browser origin (clears the allowed origins).") var anyOrigin = false
        @Option(help: "Let the browser tracker keep an anonymous id across pages (true or false; off: cookie-less).")
        var trackerCookies: Bool?
        @Option(help: "Have the browser tracker send nothing for visitors with Do Not Track or Global Privacy Control (true or false).")
        var honorDnt: Bool?
        @Flag(help: "Print the result as JSON.") var json = false

        func validate() throws {
            guard keepRawIp != nil || storeOnly != nil || timeZone != nil || !statsProps.isEmpty || noStatsProps
                    || !allowedOrigins.isEmpty || anyOrigin || trackerCookies != nil || honorDnt != nil else {
                throw ValidationError("""
                    nothing to change: give --keep-raw-ip, --store-only, --time-zone, --stats-prop, --no-stats-props, \
                    --allowed-origin, --any-origin, --tracker-cookies or --honor-dnt
                    """)
            }
            guard allowedOrigins.isEmpty || !anyOrigin else { throw ValidationError("give --allowed-origin or --any-origin, not both") }
            try validateOrigins(allowedOrigins)
            if let timeZone, TimeZone(identifier: timeZone) == nil { throw ValidationError("\(timeZone) is not a time zone") }
            guard statsProps.isEmpty || !noStatsProps else { throw ValidationError("give --stats-prop or --no-stats-props, not both") }
            guard statsProps.count <= 20 else { throw ValidationError("at most 20 --stats-prop keys") }
            for key in statsProps where !(1...100).contains(key.count) {
                throw ValidationError("a property key must be 1-100 characters")
            }
        }

        func run() async throws {
            try await withStore(options) { store in
                let record = try await requireSite(site, store)
                if let keepRawIp { try await store.setKeepRawIP(siteID: record.siteID, keepRawIp) }
                if let storeOnly { try await store.setStoreOnly(siteID: record.siteID, storeOnly) }
                if let timeZone { try await store.setTimeZone(siteID: record.siteID, timeZone) }
                if !statsProps.isEmpty || noStatsProps { try await store.setStatsProps(siteID: record.siteID, statsProps) }
                if !allowedOrigins.isEmpty || anyOrigin {
                    try await store.setAllowedOrigins(siteID: record.siteID, allowedOrigins.map { $0.lowercased() })
                }
                if trackerCookies != nil || honorDnt != nil {
                    try await store.setTrackerPrivacy(siteID: record.siteID, cookies: trackerCookies, honorDNT: honorDnt)
                }
                if json {
                    var out: [String: Any] = ["siteId": record.siteID]
                    if let keepRawIp { out["keepRawIp"] = keepRawIp }
                    if let storeOnly { out["storeOnly"] = storeOnly }
                    if let timeZone { out["timeZone"] = timeZone }
                    if !statsProps.isEmpty || noStatsProps { out["statsProps"] = statsProps }
                    if !allowedOrigins.isEmpty || anyOrigin { out["allowedOrigins"] = allowedOrigins.map { $0.lowercased() } }
                    if let trackerCookies { out["trackerCookies"] = trackerCookies }
                    if let honorDnt { out["honorDnt"] = honorDnt }
                    printJSON(out)
                } else {
                    print("site \(record.siteID) updated")
                }
            }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a site: its requests get 403.")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The site's id or name.") var site: String
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await setDisabled(true, site: site, options: options, json: json)
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled site again.")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The site's id or name.") var site: String
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await setDisabled(false, site: site, options: options, json: json)
        }
    }
}

/// Origins as browsers send them in `Origin`: a scheme (http or https), a host and an
/// optional port; no path, query or user.
private func validateOrigins(_ origins: [String]) throws {
    guard origins.count <= 100 else { throw ValidationError("at most 100 allowed origins") }
    for origin in origins {
        guard let c = URLComponents(string: origin), let scheme = c.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = c.host, !host.isEmpty, c.path.isEmpty, c.query == nil, c.fragment == nil, c.user == nil,
              origin.count <= 200 else {
            throw ValidationError("\(origin) is not an origin like https://shop.example or http://localhost:3000 (no path)")
        }
    }
}

private func setDisabled(_ disabled: Bool, site: String, options: CommonOptions, json: Bool) async throws {
    try await withStore(options) { store in
        let record = try await requireSite(site, store)
        try await store.setDisabled(siteID: record.siteID, disabled)
        if json {
            printJSON(["siteId": record.siteID, "disabled": disabled])
        } else {
            print("site \(record.siteID) \(disabled ? "disabled" : "enabled")")
        }
    }
}

private func requireSite(_ reference: String, _ store: SiteStore) async throws -> SiteRecord {
    guard let site = try await store.findSite(reference) else { throw DaemonError("no site \(reference)") }
    return site
}

/// Runs `body` with a site store connected as the collector's role.
private func withStore(_ options: CommonOptions, _ body: (SiteStore) async throws -> Void) async throws {
    let reader = try await ConfigLoader.load(path: options.config)
    let configuration = try RuntimeConfiguration(daemon: .collector, reader: reader)
    let pool = NIOThreadPoolBox(threads: 1)
    defer { pool.stop() }
    let client = PostgresClient(configuration: configuration.postgres, maximumConnections: 1, threadPool: pool.pool)
    defer { client.close() }
    do {
        try await body(SiteStore(postgres: client))
    } catch let error as PostgresError where error.code == .connectionFailed {
        throw DaemonError("cannot connect to PostgreSQL at \(configuration.postgres.host):\(configuration.postgres.port) as \(configuration.postgres.user)")
    } catch let error as PostgresError where error.sqlState == "42P01" {
        throw DaemonError("the collector schema is not migrated; run: collector migrate")
    }
}

