import BrokerTesting
import Foundation
import Testing

/// Issue 16, item 3, through a real `sharebroker serve --sandbox` and its provider simulators: the
/// sharing list in the regulator's published-list form (第三方信息共享清单) from real traffic and the
/// contracts, in zh-CN and en, as JSON, CSV and HTML, and its drift from the list the company has
/// published (`contracts/published-sharing-list.yaml`), in the report and in `/metrics`.
@Suite(.serialized) struct PublishedSharingListTests {
    static let huaweiURL = "https://developer.huawei.com/consumer/cn/doc/development/HMSCore-Guides/sdk-data-security-0000001050042177"
    static let amapURL = "https://lbs.amap.com/pages/privacy/"
    static let push = "essential.service.notifications.push"
    static let location = "functional.service"

    /// Discloses Huawei's push token and AMap's precise location, but not the IP address AMap gets.
    static let publishedList = """
        published_at: 2025-07-01
        url: https://www.example.com/privacy/third-parties
        parties:
          - provider: huawei-push
            purposes:
              essential.service.notifications.push:
                categories: [user.device.push_token]
          - provider: amap-location
            purposes:
              functional.service:
                categories: [user.location.precise]
        """

    struct Sandbox {
        let process: ChildProcess
        /// Its stdout, kept open: a closed pipe would end the broker at its next line (SIGPIPE).
        let out: Pipe
        let base: String
        let directory: URL

        func curl(_ arguments: [String]) async throws -> String {
            try await offPool { try sharebrokerTests.curl(["-s"] + arguments).output }
        }

        /// `(status, Content-Type, body)`.
        func get(_ path: String, accept: String? = nil, token: String = "demo-compliance-token") async throws -> (Int, String, String) {
            let marker = "\n--STATUS--"
            var arguments = ["\(base)\(path)", "-H", "Authorization: Bearer \(token)", "-w", "\(marker)%{http_code} %{content_type}"]
            if let accept { arguments += ["-H", "Accept: \(accept)"] }
            let text = try await curl(arguments)
            let parts = text.components(separatedBy: marker)
            let tail = (parts.last ?? "").split(separator: " ", maxSplits: 1).map(String.init)
            return (Int(tail.first ?? "") ?? 0, tail.count > 1 ? tail[1] : "", parts.dropLast().joined(separator: marker))
        }

