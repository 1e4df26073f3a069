//! What `/proc` says about a process and the machine: resident memory, CPU
//! time, kernel TCP memory, the file-system type under a path, and the
//! open-file limit.
//!
//! CPU times in `/proc/<pid>/stat` and `/proc/stat` are in `USER_HZ` ticks,
//! which Linux fixes at 100 per second for user space on every
//! architecture this runs on.

use hdrhistogram::Histogram;
use std::path::Path;

/// `USER_HZ`: clock ticks per second in `/proc` CPU times.
pub(crate) const TICKS_PER_SEC: u64 = 100;

/// Which process to read: a pid, or this one.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pid {
    /// This process.
    SelfProc,
    /// Another process.
    Of(u32),
}

impl Pid {
    fn dir(self) -> String {
        match self {
            Self::SelfProc => "/proc/self".to_owned(),
            Self::Of(pid) => format!("/proc/{pid}"),
        }
    }
}

fn status_kib(pid: Pid, field: &str) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("{}/status", pid.dir()))?;
    status
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .ok_or_else(|| std::io::Error::other(format!("no {field} in /proc status")))
}

/// Resident set size, KiB (`VmRSS`).
pub(crate) fn rss_kib(pid: Pid) -> std::io::Result<u64> {
    status_kib(pid, "VmRSS")
}

/// Peak resident set size, KiB (`VmHWM`).
pub(crate) fn peak_rss_kib(pid: Pid) -> std::io::Result<u64> {
    status_kib(pid, "VmHWM")
}

/// User plus system CPU time of all the process's threads, in ticks.
pub(crate) fn cpu_ticks(pid: Pid) -> std::io::Result<u64> {
    let stat = std::fs::read_to_string(format!("{}/stat", pid.dir()))?;
    // The command name (field 2) may hold spaces; fields after it are plain.
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| std::io::Error::other("malformed /proc stat"))?;
    // After the name: state is field 3, utime field 14, stime field 15.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| -> std::io::Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| std::io::Error::other("malformed /proc stat"))
    };
    Ok(field(14)? + field(15)?)
}

/// The whole machine's CPU ticks: (busy, total) over all cores since boot.
pub(crate) fn machine_ticks() -> std::io::Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat
        .lines()
        .next()
        .filter(|l| l.starts_with("cpu "))
        .ok_or_else(|| std::io::Error::other("no cpu line in /proc/stat"))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    // idle and iowait are fields 4 and 5.
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    Ok((total.saturating_sub(idle), total))
}

/// Pages of memory the kernel holds for TCP sockets (`/proc/net/sockstat`).
pub(crate) fn tcp_mem_pages() -> std::io::Result<u64> {
    let sockstat = std::fs::read_to_string("/proc/net/sockstat")?;
    sockstat
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| {
            let mut words = l.split_whitespace();
            while let Some(w) = words.next() {
                if w == "mem" {
                    return words.next()?.parse().ok();
                }
            }
            None
        })
        .ok_or_else(|| std::io::Error::other("no TCP mem in /proc/net/sockstat"))
}

/// The type of the file system `path` lives on (`ext4`, `tmpfs`, …), from
/// the longest matching mount point.
pub(crate) fn fs_type(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return "unknown".to_owned();
    };
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(point)
                .then(|| (point.len(), kind.to_owned()))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".to_owned(), |(_, kind)| kind)
}

