//! The matrix products of training (convolutions as im2col products, dense layers and
//! their gradients).
//!
//! Every output value is one chain of fused multiply-adds over the inner dimension in
//! order, starting from zero: `c[i][j] = fma(a[i][k−1], b[k−1][j], … fma(a[i][0],
//! b[0][j], 0))` (or from `c[i][j]`'s value, [`sgemm_onto`]). Each build below computes
//! exactly that, whatever its vector width:
//!
//! - AVX-512 (chosen at run time, as the element-wise passes in `simd.rs`): blocks of up
//!   to 12 rows × 32 columns held in registers, `b`'s row read in place and each `a`
//!   value broadcast, so neither matrix is packed (the im2col matrices are skinny: 27 to
//!   288 values a row, 16 or 32 output channels);
//! - otherwise a plain loop over `c`'s rows with `f32::mul_add`, compiled for AVX2 + FMA
//!   when the CPU has them (the loop over `j` vectorizes) and for the baseline
//!   otherwise (a slow `fmaf` per product, but the same bits).
//!
//! So a product has the same bits on every CPU and in every build (`same_bits_*`
//! tests below and in `tests.rs`). [`sgemm`] checks every extent against the slices
//! first, so callers stay in safe code; this file and `simd.rs` are the only places in
//! training with `unsafe`.

/// A row-major or transposed view of a matrix in a slice.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> View<'a> {
    /// `rows × cols`, row-major (`data[r * cols + c]`).
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "matrix view of {rows}×{cols} over {} values", data.len());
        View { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// The transpose of a row-major `rows × cols` matrix, seen as `cols × rows`.
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "matrix view of {rows}×{cols} over {} values", data.len());
        View { data, rows: cols, cols: rows, row_stride: 1, col_stride: cols }
    }

    /// `rows × cols` read at `data[r · row_stride + c · col_stride]`. The rows may
    /// overlap: a stride-1 convolution's windows, read straight from its (padded) input.
    pub fn strided(data: &'a [f32], rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> Self {
        if rows > 0 && cols > 0 {
            let last = (rows - 1) * row_stride + (cols - 1) * col_stride;
            assert!(last < data.len(), "strided view of {rows}×{cols} reaching {last} in {} values", data.len());
        }
        View { data, rows, cols, row_stride, col_stride }
    }

    #[inline(always)]
    fn at(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.row_stride + c * self.col_stride]
    }
}

/// `c = a · b`, with `c` row-major `a.rows × b.cols` (only written: its old values,
/// even NaN, do not matter).
pub fn sgemm(a: View<'_>, b: View<'_>, c: &mut [f32]) {
    sgemm_then(a, b, Then::default(), c)
}

/// `c` continued by `a · b`: each value's chain of fused multiply-adds starts from
/// `c`'s value rather than from zero, so a product over an inner dimension cut into
/// consecutive pieces, `c` zeroed first and each piece added in order, has the bits of
/// the product in one piece.
pub fn sgemm_onto(a: View<'_>, b: View<'_>, c: &mut [f32]) {
    sgemm_then(a, b, Then { onto: true, ..Then::default() }, c)
}

/// How [`sgemm_then`] starts each value's chain (from 0, or from `c`'s value with
/// `onto`) and what it does to the value before storing it, in this order: add the
/// column's bias (`v + bias[j]`), then ReLU (`v.max(0.0)`). The same operations as a
/// separate pass, so the same bits, without another pass over `c`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Then<'a> {
    /// Whether each chain starts from `c`'s value (see [`sgemm_onto`]).
    pub onto: bool,
    /// One value per column of `c`.
    pub bias: Option<&'a [f32]>,
    /// Whether ReLU follows.
    pub relu: bool,
}

