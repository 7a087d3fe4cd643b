internal import CLibCurl
import Dispatch
import Foundation
import ProvisionBasics
import Synchronization

private let curlInitialised: Bool = provision_curl_global_init() == CURLE_OK

/// Performs single HTTP requests with libcurl's easy interface.
///
/// curl_easy_perform blocks, so every transfer runs on this client's own dispatch queue, never on Swift's cooperative
/// pool. TLS peers are always verified: against `caFile` when one is given, else against the system's trust store.
/// Redirects are not followed and curl never prints anything.
public final class HTTPClient: Sendable {
    public struct Configuration: Sendable {
        /// Time allowed to connect, TLS handshake included.
        public var connectTimeout: Duration
        /// Time allowed for the whole request, connecting included.
        public var timeout: Duration
        /// A PEM file of the certificate authorities to trust instead of the system's.
        public var caFile: String?
        /// Responses with a longer body are refused rather than held in memory.
        public var maximumResponseSize: Int
        public var userAgent: String

        public init(connectTimeout: Duration = .seconds(10), timeout: Duration = .seconds(60), caFile: String? = nil,
                    maximumResponseSize: Int = 32 << 20, userAgent: String = "provision") {
            self.connectTimeout = connectTimeout
            self.timeout = timeout
            self.caFile = caFile
            self.maximumResponseSize = maximumResponseSize
            self.userAgent = userAgent
        }
    }

    public let configuration: Configuration
    private let queue = DispatchQueue(label: "provision.http", attributes: .concurrent)
    /// Finished handles kept for the next request: they keep their connections open, so pages reuse them.
    private let idleHandles = Mutex<[EasyHandle]>([])
    private static let idleLimit = 4

    public init(configuration: Configuration = Configuration()) {
        precondition(curlInitialised, "curl_global_init failed")
        self.configuration = configuration
    }

    deinit {
        for handle in idleHandles.withLock({ $0 }) { curl_easy_cleanup(handle.curl) }
    }

