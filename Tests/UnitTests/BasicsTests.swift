import Foundation
import Testing
import ProvisionBasics
import SSHTransport

@Suite struct ShellQuoteTests {
    @Test func safeWordsStayAsTheyAre() {
        #expect(ShellQuote.quote("/etc/rancher/k3s/config.yaml") == "/etc/rancher/k3s/config.yaml")
        #expect(ShellQuote.quote("v1.31.4+k3s1") == "v1.31.4+k3s1")
    }

    @Test func everythingElseIsSingleQuoted() {
        #expect(ShellQuote.quote("") == "''")
        #expect(ShellQuote.quote("a b") == "'a b'")
        #expect(ShellQuote.quote("it's") == "'it'\\''s'")
        #expect(ShellQuote.quote("$(reboot)") == "'$(reboot)'")
    }

    /// What sh makes of the quoted words is exactly the original words.
    @Test func roundTripsThroughARealShell() throws {
        let words = ["plain", "with space", "quote ' inside", "$HOME", "`id`", "a\nb", "*", "-n", "\\"]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "for w in \(ShellQuote.join(words)); do printf '%s\\0' \"$w\"; done"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let back = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        #expect(back == words)
    }
}

@Suite struct RedactorTests {
    @Test func masksEverySecretAndTheLongestFirst() {
        let redactor = Redactor(secrets: ["hunter2", "hunter2-extended", ""])
        #expect(redactor.redact("pw=hunter2-extended and hunter2") == "pw=[REDACTED] and [REDACTED]")
        #expect(redactor.redact("nothing here") == "nothing here")
    }
}

@Suite struct PrivilegeTests {
    @Test func rootNeedsNoSudo() {
        #expect(Privilege.wrap("id -u", user: "root", sudoPassword: "x") == .init(command: "id -u", stdinPrefix: nil))
    }

    @Test func passwordlessSudoNeverWaitsForAPrompt() {
        let wrapped = Privilege.wrap("id -u", user: "pi", sudoPassword: nil)
        #expect(wrapped.command == "sudo -n -- sh -c 'id -u'")
        #expect(wrapped.stdinPrefix == nil)
    }

    @Test func thePasswordTravelsOnStdinOnly() {
        let wrapped = Privilege.wrap("apt-get update", user: "pi", sudoPassword: "s3cret pass")
        #expect(!wrapped.command.contains("s3cret"))
        #expect(wrapped.stdinPrefix == "s3cret pass\n")
        #expect(wrapped.command.contains("sudo -k -S -p"))
    }
}

@Suite struct ConcurrencyTests {
    actor Gauge {
        var running = 0, peak = 0
        func enter() { running += 1; peak = max(peak, running) }
        func leave() { running -= 1 }
    }

    @Test func keepsOrderAndNeverExceedsTheLimit() async {
        let gauge = Gauge()
        let results = await concurrentMap(Array(0..<20), limit: 3) { value in
            await gauge.enter()
            try? await Task.sleep(for: .milliseconds(Int.random(in: 1...10)))
            await gauge.leave()
            return value * 2
        }
        #expect(results == (0..<20).map { $0 * 2 })
        let peak = await gauge.peak
        #expect(peak <= 3 && peak >= 2)
    }
}

@Suite struct SecretTests {
    @Test func aSecretNeverShowsItsValue() throws {
        let secret = Secret("glpat-hunter2")
        var dumped = ""
        dump(secret, to: &dumped)
        for shown in ["\(secret)", String(describing: secret), String(reflecting: secret), dumped, "\([secret])"] {
            #expect(!shown.contains("hunter2"), "\(shown)")
        }
        #expect("\(secret)" == "[REDACTED]")
        #expect(secret.revealed == "glpat-hunter2")
        let json = try JSONEncoder().encode(["token": secret])
        #expect(try JSONDecoder().decode([String: Secret].self, from: json)["token"] == secret)
    }
}
