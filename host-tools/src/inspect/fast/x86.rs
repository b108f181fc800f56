//! The x86_64 kernels of the host path: the only `unsafe` in `microcnn-tools`'s int8
//! inference. AVX2, checked at run time ([`available`]); each entry point checks every
//! length its loops rely on before the `unsafe` call.
//!
//! The product ([`Gemm`]): for each pair of inputs (segment after segment, from each
//! pixel's own offset in the source), the pixel's two centred inputs are broadcast as one `i32` to every lane and `vpmaddwd` against the weight pairs of
//! eight channels gives eight exact `x₀w₀ + x₁w₁` sums, added to eight `i32`
//! accumulators; four pixels × sixteen channels at a time share the loads. The
//! requantization ([`requant8`]) is core's, lane by lane: `vpmuldq` on the even and the
//! odd lanes for the 64-bit products, `vpsravd` and a compare for the rounding right
//! shift. Tested against [`Gemm::run_scalar`] and core in `tests/host_fast.rs`.

use super::{Gemm, Requant};
use std::arch::x86_64::*;

/// Whether this CPU runs these kernels.
pub(super) fn available() -> bool {
    std::is_x86_feature_detected!("avx2")
}

/// `out[p · channels + c]` for every pixel `p` of `pixels` (offsets into `src`).
pub(super) fn gemm(g: &Gemm, src: &[i16], pixels: &[usize], out: &mut [i8]) {
    assert!(available(), "AVX2 kernels called on a CPU without AVX2");
    assert!(g.padded.is_multiple_of(8) && g.channels <= g.padded, "bad product shape");
    assert_eq!(g.segments.iter().map(|s| s.1).sum::<usize>(), g.pairs, "segments do not add up to the pairs");
    assert!(g.segments.iter().all(|&(at, n)| at + 2 * n <= g.reach), "a segment reaches past `reach`");
    assert_eq!(g.weights.len(), 2 * g.pairs * g.padded, "weights do not match the product's shape");
    let q = &g.requant;
    for v in [&q.bias, &q.multiplier, &q.left_shift, &q.right_shift, &q.mask, &q.half] {
        assert_eq!(v.len(), g.padded, "requantization does not cover the padded channels");
    }
    let last = pixels.iter().max().copied().unwrap_or(0);
    assert!(last + g.reach <= src.len(), "a pixel's inputs run past the source");
    assert_eq!(out.len(), pixels.len() * g.channels, "output does not hold every pixel's channels");
    // SAFETY: AVX2 is present (checked above), and what `gemm_avx2` reads and writes
    // was checked above: every pixel's reads lie in `src[pixel..pixel + reach]`,
    // `pairs · padded` weight pairs, `padded` requantization lanes, `channels`
    // outputs per pixel.
    unsafe { gemm_avx2(g, src, pixels, out) }
}

#[target_feature(enable = "avx2")]
unsafe fn gemm_avx2(g: &Gemm, src: &[i16], pixels: &[usize], out: &mut [i8]) {
    let mut p = 0;
    while p + 4 <= pixels.len() {
        // SAFETY: pixels p..p + 4 exist (loop condition); shapes checked by `gemm`.
        unsafe { tile::<4>(g, src, pixels, p, out) };
        p += 4;
    }
    while p < pixels.len() {
        // SAFETY: pixel p exists (loop condition); shapes checked by `gemm`.
        unsafe { tile::<1>(g, src, pixels, p, out) };
        p += 1;
    }
}

/// Pixels `p..p + R`, every channel block.
#[target_feature(enable = "avx2")]
unsafe fn tile<const R: usize>(g: &Gemm, src: &[i16], pixels: &[usize], p: usize, out: &mut [i8]) {
    let blocks = g.padded / 8;
    let mut b = 0;
    while b < blocks {
        if b + 2 <= blocks {
            // SAFETY: channel blocks b, b + 1 are within `padded`; pixels as the caller's.
            unsafe { block::<R, 2>(g, src, pixels, p, b, out) };
            b += 2;
        } else {
            // SAFETY: channel block b is within `padded`; pixels as the caller's.
            unsafe { block::<R, 1>(g, src, pixels, p, b, out) };
            b += 1;
        }
    }
}

