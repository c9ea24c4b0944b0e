/// How any stage finds the events hydration stored for a batch (the contract of the
/// `hydration` schema for its readers: hydration itself, the tracer and the ties).
public enum HydrationLedgerSQL {
    /// The join condition from a `hydration.ledger` row `l` to its batch's stored events
    /// `e`: their ids lie between the first and last id the batch was given, so this is a
    /// range scan of the events' primary key; the batch id is checked, since ids of other
    /// batches stored at the same time may fall in the range. A batch that stored no event
    /// has no range and joins nothing.
    public static let events = """
        e.site_id = l.site_id AND e.event_id BETWEEN l.first_event_id AND l.last_event_id AND e.batch_id = l.batch_id
        """
}
