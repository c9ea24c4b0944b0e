import Foundation
import Testing
import TributaryPostgres
import TributaryTesting

@Suite("PostgreSQL wrapper against a real server")
struct PostgresConnectionTests {
    let env: TestEnvironment
    let pool = TestThreadPool(threads: 4)
    let db: PostgresConnection
    let schema = TestEnvironment.uniqueName("pgtest")

    init() async throws {
        env = try TestEnvironment.current()
        db = PostgresConnection(configuration: env.postgres(), threadPool: pool.pool)
        try await db.execute(script: """
            CREATE SCHEMA \(schema);
            CREATE TABLE \(schema).items (
                id bigint PRIMARY KEY, name text UNIQUE, data bytea, doc jsonb, at timestamptz, ratio double precision, ok boolean);
            """)
    }

    @Test("bytea keeps every byte value, NUL included")
    func binarySafeBytea() async throws {
        let bytes: [UInt8] = Array(0...255) + [0, 0, 92, 120]
        try await db.query("INSERT INTO \(schema).items (id, data) VALUES ($1, $2)", [1, PostgresValue.bytea(bytes)])
        let row = try #require(try await db.query("SELECT data FROM \(schema).items WHERE id = $1", [1]).first)
        #expect(try row.bytes("data") == bytes)
    }

