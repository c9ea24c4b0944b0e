import CCurl
import Foundation

/// The state of one transfer: the response body and headers collected by libcurl's
/// callbacks. Used by one thread only, for one `curl_easy_perform`.
final class Transfer {
    var body: [UInt8] = []
    var headerLines: [String] = []
    var overflowed = false
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Sets the request on `curl` and performs it.
    func run(_ curl: UnsafeMutableRawPointer, _ request: HTTPClientRequest) -> CURLcode {
        guard !request.url.utf8.contains(0), !request.method.utf8.contains(0) else { return CURLE_URL_MALFORMAT }
        var list: UnsafeMutablePointer<curl_slist>?
        for header in request.headers {
            let line = "\(header.name): \(header.value)"
            guard !line.utf8.contains(0), !line.contains("\r"), !line.contains("\n") else {
                curl_slist_free_all(list)
                return CURLE_URL_MALFORMAT
            }
            list = curl_slist_append(list, line)
        }
        // No `Expect: 100-continue` round trip before a body: libcurl would wait up to a
        // second for a server that does not answer it.
        list = curl_slist_append(list, "Expect:")
        var resolve: UnsafeMutablePointer<curl_slist>?
        for entry in request.resolve where !entry.utf8.contains(0) { resolve = curl_slist_append(resolve, entry) }
        // The lists must outlive the transfer: freed only after perform returns.
        defer {
            curl_slist_free_all(list)
            curl_slist_free_all(resolve)
        }
        _ = tributary_curl_setopt_long(curl, CURLOPT_NOSIGNAL, 1)
        _ = tributary_curl_setopt_string(curl, CURLOPT_URL, request.url)
        _ = tributary_curl_setopt_string(curl, CURLOPT_CUSTOMREQUEST, request.method)
        _ = tributary_curl_setopt_long(curl, CURLOPT_TIMEOUT_MS, request.timeoutMs)
        _ = tributary_curl_setopt_long(curl, CURLOPT_CONNECTTIMEOUT_MS, min(request.timeoutMs, 5_000))
        _ = tributary_curl_setopt_long(curl, CURLOPT_FOLLOWLOCATION, 0)
        _ = tributary_curl_setopt_string(curl, CURLOPT_PROTOCOLS_STR, "http,https")
        if let list { _ = tributary_curl_setopt_slist(curl, CURLOPT_HTTPHEADER, list) }
        if let resolve { _ = tributary_curl_setopt_slist(curl, CURLOPT_RESOLVE, resolve) }
        let context = Unmanaged.passUnretained(self).toOpaque()
        _ = tributary_curl_setopt_pointer(curl, CURLOPT_WRITEDATA, context)
        _ = tributary_curl_setopt_write_function(curl, CURLOPT_WRITEFUNCTION) { pointer, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            let n = size * count
            if transfer.body.count + n > transfer.limit {
                transfer.overflowed = true
                return 0
            }
            if let pointer { transfer.body.append(contentsOf: UnsafeRawBufferPointer(start: pointer, count: n)) }
            return n
        }
        _ = tributary_curl_setopt_pointer(curl, CURLOPT_HEADERDATA, context)
        _ = tributary_curl_setopt_write_function(curl, CURLOPT_HEADERFUNCTION) { pointer, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            let n = size * count
            if let pointer {
                let line = String(decoding: UnsafeRawBufferPointer(start: pointer, count: n), as: UTF8.self)
                if line.hasPrefix("HTTP/") { transfer.headerLines = [] } else { transfer.headerLines.append(line) }
            }
            return n
        }
        return request.body.withUnsafeBufferPointer { body -> CURLcode in
            if let base = body.baseAddress {
                _ = tributary_curl_setopt_offset(curl, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
                _ = tributary_curl_setopt_pointer(curl, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: base))
            } else if request.method != "GET" && request.method != "HEAD" {
                _ = tributary_curl_setopt_offset(curl, CURLOPT_POSTFIELDSIZE_LARGE, 0)
                _ = tributary_curl_setopt_string(curl, CURLOPT_POSTFIELDS, "")
            }
            return curl_easy_perform(curl)
        }
    }

    func parsedHeaders() -> [(name: String, value: String)] {
        headerLines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
            return (name, value)
        }
    }
}
