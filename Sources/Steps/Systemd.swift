/// Unit state read with one `systemctl show` per probe instead of an `is-active` and an `is-enabled` per unit: each
/// systemctl start costs the host a process and a bus round trip, and a probe runs on every host of every run.
enum Systemd {
    /// `<label> <value>...`: the `properties` of one unit, in the order given, from a single `systemctl show`. For
    /// ActiveState and UnitFileState that is what `is-active` and `is-enabled` print (UnitFileState is empty for a
    /// unit without a unit file, so put it last). systemd does not promise the order of `show`'s lines.
    static func stateLine(_ unit: String, label: String, properties: [String]) -> String {
        let assignments = properties.enumerated().map { "$1==\"\($0.element)\"{v\($0.offset)=$2} " }.joined()
        let fields = properties.indices.map { "\" \" v\($0)" }.joined()
        return "systemctl show -p \(properties.joined(separator: ",")) \(unit) 2>/dev/null | awk -F= "
            + "'\(assignments)END{print \"\(label)\"\(fields)}'"
    }

    /// For each of `units` (with their `.service` suffix): `<name without .service> <MainPID> <ActiveState>
    /// <UnitFileState>`, UnitFileState last since it may be empty. One systemctl call for all of them.
    static func serviceLines(_ units: [String]) -> String {
        "systemctl show -p Id,MainPID,ActiveState,UnitFileState \(units.joined(separator: " ")) 2>/dev/null | awk -F= "
            + "'function out() { if (id != \"\") print id, (p == \"\" ? 0 : p), a, e; id = p = a = e = \"\" } "
            + "$0 == \"\" { out(); next } $1==\"Id\" { id = $2; sub(/\\.service$/, \"\", id) } $1==\"MainPID\" { p = $2 } "
            + "$1==\"ActiveState\" { a = $2 } $1==\"UnitFileState\" { e = $2 } END { out() }'"
    }
}
