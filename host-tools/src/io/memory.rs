//! The memory budget: how many bytes a command may plan to hold before it allocates
//! them, so that a hostile size (`shapes:count=10000000000`, a billion-unit layer)
//! is a one-line error instead of the kernel's out-of-memory kill.
//!
//! The budget is half of this machine's physical memory (`MemTotal` of
//! `/proc/meminfo`; 8 GiB where that cannot be read), or the command line's
//! `--memory-budget SIZE` ([`set_budget`]), or `MICROCNN_MEMORY_BUDGET` (bytes, or
//! with a `K`, `M` or `G` suffix, powers of 1,024), the flag first.

use anyhow::{bail, Result};
use std::sync::OnceLock;

/// Bytes a dataset holds per pixel and channel: images are kept as bytes and turned
/// into `f32` a batch at a time (see [`crate::data::dataset`]).
pub const DATASET_BYTES_PER_VALUE: u64 = 1;

/// The bytes `count` images of `shape` take in a dataset (`None`: beyond `u64`).
pub fn dataset_bytes(count: usize, shape: [usize; 3]) -> Option<u64> {
    shape.iter().try_fold(count as u64, |acc, &d| acc.checked_mul(d as u64))?.checked_mul(DATASET_BYTES_PER_VALUE)
}

/// This process's peak resident memory in bytes (`VmHWM` of `/proc/self/status`), where
/// the system reports it (Linux).
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib =
        status.lines().find_map(|l| l.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())?;
    kib.checked_mul(1024)
}

/// [`peak_rss`] for people: `"peak RSS 1.23 GB (1,174 MiB)"`-style, or `"peak RSS n/a"`.
pub fn peak_rss_line() -> String {
    match peak_rss() {
        Some(bytes) => format!("peak RSS {:.2} GB ({} MiB)", bytes as f64 / 1e9, bytes >> 20),
        None => "peak RSS n/a".to_string(),
    }
}

static FLAG: OnceLock<u64> = OnceLock::new();

/// Sets the budget for this process (the `--memory-budget` flag); it wins over
/// `MICROCNN_MEMORY_BUDGET`. Only the first call counts.
pub fn set_budget(bytes: u64) {
    let _ = FLAG.set(bytes);
}

/// The budget in bytes (see the module doc).
pub fn budget() -> Result<u64> {
    if let Some(&bytes) = FLAG.get() {
        return Ok(bytes);
    }
    if let Some(value) = std::env::var_os("MICROCNN_MEMORY_BUDGET") {
        let text = value.to_string_lossy();
        return parse_size(&text).ok_or_else(|| {
            anyhow::anyhow!("MICROCNN_MEMORY_BUDGET={text}: expected bytes, or a number with K, M or G")
        });
    }
    let total_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        text.lines().find_map(|l| l.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
    });
    Ok(total_kib.map_or(8 << 30, |kib| kib * 1024 / 2))
}

/// `123`, `64K`, `512M`, `3G` (powers of 1,024).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_uppercase()),
        _ => (text, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => return None,
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Refuses to plan `bytes` (`None`: beyond `u64`) for `what` when they exceed the
/// budget; the error states both figures.
pub fn check(what: &str, bytes: Option<u64>) -> Result<()> {
    let budget = budget()?;
    match bytes {
        Some(b) if b <= budget => Ok(()),
        Some(b) => bail!(
            "{what} needs {:.1} GiB, more than the memory budget of {:.1} GiB (half the machine's memory unless --memory-budget or MICROCNN_MEMORY_BUDGET sets it)",
            b as f64 / f64::from(1 << 30),
            budget as f64 / f64::from(1 << 30)
        ),
        None => bail!("{what} is too large to hold in memory"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("3g"), Some(3 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("5T"), None);
    }

    #[test]
    fn beyond_the_budget_is_an_error_naming_both_figures() {
        assert!(check("small", Some(1024)).is_ok());
        let err = check("shapes", Some(u64::MAX / 2)).unwrap_err().to_string();
        assert!(err.starts_with("shapes needs ") && err.contains("memory budget"), "{err}");
        assert!(check("huge", None).unwrap_err().to_string().contains("too large"));
    }

    #[test]
    fn a_dataset_costs_one_byte_per_value() {
        assert_eq!(dataset_bytes(100_000, [96, 96, 3]), Some(2_764_800_000));
        assert_eq!(dataset_bytes(usize::MAX, [2, 1, 1]), None);
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        let line = peak_rss_line();
        if cfg!(target_os = "linux") {
            let bytes = peak_rss().expect("VmHWM");
            assert!(bytes > 1 << 20, "{bytes}");
            assert!(line.starts_with("peak RSS ") && line.ends_with(" MiB)"), "{line}");
        } else {
            assert_eq!(line, "peak RSS n/a");
        }
    }
}
