//! Tensor shapes (NHWC with batch 1) and the padding arithmetic TFLite uses.

/// The shape of an activation tensor: height, width, channels (batch is always 1).
///
/// A vector of `n` values is `Shape { height: 1, width: 1, channels: n }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Shape {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Channels (the innermost, contiguous axis).
    pub channels: usize,
}

impl Shape {
    /// A shape from its three dimensions.
    pub const fn new(height: usize, width: usize, channels: usize) -> Self {
        Self { height, width, channels }
    }

    /// Number of elements (= bytes, for int8).
    pub const fn elements(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Number of pixels (`height × width`).
    pub const fn pixels(&self) -> usize {
        self.height * self.width
    }
}

/// TFLite's two padding schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Padding {
    /// Output size `ceil(in / stride)`; the input is padded (odd extra at the bottom/right).
    Same,
    /// No padding: output size `(in − effective_kernel) / stride + 1`.
    Valid,
}

/// The extent of a kernel of size `kernel` with `dilation`: `(kernel − 1)·dilation + 1`.
pub const fn effective_kernel(kernel: usize, dilation: usize) -> usize {
    (kernel - 1) * dilation + 1
}

/// Output length along one axis (TFLite's `ComputeOutSize`); `None` when the window
/// does not fit (VALID with a kernel larger than the input) or a parameter is zero.
pub const fn output_size(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
) -> Option<usize> {
    if input == 0 || kernel == 0 || stride == 0 || dilation == 0 {
        return None;
    }
    let effective = effective_kernel(kernel, dilation);
    match padding {
        Padding::Same => Some(input.div_ceil(stride)),
        Padding::Valid => {
            if effective > input {
                None
            } else {
                Some((input - effective) / stride + 1)
            }
        }
    }
}

/// Padding before the first row/column (TFLite keeps `total / 2` before and puts the
/// odd remainder after).
pub const fn padding_before(input: usize, kernel: usize, stride: usize, dilation: usize, output: usize) -> usize {
    let effective = effective_kernel(kernel, dilation);
    let needed = (output - 1) * stride + effective;
    if needed > input {
        (needed - input) / 2
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_and_valid_sizes() {
        assert_eq!(output_size(28, 3, 1, 1, Padding::Same), Some(28));
        assert_eq!(output_size(13, 5, 2, 1, Padding::Same), Some(7));
        assert_eq!(output_size(15, 3, 2, 1, Padding::Valid), Some(7));
        assert_eq!(output_size(3, 5, 1, 1, Padding::Valid), None);
        assert_eq!(output_size(3, 5, 1, 1, Padding::Same), Some(3));
        assert_eq!(output_size(14, 2, 3, 1, Padding::Valid), Some(5));
        assert_eq!(output_size(12, 3, 1, 2, Padding::Valid), Some(8));
    }

    #[test]
    fn padding_puts_the_odd_cell_after() {
        // 3x3 stride 2 on 8: out 4, needs (4-1)*2+3 = 9 → total 1 → 0 before, 1 after
        assert_eq!(padding_before(8, 3, 2, 1, 4), 0);
        // 5x5 stride 1 on 3: out 3, needs 7 → total 4 → 2 before
        assert_eq!(padding_before(3, 5, 1, 1, 3), 2);
        // 3x3 dilation 2: effective 5, stride 1, out 12 on 12 → total 4 → 2 before
        assert_eq!(padding_before(12, 3, 1, 2, 12), 2);
    }
}
