import Foundation
import TributaryModels
import TributaryPostgres
import TributaryRedis

extension PipelineProbe {
    /// Numbers that must tie between stages, for batches older than the grace period:
    /// every raw batch is in hydration's ledger with as many events; every batch routed to
    /// the aggregator is in its ledger with as many events; every event routed to a sink
    /// is delivered or dead-lettered (or still pending in the sink's queue or retries).
    func tieChecks(now: Date, force: Bool = false) async throws -> [CheckResult] {
        if !force, let cached = ties.cached(now: now) { return cached }
        ties.startRun(now: now, force: force)
        let results = [try await tieHydration(now: now), try await tieAggregator(now: now),
                       try await tieForwarder(now: now)]
        ties.finish(results, now: now)
        return results
    }

    static func ints(_ values: [Int64]) -> String { "{" + values.map(String.init).joined(separator: ",") + "}" }

    /// `collector replay` for the gaps' batches, one command per site.
    func replayCommands(_ gaps: [TieTracker.Gap]) -> [String] {
        let bySite = Dictionary(grouping: gaps, by: \.site)
        return bySite.keys.sorted().map { site in
            let batches = Array(Set(bySite[site]!.map(\.batch))).sorted().prefix(configuration.tieMaxReported)
            return "collector replay --site \(site) --batches " + batches.map(String.init).joined(separator: ",")
        }
    }

    /// Marks gaps whose batch may still be on its way as pending: its site has items
    /// waiting or in flight in `queue`, or (raw batches) it is still in the collector's outbox.
    ///
    /// A batch moves from the outbox to the queue, into a consumer's in-flight list, then
    /// into the ledger (its commit comes before it leaves the in-flight list). So the
    /// outbox is read before the queue, and a gap that is in neither is read in the
    /// ledger once more: if it committed while this ran, it ties now and is dropped.
    ///
    /// With `upstream`, items in flight there count too: the upstream stage commits its
    /// ledger row before it pushes the batch on, and acknowledges its own item only after.
    private func markQueued(_ gaps: [TieTracker.Gap], queue: String, upstream: String? = nil, outbox: Bool, ledger: String,
                            now: Date) async throws -> [TieTracker.Gap] {
        guard !gaps.isEmpty else { return gaps }
        var upstreamInflight = 0
        if let upstream { upstreamInflight = try await readQueue(upstream, now: now).inflight }
        var unsent: Set<String> = []
        if outbox {
            let rows = try await postgres.query("""
                SELECT o.site_id, o.batch_id FROM collector.outbox o
                JOIN unnest($1::bigint[], $2::bigint[]) AS t(s, b) ON o.site_id = t.s AND o.batch_id = t.b
                """, [Self.ints(gaps.map(\.site)), Self.ints(gaps.map(\.batch))]).rows
            unsent = Set(try rows.map { "\(try $0.int("site_id") ?? 0):\(try $0.int("batch_id") ?? 0)" })
        }
        let state = try await readQueue(queue, now: now)
        let marked = gaps.map { gap in
            var gap = gap
            gap.pending = state.inflight > 0 || upstreamInflight > 0 || (state.siteDepth[String(gap.site)] ?? 0) > 0
                || unsent.contains("\(gap.site):\(gap.batch)")
            return gap
        }
        let unexplained = marked.filter { !$0.pending }
        guard !unexplained.isEmpty else { return marked }
        let open = Set(try await stillOpen(unexplained, ledger: ledger).map(\.key))
        return marked.filter { $0.pending || open.contains($0.key) }
    }

    private func result(_ kind: CheckKind, _ gaps: [TieTracker.Gap], cause: String, okSummary: String,
                        describe: (TieTracker.Gap) -> String) -> CheckResult {
        let lost = gaps.filter { !$0.pending }.sorted { ($0.site, $0.batch) < ($1.site, $1.batch) }
        let pending = gaps.filter(\.pending)
        guard !lost.isEmpty else {
            return .ok(kind.rawValue, kind, okSummary + (pending.isEmpty ? "" : " (\(pending.count) batch(es) still pending)"),
                       ["pending": .int(Int64(pending.count))])
        }
        let shown = lost.prefix(configuration.tieMaxReported)
        let commands = replayCommands(lost)
        return .failing(kind.rawValue, kind, "\(lost.count) batch(es) do not tie: " + shown.prefix(3).map(describe).joined(separator: "; ")
                        + (lost.count > 3 ? "; …" : "") + ". Replay: " + commands.joined(separator: " && "), [
            "batches": .array(shown.map { gap in
                var o: [String: JSONValue] = ["site": .int(gap.site), "batch": .int(gap.batch), "expected": .int(gap.expected)]
                if let found = gap.found { o["found"] = .int(found) }
                if let sink = gap.sink { o["sink"] = .int(sink) }
                return .object(o)
            }),
            "count": .int(Int64(lost.count)),
            "replay": .array(commands.map { .string($0) }),
        ], cause: cause)
    }

