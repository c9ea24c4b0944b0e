/// The statements one connection has prepared, by SQL text and parameter types.
///
/// A statement is prepared the second time it runs (one-off statements, such as DDL with
/// a partition's name in it, never take a slot); once `capacity` statements are
/// prepared, others run unprepared. Prepared statements belong to the server session, so
/// the cache is emptied whenever the connection is replaced. They survive a rolled-back
/// transaction, which is why preparing inside one is safe.
struct StatementCache {
    struct Key: Hashable {
        var sql: String
        var types: [UInt32]
    }

    let capacity: Int
    private var names: [Key: String] = [:]
    /// Statements run once, not yet prepared; bounded, and cleared when full.
    private var seen: Set<Key> = []
    private var counter = 0

    init(capacity: Int) { self.capacity = capacity }

    /// The prepared name for `sql` with `types`, preparing it with `prepare` if this is
    /// its second run and there is room; `nil` to run it unprepared. A failed prepare
    /// throws and caches nothing.
    mutating func name(for sql: String, types: [UInt32],
                       prepare: (String) throws(PostgresError) -> Void) throws(PostgresError) -> String? {
        guard capacity > 0 else { return nil }
        let key = Key(sql: sql, types: types)
        if let name = names[key] { return name }
        guard names.count < capacity else { return nil }
        guard seen.contains(key) else {
            if seen.count >= capacity * 4 { seen.removeAll() }
            seen.insert(key)
            return nil
        }
        counter += 1
        let name = "tributary_\(counter)"
        try prepare(name)
        seen.remove(key)
        names[key] = name
        return name
    }

    /// Drops a statement whose plan the server can no longer use; it is prepared again
    /// under a new name (the old one stays on the server until the session ends).
    mutating func forget(sql: String, types: [UInt32]) {
        names[Key(sql: sql, types: types)] = nil
    }

    mutating func removeAll() {
        names.removeAll()
        seen.removeAll()
    }
}
