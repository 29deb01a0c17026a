import CCurl
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// libcurl's global state, initialised once per process (thread-safe lazy `let`).
enum CurlGlobal {
    static let initResult: CURLcode = curl_global_init(Int(CURL_GLOBAL_DEFAULT))
}

/// The curl multi handle and the one thread that drives it.
///
/// Invariants:
/// - Every libcurl call on `multi` and on easy handles happens on the curl thread,
///   except `curl_multi_wakeup` (thread-safe by contract), which is only called
///   under `lock` while `multiAlive` is true, so never after `curl_multi_cleanup`.
/// - Other threads talk to the curl thread only through `commands` (under `lock`).
/// - A transfer is in `inFlight` exactly while its easy handle is added to
///   `multi`; the table's strong reference keeps the callbacks' userdata valid.
/// - Each continuation is resumed exactly once, by `finish`, on the curl thread:
///   on completion, failure, cancellation and shutdown alike.
/// - Once `closing` is set no transfer is accepted; the thread cancels all that
///   remain, cleans up and then resumes the `shutdown()` waiters.
final class CurlEngine: @unchecked Sendable {
    enum Command {
        case add(Transfer)
        case cancel(Transfer)
    }

    let options: CurlClientOptions
    let logger: Logger
    private let multi: UnsafeMutableRawPointer
    private let caBundlePath: [CChar]?

    private let lock = Lock()
    // Guarded by `lock`.
    private var commands: [Command] = []
    private var closing = false
    private var multiAlive = true
    private var exited = false
    private var exitWaiters: [CheckedContinuation<Void, Never>] = []

    // Curl thread only.
    private var inFlight: [UnsafeMutableRawPointer: Transfer] = [:]
    private var easyPool: [UnsafeMutableRawPointer] = []
    private static let easyPoolLimit = 64
    private let connectTimeoutMs: Int
    private let totalTimeoutMs: Int