/// [`sgemm`] (or [`sgemm_onto`]), then `then` on each value.
pub fn sgemm_then(a: View<'_>, b: View<'_>, then: Then<'_>, c: &mut [f32]) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(c.len() >= m * n, "output of {m}×{n} over {} values", c.len());
    let c = &mut c[..m * n];
    if let Some(bias) = then.bias {
        assert_eq!(bias.len(), n, "one bias per column");
    }
    if m == 0 || n == 0 {
        return;
    }
    // `b` row-major and contiguous (a transposed `b` is a weight matrix: small).
    let copy;
    let b = if b.col_stride == 1 && b.row_stride == n {
        &b.data[..k * n]
    } else {
        copy = (0..k).flat_map(|p| (0..n).map(move |j| b.at(p, j))).collect::<Vec<f32>>();
        &copy[..]
    };
    #[cfg(target_arch = "x86_64")]
    {
        if super::simd::avx512() {
            // SAFETY: AVX-512F is present (checked just above); `a` holds `m × k`
            // values at its strides (checked when the view was made), `b` `k × n`
            // row-major, `c` `m × n`.
            unsafe { avx512::product(a, b, n, then, c) };
            return;
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: AVX2 and FMA are present (checked just above).
            unsafe { portable_fma(a, b, n, then, c) };
            return;
        }
    }
    portable(a, b, n, then, c);
}

