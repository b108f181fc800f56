//! Byte layout of the `.mcnn` blob: the single source of truth for the reader in this
//! crate and the writer in `microcnn-tools`. `FORMAT.md` describes the same layout in
//! prose; every multi-byte field is little-endian.

/// The four magic bytes at the start of every blob.
pub const MAGIC: [u8; 4] = *b"MCNN";
/// The format version this crate reads and writes (2: dense weights in the
/// [`weight_layout::DENSE_BLOCKED`] layout, tagged in [`op::WEIGHT_LAYOUT`]).
pub const VERSION: u16 = 2;
/// Header length in bytes.
pub const HEADER_LEN: usize = 64;
/// Length of one tensor record.
pub const TENSOR_RECORD_LEN: usize = 24;
/// Length of one operator record.
pub const OP_RECORD_LEN: usize = 64;
/// A constant offset meaning "absent" (an operator without bias).
pub const ABSENT: u32 = u32::MAX;
/// The largest dimension a tensor may have.
pub const MAX_DIM: usize = u16::MAX as usize;

/// Offsets of the header fields.
pub mod header {
    /// `[u8; 4]` magic.
    pub const MAGIC: usize = 0;
    /// `u16` format version.
    pub const VERSION: usize = 4;
    /// `u16` header length.
    pub const HEADER_LEN: usize = 6;
    /// `u32` total blob length.
    pub const TOTAL_LEN: usize = 8;
    /// `u32` CRC-32 of bytes `16..total_len`.
    pub const CRC: usize = 12;
    /// `u32` arena bytes the planner computed.
    pub const ARENA_SIZE: usize = 16;
    /// `u16` number of tensors.
    pub const TENSOR_COUNT: usize = 20;
    /// `u16` number of operators.
    pub const OP_COUNT: usize = 22;
    /// `u16` the model's input tensor.
    pub const INPUT_TENSOR: usize = 24;
    /// `u16` the model's output tensor.
    pub const OUTPUT_TENSOR: usize = 26;
    /// `u32` offset of the tensor table.
    pub const TENSORS_OFFSET: usize = 28;
    /// `u32` offset of the operator table.
    pub const OPS_OFFSET: usize = 32;
    /// `u32` offset of the constant section.
    pub const CONSTANTS_OFFSET: usize = 36;
    /// `u32` length of the constant section.
    pub const CONSTANTS_LEN: usize = 40;
    /// `u32` offset of the metadata section.
    pub const METADATA_OFFSET: usize = 44;
    /// `u32` length of the metadata section.
    pub const METADATA_LEN: usize = 48;
    /// First byte covered by the CRC.
    pub const CRC_START: usize = 16;
}

/// Offsets inside a tensor record.
pub mod tensor {
    /// `u32` offset of the tensor's first byte in the arena.
    pub const ARENA_OFFSET: usize = 0;
    /// `u16` height.
    pub const HEIGHT: usize = 4;
    /// `u16` width.
    pub const WIDTH: usize = 6;
    /// `u16` channels.
    pub const CHANNELS: usize = 8;
    /// `u16` the tensor whose bytes this one aliases (itself, unless it is the output
    /// of a Reshape).
    pub const ALIAS_OF: usize = 10;
    /// `f32` scale.
    pub const SCALE: usize = 12;
    /// `i32` zero point.
    pub const ZERO_POINT: usize = 16;
    /// `u16` time the tensor is written: 0 for the model input, `k + 1` for the output
    /// of operator `k`.
    pub const FIRST: usize = 20;
    /// `u16` last time its bytes are needed (the largest reading operator's `k + 1`,
    /// over all tensors that alias it; `op_count + 1` for the model output).
    pub const LAST: usize = 22;
}

