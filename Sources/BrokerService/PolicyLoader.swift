import BrokerCore
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads `adapters/` and `contracts/` from disk into a validated `PolicyBundle`.
///
/// File names in issues are the paths as given (`adapters/acme-push.yaml`), so
/// `sharebroker check` output can be clicked through in an editor or CI log.
///
/// Only regular files inside the two folders are read. A symbolic link whose target resolves
/// outside its folder (`adapters/x.yaml -> /etc/shadow`) is an error naming the link, and is never
/// opened: otherwise a reload's 422 or `check` would quote the first line of any file the broker
/// can read. So is anything that is not a regular file (a FIFO would block the reload).
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
        let privacyPath = join(contracts, PrivacyPolicy.fileName)
        let privacyPolicy = read(privacyPath, &issues)
        let contractFiles = yamlFiles(in: contracts, &issues).filter { $0 != taxonomyPath && $0 != publishedPath && $0 != privacyPath }
            .compactMap { read($0, &issues) }
        let adapterFiles = yamlFiles(in: adapters, &issues).compactMap { read($0, &issues) }
        if taxonomy == nil, FileManager.default.fileExists(atPath: contracts) {
            issues.append(PolicyIssue(file: taxonomyPath, line: 1, message: "the taxonomy file is missing"))
        }
        guard issues.isEmpty else { return Result(bundle: nil, issues: issues, fileCount: 0) }
        let loaded = PolicyBundle.load(taxonomy: taxonomy, contracts: contractFiles, adapters: adapterFiles,
                                       publishedList: publishedList, privacyPolicy: privacyPolicy)
        return Result(bundle: loaded.bundle, issues: loaded.issues,
                      fileCount: contractFiles.count + adapterFiles.count + 1 + (publishedList == nil ? 0 : 1)
                        + (privacyPolicy == nil ? 0 : 1))
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

    /// True when `path` may be read: a regular file, or a link resolving to one inside the folder
    /// that holds `path`. Otherwise an issue naming `path` (never what it points to or holds).
    private static func isInsideItsFolder(_ path: String, _ issues: inout [PolicyIssue]) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0 else { return false }   // absent: the caller's "missing" rule applies
        if (info.st_mode & S_IFMT) == S_IFLNK {
            let folder = (path as NSString).deletingLastPathComponent
            guard let resolvedFolder = realPath(folder.isEmpty ? "." : folder), let resolved = realPath(path),
                  resolved.hasPrefix(resolvedFolder.hasSuffix("/") ? resolvedFolder : resolvedFolder + "/") else {
                issues.append(PolicyIssue(file: path, line: 0,
                                          message: "a symbolic link to a file outside \(folder.isEmpty ? "." : folder): not read (copy the file in)"))
                return false
            }
            guard stat(resolved, &info) == 0 else { return false }
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            issues.append(PolicyIssue(file: path, line: 0, message: "not a regular file: not read"))
            return false
        }
        return true
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    private static func read(_ path: String, _ issues: inout [PolicyIssue]) -> PolicyFile? {
        guard isInsideItsFolder(path, &issues), let data = FileManager.default.contents(atPath: path) else { return nil }
        guard let text = String(validating: data, as: UTF8.self) else {
            issues.append(PolicyIssue(file: path, line: 1, message: "the file is not valid UTF-8"))
            return nil
        }
        return PolicyFile(name: path, text: text)
    }
}

extension PolicyBundle {
    /// What `sharebroker check` warns about (exit status 0), as `file:line: warning: …` lines, files
    /// named under the folders given: also in a reload's answer and log.
    public func checkWarnings(adapters: String, contracts: String) -> [String] {
        let bundle = self
        var out: [String] = []
        for item in bundle.outOfContractScope {
            out.append("\(adapters)/\(item.provider).yaml:\(item.line): warning: \(item.message)")
        }
        for item in bundle.unconstrainedFreeText {
            out.append("\(adapters)/\(item.provider).yaml:\(item.line): warning: operation \(item.operation): \(item.path) is "
                  + "non-personal but takes any value; give it values, pattern, type or max_length (or a personal category)")
        }
        for item in bundle.longFreeText {
            out.append("\(adapters)/\(item.provider).yaml:\(item.line): warning: operation \(item.operation): \(item.path) is "
                  + "non-personal but admits \(item.admits.map { "\($0) characters" } ?? "unbounded text") of free text; bound it to "
                  + "\(PolicyBundle.freeTextLimit) with a tight pattern (or give it a personal category)")
        }
        for provider in bundle.contracts.keys.sorted() {
            guard let missing = bundle.contracts[provider]?.missingPublishedListKeys, !missing.isEmpty else { continue }
            out.append("\(contracts)/\(provider).yaml:1: warning: no \(missing.joined(separator: ", ")): the published sharing list "
                  + "shows 'not stated' for them (give name, company and scenario as { zh-CN: …, en: … }, privacy_policy_url as https://…)")
        }
        if let list = bundle.publishedList {
            // One line per party, purpose, or party × purpose's categories the list leaves out that the contract allows.
            var gaps: [(key: String, line: Int, kind: PublishedSharingList.DriftKind, provider: String, purpose: String, categories: [String])] = []
            for gap in list.undisclosedScopes(of: bundle.contracts, taxonomy: bundle.taxonomy) {
                let key = "\(gap.kind) \(gap.provider) " + (gap.kind == .party ? "" : gap.purpose)
                if gaps.last?.key == key { gaps[gaps.count - 1].categories.append(gap.category); continue }
                gaps.append((key, list.partyLines[gap.provider] ?? 1, gap.kind, gap.provider, gap.purpose, [gap.category]))
            }
            for gap in gaps {
                let categories = gap.categories.joined(separator: ", ")
                let text: String
                switch gap.kind {
                case .party: text = "does not name \(gap.provider), whose contract allows \(categories)"
                case .purpose: text = "does not name \(gap.purpose) for \(gap.provider), whose contract allows \(categories) for it"
                case .category: text = "does not disclose \(categories) for \(gap.provider), \(gap.purpose), which its contract allows"
                }
                out.append("\(list.file):\(gap.line): warning: the published list \(text): sharing it would be drift")
            }
        }
        return out
    }
}
