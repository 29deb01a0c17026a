import BrokerTesting
import Foundation
import Testing

/// Issue 23, item 2: `check` warns (file:line) about a non-personal field that admits more than 256
/// characters of free text, as the repository's Huawei topic did (`[a-zA-Z0-9_.~%-]{1,900}`).
struct LongFreeTextCheckTests {
    @Test func warnsAboutALongNonPersonalPattern() throws {
        let root = CheckCommandTests.root
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("check-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        for folder in ["adapters", "contracts"] {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        for file in ["taxonomy.yaml", "huawei-push.yaml"] {
            try FileManager.default.copyItem(at: root.appendingPathComponent("contracts/" + file),
                                             to: directory.appendingPathComponent("contracts/" + file))
        }
        let huawei = try String(contentsOf: root.appendingPathComponent("adapters/huawei-push.yaml"), encoding: .utf8)
        let loosened = huawei.replacingOccurrences(of: "pattern: '[a-zA-Z0-9_.~-]{1,128}' }", with: "pattern: '[a-zA-Z0-9_.~%-]{1,900}' }")
            .replacingOccurrences(of: "bi_tag:                   { category: system.operations, pattern: '[A-Za-z0-9_-]{1,64}' }",
                                  with: "bi_tag:                   { category: system.operations, type: string }")
        #expect(loosened != huawei)
        let lines = loosened.split(separator: "\n", omittingEmptySubsequences: false)
        let topic = try #require(lines.firstIndex { $0.contains("message.topic:") }) + 1
        let tag = try #require(lines.firstIndex { $0.contains("bi_tag:") }) + 1
        try loosened.write(to: directory.appendingPathComponent("adapters/huawei-push.yaml"), atomically: true, encoding: .utf8)
        let result = try CheckCommandTests.run(["check"], in: directory)
        #expect(result.status == 0, "a warning is not an error: \(result.output)")
        #expect(result.output.contains("adapters/huawei-push.yaml:\(topic): warning: operation send: message.topic is non-personal "
                                       + "but admits 900 characters of free text"), "\(result.output)")
        #expect(result.output.contains("adapters/huawei-push.yaml:\(tag): warning: operation send: message.android.bi_tag is "
                                       + "non-personal but admits unbounded text"), "\(result.output)")
        #expect(result.output.split(separator: "\n").filter { $0.contains("warning:") }.count == 2, "\(result.output)")
    }
}