    /// The gaps found before that are still open: the batch is still missing from `ledger`
    /// (a trusted table name), or still counts differently.
    private func stillOpen(_ old: [TieTracker.Gap], ledger: String) async throws -> [TieTracker.Gap] {
        guard !old.isEmpty else { return [] }
        let rows = try await postgres.query("""
            SELECT t.s AS site_id, t.b AS batch_id, l.events_received FROM unnest($1::bigint[], $2::bigint[]) AS t(s, b)
            LEFT JOIN \(ledger) l ON l.site_id = t.s AND l.batch_id = t.b
            """, [Self.ints(old.map(\.site)), Self.ints(old.map(\.batch))]).rows
        var found: [String: Int64?] = [:]
        for row in rows { found["\(try row.int("site_id") ?? 0):\(try row.int("batch_id") ?? 0)"] = try row.int("events_received") }
        return old.compactMap { gap in
            let got = found["\(gap.site):\(gap.batch)"] ?? nil
            guard got != gap.expected else { return nil }
            var gap = gap
            gap.found = got
            return gap
        }
    }

    func tieHydration(now: Date) async throws -> CheckResult {
        let kind = CheckKind.tieHydration
        let (from, to) = ties.range(kind, now: now)
        var gaps = try await stillOpen(ties.gaps(kind), ledger: "hydration.ledger")
        let rows = try await postgres.query("""
            SELECT r.site_id, r.batch_id, r.event_count, l.events_received, r.received_at
            FROM collector.raw_batches r LEFT JOIN hydration.ledger l ON l.site_id = r.site_id AND l.batch_id = r.batch_id
            WHERE r.received_at > $1 AND r.received_at <= $2 AND (l.batch_id IS NULL OR l.events_received <> r.event_count)
            LIMIT $3
            """, [PostgresTime.format(from), PostgresTime.format(to), configuration.tieMaxTracked]).rows
        for row in rows {
            gaps.append(.init(kind: kind, site: try row.int("site_id") ?? 0, batch: try row.int("batch_id") ?? 0,
                              expected: try row.int("event_count") ?? 0, found: try row.int("events_received"),
                              since: try row.date("received_at") ?? now))
        }
        gaps = try await markQueued(gaps, queue: QueueName.hydrate, outbox: true, ledger: "hydration.ledger", now: now)
        ties.update(kind, through: to, gaps: gaps, now: now)
        return result(kind, gaps, cause: "heartbeat:hydration", okSummary: "every raw batch up to \(Int(configuration.tieGraceSeconds)) s ago is in hydration's ledger") {
            $0.found == nil ? "raw batch \($0.batch) of site \($0.site) is not in hydration's ledger"
                : "raw batch \($0.batch) of site \($0.site) has \($0.expected) events, hydration counted \($0.found!)"
        }
    }

    func tieAggregator(now: Date) async throws -> CheckResult {
        let kind = CheckKind.tieAggregator
        let (from, to) = ties.range(kind, now: now)
        var gaps = try await stillOpen(ties.gaps(kind), ledger: "aggregator.ledger")
        let rows = try await postgres.query("""
            SELECT l.site_id, l.batch_id, (l.routed->>'aggregate')::bigint AS routed, a.events_received, l.applied_at
            FROM hydration.ledger l LEFT JOIN aggregator.ledger a ON a.site_id = l.site_id AND a.batch_id = l.batch_id
            WHERE l.applied_at > $1 AND l.applied_at <= $2 AND coalesce((l.routed->>'aggregate')::bigint, 0) > 0
              AND (a.batch_id IS NULL OR a.events_received <> (l.routed->>'aggregate')::bigint)
            LIMIT $3
            """, [PostgresTime.format(from), PostgresTime.format(to), configuration.tieMaxTracked]).rows
        for row in rows {
            gaps.append(.init(kind: kind, site: try row.int("site_id") ?? 0, batch: try row.int("batch_id") ?? 0,
                              expected: try row.int("routed") ?? 0, found: try row.int("events_received"),
                              since: try row.date("applied_at") ?? now))
        }
        gaps = try await markQueued(gaps, queue: QueueName.aggregate, upstream: QueueName.hydrate, outbox: false,
                                    ledger: "aggregator.ledger", now: now)
        ties.update(kind, through: to, gaps: gaps, now: now)
        return result(kind, gaps, cause: "heartbeat:aggregator", okSummary: "every batch hydration routed to the aggregator is in its ledger") {
            $0.found == nil ? "batch \($0.batch) of site \($0.site) is not in the aggregator's ledger"
                : "batch \($0.batch) of site \($0.site): \($0.expected) events routed, the aggregator received \($0.found!)"
        }
    }

