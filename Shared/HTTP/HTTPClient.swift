import CCurl
import NIOPosix
import Synchronization

/// Sends HTTP requests with libcurl's easy interface, off Swift's cooperative pool.
///
/// One easy handle per thread-pool slot is kept and reused, so connections stay alive
/// between requests to the same host. Each handle is a C pointer owned by this client,
/// used by one thread at a time (taken out of the mutex-guarded free list for the
/// duration of a transfer) and freed in ``close()``/`deinit`.
public final class HTTPClient: Sendable {
    /// A libcurl easy handle. `@unchecked Sendable` because a handle is used by exactly
    /// one thread at a time: it leaves the free list for the whole transfer and returns after.
    private struct CurlHandle: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    private struct Handles {
        var free: [CurlHandle] = []
        var isClosed = false
    }

    private let threadPool: NIOThreadPool
    private let handles = Mutex(Handles())

    /// - Parameter threadPool: A started pool; its thread count bounds concurrent transfers.
    public init(threadPool: NIOThreadPool) {
        Self.globalInit
        self.threadPool = threadPool
    }

    private static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }()

    deinit { close() }

    /// Frees every idle handle (idempotent); later requests throw ``HTTPClientError/Code/closed``.
    public func close() {
        let idle = handles.withLock { h -> [CurlHandle] in
            h.isClosed = true
            defer { h.free = [] }
            return h.free
        }
        idle.forEach { curl_easy_cleanup($0.pointer) }
    }

    /// Performs `request` and returns the response (any status; only transport failures throw).
    public func send(_ request: HTTPClientRequest) async throws(HTTPClientError) -> HTTPClientResponse {
        do {
            return try await threadPool.runIfActive { [self] in try self.perform(request) }
        } catch let error as HTTPClientError {
            throw error
        } catch {
            throw HTTPClientError(.closed)
        }
    }

    private func perform(_ request: HTTPClientRequest) throws(HTTPClientError) -> HTTPClientResponse {
        let handle: CurlHandle? = try handles.withLock { (h: inout Handles) throws(HTTPClientError) in
            if h.isClosed { throw HTTPClientError(.closed) }
            return h.free.popLast()
        }
        guard let curl = handle?.pointer ?? curl_easy_init() else { throw HTTPClientError(.closed) }
        let transfer = Transfer(limit: request.maximumResponseBytes)
        defer {
            curl_easy_reset(curl)
            let keep = handles.withLock { h -> Bool in
                if h.isClosed { return false }
                h.free.append(CurlHandle(pointer: curl))
                return true
            }
            if !keep { curl_easy_cleanup(curl) }
        }
        let code = transfer.run(curl, request)
        if code != CURLE_OK {
            switch code {
            case CURLE_OPERATION_TIMEDOUT: throw HTTPClientError(.timeout, curlCode: Int(code.rawValue))
            case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
                throw HTTPClientError(.connectFailed, curlCode: Int(code.rawValue))
            case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
                throw HTTPClientError(.invalidRequest, curlCode: Int(code.rawValue))
            case CURLE_WRITE_ERROR where transfer.overflowed:
                throw HTTPClientError(.responseTooLarge, curlCode: Int(code.rawValue))
            default: throw HTTPClientError(.transfer, curlCode: Int(code.rawValue))
            }
        }
        var status = 0
        _ = tributary_curl_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)
        return HTTPClientResponse(status: status, headers: transfer.parsedHeaders(), body: transfer.body)
    }
}
