import Foundation
import TributaryModels
import TributaryPostgres

extension HydrationHandler {
    /// Applies a turn of batches (of one site or several) inside `tx` with set-based SQL:
    /// one ledger claim, one dedup insert, one identities write, one trait query, one COPY
    /// of events, one of failures and one ledger update for all of them, whatever their
    /// number and sites.
    func applyTurn(_ tx: PostgresConnection,
                   _ batches: [(message: RawBatchMessage, payload: RawPayload, salt: Salts)],
                   router: EventRouter) async throws -> [Outcome] {
        typealias SiteBatch = HydrationStore.SiteBatch
        typealias SiteKey = HydrationStore.SiteKey
        var outcomes = Array(repeating: Outcome(events: []), count: batches.count)
        // The per-event steps read these by batch index (not the batch tuples, whose copies
        // would retain and release every field once per event).
        let messages = batches.map(\.message)
        let salts = batches.map(\.salt)
        let claimed = try await HydrationStore.claim(
            tx, batches: batches.map { SiteBatch(site: $0.message.siteID, batch: $0.message.batchID) })
        var failures: [HydrationStore.Failure] = []
        var inputs: [(index: Int, input: EventEnricher.Input)] = []
        inputs.reserveCapacity(batches.reduce(0) { $0 + $1.payload.batch.count })
        var seen: Set<SiteKey> = []
        for (i, batch) in batches.enumerated() {
            let id = batch.message.batchID
            let site = batch.message.siteID
            guard claimed.contains(SiteBatch(site: site, batch: id)) else {
                outcomes[i] = Outcome(events: try await HydrationStore.storedEvents(tx, site: site, batch: id))
                outcomes[i].repeated = true
                outcomes[i].plan = router.plan(site: site, events: outcomes[i].events)
                continue
            }
            outcomes[i].received = batch.payload.batch.count
            let mayHoldNUL = batch.message.payload.mayHoldNUL
            // Elements are read in place (iterating the array would copy each event's fields).
            batch.payload.batch.withUnsafeBufferPointer { elements in
                for position in elements.indices {
                    do throws(ValidationFailure) {
                        var event = try elements[position].validated(by: validator)
                        // A NUL is stored as U+FFFD (PostgreSQL text cannot hold one), so ids
                        // are compared in that form: `message_ids`, the traits and the aliases
                        // return them so.
                        let sent = event.messageId ?? "\(id)-\(position)"
                        let messageID = mayHoldNUL ? sent.withoutNUL() : sent
                        if mayHoldNUL {
                            event.userId = event.userId?.withoutNUL()
                            event.previousId = event.previousId?.withoutNUL()
                        }
                        guard seen.insert(SiteKey(site: site, key: messageID)).inserted else {
                            outcomes[i].duplicate += 1
                            continue
                        }
                        inputs.append((i, .init(event: event, position: position, messageID: messageID,
                                                batchSentAt: batch.payload.sentAt, batchContext: batch.payload.context,
                                                mayHoldNUL: mayHoldNUL)))
                    } catch {
                        failures.append(.init(site: site, batch: id, receivedAt: batch.message.receivedAt, position: position,
                                              failure: error, raw: batch.payload.text(of: elements[position])))
                        outcomes[i].invalid += 1
                    }
                }
            }
        }
        let fresh = try await HydrationStore.firstSeen(
            tx, rows: inputs.map { input in
                let m = messages[input.index]
                return (site: m.siteID, messageID: input.input.messageID, receivedAt: m.receivedAt, batch: m.batchID)
            }, windowDays: dedupWindowDays)
        // The events kept, as positions in `inputs` with their time: each event's input is
        // read in place from here on, never copied (a copy retains and releases every field).
        var kept: [(input: Int, time: Date)] = []
        kept.reserveCapacity(inputs.count)
        for n in inputs.indices {
            let index = inputs[n].index
            guard fresh.contains(SiteKey(site: messages[index].siteID, key: inputs[n].input.messageID)) else {
                outcomes[index].duplicate += 1
                continue
            }
            let resolved = enricher.clock.resolve(timestamp: inputs[n].input.event.timestamp,
                                                  sentAt: inputs[n].input.event.sentAt ?? inputs[n].input.batchSentAt,
                                                  receivedAt: messages[index].receivedAt)
            inputs[n].input.resolved = resolved
            kept.append((n, resolved.0))
        }
        try await HydrationStore.saveIdentities(tx, events: kept.compactMap { k in
            let type = inputs[k.input].input.event.type
            guard type == .identify || type == .alias else { return nil }
            return (site: messages[inputs[k.input].index].siteID, event: inputs[k.input].input.event, time: k.time)
        })
        let traitsOf = try await traitsLookup(tx, users: kept.compactMap { k in
            inputs[k.input].input.event.userId.map { (site: messages[inputs[k.input].index].siteID, userID: $0, time: k.time) }
        })
        // Each event's COPY row is written as it is enriched; the event itself goes only
        // into its batch's outcome (no per-event copies of batches or events in between).
        var copy = PostgresCopyWriter(reservingCapacity: kept.count * 1_024)
        var memo = EventEnricher.Memo()
        // The range of each batch's event ids, for its ledger row (ids only grow).
        var eventIDs = [ClosedRange<Int64>?](repeating: nil, count: batches.count)
        for (n, time) in kept {
            let index = inputs[n].index
            let site = messages[index].siteID
            let eventID = ids.next()
            eventIDs[index] = (eventIDs[index]?.lowerBound ?? eventID)...eventID
            let (event, flags) = enricher.enrich(inputs[n].input, eventID: eventID, message: messages[index],
                                                 salts: salts[index],
                                                 traits: traitsOf(site, inputs[n].input.event.userId, time), memo: &memo)
            // The objects are written once, for the COPY and for the queue message.
            let objects = event.encodedObjects()
            HydrationStore.appendEvent(&copy, site: site, batch: messages[index].batchID, event: event,
                                       objects: objects, flags: flags)
            outcomes[index].statistics.append(event.statisticsSerialized(objects))
            outcomes[index].objects.append(objects)
            outcomes[index].events.append(event)
        }
        if copy.rowCount > 0 {
            try await tx.copy(HydrationStore.copyEvents, data: copy.finish())
        }
        if !failures.isEmpty {
            try await tx.copy(HydrationStore.copyFailedEvents, data: HydrationStore.copyFailures(failures))
        }
        var counts: [HydrationStore.Counts] = []
        for (i, batch) in batches.enumerated()
        where claimed.contains(SiteBatch(site: batch.message.siteID, batch: batch.message.batchID)) {
            outcomes[i].plan = router.plan(site: batch.message.siteID, events: outcomes[i].events)
            counts.append(.init(site: batch.message.siteID, batch: batch.message.batchID, received: outcomes[i].received,
                                stored: outcomes[i].events.count, rejected: outcomes[i].invalid,
                                duplicate: outcomes[i].duplicate, routed: outcomes[i].plan.counts,
                                eventIDs: eventIDs[i]))
        }
        try await HydrationStore.recordCounts(tx, rows: counts)
        return outcomes
    }