    init(options: CurlClientOptions, logger: Logger) throws(UpstreamError) {
        let global = CurlGlobal.initResult
        guard global == CURLE_OK else {
            throw UpstreamError(code: .internal, message: "curl_global_init failed", curlCode: Int32(global.rawValue))
        }
        guard let multi = curl_multi_init() else {
            throw UpstreamError(code: .internal, message: "curl_multi_init failed")
        }
        self.multi = multi
        self.options = options
        self.logger = logger
        self.caBundlePath = options.caBundlePath.map { Array($0.utf8CString) }
        self.connectTimeoutMs = options.connectTimeout.curlMilliseconds
        self.totalTimeoutMs = options.totalTimeout.curlMilliseconds
        // HTTP/2 multiplexing on shared connections (the default since 7.62; explicit).
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX)
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, max(0, options.maxConnectionsPerHost))
        // The idle-connection cache. Its default follows the number of transfers currently added
        // (4×), which rises and falls with every request, so under load curl closed about one
        // connection in seven and reconnected: keep room for every host's full set instead.
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, max(64, 8 * max(1, options.maxConnectionsPerHost)))
    }

    /// Starts the curl thread. The thread holds a strong reference to the engine
    /// until it exits.
    func start() throws(UpstreamError) {
        let context = Unmanaged.passRetained(self).toOpaque()
        #if canImport(Darwin)
        var thread: pthread_t?
        #else
        var thread = pthread_t()
        #endif
        let rc = pthread_create(&thread, nil, { context in
            #if canImport(Darwin)
            let engine = Unmanaged<CurlEngine>.fromOpaque(context).takeRetainedValue()
            #else
            let engine = Unmanaged<CurlEngine>.fromOpaque(context!).takeRetainedValue()
            #endif
            engine.run()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<CurlEngine>.fromOpaque(context).release()
            curl_multi_cleanup(multi)
            lock.withLock { multiAlive = false; closing = true; exited = true }
            throw UpstreamError(code: .internal, message: "could not start the curl thread (pthread_create \(rc))")
        }
        #if canImport(Darwin)
        pthread_detach(thread!)
        #else
        pthread_detach(thread)
        #endif
    }

    // MARK: Any thread

    /// Queues `transfer`. Returns false (and queues nothing) once closing.
    func submit(_ transfer: Transfer) -> Bool {
        lock.withLock {
            if closing { return false }
            enqueueLocked(.add(transfer))
            return true
        }
    }

    /// Asks the curl thread to abort `transfer` with `.cancelled`. Safe to call at
    /// any point, also before `submit` or after completion (then it does nothing).
    func cancel(_ transfer: Transfer) {
        lock.withLock {
            transfer.cancelRequested = true
            if !closing { enqueueLocked(.cancel(transfer)) }
        }
    }

    /// Tells the curl thread to stop; does not wait.
    func close() {
        lock.withLock {
            guard !closing else { return }
            closing = true
            if multiAlive { _ = curl_multi_wakeup(multi) }
        }
    }

    /// Returns when the curl thread has finished every transfer and exited.
    func waitForExit() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = lock.withLock {
                if exited { return true }
                exitWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    private func enqueueLocked(_ command: Command) {
        let wasEmpty = commands.isEmpty
        commands.append(command)
        // A non-empty queue means a wake-up is already pending since the last drain.
        if wasEmpty && multiAlive { _ = curl_multi_wakeup(multi) }
    }

    // MARK: Curl thread

    private func run() {
        ccurl_name_current_thread("curl-upstream")   // visible in top -H, perf, gdb
        logger.debug("curl thread started", metadata: ["curl.version": "\(String(cString: curl_version()))"])
        var batch: [Command] = []
        var running: Int32 = 0
        while true {
            let stop: Bool = lock.withLock {
                swap(&batch, &commands)
                return closing
            }
            for command in batch {
                switch command {
                case .add(let transfer): begin(transfer)
                case .cancel(let transfer): abort(transfer, reason: "cancelled")
                }
            }
            batch.removeAll(keepingCapacity: true)
            if stop { break }

            let performed = curl_multi_perform(multi, &running)
            if performed != CURLM_OK {
                logger.error("curl_multi_perform failed", metadata: ["curl.multi_code": "\(performed.rawValue)"])
            }
            collectFinished()
            let polled = curl_multi_poll(multi, nil, 0, 1000, nil)
            if polled != CURLM_OK {
                logger.error("curl_multi_poll failed", metadata: ["curl.multi_code": "\(polled.rawValue)"])
                usleep(10_000)   // never spin
            }
        }

        // Shutdown: everything still in flight or queued ends with .cancelled.
        for transfer in Array(inFlight.values) {
            abort(transfer, reason: "client shut down")
        }
        let late: [Command] = lock.withLock {
            multiAlive = false
            defer { commands.removeAll() }
            return commands
        }
        for case .add(let transfer) in late {
            finish(transfer, .failure(cancelledError(transfer, reason: "client shut down")))
        }
        for easy in easyPool { curl_easy_cleanup(easy) }
        easyPool.removeAll()
        curl_multi_cleanup(multi)
        logger.debug("curl thread stopped")

        let waiters: [CheckedContinuation<Void, Never>] = lock.withLock {
            exited = true
            defer { exitWaiters.removeAll() }
            return exitWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    private func begin(_ transfer: Transfer) {
        if lock.withLock({ transfer.cancelRequested }) {
            finish(transfer, .failure(cancelledError(transfer, reason: "cancelled")))
            return
        }
        guard let easy = easyPool.popLast() ?? curl_easy_init() else {
            finish(transfer, .failure(UpstreamError(code: .internal, message: "curl_easy_init failed")))
            return
        }
        transfer.easy = easy
        let configured = configure(easy, for: transfer)
        guard configured == CURLE_OK else {
            finish(transfer, .failure(UpstreamError(
                code: .internal,
                message: "\(transfer.method) \(transfer.host): could not configure transfer: \(Self.describe(configured))",
                curlCode: Int32(configured.rawValue))))
            return
        }
        let added = curl_multi_add_handle(multi, easy)
        guard added == CURLM_OK else {
            finish(transfer, .failure(UpstreamError(
                code: .internal, message: "\(transfer.method) \(transfer.host): curl_multi_add_handle failed (\(added.rawValue))")))
            return
        }
        inFlight[easy] = transfer
    }

    /// Sets every option of one transfer; returns the first failure.
    private func configure(_ easy: UnsafeMutableRawPointer, for transfer: Transfer) -> CURLcode {
        var result = CURLE_OK
        func check(_ rc: CURLcode) { if result == CURLE_OK && rc != CURLE_OK { result = rc } }
        func long(_ option: CURLoption, _ value: Int) { check(ccurl_easy_setopt_long(easy, option, value)) }
        func string(_ option: CURLoption, _ value: String) { check(ccurl_easy_setopt_string(easy, option, value)) }
        let me = Unmanaged.passUnretained(transfer).toOpaque()

        long(CURLOPT_NOSIGNAL, 1)
        check(ccurl_easy_setopt_curlu(easy, transfer.url))
        string(CURLOPT_PROTOCOLS_STR, "http,https")
        string(CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        long(CURLOPT_FOLLOWLOCATION, 0)
        string(CURLOPT_PROXY, "")                 // ignore HTTP_PROXY & co: never loop into ourselves
        long(CURLOPT_HTTP_VERSION, transfer.httpVersion)
        // HTTP/2 with prior knowledge (cleartext) only ever reaches loopback test servers (the
        // simulators); Debian 12's libcurl 7.88 fails a second stream on such a reused connection
        // ("Error in the HTTP2 framing layer"), so each of those requests gets a connection of its own.
        if transfer.httpVersion == Int(CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE) { long(CURLOPT_FORBID_REUSE, 1) }
        long(CURLOPT_PIPEWAIT, 1)                 // prefer multiplexing over a new connection
        long(CURLOPT_CONNECTTIMEOUT_MS, connectTimeoutMs)
        long(CURLOPT_TIMEOUT_MS, totalTimeoutMs)
        long(CURLOPT_SSL_VERIFYPEER, 1)
        long(CURLOPT_SSL_VERIFYHOST, 2)
        if let caBundlePath {
            check(caBundlePath.withUnsafeBufferPointer { ccurl_easy_setopt_string(easy, CURLOPT_CAINFO, $0.baseAddress) })
        }
        long(CURLOPT_TCP_KEEPALIVE, 1)

        switch transfer.method {
        case "GET" where !transfer.sendsBody:
            long(CURLOPT_HTTPGET, 1)
        case "HEAD" where !transfer.sendsBody:
            long(CURLOPT_NOBODY, 1)
        default:
            string(CURLOPT_CUSTOMREQUEST, transfer.method)
        }
        if transfer.sendsBody {
            check(ccurl_easy_setopt_off_t(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(transfer.body.count)))
            check(transfer.body.withUnsafeBytes { bytes in
                // COPYPOSTFIELDS copies POSTFIELDSIZE bytes; an empty body still needs a valid pointer.
                ccurl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS,
                                          UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(("" as StaticString).utf8Start)))
            })
        }
        check(ccurl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, transfer.headerList))

        check(ccurl_easy_setopt_write_function(easy, CURLOPT_HEADERFUNCTION, curlHeaderCallback))
        check(ccurl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, me))
        check(ccurl_easy_setopt_write_function(easy, CURLOPT_WRITEFUNCTION, curlWriteCallback))
        check(ccurl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, me))
        if options.verbose {
            check(ccurl_easy_setopt_debug_function(easy, curlDebugCallback))
            check(ccurl_easy_setopt_pointer(easy, CURLOPT_DEBUGDATA, me))
            long(CURLOPT_VERBOSE, 1)
        }
        return result
    }

    private func collectFinished() {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(multi, &remaining) {
            guard ccurl_msg_kind(message) == CURLMSG_DONE, let easy = ccurl_msg_easy_handle(message) else { continue }
            let code = ccurl_msg_result(message)   // read before remove_handle invalidates the message
            guard let transfer = inFlight.removeValue(forKey: easy) else {
                _ = curl_multi_remove_handle(multi, easy)
                continue
            }
            _ = curl_multi_remove_handle(multi, easy)
            if code == CURLE_OK {
                finish(transfer, .success(response(of: transfer, easy: easy)))
            } else {
                finish(transfer, .failure(error(for: code, transfer: transfer)))
            }
        }
    }

    /// Removes a running transfer and resumes it with `.cancelled`. Does nothing
    /// if the transfer is not (or no longer) in flight.
    private func abort(_ transfer: Transfer, reason: String) {
        guard let easy = transfer.easy, inFlight[easy] === transfer else { return }
        inFlight[easy] = nil
        _ = curl_multi_remove_handle(multi, easy)
        finish(transfer, .failure(cancelledError(transfer, reason: reason)))
    }

    private func response(of transfer: Transfer, easy: UnsafeMutableRawPointer) -> UpstreamResponse {
        var status = 0, version = 0, connects = 0
        var total: curl_off_t = 0, connect: curl_off_t = 0
        _ = ccurl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        _ = ccurl_easy_getinfo_long(easy, CURLINFO_HTTP_VERSION, &version)
        _ = ccurl_easy_getinfo_long(easy, CURLINFO_NUM_CONNECTS, &connects)
        _ = ccurl_easy_getinfo_off_t(easy, CURLINFO_TOTAL_TIME_T, &total)
        _ = ccurl_easy_getinfo_off_t(easy, CURLINFO_CONNECT_TIME_T, &connect)
        let httpVersion: UpstreamHTTPVersion
        switch version {
        case CURL_HTTP_VERSION_1_0: httpVersion = .http1_0
        case CURL_HTTP_VERSION_1_1: httpVersion = .http1_1
        case CURL_HTTP_VERSION_2_0: httpVersion = .http2
        case CURL_HTTP_VERSION_3: httpVersion = .http3
        default: httpVersion = .unknown
        }
        let body = transfer.responseBody
        let headers = transfer.responseHeaders
        transfer.responseBody = []
        transfer.responseHeaders = []
        return UpstreamResponse(
            status: status, headers: headers, body: body, httpVersion: httpVersion,
            timings: UpstreamTimings(total: Double(total) / 1e6, connect: Double(connect) / 1e6,
                                     newConnections: connects))
    }

    private func error(for code: CURLcode, transfer: Transfer) -> UpstreamError {
        let prefix = "\(transfer.method) \(transfer.host)"
        let curlCode = Int32(code.rawValue)
        if transfer.tooLarge {
            return UpstreamError(code: .responseTooLarge,
                                 message: "\(prefix): response body exceeds \(options.maxResponseBytes) bytes",
                                 curlCode: curlCode)
        }
        return UpstreamError(code: Self.classify(code), message: "\(prefix): \(Self.describe(code))", curlCode: curlCode)
    }

    /// Maps a libcurl result to the broker's error codes.
    static func classify(_ code: CURLcode) -> UpstreamError.Code {
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return .timeout
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT,
             CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE,
             CURLE_WEIRD_SERVER_REPLY, CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_HTTP3,
             CURLE_QUIC_CONNECT_ERROR, CURLE_UNSUPPORTED_PROTOCOL, CURLE_BAD_CONTENT_ENCODING,
             CURLE_TOO_MANY_REDIRECTS, CURLE_HTTP_RETURNED_ERROR:
            // UNSUPPORTED_PROTOCOL after our scheme check means an HTTP/0.9 or garbage reply.
            return .unreachable
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
             CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ISSUER_ERROR,
             CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_SHUTDOWN_FAILED,
             CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_ENGINE_INITFAILED,
             CURLE_SSL_CLIENTCERT, CURLE_USE_SSL_FAILED:
            return .tls
        case CURLE_URL_MALFORMAT:
            return .invalidRequest
        default:
            return .internal
        }
    }

    /// libcurl's generic, static description of a code: no request data in it.
    static func describe(_ code: CURLcode) -> String {
        String(cString: curl_easy_strerror(code))
    }

    private func cancelledError(_ transfer: Transfer, reason: String) -> UpstreamError {
        UpstreamError(code: .cancelled, message: "\(transfer.method) \(transfer.host): \(reason)")
    }

    /// Recycles the easy handle, logs, and resumes the continuation (exactly once).
    private func finish(_ transfer: Transfer, _ result: Result<UpstreamResponse, UpstreamError>) {
        if let easy = transfer.easy {
            transfer.easy = nil
            if easyPool.count < Self.easyPoolLimit {
                curl_easy_reset(easy)   // drops every option, incl. pointers into `transfer`
                easyPool.append(easy)
            } else {
                curl_easy_cleanup(easy)
            }
        }
        var metadata: Logger.Metadata = [
            "upstream.method": "\(transfer.method)",
            "upstream.host": "\(transfer.host)",
        ]
        switch result {
        case .success(let response):
            metadata["upstream.status"] = "\(response.status)"
            metadata["upstream.duration_ms"] = "\(Int(response.timings.total * 1000))"
            metadata["upstream.response_bytes"] = "\(response.body.count)"
            transfer.logger.debug("upstream response", metadata: metadata)
        case .failure(let error):
            metadata["upstream.error"] = "\(error.code.rawValue)"
            metadata["curl.code"] = "\(error.curlCode)"
            if error.code == .cancelled {
                transfer.logger.debug("upstream transfer cancelled", metadata: metadata)
            } else {
                transfer.logger.warning("upstream transfer failed", metadata: metadata)
            }
        }
        guard let continuation = transfer.continuation else {
            assertionFailure("transfer finished twice or without a continuation")
            return
        }
        transfer.continuation = nil
        continuation.resume(returning: result)
    }
}