    @Test("binary array parameters read back as their text literals do: NULL, NUL, quotes, unicode, empty, dates, times")
    func binaryArrays() async throws {
        let texts: [String?] = ["plain", nil, "quo\"te, {brace} \\ back", "", "ünï\u{0}cødé 🎉", "NULL"]
        let read = try await db.query("SELECT x FROM unnest($1::text[]) WITH ORDINALITY AS u(x, n) ORDER BY n",
                                      [PostgresArray.binary(text: texts)]).rows
        #expect(try read.map { try $0.string("x") } == texts.map { $0?.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") })
        let ints: [Int64] = [0, -1, 1, .max, .min, 1_234_567_890_123]
        let days: [Int32] = [0, -1, 10_957, 20_424, -10_958]
        let instants = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 1_795_000_000.123456),
                        Date(timeIntervalSince1970: -86_400.5)]
        let row = try #require(try await db.query("""
            SELECT $1::bigint[]::text AS i, $2::bigint[]::text AS it, $3::boolean[]::text AS b, $4::date[]::text AS d,
                   $5::date[]::text AS dt, $6::timestamptz[]::text AS t, $7::timestamptz[]::text AS tt,
                   $8::timestamp[]::text AS w, cardinality($9::text[]) AS empty
            """, [PostgresArray.binary(int8: ints), PostgresArray.ints(ints), PostgresArray.binary(bool: [true, false]),
                  PostgresArray.binary(date: days),
                  "{" + days.map { PostgresTime.format(Date(timeIntervalSince1970: Double($0) * 86_400)).prefix(10) }.joined(separator: ",") + "}",
                  PostgresArray.binary(timestamptz: instants), PostgresArray.text(instants.map(PostgresTime.format)),
                  PostgresArray.binary(timestamp: [0, 1_795_000_000]), PostgresArray.binary(text: [String]())]).first)
        #expect(try row.string("i") == row.string("it"))
        #expect(try row.string("b") == "{t,f}")
        #expect(try row.string("d") == row.string("dt"))
        #expect(try row.string("t") == row.string("tt"))
        #expect(try row.string("w") == "{\"1970-01-01 00:00:00\",\"2026-11-18 11:06:40\"}")
        #expect(try row.int("empty") == 0)
    }

    @Test("SQL injection attempts are stored verbatim")
    func injectionStoredVerbatim() async throws {
        let attacks = ["'; DROP TABLE \(schema).items; --", "\\'; DELETE FROM \(schema).items; --",
                       "$1; SELECT pg_sleep(10)", "Robert'); DROP TABLE students;--", "\u{2028}ünïcødé 🎉"]
        for (i, attack) in attacks.enumerated() {
            try await db.query("INSERT INTO \(schema).items (id, name) VALUES ($1, $2)", [100 + i, attack])
        }
        let rows = try await db.query("SELECT name FROM \(schema).items WHERE id >= 100 ORDER BY id").rows
        #expect(try rows.map { try $0.string("name") } == attacks)
    }

    @Test("a NUL byte in text is refused with a typed error, not truncated")
    func nulInText() async throws {
        let error = await #expect(throws: PostgresError.self) {
            try await db.query("INSERT INTO \(schema).items (id, name) VALUES ($1, $2)", [7, "a\u{0}b"])
        }
        #expect(error?.code == .invalidParameter)
        #expect(try await db.query("SELECT count(*) AS n FROM \(schema).items WHERE id = 7").first?.int("n") == 0)
    }

    @Test("server errors map to typed errors with SQLSTATE and no values")
    func typedServerErrors() async throws {
        try await db.query("INSERT INTO \(schema).items (id, name) VALUES ($1, $2)", [10, "secret-name"])
        let duplicate = await #expect(throws: PostgresError.self) {
            try await db.query("INSERT INTO \(schema).items (id, name) VALUES ($1, $2)", [11, "secret-name"])
        }
        #expect(duplicate?.isUniqueViolation == true)
        #expect(duplicate?.constraintName == "items_name_key")
        #expect(duplicate.map { !"\($0)".contains("secret") } == true)

        let syntax = await #expect(throws: PostgresError.self) { try await db.query("SELEC 1") }
        #expect(syntax?.sqlState == "42601")
        let missing = await #expect(throws: PostgresError.self) {
            try await db.query("SELECT * FROM \(schema).nope")
        }
        #expect(missing?.sqlState == "42P01")
        // Still usable afterwards.
        #expect(try await db.query("SELECT 1 AS one").first?.int("one") == 1)
    }

    @Test("typed values round-trip: int, double, bool, timestamp, json, null")
    func typedValues() async throws {
        let when = Date(timeIntervalSince1970: 1_764_096_194.123456)
        try await db.query("""
            INSERT INTO \(schema).items (id, name, doc, at, ratio, ok) VALUES ($1, $2, $3, $4, $5, $6)
            """, [Int64.max, Optional<String>.none, PostgresValue.json(#"{"a": [1, "x"]}"#), when, 0.25, true])
        let row = try #require(try await db.query("SELECT * FROM \(schema).items WHERE id = $1", [Int64.max]).first)
        #expect(try row.int("id") == Int64.max)
        #expect(try row.isNull("name"))
        #expect(try row.string("doc") == #"{"a": [1, "x"]}"#)
        #expect(abs(try #require(try row.date("at")).timeIntervalSince(when)) < 0.000_002)
        #expect(try row.double("ratio") == 0.25)
        #expect(try row.bool("ok") == true)
    }

    @Test("binary COPY writes many rows; a bad row fails the whole COPY")
    func copy() async throws {
        let when = Date(timeIntervalSince1970: 1_700_000_000.5)
        var writer = PostgresCopyWriter()
        for i in 0..<1_000 {
            writer.beginRow(columns: 6)
            writer.append(int: Int64(1_000 + i))
            writer.append(text: "row \(i) with \\ backslash and \"quotes\"")
            writer.append(bytes: [0, UInt8(i % 256), 255])
            writer.append(jsonb: #"{"i": \#(i)}"#)
            writer.append(timestamp: when)
            if i % 2 == 0 { writer.appendNull() } else { writer.append(double: Double(i) / 2) }
        }
        let copied = try await db.copy(
            "COPY \(schema).items (id, name, data, doc, at, ratio) FROM STDIN (FORMAT binary)", data: writer.finish())
        #expect(copied == 1_000)
        let row = try #require(try await db.query("SELECT * FROM \(schema).items WHERE id = 1007").first)
        #expect(try row.string("name") == "row 7 with \\ backslash and \"quotes\"")
        #expect(try row.bytes("data") == [0, 7, 255])
        #expect(try row.date("at") == when)
        #expect(try row.double("ratio") == 3.5)

        var bad = PostgresCopyWriter()
        for i in 0..<10 {
            bad.beginRow(columns: 2)
            bad.append(int: Int64(5_000 + i))
            bad.append(text: i == 5 ? "nul\u{0}inside" : "fine")
        }
        let error = await #expect(throws: PostgresError.self) {
            try await db.copy("COPY \(schema).items (id, name) FROM STDIN (FORMAT binary)", data: bad.finish())
        }
        #expect(error?.code == .server)
        #expect(try await db.query("SELECT count(*) AS n FROM \(schema).items WHERE id >= 5000").first?.int("n") == 0)
    }

    @Test("a transaction that throws is rolled back")
    func transactionRollback() async throws {
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await db.withTransaction { tx in
                try await tx.query("INSERT INTO \(schema).items (id) VALUES (42)")
                throw Boom()
            }
        }
        #expect(try await db.query("SELECT count(*) AS n FROM \(schema).items WHERE id = 42").first?.int("n") == 0)
        try await db.withTransaction { tx in try await tx.query("INSERT INTO \(schema).items (id) VALUES (43)") }
        #expect(try await db.query("SELECT count(*) AS n FROM \(schema).items WHERE id = 43").first?.int("n") == 1)
    }

    @Test("the pool lends each connection to one task at a time")
    func poolSerialisesTransactions() async throws {
        let client = PostgresClient(configuration: env.postgres(), maximumConnections: 3, threadPool: pool.pool)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<30 {
                group.addTask {
                    try await client.withTransaction { tx in
                        try await tx.query("INSERT INTO \(schema).items (id) VALUES ($1)", [20_000 + i])
                        try await tx.query("UPDATE \(schema).items SET ratio = $1 WHERE id = $2", [Double(i), 20_000 + i])
                    }
                }
            }
            try await group.waitForAll()
        }
        let n = try await client.query("SELECT count(*) AS n FROM \(schema).items WHERE id >= 20000 AND ratio IS NOT NULL")
        #expect(try n.first?.int("n") == 30)
        client.close()
    }

    @Test("a wrong password or role is a typed connection failure")
    func connectionFailure() async throws {
        let nobody = PostgresConnection(configuration: env.postgres(role: "no_such_role"), threadPool: pool.pool)
        let error = await #expect(throws: PostgresError.self) { try await nobody.query("SELECT 1") }
        #expect(error?.code == .connectionFailed)
    }

    /// The statements this session has prepared (the `pg_prepared_statements` view).
    private func prepared(_ connection: PostgresConnection, like text: String) async throws -> Int64 {
        try await connection.query("SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE $1",
                                   ["%\(text)%"]).first?.int("n") ?? -1
    }

    @Test("a statement is prepared on its second run, and runs prepared with the same results")
    func preparesOnSecondRun() async throws {
        let sql = "SELECT $1::bigint + 1 AS n, '\(schema)' AS tag"
        #expect(try await db.query(sql, [1]).first?.int("n") == 2)
        #expect(try await prepared(db, like: schema) == 0)
        for i: Int64 in 2...6 { #expect(try await db.query(sql, [i]).first?.int("n") == i + 1) }
        #expect(try await prepared(db, like: schema) == 1)
        // A NULL (type left to the server) and a bigint are two statements, each typed right.
        #expect(try await db.query("SELECT $1::bigint IS NULL AS isnull", [Int?.none]).first?.bool("isnull") == true)
    }

    @Test("a prepared statement survives a rolled-back transaction and a changed table; a new session prepares afresh")
    func preparedStatementLifecycle() async throws {
        let sql = "SELECT * FROM \(schema).items WHERE id = $1"
        try await db.query("INSERT INTO \(schema).items (id, name) VALUES ($1, $2)", [500, "p"])
        for _ in 0..<3 { #expect(try await db.query(sql, [500]).first?.string("name") == "p") }
        await #expect(throws: (any Error).self) {
            try await db.withTransaction { tx in
                _ = try await tx.query(sql, [500])
                try await tx.query("SELECT 1/0")
            }
        }
        #expect(try await db.query(sql, [500]).first?.string("name") == "p")
        // The table's columns change under the prepared SELECT *: one run fails, the next prepares again.
        try await db.execute(script: "ALTER TABLE \(schema).items ADD COLUMN extra text DEFAULT 'x'")
        do {
            let row = try await db.query(sql, [500]).first
            #expect(try row?.string("extra") == "x")
        } catch {
            #expect(error.sqlState == "0A000")
        }
        for _ in 0..<2 { #expect(try await db.query(sql, [500]).first?.string("extra") == "x") }
        // The server ends the session: the cache goes with it, and statements prepare again.
        let pid = try #require(try await db.query("SELECT pg_backend_pid() AS pid").first?.int("pid"))
        let admin = PostgresConnection(configuration: env.postgres(), threadPool: pool.pool)
        defer { admin.close() }
        try await admin.query("SELECT pg_terminate_backend($1::int)", [pid])
        _ = try? await db.query(sql, [500])
        for _ in 0..<3 { #expect(try await db.query(sql, [500]).first?.string("name") == "p") }
        #expect(try await prepared(db, like: "\(schema).items WHERE id") == 1)
    }

    @Test("with preparing turned off nothing is prepared")
    func preparingOff() async throws {
        var configuration = env.postgres()
        configuration.preparedStatements = 0
        let plain = PostgresConnection(configuration: configuration, threadPool: pool.pool)
        defer { plain.close() }
        for i: Int64 in 0..<4 { #expect(try await plain.query("SELECT $1::bigint AS n, '\(schema)-off' AS t", [i]).first?.int("n") == i) }
        #expect(try await prepared(plain, like: "\(schema)-off") == 0)
    }

}
