internal import CLibSSH2
import Foundation
import Logging
import ProvisionBasics
import Synchronization

private let libraryInitialised: Bool = libssh2_init(0) == 0

/// One SSH connection to one host, reused for every command of a run.
///
/// libssh2 runs non-blocking on this connection's own serial queue, waiting in poll(2) there, so no call ever
/// blocks Swift's cooperative pool. All libssh2 state is touched only on that queue.
public final class SSHConnection: @unchecked Sendable {
    public let options: SSHOptions
    /// The SHA256 fingerprint of the key the host presented.
    public let hostKeyFingerprint: String
    /// What accepting the host key did ("known", "pinned", or "recorded in <path>").
    public let hostKeyDecision: String

    private let queue: DispatchQueue
    private let socket: Socket
    private let session: OpaquePointer
    private var sftp: OpaquePointer?
    private var keepaliveTimer: DispatchSourceTimer?
    private var closed = false
    private let logger: Logger
    private let counters = Mutex(Counters())
    private let cancelledOperations = Mutex(Set<Int>())
    private static let operationIDs = Atomic<Int>(0)

    public struct Counters: Sendable {
        public var commands = 0
        public var uploads = 0
        public var downloads = 0
    }

    /// Commands, uploads and downloads this connection carried.
    public var statistics: Counters { counters.withLock { $0 } }

    private init(options: SSHOptions, queue: DispatchQueue, socket: Socket, session: OpaquePointer,
                 fingerprint: String, decision: String, logger: Logger) {
        self.options = options
        self.queue = queue
        self.socket = socket
        self.session = session
        self.hostKeyFingerprint = fingerprint
        self.hostKeyDecision = decision
        self.logger = logger
    }

    deinit {
        if !closed {
            keepaliveTimer?.cancel()
            if let sftp { libssh2_sftp_shutdown(sftp) }
            libssh2_session_free(session)
            socket.close()
        }
    }

    // MARK: Connecting

