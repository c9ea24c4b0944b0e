import TributaryHTTP
import Foundation
import TributaryModels
#if canImport(Glibc)
import Glibc
#endif

/// Sends `metric` messages as DogStatsD datagrams over UDP (`udp://host:8125`):
/// `name:value|c|#tag:value,…` (counter `c`, gauge `g`, timer `ms`, histogram `h`), with
/// the event's tags and `site:<id>`, packed into datagrams of at most 1432 bytes. With the `eventCounters` setting, every other event routed to the sink counts
/// as `tributary.events:1|c|#site:…,type:…,event:…`. Never retried: late metrics are
/// worse than none; a send that fails is dead-lettered as `dropped`.
struct StatsdSink: SinkAdapter {
    var schemes: Set<String> { ["udp"] }

    /// The largest datagram: fits an Ethernet MTU with IP and UDP headers (DogStatsD's advice).
    static let datagramBytes = 1432

    func validate(secret: String?) throws {}

    /// The DogStatsD line of one event, or `nil` for a metric without a usable value.
    static func line(_ event: ForwardEvent) -> String? {
        var tags = ["site:\(event.siteID)"]
        if event.type == "metric" {
            guard let name = event.name, let metric = event.json["metric"]?.objectValue,
                  let kind = metric["kind"]?.stringValue else { return nil }
            let value: Double
            switch metric["value"] {
            case .int(let n)?: value = Double(n)
            case .double(let d)?: value = d
            default: return nil
            }
            guard value.isFinite else { return nil }
            let suffix = ["counter": "c", "gauge": "g", "timer": "ms", "histogram": "h"][kind] ?? "g"
            for (k, v) in (metric["tags"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
                tags.append(tag(k) + ":" + tag(v.stringValue ?? v.jsonText))
            }
            let number = value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
            return "\(metricName(name)):\(number)|\(suffix)|#" + tags.joined(separator: ",")
        }
        tags.append("type:" + tag(event.type))
        if let name = event.name { tags.append("event:" + tag(name)) }
        return "tributary.events:1|c|#" + tags.joined(separator: ",")
    }

    /// Letters, digits, `_` and `.`; anything else becomes `_`.
    static func metricName(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.prefix(200).map {
            ($0.properties.isAlphabetic && $0.isASCII) || ("0"..."9").contains($0) || $0 == "_" || $0 == "." ? $0 : "_"
        }))
    }

    /// A tag part without DogStatsD's separators (`,` `|` `#` `:` and newlines).
    static func tag(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.prefix(200).map {
            [",", "|", "#", ":", "\n", "\r", " "].contains($0) ? "_" : $0
        }))
    }

    /// Lines packed into datagrams of at most `limit` bytes (a longer line goes alone).
    static func datagrams(_ lines: [String], limit: Int) -> [[UInt8]] {
        var packets: [[UInt8]] = []
        var current: [UInt8] = []
        for line in lines {
            let bytes = Array(line.utf8)
            if !current.isEmpty && current.count + 1 + bytes.count > limit {
                packets.append(current)
                current = []
            }
            if !current.isEmpty { current.append(0x0A) }
            current.append(contentsOf: bytes)
        }
        if !current.isEmpty { packets.append(current) }
        return packets
    }

    func deliver(_ events: [ForwardEvent], sink: Sink, secret: String?, context: DeliveryContext) async -> DeliveryResult {
        let target: OutboundGuard.Target
        do {
            target = try await context.outbound.check(sink.url, schemes: schemes, allowPrivate: sink.allowPrivateNetwork)
        } catch {
            return .dropped(error: "refused: \(error)")
        }
        let packets = Self.datagrams(events.compactMap(Self.line), limit: Self.datagramBytes)
        guard let address = target.addresses.first else { return .dropped(error: "no address") }
        let port = target.port
        if let error = await context.outbound.offload({ Self.send(packets, to: address, port: port) }) {
            return .dropped(error: error)
        }
        return .delivered(status: nil)
    }

    /// Sends the datagrams; returns why not, if it could not.
    static func send(_ packets: [[UInt8]], to address: String, port: Int) -> String? {
        var v4 = sockaddr_in(), v6 = sockaddr_in6()
        let isV6 = address.contains(":")
        if isV6 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET6, address, &v6.sin6_addr) == 1 else { return "bad address \(address)" }
        } else {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET, address, &v4.sin_addr) == 1 else { return "bad address \(address)" }
        }
        let fd = socket(isV6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return "socket: \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        for packet in packets {
            let sent = packet.withUnsafeBytes { bytes -> Int in
                if isV6 {
                    return withUnsafePointer(to: &v6) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                        }
                    }
                }
                return withUnsafePointer(to: &v4) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            if sent < 0 { return "sendto: \(String(cString: strerror(errno)))" }
        }
        return nil
    }
}
