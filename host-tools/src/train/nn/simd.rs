//! Wider vectors for the training kernels' element-wise loops, chosen at run time.
//!
//! The crate is built for the baseline x86-64 (SSE2, four f32 lanes). [`wide`] runs a
//! closure compiled a second time with AVX-512 enabled when the CPU has it (sixteen
//! lanes), else the baseline build of the same closure. Only the vector width
//! changes: Rust never fuses `a * b + c` into one rounding without being asked
//! (`mul_add`), and the loops keep their order of additions, so both builds give the
//! same bits (the tests run whichever this machine picks, and
//! `same_bits_with_and_without_avx512` compares the two).
//!
//! This is the one place in training (with `gemm.rs`) that uses `unsafe`.

/// Runs `f`, compiled for AVX-512 when this CPU has it. Mark the closure
/// `#[inline(always)]` so that its body is compiled inside the wide build.
#[inline(always)]
pub fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512() {
            // SAFETY: `in_avx512` only needs the CPU to support AVX-512F, checked just above.
            return unsafe { in_avx512(f) };
        }
    }
    f()
}

/// What [`avx512`] found: 0 not yet known, 1 no, 2 yes.
#[cfg(target_arch = "x86_64")]
static STATE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Whether [`wide`] takes the AVX-512 build (always false off x86-64).
#[cfg(not(target_arch = "x86_64"))]
pub fn avx512() -> bool {
    false
}

/// Whether [`wide`] takes the AVX-512 build.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn avx512() -> bool {
    use std::sync::atomic::Ordering;
    match STATE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let yes = std::is_x86_feature_detected!("avx512f");
            STATE.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
    }
}

/// Makes [`wide`] take the baseline build (`true`) or detect again (`false`), so that
/// tests can compare the two builds.
#[cfg(all(test, target_arch = "x86_64"))]
pub fn force_baseline(on: bool) {
    STATE.store(if on { 1 } else { 0 }, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn in_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}
