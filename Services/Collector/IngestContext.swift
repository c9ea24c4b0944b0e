import HTTPTypes
import Hummingbird
import NIOCore

extension HTTPField.Name {
    /// `X-Forwarded-For`, set by proxies in front of the collector.
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
}

/// The request context of the ingest server: Hummingbird's core storage plus the peer
/// address (for the client IP and trusted proxies).
struct IngestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
