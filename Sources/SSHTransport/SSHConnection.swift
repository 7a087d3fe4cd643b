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
        var line = command
        var input = stdin ?? Data()
        if privileged {
            let wrapped = Privilege.wrap(command, user: options.user, sudoPassword: options.sudoPassword)
            line = wrapped.command
            if let prefix = wrapped.stdinPrefix { input = Data(prefix.utf8) + input }
        }
        let sendInput = stdin != nil || privileged && options.sudoPassword != nil && options.user != "root"
        let finalLine = line, finalInput = input
        let result = try await perform(timeout: timeout) { op in
            try self.execute(finalLine, stdin: sendInput ? finalInput : nil, op: op)
        }
        counters.withLock { $0.commands += 1 }
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

    private func execute(_ command: String, stdin: Data?, op: Operation) throws -> CommandResult {
        // The handler redacts secrets; long scripts (the facts probe) are cut to their start.
        let shown = command.count > 160 ? String(command.prefix(160)).replacing("\n", with: "; ") + " …" : command
        logger.debug("$ \(shown)", metadata: ["host": "\(options.name)"])
        guard let channel = try retryPointer(op, { provision_channel_open_session(session) }) else {
            throw failure(.disconnected, "cannot open a channel", libssh2_session_last_errno(session))
        }
        var freed = false
        defer { if !freed { libssh2_channel_free(channel) } }
        let started = try retry(op) { provision_channel_exec(channel, command) }
        if started != 0 { throw failure(.protocolError, "the server refused to run the command", started) }

        var stdout = Data(), stderr = Data()
        let input = stdin ?? Data()
        var written = 0
        var eofSent = false
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var progressed = false
            if !eofSent {
                if written < input.count {
                    let n = input.withUnsafeBytes { raw in
                        libssh2_channel_write_ex(channel, 0,
                                                 raw.baseAddress!.advanced(by: written).assumingMemoryBound(to: CChar.self),
                                                 min(input.count - written, 65536))
                    }
                    if n > 0 { written += n; progressed = true }
                    else if n != Int(LIBSSH2_ERROR_EAGAIN) && n < 0 {
                        // The command may have exited without reading its input; stop feeding it.
                        written = input.count
                    }
                }
                if written >= input.count {
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

    /// Writes `source` to `remotePath` so that readers see either the old file or the whole new one: the bytes
    /// go to a temporary file beside it (fsynced), which gets its owner and mode and is then renamed into place.
    /// Missing folders on the way are made (mode 0755), through SFTP for root and by the placing script under sudo
    /// otherwise, so a fresh host needs no `mkdir` command first.
    /// A failure leaves no temporary file behind. Non-root logins stage the bytes in their home and use sudo.
    /// Temporary names are `.<name>.provision-<random>`: `temporaryPattern` finds leftovers of a killed run.
    public func upload(_ source: UploadSource, to remotePath: String, mode: Int? = 0o644, owner: String? = nil,
                       backup: Bool = false, timeout: Double? = nil) async throws {
        let token = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let folder = (remotePath as NSString).deletingLastPathComponent
        let base = (remotePath as NSString).lastPathComponent
        let temporary = (folder.isEmpty ? "" : folder + "/") + ".\(base).provision-\(token)"
        let asRoot = options.user == "root"
        let staging = asRoot ? temporary : ".provision-upload-\(base)-\(token)"
        try await perform(timeout: timeout) { op in try self.sftpWrite(source, to: staging, makeFolders: asRoot, op: op) }
        let q = ShellQuote.quote
        var steps: [String] = []
        if !asRoot && !folder.isEmpty { steps.append("mkdir -p \(q(folder))") }
        // Leftovers of an upload to the same path that was killed midway go first.
        steps += ["for f in \(Self.temporaryPattern(for: remotePath)); do [ \"$f\" = \(q(temporary)) ] || rm -f \"$f\"; done"]
        // The staging copy is relative to the login's home, which is also the working directory sudo keeps.
        if !asRoot { steps.append("cp \(q(staging)) \(q(temporary))") }
        if let owner { steps.append("chown \(q(owner)) \(q(temporary))") }
        if let mode { steps.append("chmod 0\(String(mode, radix: 8)) \(q(temporary))") }
        // The previous file is kept once as <path>.provision.bak (apt and sysctl skip *.bak names).
        if backup { steps.append("{ [ ! -f \(q(remotePath)) ] || cp \(q(remotePath)) \(q(remotePath + ".provision.bak")); }") }
        steps.append("mv -f \(q(temporary)) \(q(remotePath))")
        var script = "{ " + steps.joined(separator: " && ") + "; } || { rc=$?; rm -f \(q(temporary)); exit $rc; }"
        if !asRoot { script = "trap 'rm -f \(q(staging))' EXIT; " + script }
        let result = try await run(script, privileged: !asRoot, timeout: timeout)
        guard result.succeeded else {
            throw SSHError(.sftp, "\(options.name): placing \(remotePath) failed (\(result.statusDescription)): \(result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        counters.withLock { $0.uploads += 1 }
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
            throw failure(.sftp, "cannot start SFTP", libssh2_session_last_errno(session))
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
        return SSHError(.sftp, "\(options.name): \(what): \(reason)")
    }

    private func sftpWrite(_ source: UploadSource, to path: String, makeFolders: Bool, op: Operation) throws {
        let sftp = try sftpSession(op)
        let flags = UInt(LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC | LIBSSH2_FXF_EXCL)
        let create = {
            try self.retryPointer(op, {
                libssh2_sftp_open_ex(sftp, path, UInt32(path.utf8.count), flags, 0o600, LIBSSH2_SFTP_OPENFILE)
            })
        }
        var opened = try create()
        // The folder is made only when the file cannot be created without it: one SFTP round trip per missing
        // folder, and nothing at all on a host that has them.
        if opened == nil, makeFolders, Self.missingPath(libssh2_sftp_last_error(sftp)) {
            try makeFolder((path as NSString).deletingLastPathComponent, sftp: sftp, op: op)
            opened = try create()
        }
        guard let handle = opened else { throw sftpError(sftp, "cannot create \(path)") }
        var handleOpen = true
        do {
            defer { if handleOpen { _ = try? retry(op) { libssh2_sftp_close_handle(handle) } } }
            var reader = try ChunkReader(source)
            // libssh2 pipelines writes from one buffer and reports bytes acknowledged; keep the unacknowledged
            // tail in place and refill behind it.
            let capacity = 4 << 20
            let window = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
            defer { window.deallocate() }
            var start = 0, end = 0, exhausted = false
            while true {
                if !exhausted && end < capacity {
                    if start > 0 && start == end { start = 0; end = 0 }
                    let n = try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: window[end..<capacity]))
                    if n == 0 { exhausted = true } else { end += n }
                }
                if start == end && exhausted { break }
                let n = libssh2_sftp_write(handle, window.baseAddress!.advanced(by: start).assumingMemoryBound(to: CChar.self),
                                           end - start)
                if n == Int(LIBSSH2_ERROR_EAGAIN) { try waitForSocket(op); continue }
                if n < 0 { throw sftpError(sftp, "writing \(path) failed") }
                start += n
                if start > capacity / 2 && !exhausted {
                    // Slide the unacknowledged bytes to the front to make room for more.
                    let remaining = end - start
                    window.baseAddress!.copyMemory(from: window.baseAddress!.advanced(by: start), byteCount: remaining)
                    start = 0
                    end = remaining
                }
            }
            if try retry(op, { libssh2_sftp_fsync(handle) }) != 0 { throw sftpError(sftp, "syncing \(path) failed") }
            handleOpen = false
            if try retry(op, { libssh2_sftp_close_handle(handle) }) != 0 { throw sftpError(sftp, "closing \(path) failed") }
        } catch {
            _ = try? retry(op) { libssh2_sftp_unlink_ex(sftp, path, UInt32(path.utf8.count)) }
            throw error
        }
    }

    private static func missingPath(_ code: UInt) -> Bool {
        code == UInt(LIBSSH2_FX_NO_SUCH_FILE) || code == UInt(LIBSSH2_FX_NO_SUCH_PATH)
    }

    /// `mkdir -p` over SFTP: the folder, after whichever of its parents are missing.
    private func makeFolder(_ folder: String, sftp: OpaquePointer, op: Operation) throws {
        guard !folder.isEmpty, folder != "/" else { return }
        let mkdir = { try self.retry(op) { libssh2_sftp_mkdir_ex(sftp, folder, UInt32(folder.utf8.count), 0o755) } }
        if try mkdir() == 0 { return }
        let code = libssh2_sftp_last_error(sftp)
        if Self.missingPath(code) {
            try makeFolder((folder as NSString).deletingLastPathComponent, sftp: sftp, op: op)
            if try mkdir() == 0 { return }
        }
        // Made meanwhile by someone else, or there already (sftp-server reports that as a plain failure).
        var attributes = LIBSSH2_SFTP_ATTRIBUTES()
        let isFolder = try retry(op) {
            libssh2_sftp_stat_ex(sftp, folder, UInt32(folder.utf8.count), LIBSSH2_SFTP_STAT, &attributes)
        } == 0 && attributes.permissions & UInt(LIBSSH2_SFTP_S_IFMT) == UInt(LIBSSH2_SFTP_S_IFDIR)
        if !isFolder { throw sftpError(sftp, "cannot create the folder \(folder)") }
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
                let op = Operation(id: -1, deadline: ContinuousClock.now + .seconds(2))
                if let sftp = self.sftp { _ = try? self.retry(op) { libssh2_sftp_shutdown(sftp) } }
                _ = try? self.retry(op) { libssh2_session_disconnect_ex(self.session, SSH_DISCONNECT_BY_APPLICATION, "bye", "") }
                libssh2_session_free(self.session)
                self.socket.close()
            }
        }
    }
}

/// Reads an upload source in pieces, so a large file never sits in memory whole.
private struct ChunkReader {
    private let data: Data?
    private var offset = 0
    private let fd: Int32

    init(_ source: SSHConnection.UploadSource) throws {
        switch source {
        case .data(let data):
            self.data = data
            fd = -1
        case .file(let path):
            data = nil
            fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw SSHError(.sftp, "cannot read \(path): \(String(cString: strerror(errno)))") }
        }
    }

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if let data {
            let n = min(buffer.count, data.count - offset)
            if n > 0 {
                data.withUnsafeBytes { raw in
                    buffer.baseAddress!.copyMemory(from: raw.baseAddress!.advanced(by: offset), byteCount: n)
                }
            }
            offset += n
            return n
        }
        let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
        if n < 0 { throw SSHError(.sftp, "reading the local file failed: \(String(cString: strerror(errno)))") }
        if n == 0 { Glibc.close(fd) }
        return n
    }
}

