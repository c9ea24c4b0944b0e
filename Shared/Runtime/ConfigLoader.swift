import Configuration
import Foundation
import SystemPackage

/// Loads the one configuration file all daemons share, with environment overrides.
///
/// Precedence, highest first: environment variables `TRIBUTARY_<KEY>` (the dotted key
/// upper-cased with `_` for dots and word breaks: `redis.url` → `TRIBUTARY_REDIS_URL`,
/// `collector.admin.port` → `TRIBUTARY_COLLECTOR_ADMIN_PORT`), then the file, then each
/// key's default. The file is JSON (`.json`) or YAML (`.yaml`/`.yml`); its path comes
/// from `--config`, else `TRIBUTARY_CONFIG`, else no file (defaults and environment only).
/// Secrets are never values in the file: a key `…File` names a file holding the secret.
public enum ConfigLoader {
    /// Builds the reader for `path` (or `TRIBUTARY_CONFIG`).
    /// - Throws: ``ConfigurationError`` when the file is missing, unreadable or malformed.
    public static func load(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment)
        async throws -> ConfigReader
    {
        var providers: [any ConfigProvider] = [
            EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: "tributary")
        ]
        if let file = path ?? environment["TRIBUTARY_CONFIG"], !file.isEmpty {
            guard FileManager.default.isReadableFile(atPath: file) else {
                throw ConfigurationError("config file \(file) does not exist or is not readable")
            }
            do {
                if file.hasSuffix(".yaml") || file.hasSuffix(".yml") {
                    providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(file)))
                } else {
                    providers.append(try await FileProvider<JSONSnapshot>(filePath: FilePath(file)))
                }
            } catch {
                throw ConfigurationError("config file \(file) is not valid \(file.hasSuffix(".json") ? "JSON" : "JSON or YAML"): \(error)")
            }
        }
        return ConfigReader(providers: providers)
    }
}

/// A configuration value that is missing, malformed or out of range. The message names
/// the key and what was expected, never a secret's value.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension ConfigReader {
    /// Reads the secret in the file named by `key` (e.g. `postgres.passwordFile`), trimmed
    /// of surrounding whitespace; `nil` if the key is unset.
    public func secret(fileKey key: ConfigKey) throws -> String? {
        guard let path = string(forKey: key) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("\(key): cannot read secret file \(path)")
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Reads an integer key and checks it lies in `range`.
    public func int(forKey key: ConfigKey, default value: Int, in range: ClosedRange<Int>) throws -> Int {
        let v = int(forKey: key, default: value)
        guard range.contains(v) else {
            throw ConfigurationError("\(key) must be between \(range.lowerBound) and \(range.upperBound), got \(v)")
        }
        return v
    }

    /// Reads a number key and checks it lies in `range`.
    public func double(forKey key: ConfigKey, default value: Double, in range: ClosedRange<Double>) throws -> Double {
        let v = double(forKey: key, default: value)
        guard range.contains(v) else {
            throw ConfigurationError("\(key) must be between \(range.lowerBound) and \(range.upperBound), got \(v)")
        }
        return v
    }
}
