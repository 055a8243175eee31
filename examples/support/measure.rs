//! Measuring helpers shared by the benchmarks (`examples/bench.rs`, `examples/extract_bench.rs`).

use anyhow::{Context, Result};

/// The value at quantile `p` (0 to 1) of `sorted`, by nearest rank; 0 when there are no samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Busy and total CPU ticks of every core since boot, from /proc/stat: the whole machine (worker, jails, mail
/// servers, Postgres). The jails run as other uids in their own pid namespace and are reparented away when they
/// end, so no rusage of ours sees them; these counters do. Busy is everything but idle and iowait.
pub fn machine_ticks() -> Result<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    // user nice system idle iowait irq softirq steal
    let f: Vec<f64> = line.split_whitespace().skip(1).take(8).map(|x| x.parse().unwrap_or(0.0)).collect();
    let total: f64 = f.iter().sum();
    let idle = f.get(3).copied().unwrap_or(0.0) + f.get(4).copied().unwrap_or(0.0);
    Ok((total - idle, total))
}