/// The product one row of `c` at a time: `c[i] = Σ_p a[i][p] · b[p]` as fused steps in
/// `p` order (the loop over `j` vectorizes when FMA is enabled).
#[inline(always)]
fn portable(a: View<'_>, b: &[f32], n: usize, then: Then<'_>, c: &mut [f32]) {
    for (i, crow) in c.chunks_exact_mut(n).enumerate() {
        if !then.onto {
            crow.fill(0.0);
        }
        for (p, brow) in b.chunks_exact(n).enumerate() {
            let av = a.at(i, p);
            crow.iter_mut().zip(brow).for_each(|(o, &bv)| *o = av.mul_add(bv, *o));
        }
        if let Some(bias) = then.bias {
            crow.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
        }
        if then.relu {
            crow.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn portable_fma(a: View<'_>, b: &[f32], n: usize, then: Then<'_>, c: &mut [f32]) {
    portable(a, b, n, then, c)
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Then, View};
    use std::arch::x86_64::*;

    /// Rows of `c` per register block.
    const ROWS: usize = 12;

    /// `c = a · b` (`b` row-major `a.cols × n`, `c` row-major `a.rows × n`), in blocks
    /// of [`ROWS`] rows and 32 (or, at the right edge, 16 or fewer) columns.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; `a` must hold its extents at its strides, `b`
    /// `a.cols × n` values and `c` `a.rows × n`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn product(a: View<'_>, b: &[f32], n: usize, then: Then<'_>, c: &mut [f32]) {
        let (m, k) = (a.rows, a.cols);
        assert!(b.len() >= k * n && c.len() >= m * n);
        if m > 0 && k > 0 {
            let last = (m - 1) * a.row_stride + (k - 1) * a.col_stride;
            assert!(last < a.data.len());
        }
        // Blocks of equal height (27 rows as 9 + 9 + 9, not 12 + 12 + 3).
        let height = m.div_ceil(m.div_ceil(ROWS));
        let mut j = 0;
        while j < n {
            let width = (n - j).min(32);
            let mut i = 0;
            while i < m {
                let rows = (m - i).min(height);
                // SAFETY: rows `i..i + rows` and columns `j..j + width` lie inside the
                // extents asserted above; the caller guarantees AVX-512F.
                unsafe {
                    if width > 16 {
                        block_rows::<2>(a, i, rows, b, n, j, width, then, c);
                    } else {
                        block_rows::<1>(a, i, rows, b, n, j, width, then, c);
                    }
                }
                i += rows;
            }
            j += width;
        }
    }

    /// One block of `rows ≤ ROWS` rows: picks the kernel compiled for that row count,
    /// so that its accumulators stay in registers.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block_rows<const NB: usize>(
        a: View<'_>,
        i: usize,
        rows: usize,
        b: &[f32],
        n: usize,
        j: usize,
        width: usize,
        then: Then<'_>,
        c: &mut [f32],
    ) {
        macro_rules! rows {
            ($($r:literal)*) => {
                match rows {
                    // SAFETY: the caller's conditions (AVX-512F, the block inside `a`,
                    // `b` and `c`) are `block`'s; `rows` is its `R`.
                    $($r => unsafe { block::<$r, NB>(a, i, b, n, j, width, then, c) },)*
                    _ => unreachable!(),
                }
            };
        }
        rows!(1 2 3 4 5 6 7 8 9 10 11 12)
    }

    /// `c[i..i + R][j..j + width] = a[i..i + R] · b[..][j..j + width]`, `NB` vectors of
    /// 16 columns a row (the last one masked to `width`).
    ///
    /// # Safety
    /// AVX-512F; rows `i..i + R` of `a` and `c` and columns `j..j + width` of `b` and
    /// `c` in bounds, `width ≤ 16·NB`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<const R: usize, const NB: usize>(
        a: View<'_>,
        i: usize,
        b: &[f32],
        n: usize,
        j: usize,
        width: usize,
        then: Then<'_>,
        c: &mut [f32],
    ) {
        let masks: [__mmask16; NB] = std::array::from_fn(|v| {
            let lanes = width.saturating_sub(16 * v).min(16);
            ((1u32 << lanes) - 1) as __mmask16
        });
        let mut acc = [[_mm512_setzero_ps(); NB]; R];
        if then.onto {
            for (r, acc) in acc.iter_mut().enumerate() {
                for v in 0..NB {
                    // SAFETY: row `i + r` of `c`, columns `j + 16v..` up to `j + width`
                    // (the mask).
                    acc[v] = unsafe { _mm512_maskz_loadu_ps(masks[v], c.as_ptr().add((i + r) * n + j + 16 * v)) };
                }
            }
        }
        let ap = a.data.as_ptr();
        let bp = b.as_ptr().wrapping_add(j);
        for p in 0..a.cols {
            // SAFETY: row `p < k` of `b` holds columns `j..j + width` (masked lanes
            // are not read); `a[i + r][p]` is in bounds for `r < R`.
            unsafe {
                let brow = bp.add(p * n);
                let mut bv = [_mm512_setzero_ps(); NB];
                for (v, bv) in bv.iter_mut().enumerate() {
                    *bv = _mm512_maskz_loadu_ps(masks[v], brow.add(16 * v));
                }
                let arow = ap.add(i * a.row_stride + p * a.col_stride);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*arow.add(r * a.row_stride));
                    for v in 0..NB {
                        acc[v] = _mm512_fmadd_ps(av, bv[v], acc[v]);
                    }
                }
            }
        }
        if let Some(bias) = then.bias {
            for v in 0..NB {
                // SAFETY: `bias` holds `n` values (checked in `sgemm_then`); lanes
                // past `width` are masked.
                let bv = unsafe { _mm512_maskz_loadu_ps(masks[v], bias.as_ptr().add(j + 16 * v)) };
                for acc in acc.iter_mut() {
                    acc[v] = _mm512_add_ps(acc[v], bv);
                }
            }
        }
        if then.relu {
            // `max(v, 0)` returns its second operand when `v` is NaN: 0, as `f32::max`.
            let zero = _mm512_setzero_ps();
            for acc in acc.iter_mut() {
                for v in acc.iter_mut() {
                    *v = _mm512_max_ps(*v, zero);
                }
            }
        }
        let cp = c.as_mut_ptr().wrapping_add(j);
        for (r, acc) in acc.iter().enumerate() {
            for v in 0..NB {
                // SAFETY: row `i + r` of `c`, columns `j + 16v..` up to `j + width`
                // (the mask).
                unsafe { _mm512_mask_storeu_ps(cp.add((i + r) * n + 16 * v), masks[v], acc[v]) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: one fused chain per output value, in inner order.
    fn chain(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).fold(0.0f32, |acc, p| a[i * k + p].mul_add(b[p * n + j], acc));
            }
        }
        c
    }

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| f64::from(a[i * k + p]) * f64::from(b[p * n + j])).sum::<f64>() as f32;
            }
        }
        c
    }

    #[test]
    fn matches_the_naive_product_plain_and_transposed() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let want = naive(&a, &b, m, k, n);
        let mut c = vec![f32::NAN; m * n];
        sgemm(View::new(&a, m, k), View::new(&b, k, n), &mut c);
        for (x, y) in c.iter().zip(&want) {
            assert!((x - y).abs() < 1e-5);
        }
        // aᵀ stored as k × m, seen transposed; b likewise.
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let mut c2 = vec![f32::NAN; m * n];
        sgemm(View::transposed(&at, k, m), View::transposed(&bt, n, k), &mut c2);
        assert_eq!(c, c2);
    }

    /// Every build gives the fused chain's bits, at the shapes of training (row and
    /// column counts off the block sizes, masked edges, transposed operands).
    #[test]
    fn same_bits_as_the_fused_chain_in_every_build() {
        let shapes = [(1, 1, 1), (13, 27, 16), (25, 9, 33), (8, 512, 32), (7, 32, 4), (40, 144, 32), (3, 5, 47)];
        for (m, k, n) in shapes {
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            let want = chain(&a, &b, m, k, n);
            let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
            let mut got = vec![f32::NAN; m * n];
            sgemm(View::new(&a, m, k), View::new(&b, k, n), &mut got);
            assert_eq!(got, want, "{m}×{k}×{n}");
            let mut got_t = vec![f32::NAN; m * n];
            sgemm(View::transposed(&at, k, m), View::new(&b, k, n), &mut got_t);
            assert_eq!(got_t, want, "{m}×{k}×{n}, a transposed");
            let mut plain = vec![f32::NAN; m * n];
            portable(View::new(&a, m, k), &b, n, Then::default(), &mut plain);
            assert_eq!(plain, want, "{m}×{k}×{n}, portable loop");
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                let mut fma = vec![f32::NAN; m * n];
                // SAFETY: AVX2 and FMA checked just above.
                unsafe { portable_fma(View::new(&a, m, k), &b, n, Then::default(), &mut fma) };
                assert_eq!(fma, want, "{m}×{k}×{n}, AVX2 loop");
            }
            // Bias and ReLU as the separate passes would apply them.
            let bias: Vec<f32> = (0..n).map(|j| (j as f32 * 0.7).sin()).collect();
            let mut then_want = want.clone();
            for row in then_want.chunks_exact_mut(n) {
                row.iter_mut().zip(&bias).for_each(|(v, b)| *v = (*v + b).max(0.0));
            }
            if m * n >= 8 {
                assert!(then_want.contains(&0.0) && then_want.iter().any(|&v| v > 0.0));
            }
            let then = Then { bias: Some(&bias), relu: true, ..Then::default() };
            let mut got_then = vec![f32::NAN; m * n];
            sgemm_then(View::new(&a, m, k), View::new(&b, k, n), then, &mut got_then);
            assert_eq!(got_then, then_want, "{m}×{k}×{n}, bias and ReLU");
            let mut plain_then = vec![f32::NAN; m * n];
            portable(View::new(&a, m, k), &b, n, then, &mut plain_then);
            assert_eq!(plain_then, then_want, "{m}×{k}×{n}, bias and ReLU, portable loop");
            // The inner dimension in two pieces, the second continuing the first's
            // chains (`a` transposed: its pieces are whole rows of the stored matrix).
            let cut = k / 3;
            let (at1, at2) = at.split_at(cut * m);
            let b1 = View::new(&b[..cut * n], cut, n);
            let b2 = View::new(&b[cut * n..], k - cut, n);
            let mut onto = vec![0.0; m * n];
            sgemm_onto(View::transposed(at1, cut, m), b1, &mut onto);
            sgemm_onto(View::transposed(at2, k - cut, m), b2, &mut onto);
            assert_eq!(onto, want, "{m}×{k}×{n}, in two pieces");
            let mut plain_onto = vec![0.0; m * n];
            let onto_then = Then { onto: true, ..Then::default() };
            portable(View::transposed(at1, cut, m), &b[..cut * n], n, onto_then, &mut plain_onto);
            portable(View::transposed(at2, k - cut, m), &b[cut * n..], n, onto_then, &mut plain_onto);
            assert_eq!(plain_onto, want, "{m}×{k}×{n}, in two pieces, portable loop");
        }
    }
}
