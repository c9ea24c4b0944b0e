import Foundation
import Testing
@testable import Collector

@Suite("Collector plumbing")
struct CollectorPlumbingTests {
    func record(_ id: Int64) -> RawBatchRecord {
        RawBatchRecord(batchID: id, siteID: 3, receivedAt: Date(timeIntervalSince1970: 1_764_096_194.123),
                       clientIP: "203.0.113.7", userAgent: "ua", eventCount: 2, payload: #"{"batch":[{},{}]}"#)
    }

    @Test("spool records round-trip; a torn last record is dropped")
    func spoolTornTail() throws {
        let data = try SpoolFormat.encode(record(1)) + SpoolFormat.encode(record(2)) + SpoolFormat.encode(record(3))
        #expect(SpoolFormat.decode(data).records.map(\.batchID) == [1, 2, 3])
        for cut in [1, 5, 13, 40] {
            let (records, skipped) = SpoolFormat.decode(Array(data.dropLast(cut)))
            #expect(records.map(\.batchID) == [1, 2])
            #expect(skipped == 1)
        }
        let decoded = try #require(SpoolFormat.decode(data).records.first)
        #expect(decoded.payload == record(1).payload && decoded.clientIP == "203.0.113.7")
        // Received-at times are whole milliseconds, so they survive the spool exactly enough
        // for PostgreSQL's microseconds (the batch key includes them).
        #expect(abs(decoded.receivedAt.timeIntervalSince(record(1).receivedAt)) < 0.000_000_5)
    }

    @Test("a damaged record in the middle is skipped, the rest survive")
    func spoolDamage() throws {
        let first = try SpoolFormat.encode(record(1))
        var second = try SpoolFormat.encode(record(2))
        second[20] ^= 0xFF
        let data = first + second + (try SpoolFormat.encode(record(3)))
        let (records, skipped) = SpoolFormat.decode(data)
        #expect(records.map(\.batchID) == [1, 3])
        #expect(skipped >= 1)
    }

    @Test("CRC-32 matches the standard check value")
    func crc() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    @Test("X-Forwarded-For is honoured only from trusted proxies")
    func forwardedFor() {
        let resolver = ClientAddressResolver(trustedProxies: ["10.0.0.0/8", "::1"])
        #expect(resolver.clientAddress(peer: "203.0.113.1", forwardedFor: "1.2.3.4") == "203.0.113.1")
        #expect(resolver.clientAddress(peer: "10.1.2.3", forwardedFor: "1.2.3.4, 10.9.9.9") == "1.2.3.4")
        #expect(resolver.clientAddress(peer: "::1", forwardedFor: "spoofed, 198.51.100.2") == "198.51.100.2")
        #expect(resolver.clientAddress(peer: "10.1.2.3", forwardedFor: "not-an-ip") == "10.1.2.3")
        #expect(resolver.clientAddress(peer: "10.1.2.3", forwardedFor: nil) == "10.1.2.3")
        #expect(CIDR("10.0.0.0/33") == nil)
        #expect(CIDR("2001:db8::/32")?.contains(CIDR.parse("2001:db8::1")!) == true)
        #expect(CIDR("::ffff:10.0.0.1") == CIDR("10.0.0.1"))
    }

    @Test("the token bucket allows the burst, then the rate")
    func rateLimit() {
        let limiter = RateLimiter(burst: 3)
        let start = ContinuousClock.now
        #expect((0..<3).allSatisfy { _ in limiter.acquire(site: 1, rate: 1, now: start) == nil })
        #expect(limiter.acquire(site: 1, rate: 1, now: start) == 1)
        #expect(limiter.acquire(site: 2, rate: 1, now: start) == nil)
        #expect(limiter.acquire(site: 1, rate: 1, now: start + .milliseconds(1_100)) == nil)
    }

    @Test("Basic auth usernames and base64 pixel data decode")
    func decoding() {
        #expect(IngestHandler.basicUsername("Basic " + Data("trk_abc:".utf8).base64EncodedString()) == "trk_abc")
        #expect(IngestHandler.basicUsername("Basic !!!") == nil)
        #expect(IngestHandler.basicUsername("Bearer x") == nil)
        let json = #"{"a":"b?>"}"#
        let standard = Data(json.utf8).base64EncodedString()
        let urlSafe = standard.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        #expect(IngestHandler.base64(standard) == Array(json.utf8))
        #expect(IngestHandler.base64(urlSafe) == Array(json.utf8))
    }

    @Test("write keys are random, hashed and prefixed")
    func writeKeys() {
        let a = WriteKey.generate()
        #expect(a.hasPrefix("trk_") && a.count == 36)
        #expect(a != WriteKey.generate())
        #expect(WriteKey.hash(a).count == 64)
        #expect(WriteKey.prefix(a).count == 12)
    }
}
