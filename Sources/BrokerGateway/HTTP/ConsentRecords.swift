import BrokerCore
import Foundation

/// A subject's grants as consent records with the mandatory information of ISO/IEC TS 27560:2023
/// (issue 27, item 5), one record per grant, in the shape `schemas/consent-record.schema.json` states.
/// The field names are ours; the schema says which element of the standard each one carries.
enum ConsentRecords {
    static let schemaVersion = "sharebroker-consent-record/1"

    /// The records of `grants` (one subject's, any order), oldest first. `privacy` gives the notice's
    /// URL and the controller; without it the notice is the version's id alone and the controller unknown.
    static func render(subject: String, grants: [Grant], bundle: PolicyBundle, homeRegion: String,
                       subjectRegion: String?, at time: Date) -> [[String: Any]] {
        let sorted = grants.sorted { ($0.grantedAt, $0.id) < ($1.grantedAt, $1.id) }
        return sorted.map { grant in
            let contract = bundle.contracts[grant.provider]
            let version = bundle.privacyPolicy?.version(grant.policyVersion)
            let language = version?.urls["en"] != nil ? "en" : version?.urls.keys.sorted().first
            var notice: [String: Any] = ["version": grant.policyVersion]
            if let language, let url = version?.urls[language] { notice["url"] = url; notice["language"] = language }
            let categories = grant.categories ?? contract?.purposes[grant.purpose] ?? []
            let region = contract?.region ?? ""
            var recipient: [String: Any] = ["provider": grant.provider]
            if let company = contract.flatMap({ english($0.company) }) { recipient["company"] = company }
            if let name = contract.flatMap({ english($0.name) }) { recipient["name"] = name }

            // Given; renewed by a later grant for the same provider and purpose; withdrawn or expired.
            var events: [[String: Any]] = [["event": "given", "time": SubjectsController.iso.string(from: grant.grantedAt),
                                            "state": "active", "notice_version": grant.policyVersion]]
            if let renewal = sorted.first(where: { $0.provider == grant.provider && $0.purpose == grant.purpose
                                                   && $0.grantedAt > grant.grantedAt }) {
                events.append(["event": "renewed", "time": SubjectsController.iso.string(from: renewal.grantedAt),
                               "state": "superseded", "notice_version": renewal.policyVersion, "by_record": renewal.id])
            }
            if let revoked = grant.revokedAt {
                events.append(["event": "withdrawn", "time": SubjectsController.iso.string(from: revoked), "state": "withdrawn"])
            } else if let expires = grant.expiresAt, expires <= time {
                events.append(["event": "expired", "time": SubjectsController.iso.string(from: expires), "state": "expired"])
            }
            let state = grant.revokedAt != nil ? "withdrawn" : (grant.isExpired(at: time) ? "expired" : "active")

            var record: [String: Any] = [
                "schema_version": schemaVersion,
                "record_id": grant.id,
                "data_subject": subject,
                "controller": ["name": bundle.privacyPolicy?.controller.name ?? "", "contact": bundle.privacyPolicy?.controller.contact ?? ""],
                "notice": notice,
                "purposes": [grant.purpose],
                "personal_data_categories": categories,
                "sensitive_categories": categories.filter { bundle.taxonomy.categories[$0]?.sensitive == true },
                "recipients": [recipient],
                "storage": ["location": region, "jurisdiction": region, "cross_border": region != (subjectRegion ?? homeRegion)],
                "retention_days": contract?.retentionDays ?? 0,
                "consent": ["separate": grant.separateConsent, "cross_border": grant.crossBorderConsent, "evidence": grant.evidence],
                "withdrawal": ["method": "DELETE /v1/subjects/{id}/grants/{grant_id}, or the privacy centre's revoke (/privacy)",
                               "url": "/privacy"],
                "events": events,
                "state": state,
            ]
            if let expires = grant.expiresAt { record["expires_at"] = SubjectsController.iso.string(from: expires) }
            return record
        }
    }

    /// A label in English, else in the first language by name (the same one every time).
    static func english(_ labels: [String: String]) -> String? {
        labels["en"] ?? labels.min { $0.key < $1.key }?.value
    }
}
