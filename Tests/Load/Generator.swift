import Foundation
import NIOPosix
import Synchronization
import TributaryHTTP
import TributaryModels

/// Drives the real collector with realistic traffic (see ``RunCommand``) and records
/// every batch it sent and whether it was acknowledged.
final class Generator: Sendable {
    struct Options: Sendable {
        var collector: String
        var sites: [(id: Int64, key: String)]
        /// Each site's share of the traffic; empty: Zipf-skewed by the sites' order.
        var weights: [Double] = []
        var events: Int
        var seconds: Double
        var rate: Double
        var batchSize: Int
        var concurrency: Int
        var duplicates: Double
        var invalid: Double
        var visitorsPerSite: Int
        var seed: UInt64
        var retrySeconds: Double
        /// Fraction of requests followed by a malformed one (bad JSON, bad key, oversized,
        /// wrong shape) that must be refused with a 4xx and affect nothing else.
        var malformed: Double = 0
    }

    struct Site: Sendable {
        var id: Int64
        var key: String
        var visitors: [Visitor]
    }

    /// Totals of the run so far.
    struct Totals: Sendable {
        var events = 0
        var batches = 0
        var acked = 0
        var unacked = 0
        var retries = 0
        var latenciesMs: [Double] = []
        var malformedSent = 0
        /// Malformed requests the collector accepted (2xx) or failed on (5xx): each is a bug.
        var malformedNotRefused = 0
    }

    let options: Options
    let sites: [Site]
    let record: RecordWriter
    let http: HTTPClient
    private let budget: Mutex<Int>
    private let totals = Mutex(Totals())
    private let pace = Mutex<ContinuousClock.Instant?>(nil)
    /// Recently acknowledged valid events per site (their JSON), for deliberate duplicates.
    private let recent = Mutex<[Int64: [(String, RecordedEvent)]]>([:])
    private let zipf: Zipf

    init(options: Options, record: RecordWriter, http: HTTPClient) {
        self.options = options
        self.record = record
        self.http = http
        budget = Mutex(options.events)
        zipf = options.weights.count == options.sites.count ? Zipf(weights: options.weights) : Zipf(count: options.sites.count)
        let agents = Ingredients.userAgents()
        var rng = SplitMix64(seed: options.seed)
        sites = options.sites.map { site in
            // Distinct (address, agent) pairs: each visitor is one visitor hash.
            let visitors = (0..<options.visitorsPerSite).map { i -> Visitor in
                let ip = "\(Int.random(in: 11...126, using: &rng)).\(Int.random(in: 0...255, using: &rng)).\(i / 256 % 256).\(i % 256)"
                return Visitor(anonymousID: "anon-\(site.id)-\(i)", userID: i % 4 == 0 ? "user-\(site.id)-\(i)" : nil,
                               ip: ip, userAgent: agents[i % agents.count])
            }
            return Site(id: site.id, key: site.key, visitors: visitors)
        }
    }

    var snapshot: Totals { totals.withLock { $0 } }

