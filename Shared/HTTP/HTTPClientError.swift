/// An error from an outgoing HTTP request (libcurl). Never carries the URL's
/// credentials, headers or bodies.
public struct HTTPClientError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String { case invalidRequest, connectFailed, timeout, transfer, responseTooLarge, closed }
        private let base: Base
        /// The request could not be built (bad URL, NUL in a header).
        public static let invalidRequest = Code(base: .invalidRequest)
        /// DNS, refused or unreachable.
        public static let connectFailed = Code(base: .connectFailed)
        /// The request took longer than its timeout.
        public static let timeout = Code(base: .timeout)
        /// The transfer failed midway (reset, TLS, protocol).
        public static let transfer = Code(base: .transfer)
        /// The response body exceeded the request's limit.
        public static let responseTooLarge = Code(base: .responseTooLarge)
        /// The client was shut down.
        public static let closed = Code(base: .closed)
        public var description: String { base.rawValue }
    }

    public var code: Code
    /// libcurl's `CURLcode`, when the failure came from libcurl.
    public var curlCode: Int?

    public init(_ code: Code, curlCode: Int? = nil) {
        self.code = code
        self.curlCode = curlCode
    }

    public var description: String {
        "HTTPClientError(\(code)" + (curlCode.map { ", curl: \($0)" } ?? "") + ")"
    }
}
