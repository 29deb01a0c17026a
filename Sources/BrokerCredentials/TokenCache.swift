import Foundation

/// A token obtained from a provider (or minted locally) and when to replace it.
struct IssuedToken: Sendable {
    var value: String
    /// From this instant on, the next request fetches a new token.
    var refreshAt: Date
}

/// One cached token with single-flight refresh.
///
/// While a token is fresh (`now < refreshAt`) every caller gets it without I/O.
/// When it is due, the first caller starts one fetch; every caller arriving while
/// that fetch runs awaits the same fetch, so N concurrent requests cause one
/// token request. A failed fetch is returned to all its waiters and not cached:
/// the next caller starts a new one. The fetch runs in its own task, so a waiter
/// that is cancelled does not cancel it for the others.
actor TokenCache {
    typealias Fetch = @Sendable () async -> Result<IssuedToken, CredentialError>

    private var current: IssuedToken?
    private var inFlight: Task<Result<IssuedToken, CredentialError>, Never>?

    func token(now: Date, fetch: @escaping Fetch) async throws(CredentialError) -> String {
        if let current, now < current.refreshAt { return current.value }
        let task: Task<Result<IssuedToken, CredentialError>, Never>
        if let inFlight {
            task = inFlight
        } else {
            task = Task { await fetch() }
            inFlight = task
        }
        let result = await task.value
        // The first waiter to resume publishes the result; later ones find it done.
        if inFlight == task {
            inFlight = nil
            if case .success(let token) = result { current = token }
        }
        return try result.get().value
    }

    /// Drops the cached token; a fetch already running still completes and is kept
    /// (it is newer than the token being forgotten).
    func invalidate() {
        current = nil
    }
}
