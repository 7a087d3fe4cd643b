import Foundation

/// A TCP socket: connect with a deadline, and wait for readiness without blocking forever.
struct Socket {
    let fd: Int32

    /// Connects to the first address of `host:port` that answers before `timeout` seconds.
    static func connect(host: String, port: Int, timeout: Double, name: String) throws -> Socket {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw SSHError(.unreachable, "\(name): cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        let deadline = Date().addingTimeInterval(timeout)
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd < 0 { lastError = String(cString: strerror(errno)); continue }
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            var result = Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen)
            if result != 0 && errno == EINPROGRESS {
                let remaining = max(0, deadline.timeIntervalSinceNow)
                var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = poll(&pfd, 1, Int32(remaining * 1000))
                if ready == 0 {
                    Glibc.close(fd)
                    throw SSHError(.timeout, "\(name): connect to \(host):\(port) timed out after \(Int(timeout))s")
                }
                var soError: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
                if soError == 0 { result = 0 } else { errno = soError }
            }
            if result == 0 {
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return Socket(fd: fd)
            }
            lastError = String(cString: strerror(errno))
            Glibc.close(fd)
        }
        throw SSHError(.unreachable, "\(name): cannot connect to \(host):\(port): \(lastError)")
    }

    /// Waits until the socket can be read and/or written, or `milliseconds` pass. Returns false on timeout.
    func wait(read: Bool, write: Bool, milliseconds: Int32) -> Bool {
        var events: Int16 = 0
        if read { events |= Int16(POLLIN) }
        if write { events |= Int16(POLLOUT) }
        var pfd = pollfd(fd: fd, events: events == 0 ? Int16(POLLIN) : events, revents: 0)
        let result = poll(&pfd, 1, milliseconds)
        return result != 0
    }

    func close() { _ = Glibc.close(fd) }
}
