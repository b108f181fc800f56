//! Chooses the kernel family at compile time (never at run time on the chip).
//!
//! Stable rustc does not expose Arm's `dsp` target feature to `cfg`, so the build
//! script decides from the target: every ARMv7E-M core (Cortex-M4, M7) has the DSP
//! extension, ARMv8-M Mainline (M33, M35P, M55) has it only when the build says so
//! (`-C target-feature=+dsp` or a `target-cpu` of such a core). Setting
//! `MICROCNN_PORTABLE_KERNELS=1` builds the portable kernels on any target (to
//! measure them on the same emulated core).

use std::env;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(microcnn_arm_dsp)");
    println!("cargo::rerun-if-env-changed=MICROCNN_PORTABLE_KERNELS");
    let target = env::var("TARGET").unwrap_or_default();
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let portable = env::var("MICROCNN_PORTABLE_KERNELS").is_ok_and(|v| v == "1");
    let v8m_dsp = target.starts_with("thumbv8m.main")
        && (flags.contains("+dsp")
            || ["cortex-m33", "cortex-m35p", "cortex-m55", "cortex-m85"].iter().any(|cpu| flags.contains(cpu)));
    if !portable && (target.starts_with("thumbv7em") || v8m_dsp) {
        println!("cargo::rustc-cfg=microcnn_arm_dsp");
    }
}
