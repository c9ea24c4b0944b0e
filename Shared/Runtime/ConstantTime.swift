/// Compares two secrets (tokens) in time that depends only on their length, not on where
/// they first differ, so a caller cannot find a token byte by byte from response times.
public func constantTimeEquals(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    guard x.count == y.count else { return false }
    var diff: UInt8 = 0
    for i in x.indices { diff |= x[i] ^ y[i] }
    return diff == 0
}
