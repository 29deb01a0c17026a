import BrokerCore
import Foundation

/// Reads `adapters/` and `contracts/` from disk into a validated `PolicyBundle`.
///
/// File names in issues are the paths as given (`adapters/acme-push.yaml`), so
/// `sharebroker check` output can be clicked through in an editor or CI log.
public enum PolicyLoader {
    public struct Result: Sendable {
        public var bundle: PolicyBundle?
        public var issues: [PolicyIssue]
        public var fileCount: Int
    }

    public static func load(adapters: String, contracts: String) -> Result {
        var issues: [PolicyIssue] = []
        let taxonomyPath = join(contracts, "taxonomy.yaml")
        let taxonomy = read(taxonomyPath, &issues)
        // The published sharing list sits beside the taxonomy; neither is a contract.
        let publishedPath = join(contracts, PublishedSharingList.fileName)
        let publishedList = read(publishedPath, &issues)
        let contractFiles = yamlFiles(in: contracts, &issues).filter { $0 != taxonomyPath && $0 != publishedPath }
            .compactMap { read($0, &issues) }
        let adapterFiles = yamlFiles(in: adapters, &issues).compactMap { read($0, &issues) }
        if taxonomy == nil, FileManager.default.fileExists(atPath: contracts) {
            issues.append(PolicyIssue(file: taxonomyPath, line: 1, message: "the taxonomy file is missing"))
        }
        guard issues.isEmpty else { return Result(bundle: nil, issues: issues, fileCount: 0) }
        let loaded = PolicyBundle.load(taxonomy: taxonomy, contracts: contractFiles, adapters: adapterFiles,
                                       publishedList: publishedList)
        return Result(bundle: loaded.bundle, issues: loaded.issues,
                      fileCount: contractFiles.count + adapterFiles.count + 1 + (publishedList == nil ? 0 : 1))
    }

    private static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    private static func yamlFiles(in directory: String, _ issues: inout [PolicyIssue]) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            issues.append(PolicyIssue(file: directory, line: 0, message: "not a directory"))
            return []
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { join(directory, $0) }
    }

    private static func read(_ path: String, _ issues: inout [PolicyIssue]) -> PolicyFile? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        guard let text = String(validating: data, as: UTF8.self) else {
            issues.append(PolicyIssue(file: path, line: 1, message: "the file is not valid UTF-8"))
            return nil
        }
        return PolicyFile(name: path, text: text)
    }
}
