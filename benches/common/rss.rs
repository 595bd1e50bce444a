//! Peak resident memory of this process, shared by the benchmarks that measure it in a child.

/// `VmHWM` of this process in KiB (0 where `/proc` is missing).
pub fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
