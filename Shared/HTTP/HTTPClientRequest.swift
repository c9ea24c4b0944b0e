/// An outgoing HTTP request.
public struct HTTPClientRequest: Sendable {
    public var method: String
    public var url: String
    /// Header lines as name/value pairs, in order.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// The whole request's timeout, in milliseconds.
    public var timeoutMs: Int
    /// The largest response body accepted, in bytes.
    public var maximumResponseBytes: Int
    /// libcurl `CURLOPT_RESOLVE` entries (`host:port:address[,address]`): the addresses
    /// the request may connect to, instead of resolving the host again.
    public var resolve: [String] = []

    public init(method: String = "GET", url: String, headers: [(name: String, value: String)] = [],
                body: [UInt8] = [], timeoutMs: Int = 10_000, maximumResponseBytes: Int = 1 << 20) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeoutMs = timeoutMs
        self.maximumResponseBytes = maximumResponseBytes
    }
}

/// The answer to an ``HTTPClientRequest``.
public struct HTTPClientResponse: Sendable {
    public var status: Int
    /// Header lines as received (names lower-cased).
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first header named `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name == lower }?.value
    }
}