    /// Connects, verifies the host key and authenticates, all within `options.connectTimeout`.
    public static func connect(_ options: SSHOptions, logger: Logger = .silent) async throws -> SSHConnection {
        precondition(libraryInitialised, "libssh2_init failed")
        let queue = DispatchQueue(label: "provision.ssh.\(options.name)")
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try establish(options, queue: queue, logger: logger) })
            }
        }
    }

    private static func establish(_ options: SSHOptions, queue: DispatchQueue, logger: Logger) throws -> SSHConnection {
        let started = ContinuousClock.now
        let deadline = started + .milliseconds(Int(options.connectTimeout * 1000))
        let socket = try Socket.connect(host: options.address, port: options.port,
                                        timeout: options.connectTimeout, name: options.name)
        guard let session = provision_session_new() else {
            socket.close()
            throw SSHError(.protocolError, "\(options.name): cannot create an SSH session")
        }
        let setup = Setup(session: session, socket: socket, options: options, deadline: deadline)
        do {
            libssh2_session_set_blocking(session, 0)
            provision_session_use_quickack(session)
            _ = libssh2_session_method_pref(session, LIBSSH2_METHOD_HOSTKEY,
                "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa")
            let rc = try setup.retry { libssh2_session_handshake(session, socket.fd) }
            if rc != 0 { throw setup.failure(.protocolError, "SSH handshake with \(options.endpoint) failed", rc) }
            let (fingerprint, decision) = try setup.verifyHostKey()
            try setup.authenticate()
            if options.keepalive > 0 { libssh2_keepalive_config(session, 1, UInt32(options.keepalive)) }
            let connection = SSHConnection(options: options, queue: queue, socket: socket, session: session,
                                           fingerprint: fingerprint, decision: decision, logger: logger)
            connection.startKeepalive()
            logger.debug("connected to \(options.user)@\(options.endpoint) in \(ContinuousClock.now - started)",
                         metadata: ["host": "\(options.name)"])
            return connection
        } catch {
            libssh2_session_free(session)
            socket.close()
            throw error
        }
    }

    /// The connection-time steps, before there is an SSHConnection to hang them on.
    private struct Setup {
        let session: OpaquePointer
        let socket: Socket
        let options: SSHOptions
        let deadline: ContinuousClock.Instant

        func retry(_ body: () -> Int32) throws -> Int32 {
            while true {
                let rc = body()
                if rc != LIBSSH2_ERROR_EAGAIN { return rc }
                try waitForSocket()
            }
        }

        func waitForSocket() throws {
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero {
                throw SSHError(.timeout, "\(options.name): SSH setup with \(options.endpoint) timed out after \(Int(options.connectTimeout))s")
            }
            let directions = libssh2_session_block_directions(session)
            _ = socket.wait(read: directions & LIBSSH2_SESSION_BLOCK_INBOUND != 0,
                            write: directions & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0,
                            milliseconds: Int32(max(1, remaining.inMilliseconds)))
        }

        func failure(_ kind: SSHError.Kind, _ what: String, _ rc: Int32) -> SSHError {
            SSHError(kind, "\(options.name): \(what): \(String(cString: provision_session_error(session))) (libssh2 \(rc))")
        }

        func verifyHostKey() throws -> (String, String) {
            var length = 0
            var type: Int32 = 0
            guard let raw = libssh2_session_hostkey(session, &length, &type),
                  let digest = libssh2_hostkey_hash(session, LIBSSH2_HOSTKEY_HASH_SHA256) else {
                throw SSHError(.protocolError, "\(options.name): the server sent no host key")
            }
            let key = OfferedHostKey(blob: Data(bytes: raw, count: length), libssh2Type: type,
                                     fingerprint: OfferedHostKey.fingerprint(sha256: Data(bytes: digest, count: 32)))
            let pattern = KnownHosts.hostPattern(address: options.address, port: options.port)
            if let pinned = options.pinnedFingerprint {
                guard pinned == key.fingerprint else {
                    throw SSHError(.hostKeyPinMismatch, """
                        \(options.name): host key refused: \(options.endpoint) offered \(key.algorithm) \(key.fingerprint) \
                        but the inventory pins \(pinned); if the host was reinstalled, check the new key on its \
                        console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and update hostKeyFingerprint
                        """)
                }
                return (key.fingerprint, "pinned")
            }
            switch try KnownHosts.check(session: session, path: options.knownHostsPath, address: options.address,
                                        port: options.port, key: key) {
            case .match:
                return (key.fingerprint, "known")
            case .mismatch:
                throw SSHError(.hostKeyChanged, """
                    \(options.name): host key CHANGED: \(options.endpoint) offered \(key.algorithm) \(key.fingerprint), \
                    which differs from the entry in \(options.knownHostsPath); this can mean an attack or a \
                    reinstalled host; if you have confirmed the new key, remove the old entry with \
                    ssh-keygen -R '\(pattern)' -f \(options.knownHostsPath)
                    """)
            case .notFound:
                if options.hostKeyPolicy == .acceptNew {
                    try KnownHosts.append(path: options.knownHostsPath, address: options.address,
                                          port: options.port, key: key)
                    return (key.fingerprint, "recorded in \(options.knownHostsPath)")
                }
                throw SSHError(.hostKeyUnknown, """
                    \(options.name): unknown host key: \(options.endpoint) offered \(key.algorithm) \(key.fingerprint), \
                    not in \(options.knownHostsPath); to accept it, compare that fingerprint with the host's own \
                    (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on its console), then pin it as \
                    hostKeyFingerprint in the inventory or run once with hostKeyPolicy: accept-new
                    """)
            }
        }

        func authenticate() throws {
            let user = options.user
            var offered: String?
            let list: UnsafeMutablePointer<CChar>? = try {
                while true {
                    if let methods = libssh2_userauth_list(session, user, UInt32(user.utf8.count)) { return methods }
                    if libssh2_userauth_authenticated(session) != 0 { return nil }
                    guard libssh2_session_last_errno(session) == LIBSSH2_ERROR_EAGAIN else {
                        throw failure(.authentication, "cannot ask \(options.endpoint) for its login methods", 0)
                    }
                    try waitForSocket()
                }
            }()
            if list == nil { return }  // the server let us in without credentials
            offered = String(cString: list!)
            var reasons: [String] = []
            for method in options.authentication {
                switch method {
                case .keyFile(let path, let passphrase):
                    guard FileManager.default.isReadableFile(atPath: path) else {
                        reasons.append("key \(path) is missing or unreadable")
                        continue
                    }
                    let rc = try retry {
                        libssh2_userauth_publickey_fromfile_ex(session, user, UInt32(user.utf8.count), nil, path, passphrase)
                    }
                    if rc == 0 { return }
                    if rc == LIBSSH2_ERROR_FILE {
                        reasons.append(passphrase == nil
                            ? "key \(path) cannot be read (is it passphrase-protected? set ssh.keyPassphrase)"
                            : "key \(path) cannot be decrypted with the given passphrase")
                    } else if KeyFile.isRSA(path) {
                        // libssh2 before 1.11 signs RSA logins with SHA-1 only; OpenSSH 8.8+ refuses that by default.
                        reasons.append("""
                            key \(path) was not accepted: it is an RSA key, and this libssh2 (\(KeyFile.libraryVersion)) \
                            can sign only with ssh-rsa (SHA-1), which OpenSSH 8.8 and later refuse by default; use an \
                            ed25519 key, or allow PubkeyAcceptedAlgorithms +ssh-rsa on the host
                            """)
                    } else {
                        reasons.append("key \(path) was not accepted")
                    }
                case .password(let password):
                    let rc = try retry {
                        libssh2_userauth_password_ex(session, user, UInt32(user.utf8.count), password,
                                                     UInt32(password.utf8.count), nil)
                    }
                    if rc == 0 { return }
                    reasons.append("password was not accepted")
                case .agent:
                    guard ProcessInfo.processInfo.environment["SSH_AUTH_SOCK"] != nil else {
                        reasons.append("no ssh-agent to ask (SSH_AUTH_SOCK is not set; set ssh.keyPath or start an agent)")
                        continue
                    }
                    if try authenticateWithAgent() { return }
                    reasons.append("no ssh-agent key was accepted")
                }
            }
            if options.authentication.isEmpty { reasons.append("no key, password or agent configured") }
            throw SSHError(.authentication, """
                \(options.name): authentication failed for \(user)@\(options.endpoint): \
                \(reasons.joined(separator: "; ")) (the server allows: \(offered ?? "?"))
                """)
        }

        private func authenticateWithAgent() throws -> Bool {
            guard ProcessInfo.processInfo.environment["SSH_AUTH_SOCK"] != nil,
                  let agent = libssh2_agent_init(session) else { return false }
            defer { libssh2_agent_free(agent) }
            guard try retry({ libssh2_agent_connect(agent) }) == 0 else { return false }
            defer { _ = libssh2_agent_disconnect(agent) }
            guard try retry({ libssh2_agent_list_identities(agent) }) == 0 else { return false }
            var previous: UnsafeMutablePointer<libssh2_agent_publickey>?
            while true {
                var identity: UnsafeMutablePointer<libssh2_agent_publickey>?
                guard libssh2_agent_get_identity(agent, &identity, previous) == 0, let identity else { return false }
                let user = options.user
                if try retry({ libssh2_agent_userauth(agent, user, identity) }) == 0 { return true }
                previous = identity
            }
        }
    }

    // MARK: Running commands

    /// Runs `command` through the login user's shell. `privileged` runs it as root (sudo for non-root logins).
    /// A non-zero exit is a result, not an error; errors are transport failures.
    public func run(_ command: String, stdin: Data? = nil, privileged: Bool = false,
                    timeout: Double? = nil) async throws -> CommandResult {
        let result = try await send(command, input: try stdin.map { try InputFeed(.data($0)) }, privileged: privileged,
                                    timeout: timeout)
        counters.withLock { $0.commands += 1 }
        return result
    }

    /// `run` with stdin from `input`, read in pieces as the channel takes them.
    private func send(_ command: String, input: InputFeed?, privileged: Bool,
                      timeout: Double?) async throws -> CommandResult {
        var line = command
        var feed = input
        if privileged {
            let wrapped = Privilege.wrap(command, user: options.user, sudoPassword: options.sudoPassword)
            line = wrapped.command
            if let stdinPrefix = wrapped.stdinPrefix {
                feed = try feed ?? InputFeed(nil)
                feed?.prepend(Data(stdinPrefix.utf8))
            }
        }
        let finalLine = line, finalFeed = feed
        let result = try await perform(timeout: timeout) { op in try self.execute(finalLine, input: finalFeed, op: op) }
        if privileged && options.user != "root" && result.exitStatus == 1 {
            let text = result.stderrText
            if text.contains("a password is required") {
                throw SSHError(.sudo, "\(options.name): sudo for \(options.user) needs a password: set ssh.sudoPassword (for example ${env:SUDO_PASSWORD}) or allow NOPASSWD")
            }
            if text.contains("incorrect password attempt") || text.contains("Sorry, try again") {
                throw SSHError(.sudo, "\(options.name): sudo refused the password given for \(options.user) (ssh.sudoPassword)")
            }
        }
        return result
    }

    private struct Operation {
        let id: Int
        let deadline: ContinuousClock.Instant?

        /// For tidying up after the operation that needed it ended (a channel given up on, the goodbye): never
        /// cancelled, and bounded by its own two seconds.
        static func cleanup() -> Operation { Operation(id: -1, deadline: ContinuousClock.now + .seconds(2)) }
    }

    /// Runs `body` on this connection's queue; cancelling the calling task aborts it at the next wait.
    private func perform<T: Sendable>(timeout: Double?, _ body: @escaping @Sendable (Operation) throws -> T) async throws -> T {
        let id = Self.operationIDs.wrappingAdd(1, ordering: .relaxed).newValue
        let deadline = timeout.map { ContinuousClock.now + .milliseconds(Int($0 * 1000)) }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                queue.async {
                    defer { _ = self.cancelledOperations.withLock { $0.remove(id) } }
                    continuation.resume(with: Result {
                        guard !self.closed else { throw SSHError(.disconnected, "\(self.options.name): connection closed") }
                        return try body(Operation(id: id, deadline: deadline))
                    })
                }
            }
        } onCancel: {
            _ = cancelledOperations.withLock { $0.insert(id) }
        }
    }

    private func retry(_ op: Operation, _ body: () -> Int32) throws -> Int32 {
        while true {
            let rc = body()
            if rc != LIBSSH2_ERROR_EAGAIN { return rc }
            try waitForSocket(op)
        }
    }

    private func retryPointer<P>(_ op: Operation, _ body: () -> P?) throws -> P? {
        while true {
            if let pointer = body() { return pointer }
            if libssh2_session_last_errno(session) != LIBSSH2_ERROR_EAGAIN { return nil }
            try waitForSocket(op)
        }
    }

    private func waitForSocket(_ op: Operation) throws {
        if cancelledOperations.withLock({ $0.contains(op.id) }) {
            throw SSHError(.cancelled, "\(options.name): cancelled")
        }
        var milliseconds: Int32 = 500
        if let deadline = op.deadline {
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero { throw SSHError(.timeout, "\(options.name): remote operation timed out") }
            milliseconds = Int32(min(500, max(1, remaining.inMilliseconds)))
        }
        let directions = libssh2_session_block_directions(session)
        let ready = socket.wait(read: directions & LIBSSH2_SESSION_BLOCK_INBOUND != 0,
                                write: directions & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0,
                                milliseconds: milliseconds)
        if !ready && options.keepalive > 0 {
            var next: Int32 = 0
            _ = libssh2_keepalive_send(session, &next)
        }
    }

    private func failure(_ kind: SSHError.Kind, _ what: String, _ rc: Int32) -> SSHError {
        SSHError(kind, "\(options.name): \(what): \(String(cString: provision_session_error(session))) (libssh2 \(rc))")
    }

    /// Frees a channel an operation gave up on (cancelled, timed out, failed). libssh2 first sends the channel's
    /// close, which can wait for the socket: the remote command then sees its stdin end (an upload removes its
    /// partial file) instead of waiting on a channel nobody reads.
    private func discard(_ channel: OpaquePointer) {
        _ = try? retry(.cleanup()) { libssh2_channel_free(channel) }
    }

    private func execute(_ command: String, input: InputFeed?, op: Operation) throws -> CommandResult {
        // The handler redacts secrets; long scripts (the facts probe) are cut to their start.
        let shown = command.count > 160 ? String(command.prefix(160)).replacing("\n", with: "; ") + " …" : command
        logger.debug("$ \(shown)", metadata: ["host": "\(options.name)"])
        guard let channel = try retryPointer(op, { provision_channel_open_session(session) }) else {
            throw failure(.disconnected, "cannot open a channel", libssh2_session_last_errno(session))
        }
        var freed = false
        defer { if !freed { discard(channel) } }
        let started = try retry(op) { provision_channel_exec(channel, command) }
        if started != 0 { throw failure(.protocolError, "the server refused to run the command", started) }

        var stdout = Data(), stderr = Data()
        var eofSent = false
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var progressed = false
            if !eofSent {
                var feeding = true
                while feeding, let input {
                    let n = try input.withPending { pending in
                        libssh2_channel_write_ex(channel, 0, pending.baseAddress!.assumingMemoryBound(to: CChar.self), pending.count)
                    }
                    guard let n else { break }  // all sent
                    if n > 0 {
                        input.consumed(n)
                        progressed = true
                    } else if n == Int(LIBSSH2_ERROR_EAGAIN) || n == 0 {
                        feeding = false
                    } else {
                        // The command may have exited without reading its input; stop feeding it.
                        input.abandon()
                    }
                }
                if input?.finished ?? true {
                    let rc = libssh2_channel_send_eof(channel)
                    if rc != LIBSSH2_ERROR_EAGAIN { eofSent = true; progressed = true }
                }
            }
            for stream in [Int32(0), Int32(SSH_EXTENDED_DATA_STDERR)] {
                while true {
                    let n = buffer.withUnsafeMutableBytes { raw in
                        libssh2_channel_read_ex(channel, stream, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count)
                    }
                    if n > 0 {
                        if stream == 0 { stdout.append(contentsOf: buffer[0..<n]) } else { stderr.append(contentsOf: buffer[0..<n]) }
                        progressed = true
                    } else if n == 0 || n == Int(LIBSSH2_ERROR_EAGAIN) {
                        break
                    } else {
                        throw failure(.disconnected, "reading command output failed", Int32(n))
                    }
                }
            }
            if libssh2_channel_eof(channel) == 1 { break }
            if !progressed { try waitForSocket(op) }
        }
        _ = try retry(op) { libssh2_channel_close(channel) }
        _ = try retry(op) { libssh2_channel_wait_closed(channel) }
        var signalName: UnsafeMutablePointer<CChar>?
        var signalLength = 0
        _ = libssh2_channel_get_exit_signal(channel, &signalName, &signalLength, nil, nil, nil, nil)
        let signal: String? = signalName.map { pointer in
            defer { libssh2_free(session, pointer) }
            return String(cString: pointer)
        }
        let status = libssh2_channel_get_exit_status(channel)
        libssh2_channel_free(channel)
        freed = true
        return CommandResult(stdout: stdout, stderr: stderr, exitStatus: signal == nil ? status : nil, exitSignal: signal)
    }

    // MARK: Files

    /// Where upload bytes come from.
    public enum UploadSource: Sendable {
        case data(Data)
        case file(String)
    }

    /// Writes `source` to `remotePath` so that readers see either the old file or the whole new one, in one
    /// command: the bytes stream over its stdin into a temporary file beside the path (fsynced), which is checked
    /// for length, gets its owner and mode, and is then renamed into place. Missing folders on the way are made
    /// (mode 0755). Non-root logins run that command under sudo, so nothing is staged in their home.
    /// A failure, or a stream cut short, leaves no temporary file behind.
    /// Temporary names are `.<name>.provision-<random>`: `temporaryPattern` finds leftovers of a killed run.
    ///
    /// Not SFTP: libssh2 1.10's SFTP writes cost the controller and the host about a third more CPU than the same
    /// bytes as channel data (docs/benchmarks.md), and a small file took four SFTP round trips plus the command
    /// that placed it.
    public func upload(_ source: UploadSource, to remotePath: String, mode: Int? = 0o644, owner: String? = nil,
                       backup: Bool = false, timeout: Double? = nil) async throws {
        let feed = try InputFeed(source)
        let token = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let script = Self.placingScript(remotePath, size: feed.size, token: token, mode: mode, owner: owner, backup: backup)
        let result = try await send(script, input: feed, privileged: options.user != "root", timeout: timeout)
        guard result.succeeded else {
            throw SSHError(.transfer, "\(options.name): placing \(remotePath) failed (\(result.statusDescription)): \(result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        counters.withLock { $0.uploads += 1 }
    }

    /// The command an upload runs: stdin (exactly `size` bytes) to the temporary file, then into place.
    static func placingScript(_ remotePath: String, size: Int, token: String, mode: Int?, owner: String?,
                              backup: Bool) -> String {
        let folder = (remotePath as NSString).deletingLastPathComponent
        let base = (remotePath as NSString).lastPathComponent
        let q = ShellQuote.quote
        let temporary = (folder.isEmpty ? "" : folder + "/") + ".\(base).provision-\(token)"
        var steps: [String] = []
        if !folder.isEmpty { steps.append("{ [ -d \(q(folder)) ] || mkdir -p \(q(folder)); }") }
        // Leftovers of an upload to the same path that was killed midway go first.
        steps.append("for f in \(temporaryPattern(for: remotePath)); do [ \"$f\" = \"$t\" ] || rm -f \"$f\"; done")
        // Readable by root alone until it has its mode; dd's conv=fsync puts the bytes on disk before the rename.
        steps.append("(umask 077 && exec dd of=\"$t\" bs=256k conv=fsync status=none)")
        // A stream cut short (the controller killed, the connection lost) ends stdin early: never place that.
        steps.append("n=$(stat -c %s \"$t\")")
        steps.append("{ [ \"$n\" = \(size) ] || { echo \"received $n of \(size) bytes\" >&2; false; }; }")
        if let owner { steps.append("chown \(q(owner)) \"$t\"") }
        if let mode { steps.append("chmod 0\(String(mode, radix: 8)) \"$t\"") }
        // The previous file is kept once as <path>.provision.bak (apt and sysctl skip *.bak names).
        if backup { steps.append("{ [ ! -f \(q(remotePath)) ] || cp \(q(remotePath)) \(q(remotePath + ".provision.bak")); }") }
        steps.append("mv -f \"$t\" \(q(remotePath))")
        // SIGPIPE ignored: once the controller is gone, a message to the closed stderr must not kill the shell
        // before it removes the temporary file.
        return "trap '' PIPE; t=\(q(temporary)); { " + steps.joined(separator: " && ") + "; } || { rc=$?; rm -f \"$t\"; exit $rc; }"
    }

    /// A shell glob matching the temporary files an interrupted upload to `remotePath` may have left.
    public static func temporaryPattern(for remotePath: String) -> String {
        let folder = (remotePath as NSString).deletingLastPathComponent
        let base = (remotePath as NSString).lastPathComponent
        return ShellQuote.quote((folder.isEmpty ? "" : folder + "/") + ".\(base).provision-") + "*"
    }

    /// Reads a whole remote file over SFTP (as the login user).
    public func download(_ remotePath: String, timeout: Double? = nil) async throws -> Data {
        let data = try await perform(timeout: timeout) { op in try self.sftpRead(remotePath, op: op) }
        counters.withLock { $0.downloads += 1 }
        return data
    }

    private func sftpSession(_ op: Operation) throws -> OpaquePointer {
        if let sftp { return sftp }
        guard let opened = try retryPointer(op, { libssh2_sftp_init(session) }) else {
            throw failure(.transfer, "cannot start SFTP", libssh2_session_last_errno(session))
        }
        sftp = opened
        return opened
    }

    private func sftpError(_ sftp: OpaquePointer, _ what: String) -> SSHError {
        let code = libssh2_sftp_last_error(sftp)
        let reason: String
        switch code {
        case UInt(LIBSSH2_FX_NO_SUCH_FILE), UInt(LIBSSH2_FX_NO_SUCH_PATH): reason = "no such file or directory"
        case UInt(LIBSSH2_FX_PERMISSION_DENIED): reason = "permission denied"
        default: reason = "\(String(cString: provision_session_error(session))) (sftp status \(code))"
        }
        return SSHError(.transfer, "\(options.name): \(what): \(reason)")
    }

    private func sftpRead(_ path: String, op: Operation) throws -> Data {
        let sftp = try sftpSession(op)
        guard let handle = try retryPointer(op, {
            libssh2_sftp_open_ex(sftp, path, UInt32(path.utf8.count), UInt(LIBSSH2_FXF_READ), 0, LIBSSH2_SFTP_OPENFILE)
        }) else { throw sftpError(sftp, "cannot open \(path)") }
        defer { _ = try? retry(op) { libssh2_sftp_close_handle(handle) } }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { raw in
                libssh2_sftp_read(handle, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count)
            }
            if n == Int(LIBSSH2_ERROR_EAGAIN) { try waitForSocket(op); continue }
            if n < 0 { throw sftpError(sftp, "reading \(path) failed") }
            if n == 0 { return data }
            data.append(contentsOf: buffer[0..<n])
        }
    }

    // MARK: Keepalive and closing

    private func startKeepalive() {
        guard options.keepalive > 0 else { return }
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + .seconds(options.keepalive), repeating: .seconds(options.keepalive))
        timer.setEventHandler { [weak self] in
            guard let self, !self.closed else { return }
            var next: Int32 = 0
            _ = libssh2_keepalive_send(self.session, &next)
        }
        timer.resume()
        keepaliveTimer = timer
    }

    /// Says goodbye to the server and frees everything. Safe to call twice.
    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                defer { continuation.resume() }
                guard !self.closed else { return }
                self.closed = true
                self.keepaliveTimer?.cancel()
                let op = Operation.cleanup()
                if let sftp = self.sftp { _ = try? self.retry(op) { libssh2_sftp_shutdown(sftp) } }
                _ = try? self.retry(op) { libssh2_session_disconnect_ex(self.session, SSH_DISCONNECT_BY_APPLICATION, "bye", "") }
                libssh2_session_free(self.session)
                self.socket.close()
            }
        }
    }
}

