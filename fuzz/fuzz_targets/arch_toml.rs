//! Untrusted architecture files (`--arch FILE.toml`) into `Arch::parse`: any panic,
//! overflow, ASan report, timeout or OOM is a failure; errors are the expected outcome.
//! Parsing does not build the network (weights are allocated by `Network::new`, whose
//! size limits are issue 10's), so this target covers the TOML reader and the checks of
//! keys and values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use microcnn_tools::train::arch::Arch;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(arch) = Arch::parse(text) {
        // A parsed architecture prints without panicking.
        let _ = format!("{arch:?}");
    }
});
