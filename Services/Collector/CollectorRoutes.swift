/// Every route of the ingest server: what the router registers and what
/// docs/openapi.yaml must document (a test compares the two).
enum CollectorRoutes {
    static let ingest: [(method: String, path: String)] =
        IngestEndpoint.allCases.map { ("POST", "/v1/\($0.rawValue)") }
    static let pixels: [(method: String, path: String)] = [("GET", "/v1/pixel/track"), ("GET", "/v1/pixel/page")]
    static let tracker: [(method: String, path: String)] = [("GET", "/tributary.js"), ("GET", "/v1/settings")]
    static let probes: [(method: String, path: String)] = [("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")]

    /// (method, path) pairs, including the CORS preflights of the ingest and pixel routes.
    static var all: [(method: String, path: String)] {
        let preflights = (ingest + pixels).map { ("OPTIONS", $0.path) }
        return ingest + pixels + preflights + tracker + probes
    }
}
