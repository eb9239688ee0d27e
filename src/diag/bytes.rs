//! Byte counts in words: the one spelling of a size that messages (limits, memory figures) and
//! reports (`modelc inspect`) share.
//!
//! Input: a count of bytes. Output: exact bytes below 1 KiB, else one decimal in binary units
//! up to EiB (`1.5 MiB`). Invariant: total (a `u64` always fits, in EiB).

/// `1610612736` → `1.5 GiB`; callers keep the exact byte count in the message beside it.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS.get(unit).copied().unwrap_or("EiB"))
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(1000), "1000 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
        assert_eq!(human_bytes(4 << 30), "4.0 GiB");
        assert_eq!(human_bytes(1 << 50), "1.0 PiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }
}
