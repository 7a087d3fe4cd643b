import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A tiny HTTP/1.1 server on 127.0.0.1 for the HTTP and GitLab client tests: one thread per connection, one request
/// per connection, answers from a handler, and a record of every request it got.
final class LoopbackHTTPServer: Sendable {
    struct Request: Sendable {
        var method: String
        /// Path and query, as sent.
        var target: String
        var headers: [String: String]    // names lowercased
        var body: Data

        var path: String { String(target.prefix { $0 != "?" }) }
        var query: [String: String] {
            guard let components = URLComponents(string: target) else { return [:] }
            return Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }) { $1 }
        }
        var bodyText: String { String(decoding: body, as: UTF8.self) }
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:] }
        var form: [String: String] {
            Dictionary(bodyText.split(separator: "&").map { pair in
                let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? "" }
                return (parts[0], parts.count > 1 ? parts[1] : "")
            }) { $1 }
        }
    }

    struct Reply: Sendable {
        var status: Int
        var headers: [(String, String)] = []
        var body: Data = Data()
        /// Wait this long before answering.
        var delay: Duration = .zero
        /// Never answer; hold the connection until the client goes away.
        var hang = false

        static func json(_ status: Int, _ text: String, headers: [(String, String)] = []) -> Reply {
            Reply(status: status, headers: [("Content-Type", "application/json")] + headers, body: Data(text.utf8))
        }
        static func empty(_ status: Int, headers: [(String, String)] = []) -> Reply {
            Reply(status: status, headers: headers)
        }
    }

    let port: Int
    private let listener: Int32
    private let handler: @Sendable (Request) -> Reply
    private let received = Mutex<[Request]>([])
    private let stopped = Atomic<Bool>(false)

    var baseURL: URL { URL(string: "http://127.0.0.1:\(port)")! }
    var requests: [Request] { received.withLock { $0 } }

    init(_ handler: @escaping @Sendable (Request) -> Reply) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { close(fd); throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        listener = fd
        self.handler = handler
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// A server whose replies come from a list, in order; the last one repeats.
    convenience init(replies: [Reply]) throws {
        let counter = Counter()
        try self.init { _ in replies[min(counter.next(), replies.count - 1)] }
    }

    deinit { stop() }

    func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    /// A port on which nothing listens (bound, then closed again).
    static func closedPort() throws -> Int {
        let server = try LoopbackHTTPServer { _ in Reply(status: 500) }
        server.stop()
        return server.port
    }

    private func acceptLoop() {
        while !stopped.load(ordering: .acquiring) {
            let connection = accept(listener, nil, nil)
            if connection < 0 { if errno == EINTR { continue } else { return } }
            Thread.detachNewThread { [self] in serve(connection) }
        }
    }

    private func serve(_ connection: Int32) {
        defer { close(connection) }
        guard let request = read(connection) else { return }
        received.withLock { $0.append(request) }
        let reply = handler(request)
        if reply.hang {
            var byte: UInt8 = 0
            while recv(connection, &byte, 1, 0) > 0 {}    // until the client gives up
            return
        }
        if reply.delay > .zero { Thread.sleep(forTimeInterval: Double(reply.delay.components.seconds)
                                              + Double(reply.delay.components.attoseconds) / 1e18) }
        var head = "HTTP/1.1 \(reply.status) Status\r\nContent-Length: \(reply.body.count)\r\nConnection: close\r\n"
        for (name, value) in reply.headers { head += "\(name): \(value)\r\n" }
        let bytes = Data((head + "\r\n").utf8) + reply.body
        bytes.withUnsafeBytes { buffer in
            var sent = 0
            while sent < buffer.count {
                let n = send(connection, buffer.baseAddress! + sent, buffer.count - sent, Int32(MSG_NOSIGNAL))
                if n <= 0 { return }
                sent += n
            }
        }
    }

    private func read(_ connection: Int32) -> Request? {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        let separator = Data("\r\n\r\n".utf8)
        while data.range(of: separator) == nil {
            let n = recv(connection, &buffer, buffer.count, 0)
            if n <= 0 { return nil }
            data.append(contentsOf: buffer[..<n])
        }
        let end = data.range(of: separator)!
        let lines = String(decoding: data[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let first = lines[0].split(separator: " ")
        guard first.count >= 2 else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Data(data[end.upperBound...])
        let length = Int(headers["content-length"] ?? "0") ?? 0
        while body.count < length {
            let n = recv(connection, &buffer, min(buffer.count, length - body.count), 0)
            if n <= 0 { return nil }
            body.append(contentsOf: buffer[..<n])
        }
        return Request(method: String(first[0]), target: String(first[1]), headers: headers, body: body)
    }
}

/// Counts from 0, from any thread.
final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}
