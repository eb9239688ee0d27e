//! Resident memory of this process, for `modelc bench`: the baseline before a benchmark and
//! the peak during it.
//!
//! Input: the kernel's accounting in `/proc/self/status` (`VmRSS`, the resident set now, and
//! `VmHWM`, its high-water mark). Output: a [`Resident`] reading. Before a benchmark,
//! [`Resident::start`] reads the baseline and asks the kernel to restart the high-water mark
//! from the current resident set (writing `5` to `/proc/self/clear_refs`, Linux 4.0 and
//! later), so that the peak read after it is the benchmark's own and not the compiler's.
//! Where that file cannot be written the peak is the whole process's (never smaller than the
//! benchmark's), and [`Resident::peak_since_start`] says so. Off Linux, or without `/proc`,
//! both readings are `None` and `bench` reports no memory.

/// The process's resident set before a benchmark, and whether its peak was reset then.
#[derive(Clone, Copy, Debug)]
pub struct Resident {
    /// `VmRSS` before the benchmark, in bytes.
    pub baseline: u64,
    /// Whether the high-water mark still counts from the process's start (the reset failed).
    pub peak_since_start: bool,
}

/// The peak resident set of a benchmark against its baseline, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peak {
    pub baseline: u64,
    pub peak: u64,
}

impl Peak {
    /// The peak above the baseline (zero if the process shrank below it).
    pub fn above_baseline(&self) -> u64 {
        self.peak.saturating_sub(self.baseline)
    }
}

impl Resident {
    /// Reads the baseline and restarts the high-water mark; `None` without `/proc`.
    pub fn start() -> Option<Self> {
        let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        let baseline = read_status_kib("VmRSS")?.checked_mul(1024)?;
        Some(Self {
            baseline,
            peak_since_start: !reset,
        })
    }

    /// The high-water mark now, against the baseline; `None` without `/proc`.
    pub fn peak(&self) -> Option<Peak> {
        let peak = read_status_kib("VmHWM")?.checked_mul(1024)?;
        Some(Peak {
            baseline: self.baseline,
            peak: peak.max(self.baseline),
        })
    }
}

/// The value of a `KEY:  N kB` line of `/proc/self/status`, in KiB.
fn read_status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status_kib(&status, key)
}

/// The `KEY:` line's number in `status` (the text of `/proc/self/status`).
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let number = rest.trim().strip_suffix("kB")?.trim();
        number.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_read_by_key_in_kib() {
        let status =
            "Name:\tmodelc\nVmPeak:\t  200000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40960 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(51_234));
        assert_eq!(status_kib(status, "VmRSS"), Some(40_960));
        // A key is matched whole, not as a prefix of another.
        assert_eq!(status_kib(status, "Vm"), None);
        assert_eq!(status_kib(status, "VmSwap"), None);
        assert_eq!(status_kib("VmRSS:\tlots kB\n", "VmRSS"), None);
    }

    #[test]
    fn the_peak_grows_with_memory_the_process_touches() {
        let Some(start) = Resident::start() else {
            return; // no /proc on this system
        };
        let size = 64 << 20;
        let block = std::hint::black_box(vec![1u8; size]);
        let peak = start.peak().unwrap();
        drop(block);
        assert!(peak.peak >= peak.baseline);
        // Another test thread may free memory meanwhile, so allow some slack below 64 MiB.
        assert!(
            peak.above_baseline() >= size as u64 / 2,
            "peak {} baseline {}",
            peak.peak,
            peak.baseline
        );
    }
}
