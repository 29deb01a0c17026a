import BrokerCore
import BrokerService
import BrokerLogStore
@testable import BrokerSQLite
import Foundation
import Testing

/// The direct writers of the hot path against the generic `CanonicalJSON` value they replace.
@Suite struct CanonicalBytesTests {
    static let awkward = ["", "plain", "q\"uote", "back\\slash", "tab\t nl\n cr\r bs\u{8} ff\u{c}", "\u{0}\u{1}\u{1f}\u{7f}",
                          "é ü 中文 😀", "/slash/", "\"", "\\", "a\"b\\c\"d"]

    @Test func directRecordBytesEqualTheGenericCanonicalForm() {
        var rows: [LogRow] = []
        for (n, text) in Self.awkward.enumerated() {
            var entry = makeEntry(n, decision: n % 3 == 0 ? .blocked : (n % 3 == 1 ? .allowed : .redacted),
                                  grantIDs: n % 2 == 0 ? [] : ["g-\(text)", "g2"], subject: "s-\(text)",
                                  provider: text, fieldCount: n % 4)
            entry.caller = text
            entry.operation = text
            entry.fields = entry.fields.map { var f = $0; f.path = text; f.category = text + "x"; return f }
            if n % 2 == 1, !entry.fields.isEmpty {
                entry.fields[0].action = .minimised
                entry.fields[0].minimisedFrom = text + "precise"
            }
            rows.append(LogRow(entry))
            rows.append(LogRow(entry.fencedByRevocation()))
            rows.append(LogRow(ShareOutcome(shareID: text, time: baseTime.addingTimeInterval(Double(-n) * 1e7),
                                            result: .ok, upstreamStatus: n == 0 ? nil : 200 + n,
                                            latencyMs: n == 1 ? nil : -n, error: n % 2 == 0 ? nil : text)))
        }
        var bare = makeEntry(99, fieldCount: 1)
        bare.operation = nil; bare.purpose = nil; bare.subject = nil; bare.code = nil
        bare.contractVersion = nil; bare.contractHash = nil; bare.adapterHash = nil
        bare.fields = bare.fields.map { var f = $0; f.category = nil; f.fingerprint = nil; f.reason = nil; return f }
        rows.append(LogRow(bare))
        var outcome = ShareOutcome(shareID: "s", time: baseTime, result: .unknown, upstreamStatus: nil, latencyMs: nil, error: nil)
        rows.append(LogRow(outcome))
        outcome.error = "e"
        rows.append(LogRow(outcome))
        for (i, row) in rows.enumerated() {
            for seq: Int64 in [1, 9, 10, 123_456_789, Int64.max] {
                let stream = Self.awkward[i % Self.awkward.count] + "node"
                let bytes = row.canonicalBytes(stream: stream, seq: seq)
                #expect(bytes == row.referenceCanonicalBytes(stream: stream, seq: seq))
                #expect(!String(decoding: bytes, as: UTF8.self).contains(":null"), "a null member is left out")
            }
        }
        let bareText = String(decoding: LogRow(bare).canonicalBytes(stream: "n", seq: 1), as: UTF8.self)
        #expect(bareText.hasPrefix(#"{"caller":"#) && bareText.contains(#""fields":[{"action":"#))
        #expect(String(decoding: LogRow(ShareOutcome(shareID: "s", time: baseTime, result: .unknown, upstreamStatus: nil,
                                                     latencyMs: nil, error: nil)).canonicalBytes(stream: "n", seq: 7), as: UTF8.self)
                == #"{"kind":"outcome","result":"unknown","seq":7,"share_id":"s","stream":"n","time_us":1726000000123456}"#)
    }

    /// Issue 23, item 4: folded entries (`count`, `fingerprints` instead of `fingerprint`) in both
    /// writers alike, canonical for the verifier's scanner, and absent from every unfolded entry.
    @Test func foldedFieldsWriteTheSameBytesBothWays() {
        var rows: [LogRow] = []
        for (n, text) in Self.awkward.enumerated() {
            var entry = makeEntry(n, decision: n % 2 == 0 ? .allowed : .blocked, fieldCount: 3)
            entry.fields[1].path = "message.token[*]"
            entry.fields[1].fingerprint = nil
            entry.fields[1].count = 2 + n * 500
            entry.fields[1].fingerprints = n % 3 == 0 ? nil : (n % 3 == 1 ? [] : ["AAAAAAAA", "b-_9" + text, "zzzzzzzz"])
            if n % 2 == 1 { entry.fields[1].minimisedFrom = text + "precise" }
            // A detector's name, on an entry of its own and on a folded one.
            if n % 3 != 2 { entry.fields[0].detector = "prc_resident_id" }
            if n % 3 == 1 { entry.fields[1].detector = "mainland_mobile_number" + text }
            entry.fields[2].path = LoggedField.undeclaredPath
            entry.fields[2].category = nil
            entry.fields[2].count = 1_990
            rows.append(LogRow(entry))
            rows.append(LogRow(entry.fencedByRevocation()))
        }
        for row in rows {
            let bytes = row.canonicalBytes(stream: "node-1", seq: 42)
            #expect(bytes == row.referenceCanonicalBytes(stream: "node-1", seq: 42))
            // The verifier's fast path takes it (a `\u` escape, from the awkward strings, is left to its general path).
            guard !String(decoding: bytes, as: UTF8.self).contains(#"\u"#) else { continue }
            var scanner = BodyScanner()
            var copy = bytes
            #expect(copy.withUnsafeMutableBufferPointer { scanner.scan(UnsafeBufferPointer($0)) }, "\(String(decoding: bytes, as: UTF8.self))")
        }
        let text = String(decoding: rows[0].canonicalBytes(stream: "node-1", seq: 1), as: UTF8.self)
        #expect(text.contains(#""category":"user.device.push_token","count":2,"location""#))
        #expect(text.contains(#""count":1990,"location":"body","path":"<undeclared>""#))
        #expect(text.components(separatedBy: #""fingerprint":"#).count == 2, "only the unfolded entry has a fingerprint")
        let plain = String(decoding: LogRow(makeEntry(1)).canonicalBytes(stream: "node-1", seq: 1), as: UTF8.self)
        #expect(!plain.contains("count") && !plain.contains("fingerprints"))
    }

    @Test func integersAndStringsMatchSwiftsOwnFormatting() {
        for n: Int64 in [0, 1, -1, 9, 10, -10, 99, 100, 1_726_000_001_123_456, .max, .min, .max - 1, .min + 1] {
            var out: [UInt8] = []
            CanonicalJSON.writeInt(n, to: &out)
            #expect(String(decoding: out, as: UTF8.self) == String(n))
        }
        var out: [UInt8] = []
        CanonicalJSON.writeString("a\u{1f}\u{0}b\"", to: &out)
        #expect(String(decoding: out, as: UTF8.self) == #""a\u001f\u0000b\"""#)
    }

    @Test func categoriesFastPathAgreesWithJSONDecoder() throws {
        for list in [[], ["a"], ["user.device.push_token", "b c", "é"]] {
            let text = String(decoding: CanonicalJSON.array(list.map { .string($0) }).bytes, as: UTF8.self)
            #expect(CanonicalJSON.stringArray(text) == list)
        }
        for text in [#"["a\"b"]"#, #"[ "a"]"#, #"["a",]"#, #"["a"]x"#, "[1]", #"["a""#, "[", ""] {
            #expect(CanonicalJSON.stringArray(text) == nil)
        }
    }

    @Test func theBodyScannerAcceptsOnlyCanonicalJSON() {
        func scan(_ text: String) -> BodyScanner? {
            var scanner = BodyScanner()
            var bytes = Array(text.utf8)
            return bytes.withUnsafeMutableBufferPointer { scanner.scan(UnsafeBufferPointer($0)) } ? scanner : nil
        }
        let good = #"{"a":[1,{"x":null,"y":true}],"kind":"share","seq":3,"stream":"n\"1","subject":null,"time_us":-5}"#
        let scanner = scan(good)
        #expect(scanner != nil)
        #expect(scanner?.values[BodyScanner.Key.kind.rawValue] == .string(37..<42))
        #expect(scanner?.values[BodyScanner.Key.seq.rawValue] == .int(3))
        #expect(scanner?.values[BodyScanner.Key.stream.rawValue] == .other)
        #expect(scanner?.values[BodyScanner.Key.subject.rawValue] == .null)
        #expect(scanner?.values[BodyScanner.Key.timeUs.rawValue] == .int(-5))
        #expect(scanner?.values[BodyScanner.Key.caller.rawValue] == .missing)
        for bad in [#"{"b":1,"a":2}"#, #"{"a":1,"a":2}"#, #"{"a":1} "#, #"{ "a":1}"#, #"{"a":1.5}"#, #"{"a":01}"#,
                    #"{"a":"\u0041"}"#, "{\"a\":\"\u{1}\"}", #"{"a":[1,]}"#, #"{"a":99999999999999999999}"#, #"{"a""#,
                    #"{"a":nul}"#, "", "[]"] {
            #expect(scan(bad) == nil, "\(bad)")
        }
        var scanner2 = BodyScanner()
        var invalid: [UInt8] = Array(#"{"a":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)
        #expect(!invalid.withUnsafeMutableBufferPointer { scanner2.scan(UnsafeBufferPointer($0)) })
    }
}