/// Latencies of `n` 4 KiB appends each followed by `fdatasync`, in a
/// scratch file in `dir`: the floor under any durable commit there.
pub(crate) fn fsync_probe(dir: &Path, n: usize) -> std::io::Result<Histogram<u64>> {
    use std::io::Write as _;
    let path = dir.join("fsync-probe.tmp");
    let mut file = std::fs::File::create(&path)?;
    let mut h = crate::drive::new_histogram();
    let block = [0x5au8; 4096];
    for _ in 0..n {
        file.write_all(&block)?;
        let started = std::time::Instant::now();
        file.sync_data()?;
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        h.saturating_record(us.max(1));
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(h)
}

/// Raises this process's open-file limit towards `want` (children inherit
/// it) and returns the soft limit now in force and the hard limit.
pub(crate) fn raise_nofile(want: u64) -> (u64, u64) {
    let soft = rlimit::increase_nofile_limit(want).unwrap_or(0);
    let hard = rlimit::Resource::NOFILE
        .get()
        .map(|(_, hard)| hard)
        .unwrap_or(soft);
    (soft, hard)
}

/// CPU ticks of `root` and its direct children (PostgreSQL's postmaster
/// and its backends), found by scanning `/proc`.
pub(crate) fn tree_cpu_ticks(root: u32) -> std::io::Result<u64> {
    let mut total = cpu_ticks(Pid::Of(root))?;
    for entry in std::fs::read_dir("/proc")? {
        let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // A process may exit between the listing and the read.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(root) {
            total += cpu_ticks(Pid::Of(pid)).unwrap_or(0);
        }
    }
    Ok(total)
}

/// A CPU-time sample of the pool, the store's server (if it has one), this
/// process and the machine.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuSample {
    pool: u64,
    store: Option<u64>,
    me: u64,
    busy: u64,
    total: u64,
    at: std::time::Instant,
}

/// CPU use between two samples, in cores (1.0 = one core busy).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub(crate) struct CpuUse {
    /// The pool process.
    pub(crate) pool: f64,
    /// The store's server processes (PostgreSQL); SQLite runs in the pool.
    pub(crate) store: Option<f64>,
    /// The load generator.
    pub(crate) loadgen: f64,
    /// Every process on the machine.
    pub(crate) machine: f64,
    /// The machine's cores.
    pub(crate) cores: f64,
}

impl CpuSample {
    /// Samples now; `store` is the store server's main process.
    pub(crate) fn take(pool: u32, store: Option<u32>) -> Self {
        let (busy, total) = machine_ticks().unwrap_or((0, 0));
        Self {
            pool: cpu_ticks(Pid::Of(pool)).unwrap_or(0),
            store: store.map(|pid| tree_cpu_ticks(pid).unwrap_or(0)),
            me: cpu_ticks(Pid::SelfProc).unwrap_or(0),
            busy,
            total,
            at: std::time::Instant::now(),
        }
    }

    /// When the sample was taken.
    pub(crate) fn at(&self) -> std::time::Instant {
        self.at
    }

    /// The use from `self` until `later`.
    pub(crate) fn until(&self, later: &Self) -> CpuUse {
        let secs = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let cores = |ticks: u64| ticks as f64 / TICKS_PER_SEC as f64 / secs;
        let total = later.total.saturating_sub(self.total) as f64;
        let busy = later.busy.saturating_sub(self.busy) as f64;
        let ncores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) as f64;
        CpuUse {
            pool: cores(later.pool.saturating_sub(self.pool)),
            store: self
                .store
                .zip(later.store)
                .map(|(a, b)| cores(b.saturating_sub(a))),
            loadgen: cores(later.me.saturating_sub(self.me)),
            machine: if total > 0.0 {
                busy / total * ncores
            } else {
                0.0
            },
            cores: ncores,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        assert!(rss_kib(Pid::SelfProc).unwrap() > 0);
        assert!(peak_rss_kib(Pid::SelfProc).unwrap() >= rss_kib(Pid::SelfProc).unwrap() / 2);
        cpu_ticks(Pid::SelfProc).unwrap();
        assert!(tree_cpu_ticks(std::process::id()).unwrap() >= cpu_ticks(Pid::SelfProc).unwrap());
        let (busy, total) = machine_ticks().unwrap();
        assert!(total >= busy && total > 0);
        tcp_mem_pages().unwrap();
        assert_ne!(fs_type(Path::new("/")), "unknown");
        let dir = std::env::temp_dir();
        assert_eq!(fsync_probe(&dir, 3).unwrap().len(), 3);
    }
}