        func json(_ path: String) async throws -> [String: Any] {
            let (_, _, body) = try await get(path)
            return (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? ["unparsed": body]
        }

        func grant(_ subject: String, _ provider: String, _ purpose: String, _ categories: [String], separate: Bool = false) async throws {
            let list = categories.map { "\"\($0)\"" }.joined(separator: ",")
            let answer = try await curl(["-X", "POST", "\(base)/v1/subjects/\(subject)/grants", "-H", "Authorization: Bearer demo-grants-token",
                                         "-H", "Content-Type: application/json", "--data",
                                         #"{"provider":"\#(provider)","purpose":"\#(purpose)","categories":[\#(list)],"separate_consent":\#(separate),"cross_border_consent":false,"policy_version":"1","evidence":"e"}"#])
            #expect(answer.contains(#""status":"active""#), "\(answer)")
        }

        /// `(status, X-Share-Decision)` of a path-form share.
        func share(_ subject: String, _ method: String, _ path: String, body: String? = nil) async throws -> (Int, String) {
            var arguments = ["-o", "/dev/null", "-w", "%{http_code} %header{x-share-decision}", "-X", method, "\(base)/v1/proxy/\(path)",
                             "-H", "Authorization: Bearer demo-share-token", "-H", "X-Share-Subject: \(subject)"]
            if let body { arguments += ["-H", "Content-Type: application/json", "--data", body] }
            let parts = try await curl(arguments).split(separator: " ").map(String.init)
            return (Int(parts.first ?? "") ?? 0, parts.count > 1 ? parts[1] : "")
        }

        func reload() async throws -> [String: Any] {
            let text = try await curl(["-X", "POST", "\(base)/v1/admin/policy/reload", "-H", "Authorization: Bearer demo-admin-token"])
            return (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? ["unparsed": text]
        }

        func writePublishedList(_ text: String?) throws {
            let url = directory.appendingPathComponent("contracts/published-sharing-list.yaml")
            if let text { try text.write(to: url, atomically: true, encoding: .utf8) } else { try FileManager.default.removeItem(at: url) }
        }

        /// The `sharebroker_published_list_drift` samples, as `provider purpose category kind = value`, sorted.
        func driftSamples() async throws -> [String] {
            let text = try await curl(["\(base)/metrics"])
            return text.split(separator: "\n").filter { $0.hasPrefix("sharebroker_published_list_drift{") }.map { line in
                let labels = line.drop { $0 != "{" }.dropFirst().prefix { $0 != "}" }
                let values = labels.split(separator: ",").map { $0.split(separator: "=", maxSplits: 1).last.map { $0.trimmingCharacters(in: ["\""]) } ?? "" }
                return values.joined(separator: " ") + " = " + (line.split(separator: " ").last.map(String.init) ?? "")
            }.sorted()
        }

        func stop() {
            process.terminate()
            process.waitUntilExit()
        }
    }

    /// A temp folder with a copy of the repository's `adapters/` and `contracts/` (symbolic links when `link`).
    static func policyFolder(link: Bool = false) throws -> URL {
        let root = CheckCommandTests.root
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sb-published-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for folder in ["adapters", "contracts"] {
            let (from, to) = (root.appendingPathComponent(folder), directory.appendingPathComponent(folder))
            if link {
                try FileManager.default.createSymbolicLink(at: to, withDestinationURL: from)
            } else {
                try FileManager.default.copyItem(at: from, to: to)
            }
        }
        return directory
    }

    /// `sharebroker serve --sandbox` in `directory`, once it listens.
    static func sandbox(in directory: URL) async throws -> Sandbox {
        let (process, out) = try CrashRecoveryTests.start(["serve", "--sandbox", "--port", "0"], in: directory,
                                                          environment: ["PATH": "/usr/bin:/bin"])
        let port = try await offPool { try CrashRecoveryTests.port(from: out) }
        return Sandbox(process: process, out: out, base: "http://127.0.0.1:\(port)", directory: directory)
    }

    @Test func thePublishedListShowsWhatWasSentAndItsDriftInTheReportAndInMetrics() async throws {
        let directory = try Self.policyFolder()
        defer { try? FileManager.default.removeItem(at: directory) }
        // The AMap contract's English scenario: text a spreadsheet or a browser must not run.
        let amap = directory.appendingPathComponent("contracts/amap-location.yaml")
        let words = try String(contentsOf: amap, encoding: .utf8)
        let hostile = words.replacingOccurrences(
            of: #"en: "When the user uses nearby stores, address filling or other location features""#,
            with: #"en: "=HYPERLINK(\"https://evil.example\") <script>alert('x')</script> & co""#)
        #expect(hostile != words, "the AMap contract's English scenario is where the test expects it")
        try hostile.write(to: amap, atomically: true, encoding: .utf8)
        try Self.publishedList.write(to: directory.appendingPathComponent("contracts/published-sharing-list.yaml"),
                                     atomically: true, encoding: .utf8)
        let sandbox = try await Self.sandbox(in: directory)
        defer { sandbox.stop() }

        // Before any share: an empty list, nothing to drift.
        let empty = try await sandbox.json("/v1/reports/sharing-list?format=published")
        #expect((empty["entries"] as? [Any])?.isEmpty == true && (empty["drift"] as? [Any])?.isEmpty == true, "\(empty)")
        #expect(try await sandbox.driftSamples().isEmpty)

        // Huawei: the grant covers the push token, not the text (stripped). AMap: precise location and
        // IP address. WeChat: no grant, blocked. Only what was sent may be listed.
        try await sandbox.grant("u-1", "huawei-push", Self.push, ["user.device.push_token"])
        try await sandbox.grant("u-1", "amap-location", Self.location, ["user.location.precise", "user.device.ip_address"], separate: true)
        let pushBody = #"{"message":{"token":["PUSH-TOKEN-1"],"notification":{"title":"Hi Ann","body":"Parcel"}}}"#
        #expect(try await sandbox.share("u-1", "POST", "huawei-push/v1/10086/messages:send", body: pushBody) == (200, "redacted"))
        #expect(try await sandbox.share("u-1", "POST", "huawei-push/v1/10086/messages:send", body: pushBody) == (200, "redacted"))
        #expect(try await sandbox.share("u-1", "GET", "amap-location/v3/geocode/regeo?location=116.481488,39.990464").0 == 200)
        #expect(try await sandbox.share("u-1", "GET", "amap-location/v3/ip?ip=114.247.50.2").0 == 200)
        #expect(try await sandbox.share("u-1", "GET", "wechat-login/sns/oauth2/access_token?code=0a1b2c&grant_type=authorization_code")
                == (403, "blocked"))

        // zh-CN (the default), JSON: exactly the parties, purposes and fields sent, words from the contracts.
        let zh = try await sandbox.json("/v1/reports/sharing-list?format=published")
        #expect(zh["lang"] as? String == "zh-CN" && zh["title"] as? String == "第三方信息共享清单", "\(zh)")
        let entries = zh["entries"] as? [[String: Any]] ?? []
        #expect(entries.map { "\($0["provider"] ?? "") \($0["purpose"] ?? "")" }
                == ["amap-location \(Self.location)", "huawei-push \(Self.push)"], "\(zh)")
        func fields(_ entry: [String: Any]?) -> [String] {
            (entry?["fields"] as? [[String: Any]] ?? []).map { "\($0["category"] ?? "") \($0["label"] ?? "") \($0["shares"] ?? "")" }
        }
        let amapZH = entries.first, huaweiZH = entries.last
        #expect(fields(amapZH) == ["user.device.ip_address IP 地址 1", "user.location.precise 精确位置 1"])
        #expect(fields(huaweiZH) == ["user.device.push_token 设备推送标识 2"], "the stripped notification text is not listed")
        #expect(huaweiZH?["name"] as? String == "华为推送服务（Push Kit）")
        #expect(huaweiZH?["company"] as? String == "华为软件技术有限公司")
        #expect(huaweiZH?["scenario"] as? String == "向华为手机上的 App 推送订单、服务通知")
        #expect(huaweiZH?["purpose_label"] as? String == "向您的设备推送通知")
        #expect(huaweiZH?["sharing_method"] as? String == "server_api" && huaweiZH?["sharing_method_label"] as? String == "服务端接口")
        #expect(huaweiZH?["privacy_policy_url"] as? String == Self.huaweiURL)
        #expect(amapZH?["company"] as? String == "高德软件有限公司" && amapZH?["privacy_policy_url"] as? String == Self.amapURL)
        #expect(!"\(zh)".contains("wechat"), "a blocked share disclosed nothing")
        // Drift: AMap's IP address is not disclosed; the blocked WeChat share and the stripped text are not traffic.
        func drift(_ report: [String: Any]) -> [String] {
            (report["drift"] as? [[String: Any]] ?? []).map {
                "\($0["kind"] ?? "") \($0["provider"] ?? "") \($0["purpose"] ?? "") \($0["category"] ?? "") \($0["shares"] ?? "")"
            }
        }
        #expect(drift(zh) == ["category amap-location \(Self.location) user.device.ip_address 1"], "\(zh)")
        #expect((amapZH?["drift"] as? [[String: Any]])?.map { $0["category"] as? String } == ["user.device.ip_address"])
        #expect((huaweiZH?["drift"] as? [Any])?.isEmpty == true)
        let listed = zh["published_list"] as? [String: Any]
        #expect(listed?["published_at"] as? String == "2025-07-01" && listed?["url"] as? String == "https://www.example.com/privacy/third-parties")
        #expect(try await sandbox.driftSamples() == ["amap-location \(Self.location) user.device.ip_address category = 1.0"])
        let metrics = try await sandbox.curl(["\(sandbox.base)/metrics"])
        #expect(metrics.contains("# HELP sharebroker_published_list_drift ") && metrics.contains("\nsharebroker_published_list_drift_entries 1"), "\(metrics)")
        for secret in ["u-1", "PUSH-TOKEN-1", "116.48", "114.247", "Hi Ann"] { #expect(!metrics.contains(secret), "\(secret) in /metrics") }

        // en, JSON: the same entries in English.
        let en = try await sandbox.json("/v1/reports/sharing-list?format=published&lang=en")
        let enEntries = en["entries"] as? [[String: Any]] ?? []
        #expect(en["title"] as? String == "Third-party information sharing list")
        #expect(fields(enEntries.first) == ["user.device.ip_address IP address 1", "user.location.precise Precise location 1"])
        #expect(enEntries.last?["company"] as? String == "Huawei Software Technologies Co., Ltd.")
        #expect(enEntries.last?["name"] as? String == "Huawei Push Kit" && enEntries.last?["sharing_method_label"] as? String == "Server-side interface")
        #expect(enEntries.last?["purpose_label"] as? String == "Sending notifications to your device")
        #expect(drift(en) == drift(zh))

        // CSV: a header in the language, one row per entry, formula cells neutralised.
        let (csvStatus, csvType, csv) = try await sandbox.get("/v1/reports/sharing-list?format=published&lang=en", accept: "text/csv")
        #expect(csvStatus == 200 && csvType == "text/csv; charset=utf-8")
        let rows = csv.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(rows.count == 3, "\(csv)")
        #expect(rows.first == "\u{FEFF}Third party,Company,Purpose,Scenario,Sharing method,Personal information shared,Privacy policy,provider,purpose_id,categories,drift")
        #expect(rows.last == "Huawei Push Kit,\"Huawei Software Technologies Co., Ltd.\",Sending notifications to your device,"
                + "Sending order and service notifications to the app on Huawei phones,Server-side interface,Push token of your device,"
                + "\(Self.huaweiURL),huawei-push,\(Self.push),user.device.push_token,", "\(csv)")
        #expect(rows[1].contains(#","'=HYPERLINK(""https://evil.example"") <script>alert('x')</script> & co","#), "\(rows[1])")
        #expect(rows[1].hasSuffix(",amap-location,\(Self.location),user.device.ip_address;user.location.precise,category:user.device.ip_address"))
        let (_, _, csvZH) = try await sandbox.get("/v1/reports/sharing-list?format=published", accept: "text/csv")
        #expect(csvZH.hasPrefix("\u{FEFF}第三方名称,第三方主体,共享目的,使用场景,共享方式,共享的个人信息字段,第三方隐私政策链接,provider"), "\(csvZH)")
        #expect(csvZH.contains("华为推送服务（Push Kit）,华为软件技术有限公司,向您的设备推送通知,向华为手机上的 App 推送订单、服务通知,服务端接口,设备推送标识,"))
        #expect(csvZH.contains("高德软件有限公司,基于位置的服务,用户使用附近门店、地址填写等位置功能时,服务端接口,IP 地址、精确位置,"))

        // HTML: everything escaped, the drift in its own section.
        let (htmlStatus, htmlType, html) = try await sandbox.get("/v1/reports/sharing-list?format=published&lang=en",
                                                                 accept: "text/html,application/xhtml+xml,*/*;q=0.8")
        #expect(htmlStatus == 200 && htmlType == "text/html; charset=utf-8")
        #expect(html.hasPrefix("<!doctype html>") && html.contains(#"<html lang="en">"#))
        #expect(!html.contains("<script>") && html.contains("=HYPERLINK(&quot;https://evil.example&quot;) &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"), "\(html)")
        #expect(html.contains("<td>Huawei Push Kit</td><td>Huawei Software Technologies Co., Ltd.</td><td>Sending notifications to your device</td>"))
        #expect(html.contains(#"<a href="\#(Self.huaweiURL)" rel="noopener noreferrer">"#))
        #expect(html.contains(#"<li class="drift" data-kind="category" data-provider="amap-location" data-purpose="functional.service" data-category="user.device.ip_address">"#), "\(html)")
        #expect(html.components(separatedBy: "<li class=\"drift\"").count == 2, "one drift item")
        #expect(!html.contains("wechat") && !html.contains("Notification text"))
        let (_, _, htmlZH) = try await sandbox.get("/v1/reports/sharing-list?format=published", accept: "text/html")
        #expect(htmlZH.contains(#"<html lang="zh-CN">"#) && htmlZH.contains("<h1>第三方信息共享清单</h1>") && htmlZH.contains("<td>高德软件有限公司</td>"))
        #expect(htmlZH.contains("与已公示清单的差异") && htmlZH.contains("未公示的个人信息字段"))

        // The command line gives the same list from the same log.
        let cli = try await offPool {
            try CheckCommandTests.run(["report", "sharing-list", "--published", "--lang", "en", "--csv"], in: directory)
        }
        #expect(cli.status == 0 && cli.output == csv, "\(cli.output)")
        let cliHTML = try await offPool { try CheckCommandTests.run(["report", "sharing-list", "--published", "--html"], in: directory) }
        #expect(cliHTML.status == 0 && cliHTML.output.contains("<td>华为软件技术有限公司</td>") && cliHTML.output.contains("data-kind=\"category\""))
        let cliJSON = try await offPool { try CheckCommandTests.run(["report", "sharing-list", "--published"], in: directory) }
        let parsed = try JSONSerialization.jsonObject(with: Data(cliJSON.output.utf8)) as? [String: Any]
        #expect(drift(parsed ?? [:]) == drift(zh) && (parsed?["entries"] as? [Any])?.count == 2, "\(cliJSON.output)")
        let badCLI = try await offPool { try CheckCommandTests.run(["report", "sharing-list", "--published", "--lang", "fr"], in: directory) }
        #expect(badCLI.status != 0 && badCLI.output.contains("--lang is zh-CN or en"), "\(badCLI.output)")
        let htmlAlone = try await offPool { try CheckCommandTests.run(["report", "sharing-list", "--html"], in: directory) }
        #expect(htmlAlone.status != 0 && htmlAlone.output.contains("go with --published"), "\(htmlAlone.output)")

        // A list that omits Huawei (party) and names AMap only under another purpose (purpose): after a reload,
        // exactly those drift entries, and the category entry of the old list is gone from /metrics.
        try sandbox.writePublishedList("""
            parties:
              - provider: amap-location
                purposes:
                  essential.service.authentication:
                    categories: [user.location.precise, user.device.ip_address]
            """)
        #expect(try await sandbox.reload()["status"] as? String == "installed")
        let second = try await sandbox.json("/v1/reports/sharing-list?format=published")
        #expect(drift(second) == ["purpose amap-location \(Self.location) user.device.ip_address 1",
                                  "purpose amap-location \(Self.location) user.location.precise 1",
                                  "party huawei-push \(Self.push) user.device.push_token 2"], "\(second)")
        #expect(try await sandbox.driftSamples() == [
            "amap-location \(Self.location) user.device.ip_address purpose = 1.0",
            "amap-location \(Self.location) user.location.precise purpose = 1.0",
            "huawei-push \(Self.push) user.device.push_token party = 2.0",
        ])
        let (_, _, secondCSV) = try await sandbox.get("/v1/reports/sharing-list?format=published", accept: "text/csv")
        #expect(secondCSV.contains(",huawei-push,\(Self.push),user.device.push_token,party:user.device.push_token\r\n"), "\(secondCSV)")

