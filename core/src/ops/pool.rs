//! MAX_POOL_2D and AVERAGE_POOL_2D int8 (TFLM's integer `MaxPool` / `AveragePool`).
//!
//! The window is clipped to the input; padded cells are neither compared nor counted.
//! Average: `acc / count` rounded half away from zero, then clamped. Input and output
//! share scale and zero point, so there is no requantization. Layout `[H, W, C]`.

use super::conv::Window;
use super::valid_taps;
use crate::shape::Shape;

/// Parameters of a pooling layer.
#[derive(Clone, Copy, Debug)]
pub struct PoolParams {
    /// Window geometry (dilation 1).
    pub window: Window,
    /// Lower clamp (fused activation).
    pub act_min: i8,
    /// Upper clamp (fused activation).
    pub act_max: i8,
}

#[allow(clippy::too_many_arguments)] // the two closures are the operator; the rest is geometry
fn pool<F: FnMut(&mut [i32], &[i8]), G: Fn(i32, i32) -> i32>(
    input: &[i8],
    input_shape: Shape,
    output: &mut [i8],
    output_shape: Shape,
    params: &PoolParams,
    init: i32,
    mut combine: F,
    finish: G,
) {
    const BLOCK: usize = 64;
    let w = &params.window;
    let channels = input_shape.channels;
    for out_y in 0..output_shape.height {
        let origin_y = (out_y * w.stride_h) as isize - w.pad_top as isize;
        let (ky_start, ky_end) = valid_taps(origin_y, w.kernel_h, 1, input_shape.height);
        for out_x in 0..output_shape.width {
            let origin_x = (out_x * w.stride_w) as isize - w.pad_left as isize;
            let (kx_start, kx_end) = valid_taps(origin_x, w.kernel_w, 1, input_shape.width);
            let count = ((ky_end - ky_start) * (kx_end - kx_start)) as i32;
            let out_base = (out_y * output_shape.width + out_x) * channels;
            let mut c0 = 0;
            while c0 < channels {
                let len = BLOCK.min(channels - c0);
                let mut acc = [init; BLOCK];
                for ky in ky_start..ky_end {
                    let in_y = (origin_y + ky as isize) as usize;
                    for kx in kx_start..kx_end {
                        let in_x = (origin_x + kx as isize) as usize;
                        let base = (in_y * input_shape.width + in_x) * channels + c0;
                        let Some(x) = input.get(base..base + len) else {
                            return;
                        };
                        combine(&mut acc[..len], x);
                    }
                }
                let Some(out) = output.get_mut(out_base + c0..out_base + c0 + len) else {
                    return;
                };
                for (o, &a) in out.iter_mut().zip(&acc) {
                    *o = finish(a, count).clamp(i32::from(params.act_min), i32::from(params.act_max)) as i8;
                }
                c0 += len;
            }
        }
    }
}

/// Max pooling.
pub fn max_pool2d_s8(input: &[i8], input_shape: Shape, output: &mut [i8], output_shape: Shape, params: &PoolParams) {
    pool(
        input,
        input_shape,
        output,
        output_shape,
        params,
        i32::from(i8::MIN),
        |acc, x| {
            for (a, &v) in acc.iter_mut().zip(x) {
                *a = (*a).max(i32::from(v));
            }
        },
        |acc, _| acc,
    );
}

/// Average pooling.
pub fn avg_pool2d_s8(input: &[i8], input_shape: Shape, output: &mut [i8], output_shape: Shape, params: &PoolParams) {
    pool(
        input,
        input_shape,
        output,
        output_shape,
        params,
        0,
        |acc, x| {
            for (a, &v) in acc.iter_mut().zip(x) {
                *a += i32::from(v);
            }
        },
        |acc, count| {
            if count == 0 {
                0
            } else {
                rounded_divide(acc, count)
            }
        },
    );
}

/// `acc / count` rounded half away from zero (C's truncating division after adding
/// or subtracting half the divisor), as TFLM's pooling and mean kernels do.
#[inline]
pub(crate) fn rounded_divide(acc: i32, count: i32) -> i32 {
    if acc > 0 {
        (acc + count / 2) / count
    } else {
        (acc - count / 2) / count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(k: usize, s: usize, pad: usize) -> PoolParams {
        PoolParams {
            window: Window {
                kernel_h: k,
                kernel_w: k,
                stride_h: s,
                stride_w: s,
                dilation_h: 1,
                dilation_w: 1,
                pad_top: pad,
                pad_left: pad,
            },
            act_min: -128,
            act_max: 127,
        }
    }

    #[test]
    fn average_excludes_padding_and_rounds_away_from_zero() {
        // 2×2 input, 3×3 window SAME stride 1: every window sees all 4 cells.
        let input: [i8; 4] = [1, 2, 3, 5];
        let mut out = [0_i8; 4];
        avg_pool2d_s8(&input, Shape::new(2, 2, 1), &mut out, Shape::new(2, 2, 1), &params(3, 1, 1));
        assert_eq!(out, [3; 4]); // 11 / 4 = 2.75 → 3
        let input: [i8; 4] = [-1, -2, -3, -4];
        avg_pool2d_s8(&input, Shape::new(2, 2, 1), &mut out, Shape::new(2, 2, 1), &params(3, 1, 1));
        assert_eq!(out, [-3; 4]); // −10 / 4 = −2.5 → −3
    }

    #[test]
    fn max_pool_stride_larger_than_window_and_saturation() {
        let input: [i8; 9] = [-128, 1, 2, 3, 127, 5, 6, 7, 8];
        let mut out = [0_i8; 4];
        max_pool2d_s8(&input, Shape::new(3, 3, 1), &mut out, Shape::new(2, 2, 1), &params(1, 2, 0));
        assert_eq!(out, [-128, 2, 6, 8]);
        let mut out = [0_i8; 1];
        max_pool2d_s8(&input, Shape::new(3, 3, 1), &mut out, Shape::new(1, 1, 1), &params(3, 1, 0));
        assert_eq!(out, [127]);
    }

    #[test]
    fn one_by_one_input() {
        let input: [i8; 3] = [-7, 0, 9];
        let mut out = [0_i8; 3];
        avg_pool2d_s8(&input, Shape::new(1, 1, 3), &mut out, Shape::new(1, 1, 3), &params(2, 2, 0));
        assert_eq!(out, input);
        max_pool2d_s8(&input, Shape::new(1, 1, 3), &mut out, Shape::new(1, 1, 3), &params(2, 2, 0));
        assert_eq!(out, input);
    }

    #[test]
    fn rounding() {
        assert_eq!(rounded_divide(5, 2), 3);
        assert_eq!(rounded_divide(-5, 2), -3);
        assert_eq!(rounded_divide(0, 7), 0);
        assert_eq!(rounded_divide(4, 3), 1);
    }
}