/// Offsets inside an operator record (see `FORMAT.md` for which kinds use which).
pub mod op {
    /// `u8` kind ([`OpKind`](super::OpKind)).
    pub const KIND: usize = 0;
    /// `u16` output tensor.
    pub const OUTPUT: usize = 2;
    /// `u16` number of inputs.
    pub const INPUT_COUNT: usize = 4;
    /// `u16` first input (when the count is 1 or 2).
    pub const INPUT0: usize = 6;
    /// `u16` second input (when the count is 2).
    pub const INPUT1: usize = 8;
    /// `u32` constant offset of a `u16` list of all inputs (when the count exceeds 2).
    pub const INPUT_LIST: usize = 12;
    /// `u16` kernel / window height.
    pub const KERNEL_H: usize = 16;
    /// `u16` kernel / window width.
    pub const KERNEL_W: usize = 18;
    /// `u16` vertical stride.
    pub const STRIDE_H: usize = 20;
    /// `u16` horizontal stride.
    pub const STRIDE_W: usize = 22;
    /// `u16` vertical dilation.
    pub const DILATION_H: usize = 24;
    /// `u16` horizontal dilation.
    pub const DILATION_W: usize = 26;
    /// `u16` rows of padding above.
    pub const PAD_TOP: usize = 28;
    /// `u16` columns of padding on the left.
    pub const PAD_LEFT: usize = 30;
    /// `u16` depth multiplier (depthwise convolution).
    pub const DEPTH_MULTIPLIER: usize = 32;
    /// `i8` lower clamp of the fused activation.
    pub const ACT_MIN: usize = 34;
    /// `i8` upper clamp of the fused activation.
    pub const ACT_MAX: usize = 35;
    /// `u32` constant offset of the int8 weights.
    pub const WEIGHTS: usize = 36;
    /// `u32` constant offset of the int32 bias (or [`ABSENT`](super::ABSENT)).
    pub const BIAS: usize = 40;
    /// `u32` constant offset of the per-channel int32 multipliers.
    pub const MULTIPLIERS: usize = 44;
    /// `u32` constant offset of the per-channel int32 shifts.
    pub const SHIFTS: usize = 48;
    /// Generic `i32` parameter slots (Add, Softmax, Mean, Requantize), 4 bytes apart.
    pub const PARAM0: usize = 16;
    /// `u32` constant offset of a Softmax's exp table ([`SOFTMAX_TABLE_LEN`](super::SOFTMAX_TABLE_LEN)
    /// `i32`s), or [`ABSENT`](super::ABSENT).
    pub const EXP_TABLE: usize = 28;
    /// `u8` layout of the weights ([`weight_layout`](super::weight_layout)) of an
    /// operator with weights; 0 elsewhere.
    pub const WEIGHT_LAYOUT: usize = 52;
}

/// Weight layouts, as stored in [`op::WEIGHT_LAYOUT`]. The reader accepts exactly one
/// layout per operator kind: [`ROW_MAJOR`](weight_layout::ROW_MAJOR) for convolutions,
/// [`DENSE_BLOCKED`](weight_layout::DENSE_BLOCKED) for dense layers.
pub mod weight_layout {
    /// In the framework's order: `[C_out, KH, KW, C_in]` (convolution) or
    /// `[KH, KW, C_out]` (depthwise).
    pub const ROW_MAJOR: u8 = 0;
    /// Dense weights `[C_out, N]` re-laid for the kernel, see
    /// [`dense_index`](super::dense_index).
    pub const DENSE_BLOCKED: u8 = 1;
}

/// Entries of a Softmax exp table: entry `k` is `exp(−k · β · s_in)` in Q0.31 as the
/// fixed-point algorithm computes it for the difference `x − max = −k`, 0 when `−k` lies
/// below `diff_min` (see `ops::softmax`). int8 inputs give `k` in 0..=255.
pub const SOFTMAX_TABLE_LEN: usize = 256;

/// Output units interleaved in one block of a [`weight_layout::DENSE_BLOCKED`] layout.
pub const DENSE_BLOCK: usize = 4;

/// The size of the block holding unit `o` of `units` (blocks of 4, then at most one of 2
/// and one of 1) and the block's first unit.
#[inline(always)]
pub const fn dense_block(units: usize, o: usize) -> (usize, usize) {
    let fours = units & !3;
    if o < fours {
        (4, o & !3)
    } else if o < (units & !1) {
        (2, fours)
    } else {
        (1, units & !1)
    }
}

/// Bytes of a [`weight_layout::DENSE_BLOCKED`] dense weight array: `units` rows of `n`
/// inputs padded with zeros to a multiple of 4. `None` on overflow.
pub const fn dense_weights_len(units: usize, n: usize) -> Option<usize> {
    match n.checked_next_multiple_of(4) {
        Some(padded) => units.checked_mul(padded),
        None => None,
    }
}

