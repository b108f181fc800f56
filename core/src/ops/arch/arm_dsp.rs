//! Primitives of the Arm DSP extension (ARMv7E-M: Cortex-M4, M7; ARMv8-M Mainline with
//! DSP: M33, M35P, M55): the one module of `microcnn-core` with `unsafe` code.
//!
//! Each function is one or two register-only instructions in an `asm!` block: no
//! memory access, no stack, nothing outside its operands. They are sound on any core
//! that implements the instructions, which `build.rs` guarantees by compiling this
//! module only for such targets. The DSP intrinsics of `core::arch::arm` are
//! nightly-only; `asm!` is stable.
//!
//! Lane notation: a `u32` holds two `i16` lanes (bits 0–15 low, 16–31 high) or four
//! `i8` lanes (byte 0 lowest).
#![allow(unsafe_code)]

use core::arch::asm;

/// `SXTB16`: bytes 0 and 2 of `x`, sign-extended into the low and high `i16` lanes.
#[inline(always)]
pub fn sxtb16(x: u32) -> u32 {
    let r: u32;
    // SAFETY: register-only DSP instruction, available on this target (build.rs); it
    // reads `x`, writes `r` and touches neither memory, stack nor flags.
    unsafe {
        asm!("sxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x, options(pure, nomem, nostack, preserves_flags))
    };
    r
}

/// `SXTB16 …, ROR #8`: bytes 1 and 3 of `x`, sign-extended into the low and high lanes.
#[inline(always)]
pub fn sxtb16_ror8(x: u32) -> u32 {
    let r: u32;
    // SAFETY: as in `sxtb16`.
    unsafe {
        asm!("sxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x, options(pure, nomem, nostack, preserves_flags))
    };
    r
}

/// `SMLAD`: `acc + lo(a)·lo(b) + hi(a)·hi(b)` on the signed `i16` lanes. The callers'
/// sums stay far inside `i32` (see the accumulator bounds where they are used); on
/// overflow the instruction wraps and sets the sticky Q flag, which nothing reads.
#[inline(always)]
pub fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let r: i32;
    // SAFETY: register-only DSP instruction (build.rs); it may set the Q flag, so the
    // block does not claim to preserve flags.
    unsafe {
        asm!("smlad {r}, {a}, {b}, {acc}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b, acc = in(reg) acc, options(pure, nomem, nostack))
    };
    r
}

/// `SADD16`: lane-wise `i16` addition (wrapping; callers keep lanes in range).
#[inline(always)]
pub fn sadd16(a: u32, b: u32) -> u32 {
    let r: u32;
    // SAFETY: register-only DSP instruction (build.rs); it sets the GE flags, so the
    // block does not claim to preserve flags.
    unsafe {
        asm!("sadd16 {r}, {a}, {b}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b, options(pure, nomem, nostack))
    };
    r
}

/// `SMMULR`: `(a·b + 2^31) >> 32`, the rounded high word of the signed 64-bit product.
#[inline(always)]
pub fn smmulr(a: i32, b: i32) -> i32 {
    let r: i32;
    // SAFETY: register-only DSP instruction (build.rs); it reads `a` and `b`, writes
    // `r` and touches neither memory, stack nor flags.
    unsafe {
        asm!("smmulr {r}, {a}, {b}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b, options(pure, nomem, nostack, preserves_flags))
    };
    r
}

/// Lane-wise signed maximum of four `i8` lanes: `SSUB8` sets a GE bit per lane where
/// `a ≥ b`, `SEL` then picks `a`'s byte there and `b`'s elsewhere.
#[inline(always)]
pub fn max_i8x4(a: u32, b: u32) -> u32 {
    let r: u32;
    // SAFETY: two register-only DSP instructions in one block, so no other code can
    // change the GE flags between them; `t` is a scratch register of the block.
    unsafe {
        asm!(
            "ssub8 {t}, {a}, {b}",
            "sel {r}, {a}, {b}",
            r = lateout(reg) r,
            t = out(reg) _,
            a = in(reg) a,
            b = in(reg) b,
            options(pure, nomem, nostack)
        )
    };
    r
}

/// Lane-wise signed minimum of four `i8` lanes (`SSUB8` then `SEL` with the operands
/// swapped).
#[inline(always)]
pub fn min_i8x4(a: u32, b: u32) -> u32 {
    let r: u32;
    // SAFETY: as in `max_i8x4`.
    unsafe {
        asm!(
            "ssub8 {t}, {a}, {b}",
            "sel {r}, {b}, {a}",
            r = lateout(reg) r,
            t = out(reg) _,
            a = in(reg) a,
            b = in(reg) b,
            options(pure, nomem, nostack)
        )
    };
    r
}

/// Words between the two columns of an im2col buffer (its second column starts
/// `COLUMN_STRIDE` words after the first; [`dot_2x2_groups`] addresses it with an
/// immediate offset of `4 · COLUMN_STRIDE` bytes).
pub const COLUMN_STRIDE: usize = 512;

/// Two filters times two im2col columns over `groups` groups of four values, added
/// to `acc = [w0·c0, w0·c1, w1·c0, w1·c1]`.
///
/// `w0` and `w1` hold int8 weights (any alignment), `columns` the two columns: the
/// lane pairs `(x0, x2), (x1, x3)` of each group as words, column 1 starting at word
/// [`COLUMN_STRIDE`]. Stops (returning `acc`) when a slice is shorter than `groups`
/// needs. 23 instructions per 16 multiply-accumulates.
#[inline(always)]
pub fn dot_2x2_groups(w0: &[i8], w1: &[i8], columns: &[u32], groups: usize, acc: [i32; 4]) -> [i32; 4] {
    if groups == 0
        || w0.len() < 4 * groups
        || w1.len() < 4 * groups
        || 2 * groups > COLUMN_STRIDE
        || columns.len() < COLUMN_STRIDE + 2 * groups
    {
        return acc;
    }
    let [mut a00, mut a01, mut a10, mut a11] = acc;
    // SAFETY: the loop reads 4·groups bytes from w0 and from w1, and words
    // [0, 2·groups) and [COLUMN_STRIDE, COLUMN_STRIDE + 2·groups) of `columns`, all
    // inside the slices (checked above). Unaligned LDR is allowed on ARMv7E-M and
    // ARMv8-M Mainline; the column is word-aligned. The pointer and counter operands
    // are inout and discarded; the flags (SUBS) are clobbered, which `asm!` assumes.
    unsafe {
        asm!(
            "2:",
            "ldr {f0}, [{w0}], #4",
            "ldr {f1}, [{w1}], #4",
            "ldr {x}, [{c}]",
            "sxtb16 {t}, {f0}",
            "smlad {a00}, {t}, {x}, {a00}",
            "ldr {x}, [{c}, #2048]",
            "smlad {a01}, {t}, {x}, {a01}",
            "sxtb16 {t}, {f1}",
            "smlad {a11}, {t}, {x}, {a11}",
            "ldr {x}, [{c}]",
            "smlad {a10}, {t}, {x}, {a10}",
            "ldr {x}, [{c}, #4]",
            "sxtb16 {t}, {f1}, ror #8",
            "smlad {a10}, {t}, {x}, {a10}",
            "ldr {x}, [{c}, #2052]",
            "smlad {a11}, {t}, {x}, {a11}",
            "sxtb16 {t}, {f0}, ror #8",
            "smlad {a01}, {t}, {x}, {a01}",
            "ldr {x}, [{c}, #4]",
            "smlad {a00}, {t}, {x}, {a00}",
            "add {c}, {c}, #8",
            "subs {n}, {n}, #1",
            "bne 2b",
            w0 = inout(reg) w0.as_ptr() => _,
            w1 = inout(reg) w1.as_ptr() => _,
            c = inout(reg) columns.as_ptr() => _,
            n = inout(reg) groups => _,
            a00 = inout(reg) a00,
            a01 = inout(reg) a01,
            a10 = inout(reg) a10,
            a11 = inout(reg) a11,
            f0 = out(reg) _,
            f1 = out(reg) _,
            t = out(reg) _,
            x = out(reg) _,
            options(readonly, nostack)
        )
    };
    [a00, a01, a10, a11]
}

/// As [`dot_2x2_groups`], with the two filters already widened to `i16` lanes in the
/// column's lane order and interleaved per group: `[w0 (0, 2), w0 (1, 3), w1 (0, 2),
/// w1 (1, 3)]`, four words per group. 17 instructions per 16 multiply-accumulates.
#[inline(always)]
pub fn dot_2x2_widened(filters: &[u32], columns: &[u32], groups: usize, acc: [i32; 4]) -> [i32; 4] {
    if groups == 0
        || filters.len() < 4 * groups
        || 2 * groups > COLUMN_STRIDE
        || columns.len() < COLUMN_STRIDE + 2 * groups
    {
        return acc;
    }
    let [mut a00, mut a01, mut a10, mut a11] = acc;
    // SAFETY: the loop reads words [0, 4·groups) of `filters` and words [0, 2·groups)
    // and [COLUMN_STRIDE, COLUMN_STRIDE + 2·groups) of `columns`, all inside the
    // slices (checked above); both are word-aligned `u32` slices, as LDRD needs. The
    // pointer and counter operands are inout and discarded; SUBS clobbers the flags,
    // which `asm!` assumes.
    unsafe {
        asm!(
            "2:",
            "ldrd {f0e}, {f0o}, [{w}], #16",
            "ldrd {f1e}, {f1o}, [{w}, #-8]",
            "ldr {x}, [{c}]",
            "smlad {a00}, {f0e}, {x}, {a00}",
            "smlad {a10}, {f1e}, {x}, {a10}",
            "ldr {x}, [{c}, #2048]",
            "smlad {a01}, {f0e}, {x}, {a01}",
            "smlad {a11}, {f1e}, {x}, {a11}",
            "ldr {x}, [{c}, #4]",
            "smlad {a00}, {f0o}, {x}, {a00}",
            "smlad {a10}, {f1o}, {x}, {a10}",
            "ldr {x}, [{c}, #2052]",
            "smlad {a01}, {f0o}, {x}, {a01}",
            "smlad {a11}, {f1o}, {x}, {a11}",
            "add {c}, {c}, #8",
            "subs {n}, {n}, #1",
            "bne 2b",
            w = inout(reg) filters.as_ptr() => _,
            c = inout(reg) columns.as_ptr() => _,
            n = inout(reg) groups => _,
            a00 = inout(reg) a00,
            a01 = inout(reg) a01,
            a10 = inout(reg) a10,
            a11 = inout(reg) a11,
            f0e = out(reg) _,
            f0o = out(reg) _,
            f1e = out(reg) _,
            f1o = out(reg) _,
            x = out(reg) _,
            options(readonly, nostack)
        )
    };
    [a00, a01, a10, a11]
}

/// [`dot_2x2_widened`] over `pairs` consecutive filter pairs (each `4·groups` words, as
/// `widen_pairs` lays them out) and the same two columns, in one loop: pair k's
/// `[w0·c0, w0·c1, w1·c0, w1·c1]` go to `sums[4k..4k + 4]`. The outer loop's state
/// lives in 16 bytes of stack inside the block, so the micro-kernel keeps its twelve
/// registers. Stops (writing nothing) when a slice is too short. 17 instructions per 16
/// multiply-accumulates plus 18 per pair.
#[inline(always)]
pub fn dot_2x2_widened_pairs(filters: &[u32], groups: usize, pairs: usize, columns: &[u32], sums: &mut [i32]) {
    if groups == 0
        || pairs == 0
        || filters.len() < pairs.saturating_mul(4 * groups)
        || 2 * groups > COLUMN_STRIDE
        || columns.len() < COLUMN_STRIDE + 2 * groups
        || sums.len() < 4 * pairs
    {
        return;
    }
    // SAFETY: pair k reads filter words [4·groups·k, 4·groups·(k + 1)) (the filter pointer
    // runs on from pair to pair), column words [0, 2·groups) and [COLUMN_STRIDE,
    // COLUMN_STRIDE + 2·groups), and writes sums[4k..4k + 4], all inside the slices for
    // k < pairs (checked above); filters and columns are word-aligned `u32` slices, as
    // LDRD needs. The block reserves 16 bytes of stack (keeping 8-byte alignment) for
    // the sums pointer, the pair counter, the column start and the group count, and
    // releases them before it ends. All register operands are inout and discarded or
    // outputs; SUBS clobbers the flags, which `asm!` assumes.
    unsafe {
        asm!(
            "sub sp, sp, #16",
            "str {a00}, [sp]",
            "str {a01}, [sp, #4]",
            "str {c}, [sp, #8]",
            "str {n}, [sp, #12]",
            "3:",
            "mov {a00}, #0",
            "mov {a01}, #0",
            "mov {a10}, #0",
            "mov {a11}, #0",
            "ldr {c}, [sp, #8]",
            "ldr {n}, [sp, #12]",
            "2:",
            "ldrd {f0e}, {f0o}, [{w}], #16",
            "ldrd {f1e}, {f1o}, [{w}, #-8]",
            "ldr {x}, [{c}]",
            "smlad {a00}, {f0e}, {x}, {a00}",
            "smlad {a10}, {f1e}, {x}, {a10}",
            "ldr {x}, [{c}, #2048]",
            "smlad {a01}, {f0e}, {x}, {a01}",
            "smlad {a11}, {f1e}, {x}, {a11}",
            "ldr {x}, [{c}, #4]",
            "smlad {a00}, {f0o}, {x}, {a00}",
            "smlad {a10}, {f1o}, {x}, {a10}",
            "ldr {x}, [{c}, #2052]",
            "smlad {a01}, {f0o}, {x}, {a01}",
            "smlad {a11}, {f1o}, {x}, {a11}",
            "add {c}, {c}, #8",
            "subs {n}, {n}, #1",
            "bne 2b",
            "ldr {x}, [sp]",
            "str {a00}, [{x}]",
            "str {a01}, [{x}, #4]",
            "str {a10}, [{x}, #8]",
            "str {a11}, [{x}, #12]",
            "add {x}, {x}, #16",
            "str {x}, [sp]",
            "ldr {x}, [sp, #4]",
            "subs {x}, {x}, #1",
            "str {x}, [sp, #4]",
            "bne 3b",
            "add sp, sp, #16",
            w = inout(reg) filters.as_ptr() => _,
            c = inout(reg) columns.as_ptr() => _,
            n = inout(reg) groups => _,
            a00 = inout(reg) sums.as_mut_ptr() => _,
            a01 = inout(reg) pairs => _,
            a10 = out(reg) _,
            a11 = out(reg) _,
            f0e = out(reg) _,
            f0o = out(reg) _,
            f1e = out(reg) _,
            f1o = out(reg) _,
            x = out(reg) _,
        )
    };
}

/// Defines `$name(row, f, sums)`: `sums[i] = Σ_{j < W} SMLAD(row[W·i + j], f[j])` for
/// filters of `W = $words` words (`$bytes` = 4·W), filter and row read by `LDRD` (both
/// word-aligned); stops (writing nothing) when `row` is shorter than `W·sums.len()`.
/// Each `($back, $at)` is one further pair of words: `$back` bytes before the
/// post-incremented row pointer, `$at` bytes into the filter.
macro_rules! sums_row {
    ($(#[$doc:meta])* $name:ident, $words:literal, $bytes:literal, $(($back:literal, $at:literal)),+) => {
        $(#[$doc])*
        #[inline(always)]
        pub fn $name(row: &[u32], f: &[u32; $words], sums: &mut [i32]) {
            let n = sums.len();
            if n == 0 || row.len() < n.saturating_mul($words) {
                return;
            }
            // SAFETY: iteration i reads row words [W·i, W·i + W) and the W words of `f`,
            // and writes sums[i], i < n, inside the slices (checked above); both are
            // word-aligned `u32` data, as LDRD needs. The pointer and counter operands
            // are inout and discarded; SUBS clobbers the flags, which `asm!` assumes.
            unsafe {
                asm!(
                    "2:",
                    concat!("ldrd {xa}, {xb}, [{p}], #", $bytes),
                    "ldrd {fa}, {fb}, [{f}]",
                    "smuad {a}, {xa}, {fa}",
                    "smlad {a}, {xb}, {fb}, {a}",
                    $(
                        concat!("ldrd {xa}, {xb}, [{p}, #-", $back, "]"),
                        concat!("ldrd {fa}, {fb}, [{f}, #", $at, "]"),
                        "smlad {a}, {xa}, {fa}, {a}",
                        "smlad {a}, {xb}, {fb}, {a}",
                    )+
                    "str {a}, [{s}], #4",
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    p = inout(reg) row.as_ptr() => _,
                    s = inout(reg) sums.as_mut_ptr() => _,
                    n = inout(reg) n => _,
                    f = in(reg) f.as_ptr(),
                    xa = out(reg) _,
                    xb = out(reg) _,
                    fa = out(reg) _,
                    fb = out(reg) _,
                    a = out(reg) _,
                    options(nostack)
                )
            };
        }
    };
}

sums_row!(
    /// The row kernel's sums for filters of eight words (`conv_rows.rs`, 11 to 16
    /// values): `sums[i] = Σ_{j < 8} SMLAD(row[8i + j], f[j])`. Stops (writing nothing)
    /// when `row` is shorter than `8·sums.len()`. 19 instructions per output.
    sums_row8, 8, 32, (24, 8), (16, 16), (8, 24)
);

sums_row!(
    /// As [`sums_row8`] for filters of twelve words (a 1×1 convolution on 24 channels,
    /// in `SXTB16` lane order): `sums[i] = Σ_{j < 12} SMLAD(row[12i + j], f[j])`. Stops
    /// (writing nothing) when `row` is shorter than `12·sums.len()`. 27 instructions
    /// per output.
    sums_row12, 12, 48, (40, 8), (32, 16), (24, 24), (16, 32), (8, 40)
);

/// Bytes between the three widened input rows of [`sums_3x2`].
pub const ROWS3_STRIDE: usize = 512;

/// Sums of one output channel over an output row for a kernel of three rows of at
/// most four `i16` values each (a 3×3 filter on one input channel, ...):
/// `sums[i] = Σ_{r < 3} Σ_{j < 2} SMLAD(word at byte i·step + r·ROWS3_STRIDE + 4j of
/// rows, f[2r + j])`. The words are read at any halfword offset (unaligned `LDR`).
/// Stops (writing nothing) when a read would leave `rows`. 16 instructions per output.
#[inline(always)]
pub fn sums_3x2(rows: &[u32], step: usize, f: &[u32; 6], sums: &mut [i32]) {
    let n = sums.len();
    if n == 0 || (n - 1).saturating_mul(step).saturating_add(2 * ROWS3_STRIDE + 8) > rows.len() * 4 {
        return;
    }
    // SAFETY: iteration i reads the words at bytes i·step + {0, 4} + {0, 512, 1024} of
    // `rows` (all below (n − 1)·step + 1032 ≤ 4·rows.len(), checked above; unaligned LDR
    // is allowed on ARMv7E-M and ARMv8-M Mainline) and writes sums[i], i < n. The
    // pointer and counter operands are inout and discarded; SUBS clobbers the flags,
    // which `asm!` assumes.
    unsafe {
        asm!(
            "2:",
            "ldr {t}, [{p}]",
            "smuad {a}, {t}, {f0}",
            "ldr {t}, [{p}, #4]",
            "smlad {a}, {t}, {f1}, {a}",
            "ldr {t}, [{p}, #512]",
            "smlad {a}, {t}, {f2}, {a}",
            "ldr {t}, [{p}, #516]",
            "smlad {a}, {t}, {f3}, {a}",
            "ldr {t}, [{p}, #1024]",
            "smlad {a}, {t}, {f4}, {a}",
            "ldr {t}, [{p}, #1028]",
            "smlad {a}, {t}, {f5}, {a}",
            "add {p}, {p}, {step}",
            "str {a}, [{s}], #4",
            "subs {n}, {n}, #1",
            "bne 2b",
            p = inout(reg) rows.as_ptr() => _,
            s = inout(reg) sums.as_mut_ptr() => _,
            n = inout(reg) n => _,
            step = in(reg) step,
            f0 = in(reg) f[0],
            f1 = in(reg) f[1],
            f2 = in(reg) f[2],
            f3 = in(reg) f[3],
            f4 = in(reg) f[4],
            f5 = in(reg) f[5],
            t = out(reg) _,
            a = out(reg) _,
            options(nostack)
        )
    };
}

/// As [`sums_3x2`] for three kernel rows of at most ten `i16` values (five words each,
/// a 3×3 filter on three input channels, ...): `sums[i] = Σ_{r < 3} Σ_{j < 5}
/// SMLAD(word at byte i·step + r·ROWS3_STRIDE + 4j of rows, f[5r + j])`, the filter
/// read from memory (`LDRD`, so `f` is word-aligned). 38 instructions per output.
#[inline(always)]
pub fn sums_3x5(rows: &[u32], step: usize, f: &[u32; 15], sums: &mut [i32]) {
    let n = sums.len();
    if n == 0 || (n - 1).saturating_mul(step).saturating_add(2 * ROWS3_STRIDE + 20) > rows.len() * 4 {
        return;
    }
    // SAFETY: iteration i reads the words at bytes i·step + 4j (j < 5) + {0, 512, 1024}
    // of `rows` (all below (n − 1)·step + 1044 ≤ 4·rows.len(), checked above; unaligned
    // LDR is allowed on ARMv7E-M and ARMv8-M Mainline), the 15 words of `f` (a word-
    // aligned array, as LDRD needs; words 0–13 in pairs, word 14 alone), and writes
    // sums[i], i < n. The
    // pointer and counter operands are inout and discarded; SUBS clobbers the flags.
    unsafe {
        asm!(
            "2:",
            "ldrd {fa}, {fb}, [{f}]",
            "ldr {t}, [{p}]",
            "smuad {a}, {t}, {fa}",
            "ldr {t}, [{p}, #4]",
            "smlad {a}, {t}, {fb}, {a}",
            "ldrd {fa}, {fb}, [{f}, #8]",
            "ldr {t}, [{p}, #8]",
            "smlad {a}, {t}, {fa}, {a}",
            "ldr {t}, [{p}, #12]",
            "smlad {a}, {t}, {fb}, {a}",
            "ldrd {fa}, {fb}, [{f}, #16]",
            "ldr {t}, [{p}, #16]",
            "smlad {a}, {t}, {fa}, {a}",
            "ldr {t}, [{p}, #512]",
            "smlad {a}, {t}, {fb}, {a}",
            "ldrd {fa}, {fb}, [{f}, #24]",
            "ldr {t}, [{p}, #516]",
            "smlad {a}, {t}, {fa}, {a}",
            "ldr {t}, [{p}, #520]",
            "smlad {a}, {t}, {fb}, {a}",
            "ldrd {fa}, {fb}, [{f}, #32]",
            "ldr {t}, [{p}, #524]",
            "smlad {a}, {t}, {fa}, {a}",
            "ldr {t}, [{p}, #528]",
            "smlad {a}, {t}, {fb}, {a}",
            "ldrd {fa}, {fb}, [{f}, #40]",
            "ldr {t}, [{p}, #1024]",
            "smlad {a}, {t}, {fa}, {a}",
            "ldr {t}, [{p}, #1028]",
            "smlad {a}, {t}, {fb}, {a}",
            "ldrd {fa}, {fb}, [{f}, #48]",
            "ldr {t}, [{p}, #1032]",
            "smlad {a}, {t}, {fa}, {a}",
            "ldr {t}, [{p}, #1036]",
            "smlad {a}, {t}, {fb}, {a}",
            "ldr {fa}, [{f}, #56]",
            "ldr {t}, [{p}, #1040]",
            "smlad {a}, {t}, {fa}, {a}",
            "add {p}, {p}, {step}",
            "str {a}, [{s}], #4",
            "subs {n}, {n}, #1",
            "bne 2b",
            p = inout(reg) rows.as_ptr() => _,
            s = inout(reg) sums.as_mut_ptr() => _,
            n = inout(reg) n => _,
            f = in(reg) f.as_ptr(),
            step = in(reg) step,
            fa = out(reg) _,
            fb = out(reg) _,
            t = out(reg) _,
            a = out(reg) _,
            options(nostack)
        )
    };
}

/// The fast requantization (`FastRequant::output` in `ops/mod.rs` without a left shift,
/// `f = 2`, with its prepared parts `[2·bias, multiplier, round, r + 1, act_min,
/// act_max]`, see `FastRequant::parts_unshifted`) of `sums`, written to
/// `out[0], out[stride], out[2·stride], …`. Stops (writing nothing) when the last
/// output would fall outside `out`. 16 instructions per output; 11 when the clamp is
/// the whole int8 range (one `SSAT`: no activation, or ReLU with output zero point −128).
#[inline(always)]
pub fn requant_strided(sums: &[i32], out: &mut [i8], stride: usize, parts: [i32; 6]) {
    let n = sums.len();
    if n == 0 || (n - 1).saturating_mul(stride) >= out.len() {
        return;
    }
    let [bias2, multiplier, round, shift, act_min, act_max] = parts;
    if (act_min, act_max) == (-128, 127) {
        // SAFETY: as below; SSAT may set the Q flag, which nothing reads.
        unsafe {
            asm!(
                "2:",
                "ldr {x}, [{s}], #4",
                "add {x}, {b2}, {x}, lsl #1",
                "smmulr {x}, {x}, {m}",
                "add {t}, {rd}, {x}, lsl #1",
                "add {t}, {t}, {x}, asr #31",
                "asr {t}, {t}, {sh}",
                "ssat {t}, #8, {t}",
                "strb {t}, [{o}]",
                "add {o}, {o}, {st}",
                "subs {n}, {n}, #1",
                "bne 2b",
                s = inout(reg) sums.as_ptr() => _,
                o = inout(reg) out.as_mut_ptr() => _,
                n = inout(reg) n => _,
                st = in(reg) stride,
                b2 = in(reg) bias2,
                m = in(reg) multiplier,
                rd = in(reg) round,
                sh = in(reg) shift,
                x = out(reg) _,
                t = out(reg) _,
                options(nostack)
            )
        };
        return;
    }
    // SAFETY: iteration i reads sums[i] and writes out[i·stride], i < n, inside the
    // slices (checked above). Register-only arithmetic otherwise; CMP and SUBS clobber
    // the flags (SMMULR does not touch Q), which `asm!` assumes; the IT blocks are
    // complete inside the block.
    unsafe {
        asm!(
            "2:",
            "ldr {x}, [{s}], #4",
            "add {x}, {b2}, {x}, lsl #1",
            "smmulr {x}, {x}, {m}",
            "add {t}, {rd}, {x}, lsl #1",
            "add {t}, {t}, {x}, asr #31",
            "asr {t}, {t}, {sh}",
            "cmp {t}, {lo}",
            "it lt",
            "movlt {t}, {lo}",
            "cmp {t}, {hi}",
            "it gt",
            "movgt {t}, {hi}",
            "strb {t}, [{o}]",
            "add {o}, {o}, {st}",
            "subs {n}, {n}, #1",
            "bne 2b",
            s = inout(reg) sums.as_ptr() => _,
            o = inout(reg) out.as_mut_ptr() => _,
            n = inout(reg) n => _,
            st = in(reg) stride,
            b2 = in(reg) bias2,
            m = in(reg) multiplier,
            rd = in(reg) round,
            sh = in(reg) shift,
            lo = in(reg) act_min,
            hi = in(reg) act_max,
            x = out(reg) _,
                t = out(reg) _,
            options(nostack)
        )
    };
}

/// Widens `4·words.len() / 2` int8 values of `input` into `words` in `SXTB16` lane
/// order with the input offset added: the group of four values `x0..x3` becomes the
/// words `(x0 + off, x2 + off)` and `(x1 + off, x3 + off)` (`i16` lanes). Stops (writing
/// nothing) when `input` is shorter than that or `words` is odd. 8 instructions per four
/// values (a Rust loop over `i16`s costs several times that).
#[inline(always)]
pub fn widen_groups(input: &[i8], words: &mut [u32], offset: i32) {
    let groups = words.len() / 2;
    if groups == 0 || !words.len().is_multiple_of(2) || input.len() < 4 * groups {
        return;
    }
    let off = (offset as u32 & 0xFFFF).wrapping_mul(0x1_0001);
    // SAFETY: iteration g < groups reads input bytes [4g, 4g + 4) and writes words
    // [2g, 2g + 2), inside both slices (checked above); `words` is a word-aligned `u32`
    // slice, as STRD needs, and unaligned LDR is allowed on ARMv7E-M and ARMv8-M
    // Mainline. SADD16 sets the GE flags and SUBS the condition flags, which `asm!`
    // assumes clobbered.
    unsafe {
        asm!(
            "2:",
            "ldr {t}, [{s}], #4",
            "sxtb16 {a}, {t}",
            "sxtb16 {b}, {t}, ror #8",
            "sadd16 {a}, {a}, {off}",
            "sadd16 {b}, {b}, {off}",
            "strd {a}, {b}, [{d}], #8",
            "subs {n}, {n}, #1",
            "bne 2b",
            s = inout(reg) input.as_ptr() => _,
            d = inout(reg) words.as_mut_ptr() => _,
            n = inout(reg) groups => _,
            off = in(reg) off,
            t = out(reg) _,
            a = out(reg) _,
            b = out(reg) _,
            options(nostack)
        )
    };
}

/// `out[i] = input[i] + offset` as `i16`, in order, for `i < min(out.len(),
/// input.len())`: four values per iteration (`SXTB16` twice, `SADD16` twice, `PKHBT`
/// and `PKHTB` back into order, two unaligned `STR`s: 11 instructions), the last
/// `len % 4` one by one. The three-row kernel's input rows.
#[inline(always)]
pub fn widen_in_order(input: &[i8], out: &mut [i16], offset: i32) {
    let n = out.len().min(input.len());
    let groups = n / 4;
    if groups > 0 {
        let off = (offset as u32 & 0xFFFF).wrapping_mul(0x1_0001);
        // SAFETY: iteration g < groups reads input bytes [4g, 4g + 4) and writes out
        // halfwords [4g, 4g + 4), inside both slices (4·groups ≤ n); unaligned LDR/STR
        // are allowed on ARMv7E-M and ARMv8-M Mainline. SADD16 sets the GE flags and
        // SUBS the condition flags, which `asm!` assumes clobbered.
        unsafe {
            asm!(
                "2:",
                "ldr {t}, [{s}], #4",
                "sxtb16 {a}, {t}",
                "sxtb16 {b}, {t}, ror #8",
                "sadd16 {a}, {a}, {off}",
                "sadd16 {b}, {b}, {off}",
                "pkhbt {t}, {a}, {b}, lsl #16",
                "pkhtb {a}, {b}, {a}, asr #16",
                "str {t}, [{d}], #4",
                "str {a}, [{d}], #4",
                "subs {n}, {n}, #1",
                "bne 2b",
                s = inout(reg) input.as_ptr() => _,
                d = inout(reg) out.as_mut_ptr() => _,
                n = inout(reg) groups => _,
                off = in(reg) off,
                t = out(reg) _,
                a = out(reg) _,
                b = out(reg) _,
                options(nostack)
            )
        };
    }
    for (d, &v) in out.iter_mut().zip(input).skip(4 * groups) {
        *d = (i32::from(v) + offset) as i16;
    }
}

/// Clamps every byte of `out` to `[lo, hi]` (signed), four at a time (`SSUB8`/`SEL`
/// twice per word, unaligned `LDR`/`STR`), the last `len % 4` bytes one by one. The
/// row kernels requantize with the plain int8 saturation (`SSAT`) and clamp a whole
/// output row here afterwards: the same values as clamping each output, since
/// `[lo, hi]` lies inside the int8 range. 7 instructions per four bytes.
#[inline(always)]
pub fn clamp_bytes(out: &mut [i8], lo: i8, hi: i8) {
    let words = out.len() / 4;
    if words > 0 {
        let lo4 = u32::from_le_bytes([lo as u8; 4]);
        let hi4 = u32::from_le_bytes([hi as u8; 4]);
        // SAFETY: iteration i < words reads and writes out bytes [4i, 4i + 4), inside
        // the slice (words = len / 4); unaligned LDR/STR are allowed on ARMv7E-M and
        // ARMv8-M Mainline. SSUB8 sets the GE flags that the next SEL reads, within
        // the block; GE and the condition flags (SUBS) are clobbered, which `asm!`
        // assumes.
        unsafe {
            asm!(
                "2:",
                "ldr {t}, [{p}]",
                "ssub8 {x}, {t}, {lo}",
                "sel {t}, {t}, {lo}",
                "ssub8 {x}, {t}, {hi}",
                "sel {t}, {hi}, {t}",
                "str {t}, [{p}], #4",
                "subs {n}, {n}, #1",
                "bne 2b",
                p = inout(reg) out.as_mut_ptr() => _,
                n = inout(reg) words => _,
                lo = in(reg) lo4,
                hi = in(reg) hi4,
                t = out(reg) _,
                x = out(reg) _,
                options(nostack)
            )
        };
    }
    for y in out.iter_mut().skip(4 * words) {
        *y = (*y).max(lo).min(hi);
    }
}

// ---- depthwise 3×3, channel planes (dw5) ----

/// Arguments of the `microcnn_dwp_*` and `microcnn_dww_*` routines: the first 18 words become the routine's
/// stack locals as they are (offsets fixed by the assembly), the last five its
/// pointers.
#[repr(C)]
pub(crate) struct DwPlaneArgs {
    /// Accumulator start `2·(bias − zp·Σw)`, four times (one `LDM` per pass).
    pub start: [i32; 4],
    /// Per kernel row: `(2w0, 2w1)` and `(2w1, 2w2)` as `i16` lanes.
    pub filter: [u32; 6],
    /// Requantization multiplier, rounding constant (half of the fast form's, minus the
    /// lower clamp's offset when there is one) and right shift `r ≥ 1`.
    pub multiplier: i32,
    pub round: i32,
    pub shift: u32,
    /// `act_min + 128` and `act_max` (the clamps, when the routine has them).
    pub lower: i32,
    pub upper: i32,
    /// Bytes added to each row pointer after an output row (the eight-output
    /// routines: `3·C`).
    pub row_delta: usize,
    /// Output bytes of one output row (`OW·C`; the eight-output routines: `C`).
    pub row_bytes: usize,
    /// Output pointer after the last row.
    pub output_end: *mut i8,
    /// The eight-output routines' requantization block for this channel's shift
    /// (`microcnn_dww_rqN`, its address with the Thumb bit); unused by the others.
    pub requant: usize,
    /// Band row 0 of the plane (the first output row's kernel row 0): at stride 2
    /// the channel's first word in the interleaved band.
    pub band: *const u32,
    /// Bytes between band rows (the eight-output routines: output bytes from a
    /// pass's fifth output to the next row's first, `(OW − 4)·C`).
    pub band_row: usize,
    /// The first output byte (channel `c` of pixel (0, 0)).
    pub output: *mut i8,
    /// Bytes between output pixels (the channel count).
    pub channels: usize,
}

impl DwPlaneArgs {
    /// All zero, null pointers (filled in before a call).
    pub const ZERO: Self = Self {
        start: [0; 4],
        filter: [0; 6],
        multiplier: 0,
        round: 0,
        shift: 0,
        lower: 0,
        upper: 0,
        row_delta: 0,
        row_bytes: 0,
        output_end: core::ptr::null_mut(),
        requant: 0,
        band: core::ptr::null(),
        band_row: 0,
        output: core::ptr::null_mut(),
        channels: 0,
    };
}

/// Value `i` of a little-endian `i32` array stored as bytes (any alignment), or 0 past
/// the end: one unaligned `LDR` (byte loads and shifts in plain Rust).
#[inline(always)]
pub fn le_i32(bytes: &[u8], i: usize) -> i32 {
    let Some(b) = bytes.get(4 * i..4 * i + 4) else {
        return 0;
    };
    let r: i32;
    // SAFETY: reads the four bytes of `b`, inside the slice (checked above); unaligned
    // LDR is allowed on ARMv7E-M and ARMv8-M Mainline, which are little-endian here.
    unsafe {
        asm!("ldr {r}, [{p}]", r = lateout(reg) r, p = in(reg) b.as_ptr(), options(pure, readonly, nostack, preserves_flags))
    };
    r
}

/// The nine words at `w[at + t·stride ..][..4]` (`t < 9`, any alignment) as
/// little-endian `u32`s, or `None` when the last would end past `w`: one bounds check
/// and nine unaligned `LDR` (a depthwise filter's nine taps of four channels).
#[inline(always)]
pub fn taps9(w: &[i8], at: usize, stride: usize) -> Option<[u32; 9]> {
    let end = stride.checked_mul(8)?.checked_add(at)?.checked_add(4)?;
    if end > w.len() {
        return None;
    }
    let base = w.as_ptr().wrapping_add(at);
    let mut out = [0_u32; 9];
    for (t, word) in out.iter_mut().enumerate() {
        // SAFETY: reads bytes at + t·stride .. at + t·stride + 4 ≤ end ≤ w.len() (t ≤ 8),
        // inside `w`; unaligned LDR is allowed on ARMv7E-M and ARMv8-M Mainline, which
        // are little-endian here.
        unsafe {
            asm!("ldr {r}, [{p}]", r = lateout(reg) *word, p = in(reg) base.wrapping_add(t * stride),
                options(pure, readonly, nostack, preserves_flags))
        };
    }
    Some(out)
}

/// Words of the channel-plane kernel's bands on the stack (6 KiB: four planes).
pub(crate) const BAND_WORDS: usize = 1536;

// `blocks` (r1, at least 1) blocks of 16 words from r0 set to r2: two STM of eight
// registers a block.
core::arch::global_asm!(
    ".syntax unified",
    ".section .text.microcnn_dwp_fill,\"ax\",%progbits",
    ".p2align 2",
    ".global microcnn_dwp_fill",
    ".thumb_func",
    ".type microcnn_dwp_fill, %function",
    "microcnn_dwp_fill:",
    "push {{r4-r9}}",
    "mov r3, r2",
    "mov r4, r2",
    "mov r5, r2",
    "mov r6, r2",
    "mov r7, r2",
    "mov r8, r2",
    "mov r9, r2",
    "2:",
    "stm r0!, {{r2-r9}}",
    "stm r0!, {{r2-r9}}",
    "subs r1, r1, #1",
    "bne 2b",
    "pop {{r4-r9}}",
    "bx lr",
    ".size microcnn_dwp_fill, . - microcnn_dwp_fill",
    ".text",
);

extern "C" {
    fn microcnn_dwp_fill(words: *mut u32, blocks: usize, value: u32);
}

/// Runs `f` on a stack buffer of `words` words (at most [`BAND_WORDS`]) all set to
/// `fill`, without clearing the rest of the buffer first; `None` when `words` is too
/// large.
#[inline(always)]
pub(crate) fn with_band<R>(words: usize, fill: u32, f: impl FnOnce(&mut [u32]) -> R) -> Option<R> {
    if words > BAND_WORDS {
        return None;
    }
    let mut buf = [core::mem::MaybeUninit::<u32>::uninit(); BAND_WORDS];
    let blocks = words / 16;
    if blocks > 0 {
        // SAFETY: the routine writes words [16i, 16i + 16) of `buf` for i < blocks,
        // inside it (16·blocks ≤ words ≤ BAND_WORDS), word-aligned as STM needs, and
        // nothing else; it follows the AAPCS (saves and restores r4–r9; r0–r3, r12
        // and the flags are caller-saved, which the `extern "C"` call assumes).
        unsafe { microcnn_dwp_fill(buf.as_mut_ptr().cast::<u32>(), blocks, fill) };
    }
    for slot in &mut buf[16 * blocks..words] {
        slot.write(fill);
    }
    // SAFETY: the first `words` elements (words ≤ BAND_WORDS) were written just above
    // (the routine the first 16·blocks, the Rust loop the rest),
    // so the slice covers initialised `u32`s only; `MaybeUninit<u32>` has the layout
    // of `u32`; the buffer outlives the borrow passed to `f`.
    let band = unsafe { core::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u32>(), words) };
    Some(f(band))
}

// Channel-plane 3×3 depthwise (`ops::depthwise3x3::planar`): one channel's output
// plane from its band (the input plane widened to `i16`, zero-point padded, two
// horizontally adjacent pixels per word), four outputs of one row per pass, the
// filter of a kernel row two words (`SMLAD` on two taps, `SMLABT`/`SMLATB` on the
// third). Registers: r0–r2 the three kernel rows' band pointers, r3 the output, r4–r7
// the accumulators, r8–r11 data, filter and requantization temporaries, r12 the
// channel count, lr the end of the current output row. Per pass: 1 (LDM) + 30 (s1) or
// 33 (s2) + 18 (requantization: SMMLAR, the sign term, ASR, SSAT) + 6 stores + 2. At
// stride 2 the band is the four channels' interleaved (`widen_interleaved`).
core::arch::global_asm!(
    ".syntax unified",
    // A kernel row: \p the band pointer, \off the filter's stack offset.
    ".macro MICROCNN_DWP_ROW stride, phase, p, off",
    "ldrd r10, r11, [sp, #\\off]",
    ".if \\stride == 1",
    ".if \\phase == 1",
    "ldrd r8, r9, [\\p], #8",
    "smlatb r4, r8, r10, r4",
    "smlad r4, r9, r11, r4",
    "smlad r5, r9, r10, r5",
    "smlatb r6, r9, r10, r6",
    "ldrd r8, r9, [\\p]",
    "smlabt r5, r8, r11, r5",
    "smlad r6, r8, r11, r6",
    "smlad r7, r8, r10, r7",
    "smlabt r7, r9, r11, r7",
    ".else",
    "ldrd r8, r9, [\\p], #8",
    "smlad r4, r8, r10, r4",
    "smlabt r4, r9, r11, r4",
    "smlatb r5, r8, r10, r5",
    "smlad r5, r9, r11, r5",
    "smlad r6, r9, r10, r6",
    "smlatb r7, r9, r10, r7",
    "ldr r8, [\\p]",
    "smlabt r6, r8, r11, r6",
    "smlad r7, r8, r11, r7",
    ".endif",
    ".else",
    // stride 2: the band interleaved (see `widen_interleaved`), pairs 2i and 2i + 1
    // of a channel 32 bytes after pairs 2i − 2 and 2i − 1
    "ldrd r8, r9, [\\p], #64",
    ".if \\phase == 1",
    "smlatb r4, r8, r10, r4",
    "smlad r4, r9, r11, r4",
    "smlatb r5, r9, r10, r5",
    "ldrd r8, r9, [\\p, #-32]",
    "smlad r5, r8, r11, r5",
    "smlatb r6, r8, r10, r6",
    "smlad r6, r9, r11, r6",
    "smlatb r7, r9, r10, r7",
    "ldr r8, [\\p]",
    "smlad r7, r8, r11, r7",
    ".else",
    "smlad r4, r8, r10, r4",
    "smlabt r4, r9, r11, r4",
    "smlad r5, r9, r10, r5",
    "ldrd r8, r9, [\\p, #-32]",
    "smlabt r5, r8, r11, r5",
    "smlad r6, r8, r10, r6",
    "smlabt r6, r9, r11, r6",
    "smlad r7, r9, r10, r7",
    "ldr r8, [\\p]",
    "smlabt r7, r8, r11, r7",
    ".endif",
    ".endif",
    ".endm",
    // acc = ssat8((SMMLAR(acc, M, K) + (acc >> 31)) >> r): M in r10, K in r11, r in r8.
    ".macro MICROCNN_DWP_RQ acc",
    "smmlar r9, \\acc, r10, r11",
    "add \\acc, r9, \\acc, asr #31",
    "asr \\acc, \\acc, r8",
    "ssat \\acc, #8, \\acc",
    ".endm",
    // acc = ssat8(acc + act_min + 128) (acc already ssat8(v − act_min − 128)).
    ".macro MICROCNN_DWP_LO acc",
    "add \\acc, \\acc, r10",
    "ssat \\acc, #8, \\acc",
    ".endm",
    ".macro MICROCNN_DWP_HI acc",
    "cmp \\acc, r11",
    "it gt",
    "movgt \\acc, r11",
    ".endm",
    // clamp: 0 none, 1 lower, 2 lower and upper.
    ".macro MICROCNN_DWP_FN name, stride, phase, clamp",
    ".section .text.\\name,\"ax\",%progbits",
    ".p2align 2",
    ".global \\name",
    ".thumb_func",
    ".type \\name, %function",
    "\\name:",
    "push {{r4-r11, lr}}",
    // [sp+72] the next channel's arguments, [sp+76] channels left
    "sub sp, sp, #80",
    "strd r0, r1, [sp, #72]",
    "5:",
    "ldr r0, [sp, #72]",
    "ldm r0!, {{r1-r9}}",
    "stm sp, {{r1-r9}}",
    "ldm r0!, {{r1-r9}}",
    "add r10, sp, #36",
    "stm r10, {{r1-r9}}",
    "ldm r0!, {{r4, r5, r6, r7, r12}}",
    "str r0, [sp, #72]",
    "mov r0, r5",
    "add r1, r5, r6",
    "add r2, r5, r6, lsl #1",
    "mov r3, r7",
    "ldr lr, [sp, #64]",
    "add lr, r3, lr",
    "1:",
    "ldm sp, {{r4-r7}}",
    "MICROCNN_DWP_ROW \\stride, \\phase, r0, 16",
    "MICROCNN_DWP_ROW \\stride, \\phase, r1, 24",
    "MICROCNN_DWP_ROW \\stride, \\phase, r2, 32",
    "ldrd r10, r11, [sp, #40]",
    "ldr r8, [sp, #48]",
    "MICROCNN_DWP_RQ r4",
    "MICROCNN_DWP_RQ r5",
    "MICROCNN_DWP_RQ r6",
    "MICROCNN_DWP_RQ r7",
    ".if \\clamp >= 1",
    "ldrd r10, r11, [sp, #52]",
    "MICROCNN_DWP_LO r4",
    "MICROCNN_DWP_LO r5",
    "MICROCNN_DWP_LO r6",
    "MICROCNN_DWP_LO r7",
    ".endif",
    ".if \\clamp >= 2",
    "MICROCNN_DWP_HI r4",
    "MICROCNN_DWP_HI r5",
    "MICROCNN_DWP_HI r6",
    "MICROCNN_DWP_HI r7",
    ".endif",
    "strb r4, [r3]",
    "strb r5, [r3, r12]",
    "add r3, r3, r12, lsl #1",
    "strb r6, [r3]",
    "strb r7, [r3, r12]",
    "add r3, r3, r12, lsl #1",
    "cmp r3, lr",
    "bne 1b",
    // next output row: the band pointers one output row on, the row end one row on
    "ldrd r8, r9, [sp, #60]",
    "add r0, r0, r8",
    "add r1, r1, r8",
    "add r2, r2, r8",
    "add lr, lr, r9",
    "ldr r8, [sp, #68]",
    "cmp r3, r8",
    "bne 1b",
    // next channel
    "ldr r8, [sp, #76]",
    "subs r8, r8, #1",
    "str r8, [sp, #76]",
    "bne 5b",
    "add sp, sp, #80",
    "pop {{r4-r11, pc}}",
    ".size \\name, . - \\name",
    ".endm",
    "MICROCNN_DWP_FN microcnn_dwp_s1p1c0, 1, 1, 0",
    "MICROCNN_DWP_FN microcnn_dwp_s1p1c1, 1, 1, 1",
    "MICROCNN_DWP_FN microcnn_dwp_s1p1c2, 1, 1, 2",
    "MICROCNN_DWP_FN microcnn_dwp_s2p0c0, 2, 0, 0",
    "MICROCNN_DWP_FN microcnn_dwp_s2p0c1, 2, 0, 1",
    "MICROCNN_DWP_FN microcnn_dwp_s2p0c2, 2, 0, 2",
    ".purgem MICROCNN_DWP_ROW",
    ".purgem MICROCNN_DWP_RQ",
    ".purgem MICROCNN_DWP_LO",
    ".purgem MICROCNN_DWP_HI",
    ".purgem MICROCNN_DWP_FN",
    ".text",
);

extern "C" {
    fn microcnn_dwp_s1p1c0(args: *const DwPlaneArgs, count: usize);
    fn microcnn_dwp_s1p1c1(args: *const DwPlaneArgs, count: usize);
    fn microcnn_dwp_s1p1c2(args: *const DwPlaneArgs, count: usize);
    fn microcnn_dwp_s2p0c0(args: *const DwPlaneArgs, count: usize);
    fn microcnn_dwp_s2p0c1(args: *const DwPlaneArgs, count: usize);
    fn microcnn_dwp_s2p0c2(args: *const DwPlaneArgs, count: usize);
}

/// Geometry of one plane call, checked by [`depthwise_planes`] against the slices.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlaneGeometry {
    /// 1 or 2.
    pub stride: usize,
    /// 0 or 1: the band position of padded column 0 is `phase`.
    pub phase: usize,
    /// 0 none, 1 lower, 2 lower and upper.
    pub clamp: usize,
    /// Output rows and columns (columns a multiple of 4).
    pub rows: usize,
    pub columns: usize,
    /// Words per band row.
    pub band_row_words: usize,
    /// Channel count (bytes between output pixels).
    pub channels: usize,
}

/// Four channels' output planes (`ops::depthwise3x3::planar`): channel `k` reads
/// band `k` (`band[k·plane..]`, `band_row_words` words a row) and writes output bytes
/// `output[(y·OW + x)·C + k]`; `args` holds each channel's constants (its pointers are
/// set here); `false` (nothing done) when the geometry does not fit the slices. 15.75
/// (s1) or 16.5 (s2) instructions per output and 2 more per output with a lower
/// clamp, 3 more with an upper one, plus 8 per output row and about 20 per channel.
#[inline(never)]
pub(crate) fn depthwise_planes(
    band: &[u32],
    plane: usize,
    output: &mut [i8],
    g: &PlaneGeometry,
    args: &mut [DwPlaneArgs; 4],
) -> bool {
    let (s, rows, columns) = (g.stride, g.rows, g.columns);
    if !(1..=2).contains(&s) || g.phase > 1 || g.clamp > 2 || rows == 0 || columns == 0 || !columns.is_multiple_of(4) {
        return false;
    }
    // Words (pairs) of its band a channel's pass reads past its first: s1 up to word
    // x/2 + 3, s2 up to pair x + 4 (the band interleaved: its last pair, of channel 3,
    // at word 4·x + 22 of a row of 4·band_row_words).
    let row_reach = if s == 1 { columns / 2 + 2 } else { columns + 2 };
    let band_rows = (rows - 1) * s + 3;
    if row_reach > g.band_row_words || plane < band_rows * g.band_row_words || band.len() < 4 * plane || g.channels < 4
    {
        return false;
    }
    let out_len = ((rows - 1) * columns + columns - 1) * g.channels + 4;
    if output.len() < out_len {
        return false;
    }
    if s == 2 && g.phase == 0 && g.band_row_words == WIDE_ROW_WORDS && columns.is_multiple_of(8) {
        return wide_strips(band, output, g, args);
    }
    let routine = match (s, g.phase, g.clamp) {
        (1, 1, 0) => microcnn_dwp_s1p1c0,
        (1, 1, 1) => microcnn_dwp_s1p1c1,
        (1, 1, _) => microcnn_dwp_s1p1c2,
        (2, 0, 0) => microcnn_dwp_s2p0c0,
        (2, 0, 1) => microcnn_dwp_s2p0c1,
        (2, 0, _) => microcnn_dwp_s2p0c2,
        _ => return false,
    };
    // s1: four bands, channel k's from word k·plane; s2: one band of the four channels
    // interleaved, channel k's pairs from word 2k, rows of 4·band_row_words words.
    let (band_row, pass_bytes, channel_words) =
        if s == 1 { (4 * g.band_row_words, 8, plane) } else { (16 * g.band_row_words, 64, 2) };
    for (k, a) in args.iter_mut().enumerate() {
        // Each pass moves the row pointers `pass_bytes`; a row of passes OW/4 times that.
        a.row_delta = s * band_row - pass_bytes * (columns / 4);
        a.row_bytes = columns * g.channels;
        a.output_end = output.as_mut_ptr().wrapping_add(rows * columns * g.channels + k);
        a.band = band.as_ptr().wrapping_add(k * channel_words);
        a.band_row = band_row;
        a.output = output.as_mut_ptr().wrapping_add(k);
        a.channels = g.channels;
    }
    // SAFETY: channel k, output row y, pass at column x (a multiple of 4) reads, for
    // kernel rows r < 3, s1: band words k·plane + (y + r)·band_row_words + (x + 1)/2 +
    // 0..=3, all below k·plane + band_rows·band_row_words ≤ 4·plane ≤ band.len();
    // s2 (phase 0): words (2y + r)·4·band_row_words + 4x + 2k + {0, 1, 8, 9, 16}, the
    // last at most (band_rows − 1)·4·band_row_words + 4·(OW − 4) + 22 <
    // 4·band_rows·band_row_words ≤ 4·plane ≤ band.len() (checked above: row_reach =
    // OW + 2 ≤ band_row_words); word-aligned as LDRD needs (`band` is a `u32` slice);
    // it writes output bytes (y·OW + x + i)·C + k for
    // i < 4, all below out_len ≤ output.len(). Its loops end when the output pointer
    // reaches the row ends exactly (OW a multiple of 4), then `output_end`, after the
    // four channels. The routine follows the AAPCS: saves and restores r4–r11 and lr,
    // uses 80 bytes of stack below them and releases them; r0–r3, r12 and the flags are
    // caller-saved, which the `extern "C"` call assumes. SMLAD, SMLATB and SMLABT may
    // set the Q flag, which nothing reads.
    unsafe { routine(args.as_ptr(), 4) };
    true
}

/// The eight-output stride-2 passes of [`depthwise_planes`] (its checks done: output
/// widths a multiple of 8, rows of [`WIDE_ROW_WORDS`] pairs).
#[inline(always)]
fn wide_strips(band: &[u32], output: &mut [i8], g: &PlaneGeometry, args: &mut [DwPlaneArgs; 4]) -> bool {
    let (rows, columns) = (g.rows, g.columns);
    for a in args.iter_mut() {
        let Some(block) = requant_block(a.shift) else {
            return false;
        };
        a.requant = block;
    }
    let wide = match g.clamp {
        0 => microcnn_dww_c0,
        1 => microcnn_dww_c1,
        _ => microcnn_dww_c2,
    };
    // One call per strip of eight output columns (pairs 8j.. of each row, 32 words
    // of the interleaved band on), each of its rows one pass.
    for strip in 0..columns / 8 {
        for (k, a) in args.iter_mut().enumerate() {
            let first = 8 * strip * g.channels + k;
            a.row_delta = 3 * g.channels;
            a.row_bytes = g.channels;
            a.output_end = output.as_mut_ptr().wrapping_add(rows * columns * g.channels + first);
            a.band = band.as_ptr().wrapping_add(32 * strip + 2 * k);
            a.band_row = (columns - 4) * g.channels;
            a.output = output.as_mut_ptr().wrapping_add(first);
            a.channels = g.channels;
        }
        // SAFETY: channel k, output row y of strip j reads band words
        // (2y + r)·4·WIDE_ROW_WORDS + 32j + 2k + {0, 1, 8, 9, 16, 17, 24, 25, 32}
        // for kernel rows r < 3 (byte offsets 0, 288 and 576 from the pass
        // pointer, which moves 576 bytes a row), the last at most
        // (band_rows − 1)·4·WIDE_ROW_WORDS + 4·(OW − 8) + 38 < 4·band_rows·WIDE_ROW_WORDS
        // ≤ 4·plane ≤ band.len() (checked above: OW + 2 ≤ WIDE_ROW_WORDS), word-
        // aligned as LDRD needs; it writes output bytes (y·OW + 8j + i)·C + k for
        // i < 8, all below out_len ≤ output.len(), its loop ending when the output
        // pointer, OW·C bytes on after each row, reaches `output_end` exactly
        // after `rows` rows. Each pass jumps to the channel's requantization block
        // (`requant`, a `microcnn_dww_rqN` address with the Thumb bit, set above),
        // which changes r2 and r4–r11 only and jumps back by the return address
        // the routine put in its frame. The routine follows the AAPCS: saves and
        // restores r4–r11 and lr, uses 112 bytes of stack below them and releases them; r0–r3, r12
        // and the flags are caller-saved, which the `extern "C"` call assumes. SMLAD
        // and SMLABT may set the Q flag, which nothing reads.
        unsafe { wide(args.as_ptr(), 4) };
    }
    true
}

// Widens input rows of four channels into their bands (see `widen_planes`). Arguments
// (words): input, pixel stride, chunks of four pixels per row, rows, band pointer,
// plane stride (bytes), band bytes to skip after a row. lr holds three pixel strides.
core::arch::global_asm!(
    ".syntax unified",
    ".section .text.microcnn_dwp_widen,\"ax\",%progbits",
    ".p2align 2",
    ".global microcnn_dwp_widen",
    ".thumb_func",
    ".type microcnn_dwp_widen, %function",
    "microcnn_dwp_widen:",
    "push {{r4-r11, lr}}",
    "ldm r0, {{r0-r6}}",
    // locals: [sp] pixel stride (unused), [sp+4] chunks, [sp+8] rows left, [sp+12] skip
    "push {{r1, r2, r3, r6}}",
    "add lr, r1, r1, lsl #1",
    "mov r2, r4",
    "add r3, r2, r5",
    "add r4, r3, r5",
    "add r5, r4, r5",
    "3:",
    "ldr r6, [sp, #4]",
    "2:",
    "ldr r7, [r0]",
    "ldr r8, [r0, r1]",
    "ldr r9, [r0, r1, lsl #1]",
    "ldr r10, [r0, lr]",
    "add r0, r0, r1, lsl #2",
    "pkhbt r11, r7, r8, lsl #16",
    "pkhtb r8, r8, r7, asr #16",
    "pkhbt r7, r9, r10, lsl #16",
    "pkhtb r10, r10, r9, asr #16",
    "sxtb16 r9, r11",
    "sxtb16 r12, r7",
    "strd r9, r12, [r2], #8",
    "sxtb16 r9, r11, ror #8",
    "sxtb16 r12, r7, ror #8",
    "strd r9, r12, [r3], #8",
    "sxtb16 r9, r8",
    "sxtb16 r12, r10",
    "strd r9, r12, [r4], #8",
    "sxtb16 r9, r8, ror #8",
    "sxtb16 r12, r10, ror #8",
    "strd r9, r12, [r5], #8",
    "subs r6, r6, #1",
    "bne 2b",
    "ldr r6, [sp, #12]",
    "add r2, r2, r6",
    "add r3, r3, r6",
    "add r4, r4, r6",
    "add r5, r5, r6",
    "ldr r6, [sp, #8]",
    "subs r6, r6, #1",
    "str r6, [sp, #8]",
    "bne 3b",
    "add sp, sp, #16",
    "pop {{r4-r11, pc}}",
    ".size microcnn_dwp_widen, . - microcnn_dwp_widen",
    ".text",
);

extern "C" {
    fn microcnn_dwp_widen(args: *const usize);
}

/// Widens `rows` input rows of four channels into their bands: pixel `x` of row `y`
/// (the word at `input[y·W·pixel + x·pixel ..][..4]`, channels 0–3) goes to `i16`
/// lane `x` of row `y` of band `k` (word `first + k·plane + y·band_row + x/2` of
/// `bands`); `false` (nothing done) when a slice is too short or the width is not a
/// multiple of 4. 23 instructions per four pixels (16 values): four `LDR`, four
/// `PKH`, eight `SXTB16`, four `STRD`, plus 10 per row.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn widen_planes(
    input: &[i8],
    pixel: usize,
    width: usize,
    rows: usize,
    bands: &mut [u32],
    plane: usize,
    band_row: usize,
    first: usize,
) -> bool {
    if width == 0 || !width.is_multiple_of(4) || rows == 0 || pixel < 4 || band_row < width / 2 || plane == 0 {
        return false;
    }
    let row_bytes = width * pixel;
    let in_need = (rows - 1) * row_bytes + (width - 1) * pixel + 4;
    let out_need = 3 * plane + first + (rows - 1) * band_row + width / 2;
    if input.len() < in_need || bands.len() < out_need {
        return false;
    }
    let args: [usize; 7] = [
        input.as_ptr() as usize,
        pixel,
        width / 4,
        rows,
        bands.as_mut_ptr().wrapping_add(first) as usize,
        4 * plane,
        (band_row - width / 2) * 4,
    ];
    // SAFETY: row y, chunk j reads the input words at (y·W + 4j + i)·pixel for i < 4,
    // all inside in_need ≤ input.len() (the rows are contiguous, W·pixel bytes apart),
    // with unaligned LDR (allowed on ARMv7E-M and ARMv8-M Mainline); it writes words
    // first + k·plane + y·band_row + 2j + {0, 1} for k < 4, inside out_need ≤
    // bands.len(), with STRD on word-aligned `u32` addresses. The routine follows the
    // AAPCS (saves and restores r4–r11 and lr, releases its 16 bytes of locals); r0–r3,
    // r12 and the flags are caller-saved, which the `extern "C"` call assumes.
    unsafe { microcnn_dwp_widen(args.as_ptr()) };
    true
}

// Widens input rows of four channels into one interleaved band (see
// `widen_interleaved`). Arguments (words): input, pixel stride, loop iterations per
// row (two chunks of four pixels each), rows, band pointer, band bytes to skip after a
// row. lr holds three pixel
// strides; r4–r11 one chunk's eight words, stored by one STM.
core::arch::global_asm!(
    ".syntax unified",
    // One chunk of four pixels: four LDR, four PKH, eight SXTB16, one STM.
    ".macro MICROCNN_DWP_CHUNK4",
    "ldr r8, [r0]",
    "ldr r9, [r0, r1]",
    "ldr r10, [r0, r1, lsl #1]",
    "ldr r11, [r0, lr]",
    "add r0, r0, r1, lsl #2",
    // pixel pairs (0, 1) and (2, 3): channels 0–1 and 2–3 of both pixels
    "pkhbt r12, r8, r9, lsl #16",
    "pkhtb r9, r9, r8, asr #16",
    "pkhbt r8, r10, r11, lsl #16",
    "pkhtb r11, r11, r10, asr #16",
    // channel k's two pairs in r(4 + 2k), r(5 + 2k)
    "sxtb16 r4, r12",
    "sxtb16 r5, r8",
    "sxtb16 r6, r12, ror #8",
    "sxtb16 r7, r8, ror #8",
    "sxtb16 r8, r9",
    "sxtb16 r10, r9, ror #8",
    "sxtb16 r9, r11",
    "sxtb16 r11, r11, ror #8",
    "stm r2!, {{r4-r11}}",
    ".endm",
    // unroll: chunks per loop iteration (the count passed is of iterations)
    ".macro MICROCNN_DWP_WIDEN4 name, unroll",
    ".section .text.\\name,\"ax\",%progbits",
    ".p2align 2",
    ".global \\name",
    ".thumb_func",
    ".type \\name, %function",
    "\\name:",
    "push {{r4-r11, lr}}",
    "ldm r0, {{r0-r5}}",
    // locals: [sp] iterations, [sp+4] rows left, [sp+8] skip
    "push {{r2, r3, r5}}",
    "mov r2, r4",
    "add lr, r1, r1, lsl #1",
    "3:",
    "ldr r3, [sp]",
    "2:",
    "MICROCNN_DWP_CHUNK4",
    ".if \\unroll == 2",
    "MICROCNN_DWP_CHUNK4",
    ".endif",
    "subs r3, r3, #1",
    "bne 2b",
    "ldr r3, [sp, #8]",
    "add r2, r2, r3",
    "ldr r3, [sp, #4]",
    "subs r3, r3, #1",
    "str r3, [sp, #4]",
    "bne 3b",
    "add sp, sp, #12",
    "pop {{r4-r11, pc}}",
    ".size \\name, . - \\name",
    ".endm",
    "MICROCNN_DWP_WIDEN4 microcnn_dwp_widen8, 2",
    ".purgem MICROCNN_DWP_WIDEN4",
    ".purgem MICROCNN_DWP_CHUNK4",
    ".text",
);

extern "C" {
    fn microcnn_dwp_widen8(args: *const usize);
}

/// Widens `rows` input rows of four channels into one band, the four channels
/// interleaved by blocks of two pixel pairs: pixel `x` of row `y` (the word at
/// `input[y·W·pixel + x·pixel ..][..4]`, channels 0–3) goes to `i16` lane `x % 2` of
/// word `first + y·band_row + 8·(x / 4) + 2k + (x / 2) % 2` of `band` for channel `k`
/// (so channel `k`'s pairs `2i` and `2i + 1` are adjacent words, for `LDRD`); `false`
/// (nothing done) when a slice is too short or the width is not a multiple of 8 (the
/// only widths of the stride-2 channel-plane kernel: output widths multiples of 4). 19
/// instructions per four pixels (16 values): four `LDR`, four `PKH`, eight `SXTB16`,
/// one `STM`, the loop's two per eight pixels, plus 7 per row.
#[inline(never)]
pub(crate) fn widen_interleaved(
    input: &[i8],
    pixel: usize,
    width: usize,
    rows: usize,
    band: &mut [u32],
    band_row: usize,
    first: usize,
) -> bool {
    if width == 0 || !width.is_multiple_of(8) || rows == 0 || pixel < 4 || band_row < 2 * width {
        return false;
    }
    let row_bytes = width * pixel;
    let in_need = (rows - 1) * row_bytes + (width - 1) * pixel + 4;
    let out_need = first + (rows - 1) * band_row + 2 * width;
    if input.len() < in_need || band.len() < out_need {
        return false;
    }
    let args: [usize; 6] = [
        input.as_ptr() as usize,
        pixel,
        width / 8,
        rows,
        band.as_mut_ptr().wrapping_add(first) as usize,
        (band_row - 2 * width) * 4,
    ];
    // SAFETY: the routine runs W/4 chunks a row (two a loop iteration, W/8 iterations,
    // W a multiple of 8): row y, chunk j reads the input words at
    // (y·W + 4j + i)·pixel for i < 4,
    // all inside in_need ≤ input.len() (the rows are contiguous, W·pixel bytes apart),
    // with unaligned LDR (allowed on ARMv7E-M and ARMv8-M Mainline); it writes words
    // first + y·band_row + 8j + 0..8, inside out_need ≤ band.len() (8j + 8 ≤ 2W), with
    // STM on word-aligned `u32` addresses. The routine follows the AAPCS (saves and
    // restores r4–r11 and lr, releases its 12 bytes of locals); r0–r3, r12 and the
    // flags are caller-saved, which the `extern "C"` call assumes.
    unsafe { microcnn_dwp_widen8(args.as_ptr()) };
    true
}

/// Words of one channel's pixel pairs a band row holds for the eight-output stride-2
/// routines (`microcnn_dwp_w8*`): a fixed row of `4·WIDE_ROW_WORDS` words (288 bytes),
/// so that the three kernel rows are immediate offsets of one pointer. Output widths up
/// to 16 (a multiple of 8), input widths up to 36.
pub(crate) const WIDE_ROW_WORDS: usize = 18;

// Eight-output stride-2 channel-plane passes (`depthwise_planes` with the interleaved
// band, rows of WIDE_ROW_WORDS pairs, output width a multiple of 8): one call runs a
// strip of eight output columns of each of four channels, one pass per output row.
// Registers: r0 the band (kernel row 0 of the pass; rows 1 and 2 at +288 and +576),
// r1 the output, r2–r3 data, r4–r11 the accumulators, r12 and lr the filter words
// (requantization constants after the taps). Per pass of eight outputs: 1 (LDM of
// the accumulators and kernel row 0's filter words) + 21 + 2 × 22 (the last row's
// first load moving r0 on to the next pass) + 1 + 26 (requantization: the jump to
// the block, 24, the jump back) + 10 stores (register offsets C, 2C, 3C from two
// bases) + 4: 107.
core::arch::global_asm!(
    ".syntax unified",
    // wb: the first load moves r0 on by off (the other loads then from base 0).
    // filt 0: the filter words already in r12 and lr.
    ".macro MICROCNN_DWW_ROW off, filt, wb=0",
    ".if \\filt",
    "ldrd r12, lr, [sp, #\\filt]",
    ".endif",
    ".if \\wb",
    "ldrd r2, r3, [r0, #\\off]!",
    ".set microcnn_dww_base, 0",
    ".else",
    "ldrd r2, r3, [r0, #\\off]",
    ".set microcnn_dww_base, \\off",
    ".endif",
    "smlad r4, r2, r12, r4",
    "smlabt r4, r3, lr, r4",
    "smlad r5, r3, r12, r5",
    "ldrd r2, r3, [r0, #(microcnn_dww_base + 32)]",
    "smlabt r5, r2, lr, r5",
    "smlad r6, r2, r12, r6",
    "smlabt r6, r3, lr, r6",
    "smlad r7, r3, r12, r7",
    "ldrd r2, r3, [r0, #(microcnn_dww_base + 64)]",
    "smlabt r7, r2, lr, r7",
    "smlad r8, r2, r12, r8",
    "smlabt r8, r3, lr, r8",
    "smlad r9, r3, r12, r9",
    "ldrd r2, r3, [r0, #(microcnn_dww_base + 96)]",
    "smlabt r9, r2, lr, r9",
    "smlad r10, r2, r12, r10",
    "smlabt r10, r3, lr, r10",
    "smlad r11, r3, r12, r11",
    "ldr r2, [r0, #(microcnn_dww_base + 128)]",
    "smlabt r11, r2, lr, r11",
    ".endm",
    // acc = ssat8((SMMLAR(acc, M, K) + (acc >> 31)) >> sh): M in r12, K in lr.
    ".macro MICROCNN_DWW_RQ acc, sh",
    "smmlar r2, \\acc, r12, lr",
    "add \\acc, r2, \\acc, asr #31",
    "ssat \\acc, #8, \\acc, asr #\\sh",
    ".endm",
    // The eight accumulators' requantization for right shift sh, back to r3.
    ".macro MICROCNN_DWW_RQB sh",
    ".section .text.microcnn_dww_rq\\sh,\"ax\",%progbits",
    ".p2align 2",
    ".global microcnn_dww_rq\\sh",
    ".thumb_func",
    ".type microcnn_dww_rq\\sh, %function",
    "microcnn_dww_rq\\sh:",
    "MICROCNN_DWW_RQ r4, \\sh",
    "MICROCNN_DWW_RQ r5, \\sh",
    "MICROCNN_DWW_RQ r6, \\sh",
    "MICROCNN_DWW_RQ r7, \\sh",
    "MICROCNN_DWW_RQ r8, \\sh",
    "MICROCNN_DWW_RQ r9, \\sh",
    "MICROCNN_DWW_RQ r10, \\sh",
    "MICROCNN_DWW_RQ r11, \\sh",
    "ldr pc, [sp, #104]",
    ".size microcnn_dww_rq\\sh, . - microcnn_dww_rq\\sh",
    ".endm",
    ".macro MICROCNN_DWW_LO acc",
    "add \\acc, \\acc, r12",
    "ssat \\acc, #8, \\acc",
    ".endm",
    ".macro MICROCNN_DWW_HI acc",
    "cmp \\acc, lr",
    "it gt",
    "movgt \\acc, lr",
    ".endm",
    ".macro MICROCNN_DWW_ALL m",
    "\\m r4",
    "\\m r5",
    "\\m r6",
    "\\m r7",
    "\\m r8",
    "\\m r9",
    "\\m r10",
    "\\m r11",
    ".endm",
    ".macro MICROCNN_DWW_FN name, clamp",
    ".section .text.\\name,\"ax\",%progbits",
    ".p2align 2",
    ".global \\name",
    ".thumb_func",
    ".type \\name, %function",
    "\\name:",
    "push {{r4-r11, lr}}",
    // Locals: [sp] and [sp+16] the accumulator start four times each (so that one
    // LDM loads the eight accumulators and kernel row 0's filter words), [sp+32]
    // the filter, [sp+56] multiplier and rounding constant, [sp+68] the clamps,
    // [sp+76] three channel counts and the channel count (row_delta and row_bytes),
    // [sp+84] the output end, [sp+88] the row step (the band_row field), [sp+92] the
    // requantization block, [sp+96] the next channel's arguments, [sp+100] channels
    // left, [sp+104] the blocks' return address (7 below, with the Thumb bit).
    "sub sp, sp, #112",
    "strd r0, r1, [sp, #96]",
    "adr r2, 7f",
    "orr r2, r2, #1",
    "str r2, [sp, #104]",
    "5:",
    "ldr r0, [sp, #96]",
    "ldm r0!, {{r1-r9}}",
    "stm sp, {{r1-r4}}",
    "add r10, sp, #16",
    "stm r10, {{r1-r9}}",
    "ldm r0!, {{r1-r9}}",
    "add r10, sp, #52",
    "stm r10, {{r1-r9}}",
    "ldm r0!, {{r4, r5, r6, r7, r12}}",
    "str r0, [sp, #96]",
    "strd r6, r4, [sp, #88]",
    "mov r0, r5",
    "mov r1, r7",
    "1:",
    "ldm sp, {{r4-r12, lr}}",
    "MICROCNN_DWW_ROW 0, 0",
    "MICROCNN_DWW_ROW 288, 40",
    // r0 on to the next output row's kernel row 0 (two band rows on)
    "MICROCNN_DWW_ROW 576, 48, 1",
    "ldrd r12, lr, [sp, #56]",
    // the requantization block of the channel's shift, back at 7
    "ldr pc, [sp, #92]",
    ".p2align 2",
    "7:",
    ".if \\clamp >= 1",
    "ldrd r12, lr, [sp, #68]",
    "MICROCNN_DWW_ALL MICROCNN_DWW_LO",
    ".endif",
    ".if \\clamp >= 2",
    "MICROCNN_DWW_ALL MICROCNN_DWW_HI",
    ".endif",
    // r2 three channel counts, r3 the channel count (the row_delta and row_bytes
    // slots)
    "ldrd r2, r3, [sp, #76]",
    "strb r4, [r1]",
    "strb r5, [r1, r3]",
    "strb r6, [r1, r3, lsl #1]",
    "strb r7, [r1, r2]",
    "add r1, r1, r3, lsl #2",
    "strb r8, [r1]",
    "strb r9, [r1, r3]",
    "strb r10, [r1, r3, lsl #1]",
    "strb r11, [r1, r2]",
    // the strip's next row: the last four outputs' and the other columns' bytes on
    "ldrd r2, r12, [sp, #84]",
    "add r1, r1, r12",
    "cmp r1, r2",
    "bne 1b",
    // next channel
    "ldr r2, [sp, #100]",
    "subs r2, r2, #1",
    "str r2, [sp, #100]",
    "bne 5b",
    "add sp, sp, #112",
    "pop {{r4-r11, pc}}",
    ".size \\name, . - \\name",
    ".endm",
    "MICROCNN_DWW_FN microcnn_dww_c0, 0",
    "MICROCNN_DWW_FN microcnn_dww_c1, 1",
    "MICROCNN_DWW_FN microcnn_dww_c2, 2",
    ".irp sh, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20",
    "MICROCNN_DWW_RQB \\sh",
    ".endr",
    ".purgem MICROCNN_DWW_RQB",
    ".purgem MICROCNN_DWW_ROW",
    ".purgem MICROCNN_DWW_RQ",
    ".purgem MICROCNN_DWW_LO",
    ".purgem MICROCNN_DWW_HI",
    ".purgem MICROCNN_DWW_ALL",
    ".purgem MICROCNN_DWW_FN",
    ".text",
);

extern "C" {
    fn microcnn_dww_c0(args: *const DwPlaneArgs, count: usize);
    fn microcnn_dww_c1(args: *const DwPlaneArgs, count: usize);
    fn microcnn_dww_c2(args: *const DwPlaneArgs, count: usize);
    // Requantization blocks: jump targets of the routines above, not callable.
    fn microcnn_dww_rq1();
    fn microcnn_dww_rq2();
    fn microcnn_dww_rq3();
    fn microcnn_dww_rq4();
    fn microcnn_dww_rq5();
    fn microcnn_dww_rq6();
    fn microcnn_dww_rq7();
    fn microcnn_dww_rq8();
    fn microcnn_dww_rq9();
    fn microcnn_dww_rq10();
    fn microcnn_dww_rq11();
    fn microcnn_dww_rq12();
    fn microcnn_dww_rq13();
    fn microcnn_dww_rq14();
    fn microcnn_dww_rq15();
    fn microcnn_dww_rq16();
    fn microcnn_dww_rq17();
    fn microcnn_dww_rq18();
    fn microcnn_dww_rq19();
    fn microcnn_dww_rq20();
}

/// The requantization block of right shift `r` (1..=20; the channel-plane kernel's
/// range), its address with the Thumb bit; `None` outside the range.
fn requant_block(r: u32) -> Option<usize> {
    let i = (r as usize).checked_sub(1)?;
    REQUANT_BLOCKS.get(i).map(|&f| f as usize)
}

/// The requantization blocks by right shift (1 to 20).
static REQUANT_BLOCKS: [unsafe extern "C" fn(); 20] = [
    microcnn_dww_rq1,
    microcnn_dww_rq2,
    microcnn_dww_rq3,
    microcnn_dww_rq4,
    microcnn_dww_rq5,
    microcnn_dww_rq6,
    microcnn_dww_rq7,
    microcnn_dww_rq8,
    microcnn_dww_rq9,
    microcnn_dww_rq10,
    microcnn_dww_rq11,
    microcnn_dww_rq12,
    microcnn_dww_rq13,
    microcnn_dww_rq14,
    microcnn_dww_rq15,
    microcnn_dww_rq16,
    microcnn_dww_rq17,
    microcnn_dww_rq18,
    microcnn_dww_rq19,
    microcnn_dww_rq20,
];

// ---- depthwise / pooling / add (kdw) ----

/// `dst[..4k] = src[..4k]` one word at a time, `k = min(dst.len(), src.len()) / 4`:
/// the depthwise kernel's border patches and padded rows (a Rust loop there becomes a
/// `memcpy` call, and a `memset` of the empty tail: ~100 instructions per 16 bytes;
/// this is 4 per word).
#[inline(always)]
pub fn copy_words(dst: &mut [i8], src: &[i8]) {
    let words = dst.len().min(src.len()) / 4;
    if words == 0 {
        return;
    }
    // SAFETY: iteration i < words reads src bytes [4i, 4i + 4) and writes dst bytes
    // [4i, 4i + 4), inside both slices (words ≥ 1 by the check above); unaligned LDR/STR
    // are allowed on ARMv7E-M and ARMv8-M Mainline. SUBS clobbers the flags, which
    // `asm!` assumes.
    unsafe {
        asm!(
            "2:",
            "ldr {t}, [{s}], #4",
            "str {t}, [{d}], #4",
            "subs {n}, {n}, #1",
            "bne 2b",
            s = inout(reg) src.as_ptr() => _,
            d = inout(reg) dst.as_mut_ptr() => _,
            n = inout(reg) words => _,
            t = out(reg) _,
            options(nostack)
        )
    };
}

/// Arguments of `microcnn_dw3x3_groups` (offsets fixed by the assembly: the first seven
/// words become its stack locals as they are, the last four its registers).
#[repr(C)]
struct Dw3x3Args {
    act_min: u32,
    act_max: u32,
    table_end: *const u32,
    table: *const u32,
    /// Input bytes from the end of one pixel's groups to the next pixel's start.
    in_step: usize,
    /// Output bytes from the end of one pixel's groups to the next pixel's start.
    out_step: usize,
    pixels: usize,
    input: *const i8,
    col: usize,
    row: usize,
    output: *mut i8,
}

// The 3×3 depthwise kernel of `ops::depthwise3x3` (table layout and arithmetic
// documented there). r0: input (tap 0 of the group), r1: column step, r2: row step,
// r3: table, r4–r7: the four channels' accumulators, r8–r12: taps, lanes and weights,
// lr: output. Per group: 14 instructions per tap pair of four channels (two loads, two
// PKH, four SXTB16, four SMLAD, two LDRD; the first pair's weights come with the
// accumulator starts in one LDM), 9 for tap 8, 5 per requantization (the constants
// of four channels in three LDMs), 9 to pack, clamp, store and loop: 101 in all; 97
// in a second copy of the loop without the clamp, run when its range is all of int8.
core::arch::global_asm!(
    ".syntax unified",
    ".section .text.microcnn_dw3x3_groups,\"ax\",%progbits",
    ".p2align 2",
    ".thumb_func",
    ".type microcnn_dw3x3_groups, %function",
    "microcnn_dw3x3_groups:",
    "push {{r4-r11, lr}}",
    // Locals: [sp] act_min, [sp+4] act_max, [sp+8] table end (one LDM reads the
    // three), [sp+12] table, [sp+16] in_step, [sp+20] out_step, [sp+24] pixels left
    // (another LDM reads these four): the first seven words of the arguments, pushed
    // as they are.
    "ldm r0!, {{r1-r7}}",
    "push {{r1-r7}}",
    "ldm r0, {{r0, r1, r2, lr}}",
    // One tap pair: input words in r8, r9, the first two weight words in r11, r12
    // (loaded here when `load` is 1), the last LDRD advancing the table by `step`.
    ".macro MICROCNN_DW_PAIR load, step",
    "pkhbt r10, r8, r9, lsl #16",
    "pkhtb r8, r9, r8, asr #16",
    ".if \\load",
    "ldrd r11, r12, [r3], #8",
    ".endif",
    "sxtb16 r9, r10",
    "smlad r4, r9, r11, r4",
    "sxtb16 r10, r10, ror #8",
    "smlad r5, r10, r12, r5",
    "ldrd r11, r12, [r3], #\\step",
    "sxtb16 r9, r8",
    "smlad r6, r9, r11, r6",
    "sxtb16 r8, r8, ror #8",
    "smlad r7, r8, r12, r7",
    ".endm",
    // acc = saturate8(((2h + (h >> 31) + round) >> shift)), h = SMMULR(acc, M).
    ".macro MICROCNN_DW_REQUANT acc, m, round, shift",
    "smmulr \\acc, \\acc, \\m",
    "add \\round, \\round, \\acc, lsl #1",
    "add \\round, \\round, \\acc, asr #31",
    "asr \\round, \\round, \\shift",
    "ssat \\acc, #8, \\round",
    ".endm",
    // The group and pixel loop, with or without the clamp.
    ".macro MICROCNN_DW_LOOP clamp",
    "2:",
    // accumulator starts and the first pair's weights of channels 0, 1
    "ldm r3!, {{r4-r7, r11, r12}}",
    // taps (0,0), (0,1)
    "ldr r8, [r0]",
    "ldr r9, [r0, r1]",
    "MICROCNN_DW_PAIR 0, 8",
    // taps (0,2), (1,0)
    "ldr r8, [r0, r1, lsl #1]",
    "ldr r9, [r0, r2]",
    "MICROCNN_DW_PAIR 1, 8",
    // taps (1,1), (1,2)
    "add r9, r0, r2",
    "ldr r8, [r9, r1]",
    "ldr r9, [r9, r1, lsl #1]",
    "MICROCNN_DW_PAIR 1, 8",
    // tap (2,2) before taps (2,0), (2,1), r10 keeping the row: lanes (c0, c2) and
    // (c1, c3), one product each, its weights 16 bytes on
    "add r10, r0, r2, lsl #1",
    "ldr r9, [r10, r1, lsl #1]",
    "ldrd r11, r12, [r3, #16]",
    "sxtb16 r8, r9",
    "sxtb16 r9, r9, ror #8",
    "smlabb r4, r8, r11, r4",
    "smlatt r6, r8, r11, r6",
    "smlabb r5, r9, r12, r5",
    "smlatt r7, r9, r12, r7",
    // taps (2,0), (2,1); the table then skips tap 8's words
    "ldr r8, [r10]",
    "ldr r9, [r10, r1]",
    "MICROCNN_DW_PAIR 1, 16",
    "add r0, r0, #4",
    // multipliers, rounding constants and shifts: M0 R0 S0 M1 R1 | S1 M2 R2 | S2 M3 R3 S3
    "ldm r3!, {{r8-r12}}",
    "MICROCNN_DW_REQUANT r4, r8, r9, r10",
    "ldm r3!, {{r8-r10}}",
    "MICROCNN_DW_REQUANT r5, r11, r12, r8",
    "bfi r4, r5, #8, #8",
    "ldm r3!, {{r5, r8, r11, r12}}",
    "MICROCNN_DW_REQUANT r6, r9, r10, r5",
    "bfi r4, r6, #16, #8",
    "MICROCNN_DW_REQUANT r7, r8, r11, r12",
    "bfi r4, r7, #24, #8",
    // clamp to [act_min, act_max] per byte (unless the range is all of int8), store,
    // next group until the table end
    ".if \\clamp",
    "ldm sp, {{r8-r10}}",
    "ssub8 r12, r4, r8",
    "sel r4, r4, r8",
    "ssub8 r12, r4, r9",
    "sel r4, r9, r4",
    ".else",
    "ldr r10, [sp, #8]",
    ".endif",
    "str r4, [lr], #4",
    "cmp r3, r10",
    "bne 2b",
    // next pixel: the table again, the steps, one pixel fewer
    "add r12, sp, #12",
    "ldm r12, {{r3, r8, r9, r10}}",
    "add r0, r0, r8",
    "add lr, lr, r9",
    "subs r10, r10, #1",
    "str r10, [sp, #24]",
    "bne 2b",
    ".endm",
    "ldr r3, [sp, #12]",
    // act_min = -128 and act_max = 127 in every byte: the loop without the clamp
    "ldrd r8, r9, [sp]",
    "cmp r8, #0x80808080",
    "it eq",
    "cmpeq r9, #0x7f7f7f7f",
    "beq 4f",
    "MICROCNN_DW_LOOP 1",
    "b 3f",
    "4:",
    "MICROCNN_DW_LOOP 0",
    "3:",
    "add sp, sp, #28",
    "pop {{r4-r11, pc}}",
    ".purgem MICROCNN_DW_PAIR",
    ".purgem MICROCNN_DW_REQUANT",
    ".purgem MICROCNN_DW_LOOP",
    ".size microcnn_dw3x3_groups, . - microcnn_dw3x3_groups",
    ".text",
);

extern "C" {
    fn microcnn_dw3x3_groups(args: *const Dw3x3Args);
}

/// The 3×3 depthwise kernel (`ops::depthwise3x3`): `run.pixels` output pixels of
/// `run.groups` groups of four channels, reading `input` from its start and writing
/// `output` from its start; `false` (nothing done) when a slice is shorter than the
/// run needs. 101 instructions per group and pixel (36 multiply-accumulates), 97 when
/// `act` is all of int8 (no clamp). Not
/// inlined: the driver calls it from four places (flash).
#[inline(never)]
pub(crate) fn depthwise3x3_groups(
    input: &[i8],
    output: &mut [i8],
    table: &[u32],
    run: &crate::ops::depthwise3x3::Run,
    act: (i8, i8),
) -> bool {
    let Some((reach, out_len)) = run.extent() else {
        return false;
    };
    if reach > input.len() || out_len > output.len() || table.len() < 34 * run.groups {
        return false;
    }
    let args = Dw3x3Args {
        act_min: u32::from_le_bytes([act.0 as u8; 4]),
        act_max: u32::from_le_bytes([act.1 as u8; 4]),
        table_end: table.as_ptr().wrapping_add(34 * run.groups),
        table: table.as_ptr(),
        in_step: run.in_step.wrapping_sub(4 * run.groups),
        out_step: run.out_step.wrapping_sub(4 * run.groups),
        pixels: run.pixels,
        input: input.as_ptr(),
        col: run.col,
        row: run.row,
        output: output.as_mut_ptr(),
    };
    // SAFETY: the routine reads input bytes [0, reach) (pixel p, group g, tap (i, j),
    // byte k at p·in_step + 4·g + i·row + j·col + k, checked above), table words
    // [0, 34·groups) (word-aligned `u32`s, as LDM and LDRD need), and writes output
    // bytes [0, out_len) (p·out_step + 4·g + k); unaligned LDR/STR are allowed on
    // ARMv7E-M and ARMv8-M Mainline; it reads the eleven words of `args`. It follows
    // the AAPCS: saves and restores r4–r11 and lr, uses 28 bytes of stack below them
    // (the first seven argument words), returns nothing; r0–r3 and r12 and the flags
    // are caller-saved, which the `extern "C"` call assumes.
    unsafe { microcnn_dw3x3_groups(&args) };
    true
}

// ---------------------------------------------------------------------------------
// Dense layer (weights in the `format::weight_layout::DENSE_BLOCKED` layout).
// ---------------------------------------------------------------------------------

/// The flow shared by the dense block kernels, `$group` being the assembly of one
/// group (it must leave the flags alone): one group when `n` is odd, two when bit 1
/// is set (LSRS moves each bit into the carry and leaves Z for the rest), then
/// quadruples of groups.
macro_rules! dense_groups {
    ($group:expr) => {
        concat!(
            "lsrs {n}, {n}, #1\n",
            "bcc 3f\n",
            $group,
            "3:\n",
            "lsrs {n}, {n}, #1\n",
            "bcc 5f\n",
            $group,
            $group,
            "5:\n",
            "beq 4f\n",
            "2:\n",
            $group,
            $group,
            $group,
            $group,
            "subs {n}, {n}, #1\n",
            "bne 2b\n",
            "4:\n"
        )
    };
}

/// One unit's two multiply-accumulates per lane pair: weight word `$w` (destroyed)
/// against the column words `c0`, `c1` into `$a`.
macro_rules! dense_unit {
    ($w:literal, $a:literal) => {
        concat!(
            "sxtb16 {t}, {",
            $w,
            "}\n",
            "smlad {",
            $a,
            "}, {t}, {c0}, {",
            $a,
            "}\n",
            "sxtb16 {",
            $w,
            "}, {",
            $w,
            "}, ror #8\n",
            "smlad {",
            $a,
            "}, {",
            $w,
            "}, {c1}, {",
            $a,
            "}\n"
        )
    };
}

/// Inputs of the longest dense layer [`dense_column`] widens (`2 · DENSE_COLUMN_MAX`
/// bytes of stack).
pub const DENSE_COLUMN_MAX: usize = 1024;

/// Widens `input` (at most [`DENSE_COLUMN_MAX`] values, any alignment) into a column of
/// `i16` lanes `x − zp` (`offset = −zp`, so lanes stay in [−255, 255]) in the DSP order
/// (per group of four values the words `(x0, x2), (x1, x3)`), the last group padded
/// with `offset`, and calls `f` with the column (`2 · ⌈n / 4⌉` words); `None` when
/// the input is too long. The buffer is not zeroed first: only the words `f` sees are
/// written. `SXTAB16` widens and adds the offset in one: 4 instructions per group of
/// four plus 2 per four groups.
#[inline(always)]
pub fn dense_column<R>(input: &[i8], offset: i32, f: impl FnOnce(&[u32]) -> R) -> Option<R> {
    let n = input.len();
    if n > DENSE_COLUMN_MAX {
        return None;
    }
    let full = n / 4;
    let words = 2 * n.div_ceil(4);
    let lanes = (offset as u32 & 0xFFFF).wrapping_mul(0x0001_0001);
    let mut buffer = core::mem::MaybeUninit::<[u32; DENSE_COLUMN_MAX / 2]>::uninit();
    let column = buffer.as_mut_ptr().cast::<u32>();
    // SAFETY: the loop reads input bytes [0, 4·full) (n ≥ 4·full; unaligned LDR is
    // allowed on ARMv7E-M and ARMv8-M Mainline) and writes column words [0, 2·full),
    // inside the buffer (2·full ≤ n/2 ≤ 512 words; word-aligned, as STRD needs). The
    // pointer and counter operands are inout and discarded; SUBS and LSRS clobber the
    // flags, which `asm!` assumes.
    unsafe {
        asm!(
            dense_groups!(concat!(
                "ldr {x}, [{p}], #4\n",
                "sxtab16 {a}, {off}, {x}\n",
                "sxtab16 {x}, {off}, {x}, ror #8\n",
                "strd {a}, {x}, [{c}], #8\n",
            )),
            p = inout(reg) input.as_ptr() => _,
            c = inout(reg) column => _,
            n = inout(reg) full => _,
            off = in(reg) lanes,
            a = out(reg) _,
            x = out(reg) _,
            options(nostack)
        )
    };
    if words > 2 * full {
        // The 1–3 values of a last partial group, then `offset` (their weights are 0).
        let mut tail = [0_i8; 4];
        tail[..n - 4 * full].copy_from_slice(&input[4 * full..]);
        let x = u32::from_le_bytes(tail.map(|v| v as u8));
        let pair = [sadd16(sxtb16(x), lanes), sadd16(sxtb16_ror8(x), lanes)];
        // SAFETY: words 2·full and 2·full + 1 are inside the buffer (words ≤ 512).
        unsafe {
            column.add(2 * full).write(pair[0]);
            column.add(2 * full + 1).write(pair[1]);
        }
    }
    // SAFETY: words [0, words) were all written above; the buffer outlives the borrow.
    let column = unsafe { core::slice::from_raw_parts(column.cast_const(), words) };
    Some(f(column))
}

/// Checks shared by the block kernels: `w` is word-aligned (LDRD) and holds `k` units
/// of `groups` groups, `column` `groups` groups.
#[inline(always)]
fn dense_fits(w: &[i8], k: usize, column: &[u32], groups: usize) -> bool {
    (w.as_ptr() as usize).is_multiple_of(4)
        && w.len() >= groups.saturating_mul(4 * k)
        && column.len() >= groups.saturating_mul(2)
}

/// One group of a block of four units with fixed registers: column words into r12
/// and lr, the four weight words by one `LDM` into r8–r11, each widened in turn into
/// the register the previous unit freed (r6 for the first), accumulators r2–r5.
macro_rules! dense_group4_fixed {
    () => {
        concat!(
            "ldrd r12, lr, [r1], #8\n",
            "ldm r0!, {{r8, r9, r10, r11}}\n",
            "sxtb16 r6, r8\n",
            "smlad r2, r6, r12, r2\n",
            "sxtb16 r8, r8, ror #8\n",
            "smlad r2, r8, lr, r2\n",
            "sxtb16 r8, r9\n",
            "smlad r3, r8, r12, r3\n",
            "sxtb16 r9, r9, ror #8\n",
            "smlad r3, r9, lr, r3\n",
            "sxtb16 r9, r10\n",
            "smlad r4, r9, r12, r4\n",
            "sxtb16 r10, r10, ror #8\n",
            "smlad r4, r10, lr, r4\n",
            "sxtb16 r10, r11\n",
            "smlad r5, r10, r12, r5\n",
            "sxtb16 r11, r11, ror #8\n",
            "smlad r5, r11, lr, r5\n",
        )
    };
}

/// A block of four dense units (`w`: per group of four inputs the four units' weight
/// words in turn, word-aligned) times a [`dense_column`] over `groups` groups; `None`
/// when a slice is short or `w` unaligned. Eight groups at a time: 18 instructions per
/// 16 multiply-accumulates (one `LDRD` for the column, one `LDM` for the four weight
/// words) plus 3 per eight groups; the other `groups % 8` at 19 per group.
#[inline(always)]
pub fn dense_block4(w: &[i8], column: &[u32], groups: usize) -> Option<[i32; 4]> {
    if !dense_fits(w, 4, column, groups) {
        return None;
    }
    let (mut a0, mut a1, mut a2, mut a3) = (0_i32, 0_i32, 0_i32, 0_i32);
    let (mut pw, mut pc) = (w.as_ptr(), column.as_ptr());
    let eights = groups / 8;
    if eights > 0 {
        let end = pc.wrapping_add(16 * eights);
        // SAFETY: the loop reads weight bytes [0, 128·eights) and column words
        // [0, 16·eights), inside the slices (checked above: groups ≥ 8·eights), both
        // word-aligned as LDM and LDRD need; it runs until the column pointer reaches
        // `end` (eights ≥ 1 iterations). r6 (reserved for LLVM, so not an operand) and
        // the end pointer are pushed below the stack pointer and r6 is restored before
        // the block ends; nothing else touches the stack. The pointers come back
        // advanced by eight groups per iteration; the flags are clobbered, which
        // `asm!` assumes.
        unsafe {
            asm!(
                "push {{r6, r8}}",
                "2:",
                dense_group4_fixed!(),
                dense_group4_fixed!(),
                dense_group4_fixed!(),
                dense_group4_fixed!(),
                dense_group4_fixed!(),
                dense_group4_fixed!(),
                dense_group4_fixed!(),
                dense_group4_fixed!(),
                "ldr r6, [sp, #4]",
                "cmp r1, r6",
                "bne 2b",
                "pop {{r6, r8}}",
                inout("r0") pw,
                inout("r1") pc,
                inout("r2") a0,
                inout("r3") a1,
                inout("r4") a2,
                inout("r5") a3,
                inout("r8") end => _,
                out("r9") _,
                out("r10") _,
                out("r11") _,
                out("r12") _,
                out("lr") _,
                options(readonly)
            )
        };
    }
    let rest = groups % 8;
    // SAFETY: the loop reads the remaining `rest` groups: weight bytes
    // [128·eights, 16·groups) and column words [16·eights, 2·groups), inside the
    // slices (checked above), word-aligned as LDRD needs. The pointer and counter
    // operands are inout and discarded; the flags are clobbered, which `asm!` assumes.
    unsafe {
        asm!(
            dense_groups!(concat!(
                "ldrd {c0}, {c1}, [{c}], #8\n",
                "ldrd {w0}, {w1}, [{p}], #8\n",
                dense_unit!("w0", "a0"),
                dense_unit!("w1", "a1"),
                "ldrd {w0}, {w1}, [{p}], #8\n",
                dense_unit!("w0", "a2"),
                dense_unit!("w1", "a3"),
            )),
            p = inout(reg) pw => _,
            c = inout(reg) pc => _,
            n = inout(reg) rest => _,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            c0 = out(reg) _,
            c1 = out(reg) _,
            w0 = out(reg) _,
            w1 = out(reg) _,
            t = out(reg) _,
            options(readonly, nostack)
        )
    };
    Some([a0, a1, a2, a3])
}

/// [`dense_block4`] for a block of two units. 10 instructions per 8
/// multiply-accumulates plus 2 per four groups.
#[inline(always)]
pub fn dense_block2(w: &[i8], column: &[u32], groups: usize) -> Option<[i32; 2]> {
    if !dense_fits(w, 2, column, groups) {
        return None;
    }
    let (mut a0, mut a1) = (0_i32, 0_i32);
    // SAFETY: as in `dense_block4`, over weight bytes [0, 8·groups).
    unsafe {
        asm!(
            dense_groups!(concat!(
                "ldrd {c0}, {c1}, [{c}], #8\n",
                "ldrd {w0}, {w1}, [{p}], #8\n",
                dense_unit!("w0", "a0"),
                dense_unit!("w1", "a1"),
            )),
            p = inout(reg) w.as_ptr() => _,
            c = inout(reg) column.as_ptr() => _,
            n = inout(reg) groups => _,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            c0 = out(reg) _,
            c1 = out(reg) _,
            w0 = out(reg) _,
            w1 = out(reg) _,
            t = out(reg) _,
            options(readonly, nostack)
        )
    };
    Some([a0, a1])
}

/// [`dense_block4`] for a block of one unit. 6 instructions per 4
/// multiply-accumulates plus 2 per four groups.
#[inline(always)]
pub fn dense_block1(w: &[i8], column: &[u32], groups: usize) -> Option<i32> {
    if !dense_fits(w, 1, column, groups) {
        return None;
    }
    let mut a0 = 0_i32;
    // SAFETY: as in `dense_block4`, over weight bytes [0, 4·groups).
    unsafe {
        asm!(
            dense_groups!(concat!(
                "ldrd {c0}, {c1}, [{c}], #8\n",
                "ldr {w0}, [{p}], #4\n",
                dense_unit!("w0", "a0"),
            )),
            p = inout(reg) w.as_ptr() => _,
            c = inout(reg) column.as_ptr() => _,
            n = inout(reg) groups => _,
            a0 = inout(reg) a0,
            c0 = out(reg) _,
            c1 = out(reg) _,
            w0 = out(reg) _,
            t = out(reg) _,
            options(readonly, nostack)
        )
    };
    Some(a0)
}
