import CCurl
import Logging

/// One request on its way through the curl thread, from `send` to the resumption
/// of its continuation.
///
/// Ownership and threading: the immutable part (method, host, parsed URL, header
/// list, body) is built by `prepare` on the caller's task and never changes. The
/// mutable part (`easy`, response accumulation) is touched only by the curl
/// thread, after the transfer was handed over through the engine's locked queue
/// (which orders the accesses). `cancelRequested` and `continuation` are read and
/// written only under the engine's lock or on the curl thread as documented
/// there. The engine's `inFlight` table keeps a strong reference for as long as
/// libcurl holds the easy handle, so the `Unmanaged` userdata pointers handed to
/// libcurl's callbacks are always valid.
final class Transfer: @unchecked Sendable {
    let method: String
    /// Host only (no path or query: those may hold personal data); used in logs
    /// and error messages.
    let host: String
    let body: [UInt8]
    /// The `CURLOPT_HTTP_VERSION` to ask for.
    let httpVersion: Int
    let maxResponseBytes: Int
    let logger: Logger
    /// Parsed URL handed to libcurl with CURLOPT_CURLU (freed in deinit).
    let url: OpaquePointer
    /// Request header list (freed in deinit).
    let headerList: UnsafeMutablePointer<curl_slist>?

    // Guarded by the engine's lock.
    var cancelRequested = false
    // Set before hand-over; resumed (and cleared) exactly once on the curl thread.
    var continuation: CheckedContinuation<Result<UpstreamResponse, UpstreamError>, Never>?

    // Curl thread only.
    var easy: UnsafeMutableRawPointer?
    var responseHeaders: [HTTPHeaderLine] = []
    var responseBody: [UInt8] = []
    var tooLarge = false

    private init(method: String, host: String, body: [UInt8], httpVersion: Int, maxResponseBytes: Int, logger: Logger,
                 url: OpaquePointer, headerList: UnsafeMutablePointer<curl_slist>?) {
        self.method = method
        self.host = host
        self.body = body
        self.httpVersion = httpVersion
        self.maxResponseBytes = maxResponseBytes
        self.logger = logger
        self.url = url
        self.headerList = headerList
    }

    deinit {
        curl_url_cleanup(url)
        if let headerList { curl_slist_free_all(headerList) }
    }

    /// Whether a request body is sent (with Content-Length) at all.
    var sendsBody: Bool {
        !body.isEmpty || method == "POST" || method == "PUT" || method == "PATCH"
    }

    // MARK: Validation and preparation (caller's task)

