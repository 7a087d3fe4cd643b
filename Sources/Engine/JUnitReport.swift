import Foundation

/// `verify`'s checks as JUnit XML, the format GitLab's test report widget reads (`artifacts:reports:junit`):
/// one testsuite per host, one testcase per check, a failure element carrying the reason and the fix.
public enum JUnitReport {
    public static func render(_ hosts: [HostVerification], name: String = "provision verify") -> String {
        let tests = hosts.reduce(0) { $0 + $1.cases.count }
        let failures = hosts.reduce(0) { $0 + $1.failures }
        let total = hosts.map(\.durationMs).max() ?? 0  // hosts run in parallel
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites name=\"\(attribute(name))\" tests=\"\(tests)\" failures=\"\(failures)\" errors=\"0\" time=\"\(seconds(total))\">\n"
        for host in hosts {
            xml += "  <testsuite name=\"\(attribute(host.name))\" tests=\"\(host.cases.count)\" failures=\"\(host.failures)\" errors=\"0\" skipped=\"0\" time=\"\(seconds(host.durationMs))\">\n"
            for check in host.cases {
                xml += "    <testcase classname=\"\(attribute(host.name))\" name=\"\(attribute(check.check + ": " + check.title))\" time=\"\(seconds(check.durationMs))\">\n"
                if check.passed {
                    xml += "      <system-out>\(text(check.message))</system-out>\n"
                } else {
                    let body = check.message + (check.fix.map { "\nfix: " + $0 } ?? "")
                    xml += "      <failure message=\"\(attribute(check.message))\" type=\"\(attribute(check.kind ?? "failure"))\">\(text(body))</failure>\n"
                }
                xml += "    </testcase>\n"
            }
            xml += "  </testsuite>\n"
        }
        xml += "</testsuites>\n"
        return xml
    }

    static func seconds(_ milliseconds: Int) -> String {
        String(format: "%.3f", Double(milliseconds) / 1000)
    }

    /// Character data: markup escaped, and characters XML 1.0 forbids (terminal escapes in a host's output) dropped.
    static func text(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            default: if allowed(scalar) { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }

    /// An attribute value in double quotes; line breaks kept as references, which attribute normalisation keeps.
    static func attribute(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "\n": out += "&#10;"
            case "\r": out += "&#13;"
            case "\t": out += "&#9;"
            default: if allowed(scalar) { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }

    private static func allowed(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x9, 0xA, 0xD, 0x20...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF: true
        default: false
        }
    }
}