    /// Delivered or dead-lettered events of one batch for one sink. The batch's events are
    /// found first, through its ledger row (`OFFSET 0` keeps that subquery apart, so the
    /// plan cannot start from all of a sink's deliveries instead).
    private static let settledSQL = """
        (SELECT count(*) FROM \(batchEventsSQL) e
           JOIN forwarder.deliveries d ON d.site_id = e.site_id AND d.sink_id = b.sink_id AND d.event_id = e.event_id)
        + (SELECT count(DISTINCT x.event_id) FROM \(batchEventsSQL) e
           JOIN forwarder.dead_letters x
           ON x.site_id = e.site_id AND x.message_id = e.message_id AND x.sink_id = b.sink_id AND x.event_id = e.event_id) AS settled
        """

    /// The stored events of the batch `b`.
    private static let batchEventsSQL = """
        (SELECT e.site_id, e.event_id, e.message_id FROM hydration.ledger l JOIN hydration.events e ON \(HydrationLedgerSQL.events)
         WHERE l.site_id = b.site_id AND l.batch_id = b.batch_id OFFSET 0)
        """

    func tieForwarder(now: Date) async throws -> CheckResult {
        let kind = CheckKind.tieForwarder
        let (from, to) = ties.range(kind, now: now)
        let sinks = Set(try await sinkQueues().map(\.id))
        var candidates: [TieTracker.Gap] = []
        let old = ties.gaps(kind).filter { sinks.contains($0.sink ?? -1) }
        if !old.isEmpty {
            let rows = try await postgres.query("""
                SELECT b.site_id, b.batch_id, b.sink_id, \(Self.settledSQL)
                FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS b(site_id, batch_id, sink_id)
                """, [Self.ints(old.map(\.site)), Self.ints(old.map(\.batch)), Self.ints(old.map { $0.sink ?? 0 })]).rows
            var found: [String: Int64] = [:]
            for row in rows {
                found["\(try row.int("site_id") ?? 0):\(try row.int("batch_id") ?? 0):\(try row.int("sink_id") ?? 0)"] = try row.int("settled") ?? 0
            }
            for var gap in old {
                let got = found["\(gap.site):\(gap.batch):\(gap.sink ?? 0)"] ?? 0
                if got >= gap.expected { continue }
                gap.found = got
                candidates.append(gap)
            }
        }
        let rows = try await postgres.query("""
            WITH b AS (
                SELECT l.site_id, l.batch_id, l.applied_at, substr(r.key, 9)::bigint AS sink_id, r.value::bigint AS routed
                FROM hydration.ledger l, jsonb_each_text(l.routed) AS r(key, value)
                WHERE l.applied_at > $1 AND l.applied_at <= $2 AND r.key LIKE 'forward:%')
            SELECT * FROM (SELECT b.site_id, b.batch_id, b.sink_id, b.routed, b.applied_at, \(Self.settledSQL) FROM b) x
            WHERE settled < routed LIMIT $3
            """, [PostgresTime.format(from), PostgresTime.format(to), configuration.tieMaxTracked]).rows
        for row in rows {
            let sink = try row.int("sink_id") ?? 0
            guard sinks.contains(sink) else { continue }
            candidates.append(.init(kind: kind, site: try row.int("site_id") ?? 0, batch: try row.int("batch_id") ?? 0,
                                    sink: sink, expected: try row.int("routed") ?? 0, found: try row.int("settled"),
                                    since: try row.date("applied_at") ?? now))
        }
        // Undelivered events may still be on their way: in the sink's queue, in flight or parked for a retry.
        var gaps: [TieTracker.Gap] = []
        if !candidates.isEmpty {
            let parked = try await postgres.query(
                "SELECT DISTINCT sink_id, site_id FROM forwarder.retries WHERE sink_id = ANY($1::bigint[])",
                [Self.ints(Array(Set(candidates.compactMap(\.sink))))]).rows
            let retrying = Set(try parked.map { "\(try $0.int("sink_id") ?? 0):\(try $0.int("site_id") ?? 0)" })
            // Hydration commits a batch before it pushes it to the sinks' queues (read first).
            let hydrating = try await readQueue(QueueName.hydrate, now: now).inflight > 0
            var queues: [Int64: QueueState] = [:]
            for sink in Set(candidates.compactMap(\.sink)) {
                queues[sink] = try await readQueue(QueueName.forward(sinkID: sink), now: now)
            }
            for var gap in candidates {
                let queue = queues[gap.sink ?? 0]
                gap.pending = retrying.contains("\(gap.sink ?? 0):\(gap.site)") || (queue?.siteDepth[String(gap.site)] ?? 0) > 0
                    || (queue?.inflight ?? 0) > 0 || hydrating
                gaps.append(gap)
            }
        }
        ties.update(kind, through: to, gaps: gaps, now: now)
        return result(kind, gaps, cause: "heartbeat:forwarder", okSummary: "every event routed to a sink is delivered or dead-lettered") {
            "batch \($0.batch) of site \($0.site): \($0.expected) events routed to sink \($0.sink ?? 0), \($0.found ?? 0) delivered or dead-lettered"
        }
    }
}
