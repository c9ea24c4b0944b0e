import Foundation
import TributaryModels
import TributaryPostgres

extension HydrationHandler {
    /// Applies a turn of batches inside `tx` with set-based SQL: one ledger claim, one
    /// dedup insert, one identities write, one trait query, one COPY of events, one of
    /// failures and one ledger update for all of them, whatever their number.
    func applyTurn(_ tx: PostgresConnection,
                   _ batches: [(message: RawBatchMessage, payload: RawPayload, salt: Salts)],
                   router: EventRouter) async throws -> [Outcome] {
        var outcomes = Array(repeating: Outcome(events: []), count: batches.count)
        // Batches of several sites (not produced by the queue, but possible) are applied site by site.
        let sites = Set(batches.map(\.message.siteID))
        guard sites.count == 1, let site = sites.first else {
            for (i, batch) in batches.enumerated() { outcomes[i] = try await applyTurn(tx, [batch], router: router)[0] }
            return outcomes
        }
        let claimed = try await HydrationStore.claim(tx, site: site, batches: batches.map(\.message.batchID))
        var failures: [(batch: Int64, receivedAt: Date, position: Int, failure: ValidationFailure, raw: String)] = []
        var inputs: [(index: Int, input: EventEnricher.Input)] = []
        var seen: Set<String> = []
        for (i, batch) in batches.enumerated() {
            let id = batch.message.batchID
            guard claimed.contains(id) else {
                outcomes[i] = Outcome(events: try await HydrationStore.storedEvents(tx, site: site, batch: id))
                outcomes[i].repeated = true
                outcomes[i].plan = router.plan(site: site, events: outcomes[i].events)
                continue
            }
            outcomes[i].received = batch.payload.batch.count
            let mayHoldNUL = batch.message.payload.mayHoldNUL
            for (position, value) in batch.payload.batch.enumerated() {
                do throws(ValidationFailure) {
                    let event = try validator.validate(value)
                    let messageID = event.messageId ?? "\(id)-\(position)"
                    guard seen.insert(messageID).inserted else {
                        outcomes[i].duplicate += 1
                        continue
                    }
                    inputs.append((i, .init(event: event, position: position, messageID: messageID,
                                            batchSentAt: batch.payload.sentAt, batchContext: batch.payload.context,
                                            mayHoldNUL: mayHoldNUL)))
                } catch {
                    failures.append((id, batch.message.receivedAt, position, error, value.jsonText))
                    outcomes[i].invalid += 1
                }
            }
        }
        let fresh = try await HydrationStore.firstSeen(
            tx, site: site, rows: inputs.map { ($0.input.messageID, batches[$0.index].message) }, windowDays: dedupWindowDays)
        var kept: [(index: Int, input: EventEnricher.Input, time: Date)] = []
        for (index, input) in inputs {
            guard fresh.contains(input.messageID) else {
                outcomes[index].duplicate += 1
                continue
            }
            let time = enricher.clock.resolve(timestamp: input.event.timestamp, sentAt: input.event.sentAt ?? input.batchSentAt,
                                              receivedAt: batches[index].message.receivedAt).0
            kept.append((index, input, time))
        }
        try await HydrationStore.saveIdentities(tx, site: site, events: kept.map { ($0.input.event, $0.time) })
        let traitsOf = try await traitsLookup(tx, site: site, events: kept.map { ($0.input.event, $0.time) })
        var rows: [(HydratedEvent, HydratedEvent.EncodedObjects, [String], Int64)] = []
        var memo = EventEnricher.Memo()
        for (index, input, time) in kept {
            let batch = batches[index]
            let (event, flags) = enricher.enrich(input, eventID: ids.next(), message: batch.message, salts: batch.salt,
                                                 traits: traitsOf(input.event, time), memo: &memo)
            // The objects are written once, for the COPY and for the queue message.
            let objects = event.encodedObjects()
            outcomes[index].events.append(event)
            outcomes[index].serialized[event.eventID] = event.serialized(objects)
            rows.append((event, objects, flags, batch.message.batchID))
        }
        if !rows.isEmpty {
            try await tx.copy(HydrationStore.copyEvents, data: HydrationStore.copyData(site: site, events: rows))
        }
        if !failures.isEmpty {
            try await tx.copy(HydrationStore.copyFailedEvents, data: HydrationStore.copyFailures(site: site, failures: failures))
        }
        let claimedIndices = batches.indices.filter { claimed.contains(batches[$0].message.batchID) }
        for i in claimedIndices { outcomes[i].plan = router.plan(site: site, events: outcomes[i].events) }
        try await HydrationStore.recordCounts(tx, site: site, rows: claimedIndices.map { i in
            (batches[i].message.batchID, outcomes[i].received, outcomes[i].events.count, outcomes[i].invalid,
             outcomes[i].duplicate, outcomes[i].plan.counts)
        })
        return outcomes
    }

    /// Traits as of each event's time, folding the user's identify calls up to then.
    func traitsLookup(_ tx: PostgresConnection, site: Int64,
                      events: [(Event, Date)]) async throws -> (Event, Date) -> [String: JSONValue]? {
        let userIDs = Set(events.compactMap(\.0.userId))
        guard !userIDs.isEmpty, let latest = events.map(\.1).max() else { return { _, _ in nil } }
        let canonical = try await HydrationStore.canonicalUsers(tx, site: site, ids: userIDs)
        let users = Set(userIDs.map { canonical[$0] ?? $0 })
        let history = try await HydrationStore.traitHistory(tx, site: site, users: users, until: latest)
        return { event, time in
            guard let id = event.userId, let rows = history[canonical[id] ?? id] else { return nil }
            var traits: [String: JSONValue] = [:]
            for (from, values) in rows where from <= time {
                for (k, v) in values { traits[k] = v }
            }
            return traits.isEmpty ? nil : traits
        }
    }
}
