/// PostgreSQL array literals for `$n::text[]`, `$n::bigint[]` (and `date[]`,
/// `timestamptz[]`) parameters, so a whole set of rows travels as one parameter per column.
public enum PostgresArray {
    /// Every element quoted and escaped; NUL (which PostgreSQL cannot store) becomes U+FFFD.
    /// `nil` elements are SQL NULL.
    public static func text(_ values: [String?]) -> String {
        var out: [UInt8] = [123]
        for (i, value) in values.enumerated() {
            if i > 0 { out.append(44) }
            guard let value else {
                out.append(contentsOf: [78, 85, 76, 76])
                continue
            }
            out.append(34)
            for b in value.utf8 {
                switch b {
                case 0: out.append(contentsOf: [0xEF, 0xBF, 0xBD])
                case 34, 92: out.append(92); out.append(b)
                default: out.append(b)
                }
            }
            out.append(34)
        }
        out.append(125)
        return String(decoding: out, as: UTF8.self)
    }

    public static func text(_ values: [String]) -> String {
        text(values.map { Optional($0) })
    }

    public static func ints<T: BinaryInteger>(_ values: [T]) -> String {
        "{" + values.map { String($0) }.joined(separator: ",") + "}"
    }
}