/// A command's stdin: some bytes in memory (sudo's password line), then the source, read in pieces as the channel
/// takes them, so a large file never sits in memory whole. Used only on the connection's queue.
final class InputFeed: @unchecked Sendable {
    private var head = Data()
    private var headOffset = 0
    private var body: SSHConnection.UploadSource?
    private var fd: Int32
    private let window: UnsafeMutableRawBufferPointer
    private var start = 0, end = 0
    /// Everything was handed to the channel, or the command stopped reading.
    private(set) var finished = false
    /// How many bytes the source holds: for a file, the one opened here, so the count and the bytes sent agree.
    let size: Int

    init(_ body: SSHConnection.UploadSource?) throws {
        self.body = body
        fd = -1
        switch body {
        case .file(let path):
            fd = open(path, O_RDONLY | O_CLOEXEC)
            var info = stat()
            if fd < 0 || fstat(fd, &info) != 0 {
                let reason = String(cString: strerror(errno))
                if fd >= 0 { Glibc.close(fd) }
                throw SSHError(.transfer, "cannot read \(path): \(reason)")
            }
            size = Int(info.st_size)
        case .data(let data):
            size = data.count
        case nil:
            size = 0
        }
        // Allocated last: a throw above leaves nothing to free. A rendered file (or sudo's password line) needs
        // no more than a few KiB.
        window = UnsafeMutableRawBufferPointer.allocate(byteCount: min(256 << 10, max(4096, size)), alignment: 16)
    }

