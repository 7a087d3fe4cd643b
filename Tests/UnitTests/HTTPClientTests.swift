import Foundation
import HTTPClient
import Testing

@Suite struct HTTPClientTests {
    @Test func sendsTheRequestAndReadsStatusHeadersAndBody() async throws {
        let server = try LoopbackHTTPServer { request in
            .init(status: 201, headers: [("X-Next-Page", "2"), ("Content-Type", "text/plain")], body: request.body)
        }
        let client = HTTPClient()
        let body = Data(#"{"name":"ci"}"#.utf8)
        let response = try await client.perform(HTTPRequest(
            method: .put, url: server.baseURL.appending(path: "/api/v4/things/7"),
            headers: ["PRIVATE-TOKEN": "t0k", "Content-Type": "application/json"], body: body))

        #expect(response.status == 201)
        #expect(response.headers["x-next-page"] == "2")
        #expect(response.headers["X-NEXT-PAGE"] == "2")
        #expect(response.body == body)
        let seen = try #require(server.requests.first)
        #expect(seen.method == "PUT")
        #expect(seen.target == "/api/v4/things/7")
        #expect(seen.headers["private-token"] == "t0k")
        #expect(seen.headers["expect"] == nil)
        #expect(seen.body == body)
    }

    @Test func aDeleteCarriesItsBody() async throws {
        let server = try LoopbackHTTPServer { _ in .empty(204) }
        let response = try await HTTPClient().perform(HTTPRequest(
            method: .delete, url: server.baseURL.appending(path: "/api/v4/runners"),
            headers: ["Content-Type": "application/x-www-form-urlencoded"], body: Data("token=abc".utf8)))
        #expect(response.status == 204)
        #expect(server.requests.map(\.method) == ["DELETE"])
        #expect(server.requests.first?.bodyText == "token=abc")
    }

    @Test func redirectsAreReturnedNotFollowed() async throws {
        let server = try LoopbackHTTPServer { _ in .empty(302, headers: [("Location", "/users/sign_in")]) }
        let response = try await HTTPClient().perform(HTTPRequest(method: .get, url: server.baseURL.appending(path: "/api/v4/user")))
        #expect(response.status == 302)
        #expect(response.headers["location"] == "/users/sign_in")
        #expect(server.requests.count == 1)
    }

    @Test func aRefusedConnectionNamesTheURLButNotItsQuery() async throws {
        let port = try LoopbackHTTPServer.closedPort()
        let url = URL(string: "http://127.0.0.1:\(port)/api/v4/runners?private_token=glpat-query-secret")!
        let error = try await #require(throws: HTTPClientError.self) {
            try await HTTPClient().perform(HTTPRequest(method: .get, url: url))
        }
        #expect(error.kind == .connectionFailed)
        #expect(!error.requestMayHaveBeenSent)
        #expect(error.description.hasPrefix("GET http://127.0.0.1:\(port)/api/v4/runners failed: "))
        #expect(!error.description.contains("glpat-query-secret"))
    }

    @Test func aSlowServerTimesOutAfterTheRequestWasSent() async throws {
        let server = try LoopbackHTTPServer { _ in .init(status: 200, delay: .seconds(3)) }
        let client = HTTPClient(configuration: .init(timeout: .milliseconds(300)))
        let started = ContinuousClock.now
        let error = try await #require(throws: HTTPClientError.self) {
            try await client.perform(HTTPRequest(method: .post, url: server.baseURL.appending(path: "/api/v4/user/runners"),
                                                 body: Data("{}".utf8)))
        }
        #expect(error.kind == .timeout)
        #expect(error.requestMayHaveBeenSent)
        #expect(ContinuousClock.now - started < .seconds(2))
    }

    @Test func cancellingTheTaskAbortsTheTransfer() async throws {
        let server = try LoopbackHTTPServer { _ in .init(status: 200, hang: true) }
        let client = HTTPClient(configuration: .init(timeout: .seconds(30)))
        let started = ContinuousClock.now
        let task = Task {
            try await client.perform(HTTPRequest(method: .get, url: server.baseURL.appending(path: "/api/v4/runners/1")))
        }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(ContinuousClock.now - started < .seconds(3))
        #expect(server.requests.count == 1)
    }

    @Test func anOversizedResponseIsRefused() async throws {
        let server = try LoopbackHTTPServer { _ in .init(status: 200, body: Data(repeating: 65, count: 4096)) }
        let client = HTTPClient(configuration: .init(maximumResponseSize: 1000))
        let error = try await #require(throws: HTTPClientError.self) {
            try await client.perform(HTTPRequest(method: .get, url: server.baseURL))
        }
        #expect(error.kind == .responseTooLarge)
    }

    @Test func aLineBreakInAHeaderIsRefusedBeforeSending() async throws {
        let server = try LoopbackHTTPServer { _ in .empty(200) }
        let error = try await #require(throws: HTTPClientError.self) {
            try await HTTPClient().perform(HTTPRequest(method: .get, url: server.baseURL,
                                                       headers: ["X-Injected": "a\r\nPRIVATE-TOKEN: b"]))
        }
        #expect(error.kind == .invalidRequest)
        #expect(server.requests.isEmpty)
    }

    /// A self-signed certificate is refused against the system's trust store and accepted with it as the CA file.
    @Test func aSelfSignedCertificateNeedsItsCAFile() async throws {
        let tls = try SelfSignedTLSServer()
        defer { tls.stop() }
        let request = HTTPRequest(method: .get, url: URL(string: "https://127.0.0.1:\(tls.port)/")!)

        let error = try await #require(throws: HTTPClientError.self) { try await HTTPClient().perform(request) }
        #expect(error.kind == .tls)
        #expect(error.description.contains("https://127.0.0.1:\(tls.port)/"))

        let trusted = HTTPClient(configuration: .init(caFile: tls.certificate.path))
        #expect(try await trusted.perform(request).status == 200)
    }
}

/// `openssl s_server -www` on 127.0.0.1 with a fresh self-signed certificate for that address.
final class SelfSignedTLSServer: Sendable {
    let certificate: URL
    let port: Int
    private let process: Process
    private let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appending(path: "provision-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        certificate = directory.appending(path: "cert.pem")
        let key = directory.appending(path: "key.pem")
        let request = Process()
        request.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        request.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                             "-keyout", key.path, "-out", certificate.path, "-days", "1", "-subj", "/CN=127.0.0.1",
                             "-addext", "subjectAltName=IP:127.0.0.1"]
        request.standardError = FileHandle.nullDevice
        try request.run()
        request.waitUntilExit()
        guard request.terminationStatus == 0 else { throw POSIXError(.EIO) }

        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["s_server", "-accept", "127.0.0.1:0", "-cert", certificate.path, "-key", key.path,
                             "-www"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var seen = ""
        while !seen.contains("\n") || !seen.contains("ACCEPT") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        guard let line = seen.split(separator: "\n").first(where: { $0.hasPrefix("ACCEPT") }),
              let port = Int(line.split(separator: ":").last ?? "") else {
            kill(process.processIdentifier, SIGKILL)
            throw POSIXError(.EIO)
        }
        self.port = port
    }

    func stop() {
        // SIGKILL: the child inherits a thread's signal mask that may block SIGTERM.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }
}
