//! This machine's host metrics from /proc: uptime, memory, swap, CPU steal (two samples of
//! /proc/stat a second apart), load, and the disks of real filesystems.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;

use crate::model::{Disk, Host};

const REAL_FILESYSTEMS: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "vfat", "f2fs", "jfs", "reiserfs",
];

fn read(proc_root: &Path, name: &str) -> Result<String, String> {
    let p = proc_root.join(name);
    std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
}

/// kB values of /proc/meminfo by key.
pub fn parse_meminfo(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// (steal, total) jiffies from the aggregate `cpu ` line. Guest time is already counted in
/// user time, so it is left out of the total.
pub fn parse_cpu_line(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 8 {
        return None;
    }
    let total: u64 = v.iter().take(8).sum();
    Some((v[7], total))
}

pub fn steal_pct(a: (u64, u64), b: (u64, u64)) -> Option<f64> {
    let dt = b.1.checked_sub(a.1)?;
    let ds = b.0.checked_sub(a.0)?;
    (dt > 0).then(|| ds as f64 / dt as f64 * 100.0)
}

#[allow(unsafe_code)]
fn statvfs(mount: &str) -> Option<(u64, u64)> {
    let c = std::ffi::CString::new(mount).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a writable statvfs the call fills in.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    if rc != 0 {
        return None;
    }
    let frsize = s.f_frsize as u64;
    let size = s.f_blocks as u64 * frsize;
    let avail_to_root = s.f_bfree as u64 * frsize;
    Some((size, size.saturating_sub(avail_to_root)))
}

pub fn host(proc_root: &Path) -> Result<Host, String> {
    let uptime = read(proc_root, "uptime")?;
    let uptime_s = uptime
        .split_whitespace()
        .next()
        .and_then(|x| x.parse::<f64>().ok())
        .and_then(|x| crate::units::checked_uptime(x).ok());
    let meminfo = read(proc_root, "meminfo")?;
    let stat_a = read(proc_root, "stat")
        .ok()
        .and_then(|s| parse_cpu_line(&s));
    std::thread::sleep(Duration::from_secs(1));
    let stat_b = read(proc_root, "stat")
        .ok()
        .and_then(|s| parse_cpu_line(&s));
    let cpu_steal_pct = match (stat_a, stat_b) {
        (Some(a), Some(b)) => steal_pct(a, b).map(|p| (p * 10.0).round() / 10.0),
        _ => None,
    };
    let load1 = read(proc_root, "loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok());
    let mut disks = Vec::new();
    if let Ok(mounts) = read(proc_root, "mounts") {
        let mut seen = std::collections::BTreeSet::new();
        for line in mounts.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [device, mount, fs, ..] = parts[..] else {
                continue;
            };
            if !REAL_FILESYSTEMS.contains(&fs) || !seen.insert(device.to_string()) {
                continue;
            }
            if let Some((size, used)) = statvfs(mount) {
                disks.push(Disk {
                    mount: mount.to_string(),
                    fs_type: Some(fs.to_string()),
                    size_bytes: Some(size),
                    used_bytes: Some(used),
                    used_pct: (size > 0)
                        .then(|| (used as f64 / size as f64 * 1000.0).round() / 10.0),
                });
            }
        }
    }
    let swap_total = parse_meminfo(&meminfo, "SwapTotal");
    let swap_free = parse_meminfo(&meminfo, "SwapFree");
    Ok(Host {
        hostname: Some(crate::config::local_hostname()),
        uptime_s,
        boot_time: uptime_s.and_then(|u| crate::units::boot_time(Utc::now(), u)),
        clock_offset_ms: None,
        ntp_synced: None,
        cpu_count: std::thread::available_parallelism()
            .ok()
            .map(|n| n.get() as u32),
        mem_total_bytes: parse_meminfo(&meminfo, "MemTotal"),
        mem_available_bytes: parse_meminfo(&meminfo, "MemAvailable"),
        mem_free_bytes: parse_meminfo(&meminfo, "MemFree"),
        swap_total_bytes: swap_total,
        swap_used_bytes: match (swap_total, swap_free) {
            (Some(t), Some(f)) => Some(t.saturating_sub(f)),
            _ => None,
        },
        swap_cached_bytes: parse_meminfo(&meminfo, "SwapCached"),
        cpu_steal_pct,
        load1,
        disks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_text() {
        let mem = "MemTotal:       24000000 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(parse_meminfo(mem, "MemTotal"), Some(24_000_000 * 1024));
        assert_eq!(parse_meminfo(mem, "SwapTotal"), None);
        let a = parse_cpu_line("cpu  100 0 50 1000 10 0 5 20 0 0\n").unwrap();
        let b = parse_cpu_line("cpu  150 0 60 1100 10 0 5 30 0 0\n").unwrap();
        assert_eq!(a, (20, 1185));
        assert!((steal_pct(a, b).unwrap() - 10.0 / 170.0 * 100.0).abs() < 1e-9);
    }

    #[test]
    fn reads_this_machine() {
        let h = host(Path::new("/proc")).unwrap();
        assert!(h.uptime_s.unwrap() > 0);
        assert!(h.mem_total_bytes.unwrap() > h.mem_available_bytes.unwrap());
        assert!(h.cpu_steal_pct.is_some());
    }
}
