import BrokerCore
import BrokerService
import Foundation

/// Resolves `{ env: NAME }` and `{ file: PATH }` references: the only place the broker reads its environment.
struct SecretResolver {
    var environment: [String: String] = ProcessInfo.processInfo.environment

    /// Every reference that resolves; missing ones are left out (the assembly reports them).
    func resolve(_ references: [SecretReference]) -> [SecretReference: String] {
        var out: [SecretReference: String] = [:]
        for reference in references {
            if let value = value(reference) { out[reference] = value }
        }
        return out
    }

    func value(_ reference: SecretReference) -> String? {
        switch reference {
        case .literal(let text): return text
        case .env(let name): return environment[name].flatMap { $0.isEmpty ? nil : $0 }
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else { return nil }
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// Why `value(reference)` found nothing, in the words an operator acts on.
    func missing(_ reference: SecretReference) -> String {
        switch reference {
        case .file(let path): return FileManager.default.fileExists(atPath: path) ? "\(path) cannot be read" : "\(path) does not exist"
        case .env(let name): return "the environment variable \(name) is not set"
        case .literal: return "the value is empty"
        }
    }

    /// A key from its reference, or created (32 random bytes, hex, mode 0600 from the first byte) in `path` on first start.
    func keyOrCreate(_ reference: SecretReference?, defaultPath: String) throws -> [UInt8] {
        if let reference, let text = value(reference) { return Array(text.utf8) }
        let path: String
        if case .file(let configured)? = reference { path = configured } else { path = defaultPath }
        if let data = FileManager.default.contents(atPath: path), !data.isEmpty {
            return Array(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).utf8)
        }
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &generator) }
        let hex = Hex.encode(bytes)
        // Owner-only from its first byte (never created 0644 and chmod-ed after), in a 0700 folder.
        try PrivateFile.store(Array(hex.utf8), at: path)
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        // On stderr: a command's stdout may be its data (a checkpoint export).
        FileHandle.standardError.write(Data("created a new key: \(absolute) (owner-only; back it up: docs/key-management.md)\n".utf8))
        return Array(hex.utf8)
    }
}