    /// Sends `request` and returns the response, whatever its status. Cancelling the calling task aborts the transfer
    /// (curl checks about once a second) and throws CancellationError.
    public func perform(_ request: HTTPRequest) async throws -> HTTPResponse {
        let control = TransferControl()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                queue.async {
                    continuation.resume(with: Result { try self.transfer(request, control: control) })
                }
            }
        } onCancel: {
            control.cancel()
        }
    }

    // MARK: The transfer, on the queue

    private func transfer(_ request: HTTPRequest, control: TransferControl) throws -> HTTPResponse {
        if control.isCancelled { throw CancellationError() }
        let shown = request.url.displayedWithoutSecrets
        func failure(_ kind: HTTPClientError.Kind, _ message: String, sent: Bool = false) -> HTTPClientError {
            HTTPClientError(kind, method: request.method, url: shown, message: message, requestMayHaveBeenSent: sent)
        }
        for field in request.headers where (field.name + field.value).contains(where: \.isNewline) {
            throw failure(.invalidRequest, "the header \(field.name) holds a line break")
        }
        guard let handle = takeHandle() else { throw failure(.other, "curl_easy_init failed") }
        defer { putBack(handle) }
        let curl = handle.curl

        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        // "Expect:" stops curl from waiting for a 100 Continue before larger bodies.
        for line in request.headers.map({ "\($0.name): \($0.value)" }) + ["Expect:"] {
            guard let longer = curl_slist_append(headerList, line) else { throw failure(.other, "out of memory") }
            headerList = longer
        }

        let sink = ResponseSink(limit: configuration.maximumResponseSize, control: control)
        let context = Unmanaged.passUnretained(sink).toOpaque()
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        let code: CURLcode = try withExtendedLifetime(sink) {
            try errorBuffer.withUnsafeMutableBufferPointer { buffer in
                func set(_ rc: CURLcode, _ what: String) throws {
                    if rc != CURLE_OK { throw failure(.invalidRequest, "curl refused \(what): \(Self.text(rc))") }
                }
                try set(provision_curl_set_pointer(curl, CURLOPT_ERRORBUFFER, buffer.baseAddress), "its error buffer")
                try set(provision_curl_set_string(curl, CURLOPT_URL, request.url.absoluteString), "the URL")
                try set(provision_curl_set_string(curl, CURLOPT_PROTOCOLS_STR, "http,https"), "the protocols")
                try set(provision_curl_set_long(curl, CURLOPT_NOSIGNAL, 1), "no signals")
                try set(provision_curl_set_long(curl, CURLOPT_FOLLOWLOCATION, 0), "no redirects")
                try set(provision_curl_set_long(curl, CURLOPT_VERBOSE, 0), "quiet")
                try set(provision_curl_set_long(curl, CURLOPT_CONNECTTIMEOUT_MS,
                                                max(1, configuration.connectTimeout.inMilliseconds)), "the connect timeout")
                try set(provision_curl_set_long(curl, CURLOPT_TIMEOUT_MS,
                                                max(1, configuration.timeout.inMilliseconds)), "the timeout")
                if let caFile = configuration.caFile {
                    try set(provision_curl_set_string(curl, CURLOPT_CAINFO, caFile), "the CA file \(caFile)")
                }
                try set(provision_curl_set_string(curl, CURLOPT_USERAGENT, configuration.userAgent), "the user agent")
                try set(provision_curl_set_string(curl, CURLOPT_ACCEPT_ENCODING, ""), "compressed responses")
                try set(provision_curl_set_list(curl, CURLOPT_HTTPHEADER, headerList), "the headers")
                try setMethod(request, on: curl, set)
                try set(provision_curl_set_write_callback(curl, receiveBody, context), "the body callback")
                try set(provision_curl_set_header_callback(curl, receiveHeader, context), "the header callback")
                try set(provision_curl_set_progress_callback(curl, checkCancellation, context), "the progress callback")
                return curl_easy_perform(curl)
            }
        }

        if code != CURLE_OK {
            if control.isCancelled { throw CancellationError() }
            var pretransfer: curl_off_t = 0
            _ = provision_curl_get_size(curl, CURLINFO_PRETRANSFER_TIME_T, &pretransfer)
            let detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            var message = detail.isEmpty ? Self.text(code) : detail
            if let query = request.url.query, !query.isEmpty { message = message.replacing(query, with: "…") }
            if sink.overLimit {
                throw failure(.responseTooLarge, "the response is larger than \(configuration.maximumResponseSize) bytes",
                              sent: true)
            }
            throw failure(Self.kind(of: code), message, sent: pretransfer > 0)
        }
        var status = 0
        _ = provision_curl_get_long(curl, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: sink.headers, body: sink.body)
    }

    private func setMethod(_ request: HTTPRequest, on curl: UnsafeMutableRawPointer,
                           _ set: (CURLcode, String) throws -> Void) throws {
        switch request.method {
        case .get where request.body == nil:
            try set(provision_curl_set_long(curl, CURLOPT_HTTPGET, 1), "GET")
        case .head:
            try set(provision_curl_set_long(curl, CURLOPT_NOBODY, 1), "HEAD")
        case .delete where request.body == nil:
            try set(provision_curl_set_string(curl, CURLOPT_CUSTOMREQUEST, "DELETE"), "DELETE")
        default:
            // A body makes curl POST; CUSTOMREQUEST then renames the method and keeps the body.
            let body = request.body ?? Data()
            try set(provision_curl_set_size(curl, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)), "the body size")
            // COPYPOSTFIELDS copies the bytes (as many as the size says), so they need not outlive this call.
            if body.isEmpty {
                try set(provision_curl_set_string(curl, CURLOPT_COPYPOSTFIELDS, ""), "the body")
            } else {
                try body.withUnsafeBytes { bytes in
                    try set(provision_curl_set_pointer(curl, CURLOPT_COPYPOSTFIELDS,
                                                       UnsafeMutableRawPointer(mutating: bytes.baseAddress)), "the body")
                }
            }
            if request.method != .post {
                try set(provision_curl_set_string(curl, CURLOPT_CUSTOMREQUEST, request.method.rawValue), "the method")
            }
        }
    }

    private static func text(_ code: CURLcode) -> String {
        String(cString: curl_easy_strerror(code))
    }

    private static func kind(of code: CURLcode) -> HTTPClientError.Kind {
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: .nameResolution
        case CURLE_COULDNT_CONNECT: .connectionFailed
        case CURLE_OPERATION_TIMEDOUT: .timeout
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM,
             CURLE_SSL_CIPHER, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
             CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CRL_BADFILE, CURLE_SSL_SHUTDOWN_FAILED, CURLE_USE_SSL_FAILED:
            .tls
        case CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_HTTP2_STREAM,
             CURLE_WEIRD_SERVER_REPLY:
            .connectionLost
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL: .invalidRequest
        default: .other
        }
    }

    // MARK: Handles

    private func takeHandle() -> EasyHandle? {
        if let handle = idleHandles.withLock({ $0.popLast() }) { return handle }
        return curl_easy_init().map(EasyHandle.init)
    }

    private func putBack(_ handle: EasyHandle) {
        curl_easy_reset(handle.curl)    // forgets options and callbacks, keeps the connection cache
        let kept = idleHandles.withLock { idle in
            guard idle.count < Self.idleLimit else { return false }
            idle.append(handle)
            return true
        }
        if !kept { curl_easy_cleanup(handle.curl) }
    }
}

