import Configuration
import Foundation
import TributaryPostgres

/// The body of every daemon's `migrate` subcommand: applies the daemon's migrations as
/// its own role and prints what it did (`--json` for scripts).
public enum MigrateCommand {
    public static func run(daemon: DaemonName, migrator: Migrator, configPath: String?, json: Bool) async throws {
        let reader = try await ConfigLoader.load(path: configPath)
        let configuration = try RuntimeConfiguration(daemon: daemon, reader: reader)
        let pool = NIOThreadPoolBox(threads: 1)
        defer { pool.stop() }
        let connection = PostgresConnection(configuration: configuration.postgres, threadPool: pool.pool)
        defer { connection.close() }
        let report: Migrator.Report
        do {
            report = try await migrator.migrate(using: connection)
        } catch let error as PostgresError where error.code == .connectionFailed {
            throw DaemonError("cannot connect to PostgreSQL at \(configuration.postgres.host):\(configuration.postgres.port) as \(configuration.postgres.user)")
        } catch let error as PostgresError where error.isInsufficientPrivilege {
            throw DaemonError("role \(configuration.postgres.user) may not change schema \(migrator.schema); run deploy/config/roles.sql as an admin first")
        }
        if json {
            let object: [String: Any] = ["schema": migrator.schema, "applied": report.applied,
                                         "version": report.currentVersion]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else if report.applied.isEmpty {
            print("schema \(migrator.schema) is up to date at version \(report.currentVersion)")
        } else {
            print("schema \(migrator.schema): applied \(report.applied.map(String.init).joined(separator: ", ")); now at version \(report.currentVersion)")
        }
    }
}