/// Pixels `p..p + R` × channels `8b..8(b + V)`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn block<const R: usize, const V: usize>(
    g: &Gemm,
    src: &[i16],
    pixels: &[usize],
    p: usize,
    b: usize,
    out: &mut [i8],
) {
    let mut acc = [[_mm256_setzero_si256(); V]; R];
    let mut base = [src.as_ptr(); R];
    for (r, x) in base.iter_mut().enumerate() {
        // SAFETY: pixel p + r's reads lie in src[pixels[p + r]..+ reach] (checked by `gemm`).
        *x = unsafe { x.add(pixels[p + r]) };
    }
    // SAFETY: each pixel reads pairs at segment offset + 2q < reach, within `src`;
    // weight pair j of channels 8b..8(b + V) lies at (j · padded + 8b) · 2 .. + 16V,
    // within the `2 · pairs · padded` weights (j < pairs). Unaligned loads throughout.
    unsafe {
        let mut wj = g.weights.as_ptr().add(b * 16);
        for &(at, n) in &g.segments {
            for q in 0..n {
                let mut wv = [_mm256_setzero_si256(); V];
                for (v, slot) in wv.iter_mut().enumerate() {
                    *slot = _mm256_loadu_si256(wj.add(v * 16).cast());
                }
                for (row, &x) in acc.iter_mut().zip(&base) {
                    let pair = _mm256_set1_epi32(x.add(at + 2 * q).cast::<i32>().read_unaligned());
                    for (a, &wv) in row.iter_mut().zip(&wv) {
                        *a = _mm256_add_epi32(*a, _mm256_madd_epi16(pair, wv));
                    }
                }
                wj = wj.add(g.padded * 2);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (v, &a) in row.iter().enumerate() {
            let c = (b + v) * 8;
            if c >= g.channels {
                continue; // a padding block
            }
            // SAFETY: lanes c..c + 8 are within `padded` (checked by `gemm`).
            let q = unsafe { requant8(&g.requant, c, a) };
            let n = (g.channels - c).min(8);
            let at = (p + r) * g.channels + c;
            let mut bytes = [0_i8; 16];
            // SAFETY: `bytes` holds 16 bytes, the size of one unaligned store.
            unsafe { _mm_storeu_si128(bytes.as_mut_ptr().cast(), q) };
            out[at..at + n].copy_from_slice(&bytes[..n]);
        }
    }
}

/// Core's requantization of eight accumulators (channels `c..c + 8`); the int8 results
/// in the low eight bytes.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn requant8(q: &Requant, c: usize, acc: __m256i) -> __m128i {
    // SAFETY: each vector holds `padded` ≥ c + 8 values (the caller's contract).
    let load = |v: &Vec<i32>| unsafe { _mm256_loadu_si256(v.as_ptr().add(c).cast()) };
    let (bias, multiplier, left) = (load(&q.bias), load(&q.multiplier), load(&q.left_shift));
    let (right, mask, half) = (load(&q.right_shift), load(&q.mask), load(&q.half));
    let x = _mm256_sllv_epi32(_mm256_add_epi32(acc, bias), left);
    // ⌊(x·M + 2^30) / 2^31⌋, keeping bits 31..62 of each 64-bit product: the even
    // lanes shifted down into the low word, the odd lanes shifted up into the high word.
    let round = _mm256_set1_epi64x(1 << 30);
    let even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, multiplier), round), 31);
    let odd_product = _mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(multiplier, 32));
    let odd = _mm256_slli_epi64(_mm256_add_epi64(odd_product, round), 1);
    let high = _mm256_blend_epi32(even, odd, 0b1010_1010);
    // RoundingDivideByPOT: up by one when the remainder exceeds half (+1 if negative).
    let threshold = _mm256_sub_epi32(half, _mm256_srai_epi32(high, 31));
    let up = _mm256_cmpgt_epi32(_mm256_and_si256(high, mask), threshold);
    let rounded = _mm256_sub_epi32(_mm256_srav_epi32(high, right), up);
    let value = _mm256_add_epi32(rounded, _mm256_set1_epi32(q.output_zero_point));
    let value = _mm256_min_epi32(_mm256_max_epi32(value, _mm256_set1_epi32(q.act_min)), _mm256_set1_epi32(q.act_max));
    let words = _mm_packs_epi32(_mm256_castsi256_si128(value), _mm256_extracti128_si256(value, 1));
    _mm_packs_epi16(words, words)
}