/// A curl easy handle; used by one transfer at a time, which the idle list guarantees.
private struct EasyHandle: @unchecked Sendable {
    let curl: UnsafeMutableRawPointer
}

/// What the cancellation handler and the transfer share.
private final class TransferControl: Sendable {
    private let cancelled = Atomic<Bool>(false)
    var isCancelled: Bool { cancelled.load(ordering: .acquiring) }
    func cancel() { cancelled.store(true, ordering: .releasing) }
}

/// Collects one response; touched only by curl's callbacks on the transfer's thread.
private final class ResponseSink {
    let limit: Int
    let control: TransferControl
    var headers = HTTPHeaders()
    var body = Data()
    var overLimit = false

    init(limit: Int, control: TransferControl) {
        self.limit = limit
        self.control = control
    }

    func header(_ line: String) {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        // A new status line starts a new response (after a 100 Continue, say): only the last one counts.
        if trimmed.hasPrefix("HTTP/") { headers = HTTPHeaders(); return }
        guard let colon = trimmed.firstIndex(of: ":") else { return }
        headers.add(String(trimmed[..<colon]).trimmingCharacters(in: .whitespaces),
                    String(trimmed[trimmed.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
    }
}

private func sink(_ context: UnsafeMutableRawPointer?) -> ResponseSink {
    Unmanaged<ResponseSink>.fromOpaque(context!).takeUnretainedValue()
}

private let receiveBody: provision_curl_data_callback = { data, size, count, context in
    let sink = sink(context), length = size * count
    guard sink.body.count + length <= sink.limit else {
        sink.overLimit = true
        return 0    // anything short of `length` makes curl stop with CURLE_WRITE_ERROR
    }
    if let data, length > 0 { sink.body.append(UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: length) }
    return length
}

private let receiveHeader: provision_curl_data_callback = { data, size, count, context in
    let length = size * count
    if let data {
        let bytes = UnsafeRawBufferPointer(start: data, count: length)
        sink(context).header(String(decoding: bytes, as: UTF8.self))
    }
    return length
}

private let checkCancellation: provision_curl_progress_callback = { context, _, _, _, _ in
    sink(context).control.isCancelled ? 1 : 0
}
