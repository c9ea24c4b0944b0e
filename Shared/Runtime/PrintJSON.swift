import Foundation

/// Prints a JSON object or array on one line, keys sorted: the `--json` output of the commands.
public func printJSON(_ value: Any) {
    if let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes]) {
        print(String(decoding: data, as: UTF8.self))
    }
}