/// Position of weight `(o, i)` (unit `o` of `units`, input `i` of `n`) in the
/// [`weight_layout::DENSE_BLOCKED`] layout. The units form blocks of
/// [`DENSE_BLOCK`] = 4 in order, then one block of 2 and one of 1 when the count asks
/// for them (10 units: 4, 4, 2). A block of `k` units starts at its first unit times the
/// padded input length `n4` (`n` rounded up to 4) and holds, for each group of four
/// inputs in order, the four weights of each of its units in turn: `k · 4` bytes per
/// group, so that a kernel reads one word per unit per group. Inputs past `n` have
/// weight 0.
#[inline(always)]
pub const fn dense_index(units: usize, n: usize, o: usize, i: usize) -> usize {
    let n4 = (n + 3) & !3;
    let (k, first) = dense_block(units, o);
    first * n4 + (i >> 2) * 4 * k + (o - first) * 4 + (i & 3)
}

/// Re-lays `row_major` (`[units, n]`) into the [`weight_layout::DENSE_BLOCKED`] layout
/// in `out`, which must be [`dense_weights_len`] long; `false` (and `out` untouched)
/// when a length does not match.
pub fn pack_dense(row_major: &[i8], units: usize, n: usize, out: &mut [i8]) -> bool {
    if units.checked_mul(n) != Some(row_major.len()) || dense_weights_len(units, n) != Some(out.len()) {
        return false;
    }
    out.fill(0);
    for (o, row) in row_major.chunks_exact(n.max(1)).enumerate().take(units) {
        for (i, &w) in row.iter().enumerate() {
            if let Some(slot) = out.get_mut(dense_index(units, n, o, i)) {
                *slot = w;
            }
        }
    }
    true
}

/// Operator kinds, as stored in byte 0 of an operator record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum OpKind {
    /// 2-D convolution.
    Conv2d = 1,
    /// Depthwise 2-D convolution.
    DepthwiseConv2d = 2,
    /// Fully connected (dense) layer.
    FullyConnected = 3,
    /// Max pooling.
    MaxPool2d = 4,
    /// Average pooling.
    AvgPool2d = 5,
    /// Mean over height and width (global average pooling).
    Mean = 6,
    /// Element-wise addition of two tensors.
    Add = 7,
    /// Concatenation along channels.
    Concatenation = 8,
    /// Softmax over channels.
    Softmax = 9,
    /// Requantization with a clamp: standalone ReLU, ReLU6, or int8→int8 QUANTIZE.
    Requantize = 10,
    /// Reshape / flatten: the output aliases the input.
    Reshape = 11,
}

impl OpKind {
    /// Decodes a kind byte.
    pub const fn from_u8(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Self::Conv2d,
            2 => Self::DepthwiseConv2d,
            3 => Self::FullyConnected,
            4 => Self::MaxPool2d,
            5 => Self::AvgPool2d,
            6 => Self::Mean,
            7 => Self::Add,
            8 => Self::Concatenation,
            9 => Self::Softmax,
            10 => Self::Requantize,
            11 => Self::Reshape,
            _ => return None,
        })
    }

    /// A short name, as a Keras user would call the layer.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Conv2d => "Conv2D",
            Self::DepthwiseConv2d => "DepthwiseConv2D",
            Self::FullyConnected => "Dense",
            Self::MaxPool2d => "MaxPool2D",
            Self::AvgPool2d => "AvgPool2D",
            Self::Mean => "GlobalAvgPool",
            Self::Add => "Add",
            Self::Concatenation => "Concatenate",
            Self::Softmax => "Softmax",
            Self::Requantize => "Activation",
            Self::Reshape => "Reshape",
        }
    }

    /// Whether the output may share its input's bytes (element-wise kernels that read
    /// each input element before writing the same output element).
    pub const fn allows_in_place(self) -> bool {
        matches!(self, Self::Add | Self::Requantize | Self::Softmax)
    }
}

/// Mean modes (`PARAM0` byte of a Mean record), following TFLM's three int8 paths.
pub mod mean_mode {
    /// `keep_dims = false` with differing quantization (what Keras produces): the
    /// centred sum times one multiplier that folds in `1 / count`.
    pub const MULTIPLIER: u8 = 0;
    /// `keep_dims = true` on a 4-D input: TFLM's integer path with a multiplier.
    pub const INTEGER: u8 = 1;
    /// Equal input/output quantization: integer sum divided with truncation.
    pub const EQUAL_QUANT: u8 = 2;
}