        // published_at after today: /metrics counts no traffic from that day on; the report still compares its window.
        try sandbox.writePublishedList("published_at: 2099-01-01\nparties: []\n")
        #expect(try await sandbox.reload()["status"] as? String == "installed")
        #expect(try await sandbox.driftSamples().isEmpty)
        #expect(try await sandbox.curl(["\(sandbox.base)/metrics"]).contains("\nsharebroker_published_list_drift_entries 0"))
        #expect(drift(try await sandbox.json("/v1/reports/sharing-list?format=published")).count == 3)

        // A list naming a provider without an adapter: the reload is refused with the file and line.
        try sandbox.writePublishedList("parties:\n  - provider: acme-push\n    purposes: {}\n")
        let refused = try await sandbox.reload()
        #expect(refused["code"] as? String == "policy_invalid", "\(refused)")
        let errors = refused["errors"] as? [[String: Any]] ?? []
        #expect(errors.contains { ($0["file"] as? String)?.hasSuffix("contracts/published-sharing-list.yaml") == true && $0["line"] as? Int == 2
                && ($0["message"] as? String)?.contains("provider 'acme-push' has no adapter") == true }, "\(refused)")

        // No published list: the report says so, and /metrics has no drift series at all.
        try sandbox.writePublishedList(nil)
        #expect(try await sandbox.reload()["status"] as? String == "installed")
        let none = try await sandbox.json("/v1/reports/sharing-list?format=published&lang=en")
        #expect(none["drift"] is NSNull && none["published_list"] is NSNull, "\(none)")
        #expect((none["published_list_note"] as? String)?.contains("No published list") == true)
        #expect((none["entries"] as? [[String: Any]])?.first?["drift"] is NSNull)
        let noneMetrics = try await sandbox.curl(["\(sandbox.base)/metrics"])
        #expect(!noneMetrics.contains("sharebroker_published_list_drift"), "\(noneMetrics)")
        let (_, _, noneCSV) = try await sandbox.get("/v1/reports/sharing-list?format=published", accept: "text/csv")
        #expect(noneCSV.contains(",user.device.push_token,no published list\r\n"), "\(noneCSV)")
        let (_, _, noneHTML) = try await sandbox.get("/v1/reports/sharing-list?format=published", accept: "text/html")
        #expect(noneHTML.contains("没有已公示的清单") && !noneHTML.contains("<li class=\"drift\""))

        // The traffic list without format is what it was.
        let traffic = try await sandbox.json("/v1/reports/sharing-list")
        #expect(traffic["drift"] as? Int == 0 && traffic["entries"] == nil, "\(traffic)")
        #expect((traffic["rows"] as? [[String: Any]])?.contains {
            $0["category"] as? String == "user.content.notification" && $0["stripped"] as? Int == 2 && $0["sent"] as? Int == 0
        } == true, "\(traffic)")
        let (_, trafficType, trafficCSV) = try await sandbox.get("/v1/reports/sharing-list", accept: "text/csv")
        #expect(trafficType == "text/csv; charset=utf-8" && trafficCSV.hasPrefix("provider,purpose,category,sent,stripped,blocked"))
        let (_, htmlIgnored, _) = try await sandbox.get("/v1/reports/sharing-list", accept: "text/html")
        #expect(htmlIgnored == "application/json", "the traffic list has no HTML form")
    }

    @Test func aBadFormatOrLanguageIsA400() async throws {
        let directory = try Self.policyFolder(link: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let sandbox = try await Self.sandbox(in: directory)
        defer { sandbox.stop() }
        for (query, detail) in [("format=csv", "format is published"), ("format=published&lang=fr", "lang is zh-CN or en"),
                                ("format=published&lang=zh-cn", "lang is zh-CN or en"), ("lang=en", "lang goes with format=published"),
                                ("format=published&format=published", "given twice"), ("format=published&lang=en&lang=zh-CN", "given twice"),
                                ("format=published&language=en", "unknown parameter language"),
                                ("format=published&since=yesterday", "since must be an RFC 3339 time")] {
            let (status, type, body) = try await sandbox.get("/v1/reports/sharing-list?" + query)
            #expect(status == 400 && type == "application/problem+json", "\(query): \(status) \(type)")
            #expect(body.contains(#""code":"invalid_query""#) && body.contains(detail), "\(query): \(body)")
        }
        #expect(try await sandbox.get("/v1/reports/sharing-list?format=published", token: "demo-grants-token").0 == 403)
        #expect(try await sandbox.get("/v1/reports/sharing-list?format=published", token: "nobody").0 == 401)
        // The repository's own published list discloses everything its contracts allow: no drift, and a gauge of 0.
        let report = try await sandbox.json("/v1/reports/sharing-list?format=published")
        #expect((report["drift"] as? [Any])?.isEmpty == true && report["published_list"] is [String: Any], "\(report)")
        #expect(try await sandbox.curl(["\(sandbox.base)/metrics"]).contains("\nsharebroker_published_list_drift_entries 0"))
    }

    /// `check` names a privacy_policy_url that is not an absolute https URL, and a published list that
    /// names a provider without an adapter, each with file and line; missing words are a warning.
    @Test func checkRejectsABadPrivacyPolicyURLAndAnUnknownPartyWithFileAndLine() throws {
        let directory = try Self.policyFolder()
        defer { try? FileManager.default.removeItem(at: directory) }
        let huawei = directory.appendingPathComponent("contracts/huawei-push.yaml")
        let text = try String(contentsOf: huawei, encoding: .utf8)
        let line = (text.components(separatedBy: "\n").firstIndex { $0.hasPrefix("privacy_policy_url:") } ?? -1) + 1
        try text.replacingOccurrences(of: "privacy_policy_url: https://developer.huawei.com", with: "privacy_policy_url: developer.huawei.com")
            .replacingOccurrences(of: "company: {", with: "company: { fr: x,")
            .write(to: huawei, atomically: true, encoding: .utf8)
        let companyLine = (text.components(separatedBy: "\n").firstIndex { $0.hasPrefix("company:") } ?? -1) + 1
        try """
            parties:
              - provider: huawei-push
                purposes:
                  essential.service.notifications.push:
                    categories: [user.device.push_token]
              - provider: acme-push
                purposes: {}
            """.write(to: directory.appendingPathComponent("contracts/published-sharing-list.yaml"), atomically: true, encoding: .utf8)
        let result = try CheckCommandTests.run(["check"], in: directory)
        #expect(result.status == 1)
        let lines = result.output.split(separator: "\n").map(String.init)
        #expect(lines.contains("contracts/huawei-push.yaml:\(line): privacy_policy_url must be an absolute https URL (https://host/path), "
                               + "not 'developer.huawei.com/consumer/cn/doc/development/HMSCore-Guides/sdk-data-security-0000001050042177'"),
                "\(result.output)")
        #expect(lines.contains { $0.hasPrefix("contracts/huawei-push.yaml:\(companyLine): company: unknown key 'fr'") }, "\(result.output)")
        #expect(lines.contains("contracts/published-sharing-list.yaml:6: provider 'acme-push' has no adapter (expected adapters/acme-push.yaml)"),
                "\(result.output)")
        #expect(lines.last == "3 errors", "\(result.output)")

        // A contract without the published list's words still loads (it is in force all the same): check
        // warns, and the published list says "not stated" where the words would be.
        try text.components(separatedBy: "\n").filter { !$0.hasPrefix("privacy_policy_url:") && !$0.hasPrefix("company:") }
            .joined(separator: "\n").write(to: huawei, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(at: directory.appendingPathComponent("contracts/published-sharing-list.yaml"))
        let warned = try CheckCommandTests.run(["check"], in: directory)
        #expect(warned.status == 0, "\(warned.output)")
        #expect(warned.output.contains("contracts/huawei-push.yaml:1: warning: no company, privacy_policy_url: the published sharing list shows 'not stated' for them"),
                "\(warned.output)")
        #expect(warned.output.split(separator: "\n").filter { $0.contains("warning:") }.count == 1, "only that contract: \(warned.output)")
        let seeded = try CheckCommandTests.run(["log", "seed", "--database", "seeded.sqlite", "--records", "300", "--signing-key", "seed.key"],
                                               in: directory)
        #expect(seeded.status == 0, "\(seeded.output)")
        let report = try CheckCommandTests.run(["report", "sharing-list", "--database", "seeded.sqlite", "--published", "--lang", "en"],
                                               in: directory)
        let parsed = try JSONSerialization.jsonObject(with: Data(report.output.utf8)) as? [String: Any]
        let entries = parsed?["entries"] as? [[String: Any]] ?? []
        let huaweiEntry = try #require(entries.first { $0["provider"] as? String == "huawei-push" }, "\(report.output)")
        #expect(huaweiEntry["company"] as? String == "not stated" && huaweiEntry["privacy_policy_url"] is NSNull, "\(huaweiEntry)")
        #expect(huaweiEntry["name"] as? String == "Huawei Push Kit", "the words it does give are shown")
        #expect(entries.contains { $0["provider"] as? String == "amap-location" && $0["company"] as? String == "AutoNavi Software Co., Ltd." })
        #expect(parsed?["drift"] is NSNull, "no published list, no drift")
        let csv = try CheckCommandTests.run(["report", "sharing-list", "--database", "seeded.sqlite", "--published", "--csv"], in: directory)
        #expect(csv.output.contains("\n华为推送服务（Push Kit）,未载明,向您的设备推送通知,"), "\(csv.output)")

        // A published list that leaves out what a contract allows: a warning on that party's line.
        try text.write(to: huawei, atomically: true, encoding: .utf8)
        let repositoryList = try String(contentsOf: CheckCommandTests.root.appendingPathComponent("contracts/published-sharing-list.yaml"),
                                        encoding: .utf8)
        let narrowed = repositoryList.replacingOccurrences(of: "  - provider: huawei-push\n    purposes:\n      essential.service.notifications.push:\n"
                                                               + "        categories: [user.device.push_token, user.content.notification]",
                                                           with: "  - provider: huawei-push\n    purposes:\n      essential.service.notifications.push:\n"
                                                               + "        categories: [user.device.push_token]")
        #expect(narrowed != repositoryList, "the repository's list names Huawei as the test expects")
        try narrowed.write(to: directory.appendingPathComponent("contracts/published-sharing-list.yaml"), atomically: true, encoding: .utf8)
        let huaweiLine = (narrowed.components(separatedBy: "\n").firstIndex { $0 == "  - provider: huawei-push" } ?? -1) + 1
        let gaps = try CheckCommandTests.run(["check"], in: directory)
        #expect(gaps.status == 0 && gaps.output.split(separator: "\n").filter { $0.contains("warning:") } == [
            "contracts/published-sharing-list.yaml:\(huaweiLine): warning: the published list does not disclose user.content.notification "
                + "for huawei-push, essential.service.notifications.push, which its contract allows: sharing it would be drift"], "\(gaps.output)")
    }
}
