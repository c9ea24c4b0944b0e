import TributaryModels

/// Decides which queues each stored event goes to: `aggregate` for everything but
/// metrics, and `forward:<sink>` for every enabled sink whose rules match (sites, types,
/// names, the client's `integrations` map; metrics to statsd sinks only). A store-only
/// site's events go nowhere.
struct EventRouter: Sendable {
    var rules: [SinkRule]
    var isStoreOnly: @Sendable (Int64) -> Bool

    /// Where one batch's events go, as positions in the batch's event list.
    struct Plan: Sendable {
        var aggregate: [Int] = []
        /// Per sink id, in sink order.
        var sinks: [(sinkID: Int64, events: [Int])] = []

        /// The number of events per queue, for the ledger's `routed` column.
        var counts: [String: Int] {
            var counts = ["aggregate": aggregate.count]
            for (sink, events) in sinks { counts[QueueName.forward(sinkID: sink)] = events.count }
            return counts
        }
    }

    func plan(site: Int64, events: [HydratedEvent]) -> Plan {
        var plan = Plan()
        guard !isStoreOnly(site) else { return plan }
        plan.aggregate = events.indices.filter { events[$0].type != .metric }
        for rule in rules {
            let matched = events.indices.filter {
                rule.matches(site: site, type: events[$0].type, name: events[$0].name, integrations: events[$0].integrations)
            }
            if !matched.isEmpty { plan.sinks.append((rule.sinkID, matched)) }
        }
        return plan
    }
}
