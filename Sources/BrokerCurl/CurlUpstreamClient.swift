import CCurl
import Logging

/// The broker's outbound HTTP client: libcurl's multi interface driven by one
/// dedicated thread.
///
/// Why: one multi handle gives a shared connection cache (keep-alive, HTTP/2
/// multiplexing over TLS) for every provider call, and the blocking parts of
/// libcurl (poll, TLS, DNS hand-off) stay off NIO's event loops and off the Swift
/// concurrency pool. Callers `await send(_:)`; the request is handed to the curl
/// thread through a locked queue plus `curl_multi_wakeup`, and the awaiting task
/// is resumed when libcurl reports the transfer done.
///
/// Guarantees:
/// - Every `send` returns exactly once: with the response, or with an
///   `UpstreamError` on failure, timeout, cancellation of the awaiting task
///   (`.cancelled`, the transfer is aborted at once) or `shutdown()` (`.cancelled`).
/// - Redirects are never followed; TLS peer and host verification are always on;
///   only `http`/`https` URLs are accepted; proxy environment variables are ignored.
/// - Logs carry the method and host (`upstream.host`, `upstream.status`,
///   `curl.code`), never paths, query strings, header values or bodies.
///
/// Call `shutdown()` before dropping the client; dropping it without shutdown also
/// stops the thread (in-flight transfers end with `.cancelled`) but does not wait.
public final class CurlUpstreamClient: Sendable {
    private let engine: CurlEngine
    /// Options the client was created with.
    public var options: CurlClientOptions { engine.options }

    /// Creates the multi handle and starts the curl thread.
    /// - Throws: `UpstreamError` with code `.internal` if libcurl cannot be
    ///   initialised or the thread cannot be started.
    public init(options: CurlClientOptions = CurlClientOptions(), logger: Logger) throws(UpstreamError) {
        let engine = try CurlEngine(options: options, logger: logger)
        try engine.start()
        self.engine = engine
    }

    deinit {
        engine.close()
    }

    /// Sends `request` and returns the complete response (any status, 3xx included).
    ///
    /// - Parameter logger: per-request logger (e.g. carrying a request id); the
    ///   client's logger when nil.
    /// - Throws: `UpstreamError`: `.invalidRequest` before anything is sent,
    ///   `.unreachable`, `.timeout`, `.tls`, `.responseTooLarge`, `.cancelled`, `.internal`.
    public func send(_ request: UpstreamRequest, logger: Logger? = nil) async throws(UpstreamError) -> UpstreamResponse {
        let transfer = try Transfer.prepare(request, maxResponseBytes: engine.options.maxResponseBytes,
                                            logger: logger ?? engine.logger)
        let engine = self.engine
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<UpstreamResponse, UpstreamError>, Never>) in
                transfer.continuation = continuation
                if !engine.submit(transfer) {
                    transfer.continuation = nil
                    continuation.resume(returning: .failure(UpstreamError(
                        code: .cancelled, message: "\(transfer.method) \(transfer.host): client is shut down")))
                }
            }
        } onCancel: {
            engine.cancel(transfer)
        }
        return try result.get()
    }

    /// Stops accepting requests, ends every queued or in-flight transfer with
    /// `.cancelled`, and returns once the curl thread has cleaned up and exited.
    /// Idempotent; later `send` calls fail with `.cancelled`.
    public func shutdown() async {
        engine.close()
        await engine.waitForExit()
    }
}
