//! The one place where training calls into the GEMM crate (`matrixmultiply`), whose
//! entry point takes raw pointers and strides. [`sgemm`] checks every extent against
//! the slices first, so callers stay in safe code.

/// A row-major or transposed view of a matrix in a slice.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
}

impl<'a> View<'a> {
    /// `rows × cols`, row-major (`data[r * cols + c]`).
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "matrix view of {rows}×{cols} over {} values", data.len());
        View { data, rows, cols, row_stride: cols as isize, col_stride: 1 }
    }

    /// The transpose of a row-major `rows × cols` matrix, seen as `cols × rows`.
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "matrix view of {rows}×{cols} over {} values", data.len());
        View { data, rows: cols, cols: rows, row_stride: 1, col_stride: cols as isize }
    }
}

/// `c = a · b + beta · c`, with `c` row-major `a.rows × b.cols`; with `beta` zero, `c`
/// is only written (its old values, even NaN, do not matter: `matrixmultiply` does not
/// read them either).
pub fn sgemm(a: View<'_>, b: View<'_>, beta: f32, c: &mut [f32]) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(c.len() >= m * n, "output of {m}×{n} over {} values", c.len());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // As below, a zero `beta` does not read `c` (it may hold anything).
        if beta == 0.0 {
            c[..m * n].fill(0.0);
        } else {
            c[..m * n].iter_mut().for_each(|v| *v *= beta);
        }
        return;
    }
    // SAFETY: the views were checked at construction to hold `rows × cols` elements
    // at their strides (row-major or its transpose), `c` holds `m × n` row-major
    // values, the inner dimensions agree, and `c` is a unique borrow that cannot alias
    // `a` or `b` (shared borrows).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.row_stride,
            a.col_stride,
            b.data.as_ptr(),
            b.row_stride,
            b.col_stride,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
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
        let mut c = vec![0.0; m * n];
        sgemm(View::new(&a, m, k), View::new(&b, k, n), 0.0, &mut c);
        for (x, y) in c.iter().zip(&want) {
            assert!((x - y).abs() < 1e-5);
        }
        // aᵀ stored as k × m, seen transposed.
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let mut c2 = vec![1.0; m * n];
        sgemm(View::transposed(&at, k, m), View::new(&b, k, n), 1.0, &mut c2);
        for (x, y) in c2.iter().zip(&want) {
            assert!((x - (y + 1.0)).abs() < 1e-5);
        }
    }
}
