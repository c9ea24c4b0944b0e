import Foundation

/// How one turn's new interactions change the stored visits, planned per group of linked
/// visitor hashes (a hash together with the hashes it continues, or is continued by, across
/// UTC midnight). Each group is settled on its own, so one visitor's hours-long visit never
/// widens what is read for the other visitors of the turn.
///
/// A group of one hash whose new interactions all come after its stored ones (the usual
/// case: events arrive roughly in order) is extended in memory from its latest visit,
/// without reading its stored interactions back. Any other group is recomputed from its
/// stored interactions inside its window, exactly as `VisitBuilder.visits` would from all
/// of them, so the result does not depend on the order batches came in.
struct VisitPlan: Sendable {
    /// A group recomputed from stored interactions.
    struct Recompute: Sendable {
        var hashes: Set<String>
        var window: ClosedRange<Date>
        /// The group's stored visits that touch the window (replaced by the recomputed ones).
        var stored: [Session]
    }

    /// The change of the groups extended in memory.
    let extended: VisitChange
    /// The groups whose stored interactions must be read.
    let recompute: [Recompute]

    /// - Parameters:
    ///   - fresh: the turn's new interactions (already stored with the others).
    ///   - stored: every stored visit of the hashes involved.
    ///   - links: (hash, previous hash) pairs found among the stored interactions.
    init(fresh: [StatEvent], stored: [Session], links: [(String, String)], timeout: TimeInterval) {
        var groups = HashGroups()
        for e in fresh {
            groups.add(e.visitor)
            if let previous = e.previousVisitor { groups.join(e.visitor, previous) }
        }
        for (hash, previous) in links { groups.join(hash, previous) }
        var freshByGroup: [String: [StatEvent]] = [:]
        for e in fresh where e.isInteraction { freshByGroup[groups.root(e.visitor), default: []].append(e) }
        var storedByGroup: [String: [Session]] = [:]
        for v in stored where groups.contains(v.visitor) { storedByGroup[groups.root(v.visitor), default: []].append(v) }
        let membersByGroup = groups.all
        var removed: [Session] = []
        var added: [Session] = []
        var recompute: [Recompute] = []
        for (root, events) in freshByGroup {
            let members = membersByGroup[root] ?? [root]
            let visits = storedByGroup[root] ?? []
            if members.count == 1, let change = Self.extend(visits, with: events, timeout: timeout) {
                removed += change.removed
                added += change.added
            } else if let window = VisitBuilder.window(fresh: events, stored: visits, timeout: timeout) {
                recompute.append(Recompute(hashes: members, window: window,
                                           stored: visits.filter { $0.last >= window.lowerBound && $0.start <= window.upperBound }))
            }
        }
        extended = VisitChange(removed: removed, added: added)
        self.recompute = recompute
    }

    /// Every hash to read with its window.
    var windows: [(hash: String, window: ClosedRange<Date>)] {
        recompute.flatMap { group in group.hashes.map { (hash: $0, window: group.window) } }
    }

    /// The whole change, given the stored interactions read for `windows`.
    func change(reading events: [StatEvent], timeout: TimeInterval) -> VisitChange {
        var byHash: [String: [StatEvent]] = [:]
        for e in events { byHash[e.visitor, default: []].append(e) }
        var removed = extended.removed
        var added = extended.added
        for group in recompute {
            // Each hash is in one group, read over that group's window only.
            let mine = group.hashes.flatMap { byHash[$0] ?? [] }
            let change = VisitChange(stored: group.stored, recomputed: VisitBuilder.visits(mine, timeout: timeout))
            removed += change.removed
            added += change.added
        }
        return VisitChange(removed: removed, added: added)
    }

    /// One hash's new interactions that all come after its stored visits: the latest visit
    /// continued by them (or closed, and new visits after it). Nil when one comes earlier.
    static func extend(_ visits: [Session], with events: [StatEvent], timeout: TimeInterval) -> VisitChange? {
        guard let first = events.map(\.time).min() else { return VisitChange(removed: [], added: []) }
        guard let latest = visits.max(by: { $0.start < $1.start }) else {
            return VisitChange(stored: [], recomputed: VisitBuilder.visits(events, timeout: timeout))
        }
        guard first > latest.last else { return nil }
        return VisitChange(stored: [latest], recomputed: VisitBuilder.visits(events, timeout: timeout, continuing: [latest]))
    }
}

/// Visitor hashes joined into groups (union–find).
struct HashGroups: Sendable {
    private var parent: [String: String] = [:]

    mutating func add(_ hash: String) {
        if parent[hash] == nil { parent[hash] = hash }
    }

    func contains(_ hash: String) -> Bool { parent[hash] != nil }

    /// The group's representative (the hash itself for one not added).
    func root(_ hash: String) -> String {
        var h = hash
        while let p = parent[h], p != h { h = p }
        return h
    }

    mutating func join(_ a: String, _ b: String) {
        add(a)
        add(b)
        let (ra, rb) = (root(a), root(b))
        if ra != rb { parent[max(ra, rb)] = min(ra, rb) }
    }

    /// Every group's hashes, by representative.
    var all: [String: Set<String>] {
        var out: [String: Set<String>] = [:]
        for hash in parent.keys { out[root(hash), default: []].insert(hash) }
        return out
    }
}
