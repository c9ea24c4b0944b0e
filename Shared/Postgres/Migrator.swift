/// Applies one schema's migrations, in order, each in its own transaction together with
/// its row in `<schema>.schema_migrations`. Runs as the schema's owning role; two
/// instances migrating at once serialise on an advisory lock.
public struct Migrator: Sendable {
    /// The schema this migrator owns (e.g. `collector`).
    public let schema: String
    public let migrations: [Migration]

    /// - Precondition: versions are unique and ascending, starting at 1 with no gaps.
    public init(schema: String, migrations: [Migration]) {
        precondition(schema.allSatisfy { $0.isLetter || $0 == "_" }, "schema names are letters and underscores")
        precondition(migrations.enumerated().allSatisfy { $0.offset + 1 == $0.element.version },
                     "migration versions must be 1, 2, 3, … without gaps")
        self.schema = schema
        self.migrations = migrations
    }

    /// The outcome of ``migrate(using:)``.
    public struct Report: Sendable, Hashable {
        /// Versions applied by this call.
        public var applied: [Int]
        /// The schema's version afterwards.
        public var currentVersion: Int
    }

    /// Applies every migration not yet applied.
    /// - Throws: ``MigrationError`` if an applied migration's SQL changed or the database
    ///   is ahead of this build; ``PostgresError`` if a statement fails (that migration is
    ///   rolled back, earlier ones stay).
    public func migrate(using connection: PostgresConnection) async throws -> Report {
        // Schema names are validated letters/underscores, so quoting them here is safe.
        try await connection.withTransaction { tx in
            try await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", ["tributary.migrate." + schema])
            try await tx.query("""
                CREATE TABLE IF NOT EXISTS "\(schema)".schema_migrations (
                    version bigint PRIMARY KEY,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())
                """)
        }
        var applied: [Int] = []
        for migration in migrations {
            let didApply = try await connection.withTransaction { tx -> Bool in
                try await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", ["tributary.migrate." + schema])
                let existing = try await tx.query(
                    "SELECT checksum FROM \"\(schema)\".schema_migrations WHERE version = $1", [migration.version])
                if let row = existing.first {
                    guard try row.string("checksum") == migration.checksum else {
                        throw MigrationError(schema: schema, version: migration.version, kind: .changedAfterApplied)
                    }
                    return false
                }
                try await tx.execute(script: migration.sql)
                try await tx.query(
                    "INSERT INTO \"\(schema)\".schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    [migration.version, migration.name, migration.checksum])
                return true
            }
            if didApply { applied.append(migration.version) }
        }
        let newest = try await connection.query("SELECT max(version) AS v FROM \"\(schema)\".schema_migrations")
        let current = Int(try newest.first?.int("v") ?? 0)
        if current > migrations.count {
            throw MigrationError(schema: schema, version: current, kind: .databaseAhead)
        }
        return Report(applied: applied, currentVersion: current)
    }
}

/// A migration history that does not match this build.
public struct MigrationError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case changedAfterApplied, databaseAhead }
    public var schema: String
    public var version: Int
    public var kind: Kind

    public var description: String {
        switch kind {
        case .changedAfterApplied:
            return "migration \(version) of schema \(schema) was changed after it was applied; migrations are append-only"
        case .databaseAhead:
            return "schema \(schema) is at version \(version), newer than this build knows; upgrade the binary"
        }
    }
}
