import CGlibcMalloc
import ProvisionCommands

@main enum Provision {
    static func main() async {
        // One thread per SSH connection: glibc would give most of them a malloc arena of their own (up to 8 per
        // core), each keeping pages it touched once. Two arenas take the 50-host fresh converge's peak RSS from
        // ~63 to ~58 MiB with no measurable CPU cost (measured by hand; docs/benchmarks.md, "Malloc arenas").
        _ = mallopt(M_ARENA_MAX, 2)
        await ProvisionCommand.main()
    }
}