    /// Runs until the event budget or the time is used up.
    func run() async {
        let deadline = ContinuousClock.now + .milliseconds(Int(options.seconds * 1000))
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<options.concurrency {
                group.addTask { await self.work(worker: worker, deadline: deadline) }
            }
        }
    }

    private func take(_ n: Int) -> Int {
        budget.withLock { b in
            let got = min(b, n)
            b -= got
            return got
        }
    }

    /// Waits for this batch's slot when a rate is set.
    private func waitForSlot(events: Int) async {
        guard options.rate > 0 else { return }
        let slot = pace.withLock { next -> ContinuousClock.Instant in
            let now = ContinuousClock.now
            let start = max(next ?? now, now)
            next = start + .nanoseconds(Int64(Double(events) / options.rate * 1e9))
            return start
        }
        if slot > .now { try? await Task.sleep(until: slot, clock: .continuous) }
    }

    private func work(worker: Int, deadline: ContinuousClock.Instant) async {
        var rng = SplitMix64(seed: options.seed &+ UInt64(worker + 1) &* 0x9E37_79B9)
        while ContinuousClock.now < deadline {
            let n = take(options.batchSize)
            guard n > 0 else { return }
            let site = sites[zipf.sample(&rng)]
            let (body, events, parts) = makeBatch(site: site, count: n, rng: &rng)
            await waitForSlot(events: n)
            await send(site: site, body: body, events: events, parts: parts, deadline: deadline)
            if options.malformed > 0 && Double.random(in: 0..<1, using: &rng) < options.malformed {
                await sendMalformed(site: site, rng: &rng)
            }
        }
    }

    /// One batch: page views, custom events, identifies, metrics; some invalid events and
    /// some resends of acknowledged ones. Returns the body, what each event is expected to
    /// become, and each event's own JSON text (kept for identical resends).
    func makeBatch(site: Site, count: Int, rng: inout SplitMix64) -> ([UInt8], [RecordedEvent], [String]) {
        var parts: [String] = []
        var events: [RecordedEvent] = []
        let now = Date()
        let at = ISO8601.format(now)
        for position in 0..<count {
            let roll = Double.random(in: 0..<1, using: &rng)
            if roll < options.duplicates, let (json, original) = recent.withLock({ $0[site.id]?.randomElement(using: &rng) }) {
                parts.append(json)
                events.append(RecordedEvent(m: original.m, t: original.t, x: .duplicate, pos: position, v: original.v,
                                            at: original.at, p: original.p))
                continue
            }
            let v = Int.random(in: 0..<site.visitors.count, using: &rng)
            let visitor = site.visitors[v]
            let id = UUID().uuidString.lowercased()
            let context = #""context":{"ip":"\#(visitor.ip)","userAgent":\#(Self.quote(visitor.userAgent)),"library":{"name":"tributary-load","version":"1"}"#
            let base = #""messageId":"\#(id)","anonymousId":"\#(visitor.anonymousID)","timestamp":"\#(at)","sentAt":"\#(at)""#
            let ms = Int64(now.timeIntervalSince1970 * 1000)
            if roll < options.duplicates + options.invalid {
                // A track call without an event name: invalid (missing_event_name).
                parts.append(#"{"type":"track",\#(base),\#(context)},"properties":{"broken":true}}"#)
                events.append(RecordedEvent(m: id, t: "track", x: .invalid, pos: position, v: v, at: ms))
                continue
            }
            let kind = Double.random(in: 0..<1, using: &rng)
            let json: String
            let recorded: RecordedEvent
            if kind < 0.6 {
                let path = Ingredients.paths.randomElement(using: &rng)!
                var query = ""
                let utm = Ingredients.utm.randomElement(using: &rng)!
                if !utm.isEmpty { query = "?" + utm.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&") }
                if Int.random(in: 0..<20, using: &rng) == 0 { query += (query.isEmpty ? "?" : "&") + "gclid=abc\(position)" }
                let referrer = Ingredients.referrers.randomElement(using: &rng)!
                let url = "https://site\(site.id).example.com\(path)\(query)"
                json = #"{"type":"page","name":"\#(path)",\#(base),\#(context),"page":{"url":"\#(url)","path":"\#(path)","referrer":"\#(referrer)","title":"Page \#(path)"}},"properties":{"url":"\#(url)","path":"\#(path)","referrer":"\#(referrer)"}}"#
                recorded = RecordedEvent(m: id, t: "page", x: .stored, pos: position, v: v, at: ms, p: path)
            } else if kind < 0.85 {
                let name = Ingredients.eventNames.randomElement(using: &rng)!
                json = #"{"type":"track","event":"\#(name)",\#(base),\#(context)},"properties":{"plan":"\#(["free", "team", "enterprise"].randomElement(using: &rng)!)","amount":\#(Int.random(in: 1...500, using: &rng)),"first":\#(Bool.random(using: &rng))}}"#
                recorded = RecordedEvent(m: id, t: "track", x: .stored, pos: position, v: v, at: ms, p: name)
            } else if kind < 0.93 {
                let user = visitor.userID ?? "user-\(site.id)-\(v)"
                json = #"{"type":"identify","userId":"\#(user)",\#(base),\#(context)},"traits":{"email":"\#(user)@example.com","plan":"team","logins":\#(Int.random(in: 1...99, using: &rng))}}"#
                recorded = RecordedEvent(m: id, t: "identify", x: .stored, pos: position, v: v, at: ms)
            } else {
                let name = Ingredients.metricNames.randomElement(using: &rng)!
                json = #"{"type":"metric","name":"\#(name)","kind":"\#(["counter", "gauge", "timer"].randomElement(using: &rng)!)","value":\#(Double.random(in: 0...1000, using: &rng)),"tags":{"host":"web-\#(Int.random(in: 1...8, using: &rng))"},\#(base)}"#
                recorded = RecordedEvent(m: id, t: "metric", x: .stored, pos: position, v: v, at: ms, p: name)
            }
            parts.append(json)
            events.append(recorded)
        }
        let body = #"{"batch":[\#(parts.joined(separator: ","))],"sentAt":"\#(at)"}"#
        return (Array(body.utf8), events, parts)
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where c.value < 0x20: out += String(format: "\\u%04x", c.value)
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }

    /// Sends one batch until the collector acknowledges it, retrying 429/503 (honouring
    /// Retry-After) and connection failures for up to `retrySeconds`; records the outcome.
    private func send(site: Site, body: [UInt8], events: [RecordedEvent], parts: [String],
                      deadline: ContinuousClock.Instant) async {
        let auth = Data((site.key + ":").utf8).base64EncodedString()
        let request = HTTPClientRequest(method: "POST", url: options.collector + "/v1/batch",
                                        headers: [("Content-Type", "application/json"), ("Authorization", "Basic \(auth)")],
                                        body: body, timeoutMs: 30_000, maximumResponseBytes: 65_536)
        let giveUp = ContinuousClock.now + .milliseconds(Int(options.retrySeconds * 1000))
        var attempts = 0
        var batchID: String?
        while true {
            attempts += 1
            let started = ContinuousClock.now
            var wait = Duration.milliseconds(min(100 << min(attempts, 6), 5_000))
            do {
                let response = try await http.send(request)
                if (200..<300).contains(response.status) {
                    let o = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
                    batchID = o?["batchId"] as? String
                    let ms = Double((ContinuousClock.now - started).components.attoseconds) / 1e15
                        + Double((ContinuousClock.now - started).components.seconds) * 1000
                    totals.withLock { $0.latenciesMs.append(ms) }
                    break
                }
                if response.status == 429 || response.status == 503 {
                    if let after = response.header("retry-after").flatMap(Double.init) { wait = .milliseconds(Int(after * 1000)) }
                } else {
                    FileHandle.standardError.write(Data("tributary-load: the collector refused a batch: HTTP \(response.status) \(String(decoding: response.body.prefix(200), as: UTF8.self))\n".utf8))
                    break
                }
            } catch {
                // Connection refused or timed out: the collector may be restarting.
            }
            if ContinuousClock.now + wait > giveUp { break }
            totals.withLock { $0.retries += 1 }
            try? await Task.sleep(for: wait)
        }
        let acked = batchID != nil
        if acked {
            recent.withLock { r in
                var list = r[site.id] ?? []
                for (i, e) in events.enumerated() where e.x == .stored && i % 7 == 0 {
                    list.append((parts[i], e))
                }
                if list.count > 200 { list.removeFirst(list.count - 200) }
                r[site.id] = list
            }
        }
        totals.withLock { t in
            t.events += events.count
            t.batches += 1
            if acked { t.acked += 1 } else { t.unacked += 1 }
        }
        do {
            try record.write(RecordedBatch(site: site.id, batch: batchID, acked: acked, attempts: attempts, events: events))
        } catch {
            FileHandle.standardError.write(Data("tributary-load: cannot write the record: \(error)\n".utf8))
        }
    }

    /// One malformed request; anything but a 4xx answer is counted as a failure.
    private func sendMalformed(site: Site, rng: inout SplitMix64) async {
        let auth = "Basic " + Data((site.key + ":").utf8).base64EncodedString()
        var headers = [("Content-Type", "application/json"), ("Authorization", auth)]
        let body: [UInt8]
        switch Int.random(in: 0..<6, using: &rng) {
        case 0: body = (0..<Int.random(in: 1...400, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        case 1: body = Array(#"{"batch":[{"type":"track","event":"x""#.utf8)
        case 2: body = Array(#"{"batch":"not a list"}"#.utf8)
        case 3:
            headers[1] = ("Authorization", "Basic " + Data("trk_not-a-real-key:".utf8).base64EncodedString())
            body = Array(#"{"batch":[{"type":"track","event":"x","anonymousId":"a"}]}"#.utf8)
        case 4: body = Array(#"{"batch":[{"type":"track","event":"big","anonymousId":"a","properties":{"blob":""#.utf8)
            + Array(repeating: UInt8(ascii: "x"), count: 600_000) + Array(#""}}]}"#.utf8)
        default: body = Array((#"{"batch":"# + String(repeating: "[", count: 300) + String(repeating: "]", count: 300) + "}").utf8)
        }
        let request = HTTPClientRequest(method: "POST", url: options.collector + "/v1/batch", headers: headers, body: body,
                                        timeoutMs: 30_000, maximumResponseBytes: 65_536)
        let status = (try? await http.send(request))?.status ?? 0
        totals.withLock { t in
            t.malformedSent += 1
            if !(400..<500).contains(status) { t.malformedNotRefused += 1 }
        }
        if !(400..<500).contains(status) {
            FileHandle.standardError.write(Data("tributary-load: a malformed request was answered \(status)\n".utf8))
        }
    }
}