/// Metadata entry tags (each entry: `u8` tag, `u16` length, bytes).
pub mod meta {
    /// UTF-8 model name.
    pub const NAME: u8 = 1;
    /// UTF-8 name and version of the tool that wrote the blob.
    pub const TOOL: u8 = 2;
    /// UTF-8 class labels, one per line.
    pub const LABELS: u8 = 3;
    /// Input preprocessing: `u8` colour mode (1 gray, 3 RGB), 3 bytes reserved,
    /// `f32` pixel scale, `f32` pixel offset (`real = pixel × scale + offset`).
    pub const PREPROCESS: u8 = 4;
    /// The output's dimensions as the source framework gave them, without the batch
    /// axis: `u16` each (for example `[1, 1, 6]` for a Keras `(1, 1, 6)` output).
    pub const OUTPUT_DIMS: u8 = 5;
}

/// Little-endian field readers over a byte slice; `None` past the end.
pub(crate) fn read_u8(bytes: &[u8], at: usize) -> Option<u8> {
    bytes.get(at).copied()
}

pub(crate) fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

pub(crate) fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

pub(crate) fn read_i32(bytes: &[u8], at: usize) -> Option<i32> {
    read_u32(bytes, at).map(|v| v as i32)
}

pub(crate) fn read_f32(bytes: &[u8], at: usize) -> Option<f32> {
    read_u32(bytes, at).map(f32::from_bits)
}

pub(crate) fn read_i8(bytes: &[u8], at: usize) -> Option<i8> {
    read_u8(bytes, at).map(|v| v as i8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_blocks_are_fours_then_a_two_then_a_one() {
        // 7 units: 4, 2, 1; 10 units: 4, 4, 2; 1 unit: 1.
        assert_eq!([0, 3, 4, 5, 6].map(|o| dense_block(7, o)), [(4, 0), (4, 0), (2, 4), (2, 4), (1, 6)]);
        assert_eq!([0, 7, 8, 9].map(|o| dense_block(10, o)), [(4, 0), (4, 4), (2, 8), (2, 8)]);
        assert_eq!(dense_block(1, 0), (1, 0));
    }

    #[test]
    fn dense_index_interleaves_units_per_group_of_four() {
        // 10 units over 6 inputs (padded to 8): a block of 4 holds 16 bytes per group.
        assert_eq!(dense_index(10, 6, 0, 0), 0);
        assert_eq!(dense_index(10, 6, 1, 0), 4);
        assert_eq!(dense_index(10, 6, 3, 3), 15);
        assert_eq!(dense_index(10, 6, 0, 4), 16);
        assert_eq!(dense_index(10, 6, 5, 5), 32 + 16 + 4 + 1);
        // The block of 2 (units 8, 9) starts at 8 · 8.
        assert_eq!(dense_index(10, 6, 8, 0), 64);
        assert_eq!(dense_index(10, 6, 9, 5), 64 + 8 + 4 + 1);
        // 7 units: the block of 1 (unit 6) at 6 · 8, 4 bytes per group.
        assert_eq!(dense_index(7, 6, 6, 5), 48 + 4 + 1);
        assert_eq!(dense_weights_len(7, 6), Some(56));
        assert_eq!(dense_weights_len(usize::MAX, 4), None);
        assert_eq!(dense_weights_len(1, usize::MAX), None);
    }

    #[test]
    fn pack_dense_is_a_bijection_with_zero_padding() {
        for units in 1..=11 {
            for n in 1..=13 {
                let row_major: Vec<i8> = (0..units * n).map(|k| (k % 251) as i8 | 1).collect();
                let len = dense_weights_len(units, n).unwrap();
                let mut out = vec![0x55_i8; len];
                assert!(pack_dense(&row_major, units, n, &mut out));
                let mut seen = vec![false; len];
                for o in 0..units {
                    for i in 0..n {
                        let at = dense_index(units, n, o, i);
                        assert!(!seen[at], "{units}×{n}: ({o}, {i}) lands on a used byte");
                        seen[at] = true;
                        assert_eq!(out[at], row_major[o * n + i]);
                    }
                }
                // Every other byte is padding: zero (odd weights above are never zero).
                for (at, &used) in seen.iter().enumerate() {
                    assert_eq!(used, out[at] != 0, "{units}×{n}: byte {at}");
                }
            }
        }
        let mut short = [0_i8; 7];
        assert!(!pack_dense(&[1; 6], 1, 6, &mut short));
        assert!(!pack_dense(&[1; 5], 1, 6, &mut [0; 8]));
    }
}