    /// Traits as of each event's time, folding the user's identify calls up to then:
    /// looked up for the (site, user id, time) of every event that has a user id.
    func traitsLookup(_ tx: PostgresConnection,
                      users events: [(site: Int64, userID: String, time: Date)]) async throws -> (Int64, String?, Date) -> [String: JSONValue]? {
        typealias SiteKey = HydrationStore.SiteKey
        let userIDs = Set(events.map { SiteKey(site: $0.site, key: $0.userID) })
        guard !userIDs.isEmpty, let latest = events.map(\.time).max() else { return { _, _, _ in nil } }
        let canonical = try await HydrationStore.canonicalUsers(tx, ids: userIDs)
        let users = Set(userIDs.map { id in canonical[id].map { SiteKey(site: id.site, key: $0) } ?? id })
        let history = try await HydrationStore.traitHistory(tx, users: users, until: latest)
        return { site, userID, time in
            guard let id = userID else { return nil }
            let key = SiteKey(site: site, key: id)
            guard let rows = history[canonical[key].map { SiteKey(site: site, key: $0) } ?? key] else { return nil }
            var traits: [String: JSONValue] = [:]
            for (from, values) in rows where from <= time {
                for (k, v) in values { traits[k] = v }
            }
            return traits.isEmpty ? nil : traits
        }
    }
}