    /// Bytes to send before the source (sudo's password line); only before anything was sent.
    func prepend(_ bytes: Data) {
        precondition(headOffset == 0 && start == end, "prepend after sending began")
        head = bytes + head
    }

    deinit {
        window.deallocate()
        if fd >= 0 { Glibc.close(fd) }
    }

    /// Calls `body` with the bytes to send next, or returns nil once there are none.
    func withPending<T>(_ send: (UnsafeRawBufferPointer) -> T) throws -> T? {
        if start == end && !finished { try refill() }
        if finished { return nil }
        return send(UnsafeRawBufferPointer(rebasing: window[start..<end]))
    }

    func consumed(_ count: Int) { start += count }

    func abandon() { finished = true }

    private func refill() throws {
        start = 0
        end = 0
        if headOffset < head.count {
            end = min(window.count, head.count - headOffset)
            head.copyBytes(to: window.baseAddress!.assumingMemoryBound(to: UInt8.self), from: headOffset..<headOffset + end)
            headOffset += end
            return
        }
        switch body {
        case .data(let data):
            end = min(window.count, data.count)
            data.copyBytes(to: window.baseAddress!.assumingMemoryBound(to: UInt8.self), from: data.startIndex..<data.startIndex + end)
            body = end < data.count ? .data(data.dropFirst(end)) : nil
        case .file:
            let n = Glibc.read(fd, window.baseAddress, window.count)
            if n < 0 { throw SSHError(.transfer, "reading the local file failed: \(String(cString: strerror(errno)))") }
            end = n
            if n == 0 { body = nil }
        case nil:
            break
        }
        if end == 0 { finished = true }
    }
}