    /// Validates `request` and builds the libcurl-ready parts. Never puts the URL,
    /// header values or body into an error message.
    static func prepare(_ request: UpstreamRequest, maxResponseBytes: Int,
                        logger: Logger) throws(UpstreamError) -> Transfer {
        guard isToken(request.method) else {
            throw UpstreamError(code: .invalidRequest, message: "method is not a valid HTTP token")
        }
        guard let url = curl_url() else {
            throw UpstreamError(code: .internal, message: "curl_url() failed (out of memory)")
        }
        var handedOver = false
        defer { if !handedOver { curl_url_cleanup(url) } }

        let rc = curl_url_set(url, CURLUPART_URL, request.url, 0)
        guard rc == CURLUE_OK else {
            throw UpstreamError(code: .invalidRequest,
                                message: "\(request.method): malformed URL (\(String(cString: curl_url_strerror(rc))))")
        }
        let scheme = urlPart(url, CURLUPART_SCHEME)?.lowercased()
        guard scheme == "http" || scheme == "https" else {
            throw UpstreamError(code: .invalidRequest, message: "\(request.method): only http and https URLs are allowed")
        }
        guard let host = urlPart(url, CURLUPART_HOST), !host.isEmpty else {
            throw UpstreamError(code: .invalidRequest, message: "\(request.method): URL has no host")
        }

        var list: UnsafeMutablePointer<curl_slist>?
        var ok = true
        func append(_ line: String) {
            guard ok else { return }
            if let next = curl_slist_append(list, line) { list = next } else { ok = false }
        }
        var given = Set<String>()
        for header in request.headers {
            guard isToken(header.name) else {
                curl_slist_free_all(list)
                throw UpstreamError(code: .invalidRequest, message: "\(request.method) \(host): invalid header name")
            }
            guard !header.value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }) else {
                curl_slist_free_all(list)
                throw UpstreamError(code: .invalidRequest,
                                    message: "\(request.method) \(host): header \(header.name) has CR, LF or NUL in its value")
            }
            let lower = header.name.lowercased()
            // Framing is ours: curl computes Content-Length from the body.
            if lower == "content-length" || lower == "transfer-encoding" { continue }
            given.insert(lower)
            let value = trimmed(header.value)
            // "Name:" would tell curl to remove a header; "Name;" sends it empty.
            append(value.isEmpty ? "\(header.name);" : "\(header.name): \(value)")
        }
        // Suppress curl's defaults so that exactly the given headers go out.
        if !given.contains("expect") { append("Expect:") }
        if !given.contains("accept") { append("Accept:") }
        if !given.contains("content-type") { append("Content-Type:") }
        guard ok else {
            curl_slist_free_all(list)
            throw UpstreamError(code: .internal, message: "curl_slist_append failed (out of memory)")
        }
        handedOver = true
        let version = !request.http2Only ? CURL_HTTP_VERSION_2TLS : scheme == "https" ? CURL_HTTP_VERSION_2_0 : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
        return Transfer(method: request.method, host: host, body: request.body, httpVersion: version,
                        maxResponseBytes: maxResponseBytes, logger: logger, url: url, headerList: list)
    }

    private static func urlPart(_ url: OpaquePointer, _ part: CURLUPart) -> String? {
        var value: UnsafeMutablePointer<CChar>?
        guard curl_url_get(url, part, &value, 0) == CURLUE_OK, let value else { return nil }
        defer { curl_free(value) }
        return String(cString: value)
    }

    /// RFC 9110 token: 1*tchar.
    static func isToken(_ s: String) -> Bool {
        guard !s.isEmpty else { return false }
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "A")...UInt8(ascii: "Z"):
                continue
            case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
                 UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
                continue
            default:
                return false
            }
        }
        return true
    }

    private static func trimmed(_ s: String) -> String {
        String(Substring(trimmed(Substring(s).utf8)))
    }

    /// `bytes` without the spaces and tabs at either end.
    private static func trimmed<Bytes: BidirectionalCollection>(_ bytes: Bytes) -> Bytes.SubSequence where Bytes.Element == UInt8 {
        var bytes = bytes[...]
        while let f = bytes.first, f == 0x20 || f == 0x09 { bytes = bytes.dropFirst() }
        while let l = bytes.last, l == 0x20 || l == 0x09 { bytes = bytes.dropLast() }
        return bytes
    }

    // MARK: Callbacks (curl thread)

    /// Header callback body: one complete header line per call, CRLF included.
    func receiveHeaderLine(_ line: UnsafeRawBufferPointer) -> Int {
        var bytes = line[...]
        while let l = bytes.last, l == 0x0D || l == 0x0A { bytes = bytes.dropLast() }
        if bytes.isEmpty { return line.count }           // end of a header block
        if bytes.starts(with: "HTTP/".utf8) {
            // A new status line: an earlier block was a 1xx response; keep only the final one.
            responseHeaders.removeAll(keepingCapacity: true)
            return line.count
        }
        if let first = bytes.first, first == 0x20 || first == 0x09 {
            // obs-fold continuation of the previous field (HTTP/1.x only).
            if !responseHeaders.isEmpty {
                let extra = String(decoding: Transfer.trimmed(bytes), as: UTF8.self)
                responseHeaders[responseHeaders.count - 1].value += " " + extra
            }
            return line.count
        }
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return line.count }
        let name = String(decoding: bytes[bytes.startIndex..<colon], as: UTF8.self)
        // Trimmed on the bytes: one string per value, not a decoded copy and then a trimmed one.
        let value = String(decoding: Transfer.trimmed(bytes[(colon + 1)...]), as: UTF8.self)
        if method != "HEAD", name.utf8.count == 14, name.lowercased() == "content-length",
           let announced = Int(value) {
            if announced > maxResponseBytes {
                tooLarge = true
                return 0                                  // abort: CURLE_WRITE_ERROR
            }
            responseBody.reserveCapacity(announced)
        }
        responseHeaders.append(HTTPHeaderLine(name, value))
        return line.count
    }

    /// Write callback body: a chunk of the response body.
    func receiveBody(_ chunk: UnsafeRawBufferPointer) -> Int {
        if responseBody.count + chunk.count > maxResponseBytes {
            tooLarge = true
            return 0                                      // abort: CURLE_WRITE_ERROR
        }
        responseBody.append(contentsOf: chunk)
        return chunk.count
    }
}

// C callbacks. userdata is `Unmanaged<Transfer>.passUnretained(transfer)`; the
// engine's in-flight table keeps the transfer alive while libcurl may call these.

let curlHeaderCallback: curl_write_callback = { buffer, size, count, userdata in
    guard let userdata else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata).takeUnretainedValue()
    return transfer.receiveHeaderLine(UnsafeRawBufferPointer(start: buffer, count: size * count))
}

let curlWriteCallback: curl_write_callback = { buffer, size, count, userdata in
    guard let userdata else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata).takeUnretainedValue()
    return transfer.receiveBody(UnsafeRawBufferPointer(start: buffer, count: size * count))
}

/// Verbose mode: forwards libcurl's informational text only — never header or
/// data dumps, which hold URLs, credentials and personal data.
let curlDebugCallback: curl_debug_callback = { _, type, text, size, userdata in
    guard type == CURLINFO_TEXT, let userdata, let text else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata).takeUnretainedValue()
    var message = String(decoding: UnsafeRawBufferPointer(start: text, count: size), as: UTF8.self)
    while message.last == "\n" || message.last == "\r" { message.removeLast() }
    // A few informational lines quote the full URL (e.g. a retry on a dead reused
    // connection); its query may hold personal data.
    if message.contains("://") { message = "<line withheld: contains a URL>" }
    transfer.logger.trace("curl: \(message)", metadata: ["upstream.host": "\(transfer.host)"])
    return 0
}
