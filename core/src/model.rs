//! The `.mcnn` model blob: validated once, then read in place.
//!
//! [`Model::from_bytes`] checks the header, the CRC, every tensor and operator record,
//! the order of the graph and the soundness of the arena plan before it returns. After
//! that, decoding an operator ([`Model::operator`]) re-checks only cheap bounds and
//! cannot fail on a blob that loaded.

use crate::crc::crc32;
use crate::error::{Error, OpError, Section};
use crate::format::{
    self, header, mean_mode, meta, op, read_f32, read_i32, read_i8, read_u16, read_u32, read_u8, weight_layout, OpKind,
};
use crate::ops::add::AddParams;
use crate::ops::conv::{ConvParams, Window};
use crate::ops::dense::DenseParams;
use crate::ops::mean::MeanParams;
use crate::ops::pool::PoolParams;
use crate::ops::requantize::RequantizeParams;
use crate::ops::softmax::SoftmaxParams;
use crate::ops::{ChannelQuant, I32s};
use crate::shape::Shape;

/// The largest accumulation length (taps × channels) a kernel may sum in int32:
/// 2^16 products of at most 255 × 128 stay below 2^31.
pub const MAX_ACCUMULATION: usize = 1 << 16;

/// An activation tensor: shape, quantization and place in the arena.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TensorInfo {
    /// Shape (batch 1).
    pub shape: Shape,
    /// Quantization scale.
    pub scale: f32,
    /// Quantization zero point (in `-128..=127`).
    pub zero_point: i32,
    /// Offset of the first byte in the arena.
    pub arena_offset: usize,
    /// The tensor whose bytes this one shares (itself unless it is a Reshape output).
    pub alias_of: u16,
    /// Time it is written (0 = model input, `k + 1` = operator `k`).
    pub first: u16,
    /// Last time its bytes are needed.
    pub last: u16,
}

impl TensorInfo {
    /// Bytes the tensor occupies.
    pub fn bytes(&self) -> usize {
        self.shape.elements()
    }

    /// Its byte range in the arena.
    pub fn arena_range(&self) -> core::ops::Range<usize> {
        self.arena_offset..self.arena_offset + self.bytes()
    }
}

/// The input tensors of an operator.
#[derive(Clone, Copy, Debug)]
pub enum Inputs<'a> {
    /// One or two inputs stored in the record.
    Inline {
        /// The indices.
        indices: [u16; 2],
        /// How many are used.
        count: usize,
    },
    /// More inputs, as a little-endian `u16` list in the constant section.
    List(&'a [u8]),
}

impl Inputs<'_> {
    /// Number of inputs.
    pub fn len(&self) -> usize {
        match self {
            Inputs::Inline { count, .. } => *count,
            Inputs::List(bytes) => bytes.len() / 2,
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Input `i`.
    pub fn get(&self, i: usize) -> Option<u16> {
        match self {
            Inputs::Inline { indices, count } => (i < *count).then(|| indices[i.min(1)]),
            Inputs::List(bytes) => read_u16(bytes, i * 2),
        }
    }

    /// All inputs in order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..self.len()).filter_map(move |i| self.get(i))
    }
}

/// The parameters of one operator, decoded in place from the blob.
#[derive(Clone, Copy, Debug)]
pub enum OpParams<'a> {
    /// 2-D convolution.
    Conv2d(ConvParams<'a>),
    /// Depthwise convolution.
    DepthwiseConv2d(ConvParams<'a>),
    /// Dense layer.
    FullyConnected(DenseParams<'a>),
    /// Max pooling.
    MaxPool2d(PoolParams),
    /// Average pooling.
    AvgPool2d(PoolParams),
    /// Mean over height and width.
    Mean(MeanParams),
    /// Residual addition.
    Add(AddParams),
    /// Concatenation along channels.
    Concatenation,
    /// Softmax over channels.
    Softmax(SoftmaxParams<'a>),
    /// Requantization with a clamp (ReLU, ReLU6, QUANTIZE).
    Requantize(RequantizeParams),
    /// Reshape: the output aliases the input.
    Reshape,
}

/// One decoded operator.
#[derive(Clone, Copy, Debug)]
pub struct Operator<'a> {
    /// Its kind.
    pub kind: OpKind,
    /// Input tensors.
    pub inputs: Inputs<'a>,
    /// Output tensor.
    pub output: u16,
    /// Kind-specific parameters.
    pub params: OpParams<'a>,
}

impl Operator<'_> {
    /// Multiply-accumulates one invoke of this operator performs.
    pub fn macs(&self, input: &Shape, output: &Shape) -> u64 {
        let out = output.elements() as u64;
        match &self.params {
            OpParams::Conv2d(p) => out * (p.window.kernel_h * p.window.kernel_w * input.channels) as u64,
            OpParams::DepthwiseConv2d(p) => out * (p.window.kernel_h * p.window.kernel_w) as u64,
            OpParams::FullyConnected(_) => out * input.elements() as u64,
            _ => 0,
        }
    }

    /// Constant parameters stored for this operator (weights and biases), as Keras
    /// counts them.
    pub fn params_count(&self) -> u64 {
        let bias = |q: &ChannelQuant<'_>| q.bias.map_or(0, |b| b.len() as u64);
        match &self.params {
            OpParams::Conv2d(p) | OpParams::DepthwiseConv2d(p) => p.weights.len() as u64 + bias(&p.quant),
            OpParams::FullyConnected(p) => (p.input_len * p.quant.multipliers.len()) as u64 + bias(&p.quant),
            _ => 0,
        }
    }

    /// Constant bytes this operator uses in the blob (weights, bias, multipliers, shifts).
    pub fn constant_bytes(&self) -> usize {
        let quant = |q: &ChannelQuant<'_>| q.bias.map_or(0, |b| b.0.len()) + q.multipliers.0.len() + q.shifts.0.len();
        match &self.params {
            OpParams::Conv2d(p) | OpParams::DepthwiseConv2d(p) => p.weights.len() + quant(&p.quant),
            OpParams::FullyConnected(p) => p.weights.len() + quant(&p.quant),
            _ => 0,
        }
    }
}

/// Input preprocessing recorded by the exporter.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Preprocess {
    /// 1 for gray, 3 for RGB.
    pub channels: u8,
    /// `real = pixel × pixel_scale + pixel_offset`, before quantization.
    pub pixel_scale: f32,
    /// See `pixel_scale`.
    pub pixel_offset: f32,
}

/// A validated model blob, read in place.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    bytes: &'a [u8],
    tensors: &'a [u8],
    ops: &'a [u8],
    constants: &'a [u8],
    metadata: &'a [u8],
    tensor_count: usize,
    op_count: usize,
    input: u16,
    output: u16,
    arena_size: usize,
}

fn section(bytes: &[u8], offset: usize, len: usize, which: Section) -> Result<&[u8], Error> {
    offset.checked_add(len).and_then(|end| bytes.get(offset..end)).ok_or(Error::SectionOutOfBounds { section: which })
}

impl<'a> Model<'a> {
    /// Validates a blob and returns a model that reads it in place.
    ///
    /// Every offset, length, shape and parameter is checked, as is the arena plan; a
    /// bad blob gives an [`Error`], never a panic, an out-of-bounds read or a hang.
    /// Validation takes time linear in the blob size plus quadratic in the tensor count.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let truncated = |needed: usize| Error::Truncated { needed, available: bytes.len() };
        if bytes.len() < format::HEADER_LEN {
            return Err(truncated(format::HEADER_LEN));
        }
        if bytes[header::MAGIC..header::MAGIC + 4] != format::MAGIC {
            return Err(Error::BadMagic);
        }
        let u16_at = |at| read_u16(bytes, at).unwrap_or(0);
        let u32_at = |at| read_u32(bytes, at).unwrap_or(0) as usize;
        let version = u16_at(header::VERSION);
        if version != format::VERSION {
            return Err(Error::UnsupportedVersion { found: version, supported: format::VERSION });
        }
        if usize::from(u16_at(header::HEADER_LEN)) != format::HEADER_LEN {
            return Err(Error::UnsupportedVersion { found: version, supported: format::VERSION });
        }
        let total = u32_at(header::TOTAL_LEN);
        if total < format::HEADER_LEN || total > bytes.len() {
            return Err(truncated(total.max(format::HEADER_LEN)));
        }
        let bytes = &bytes[..total];
        let stored = read_u32(bytes, header::CRC).unwrap_or(0);
        let computed = crc32(&bytes[header::CRC_START..]);
        if stored != computed {
            return Err(Error::ChecksumMismatch { stored, computed });
        }
        let tensor_count = usize::from(u16_at(header::TENSOR_COUNT));
        let op_count = usize::from(u16_at(header::OP_COUNT));
        let model = Model {
            bytes,
            tensors: section(
                bytes,
                u32_at(header::TENSORS_OFFSET),
                tensor_count * format::TENSOR_RECORD_LEN,
                Section::Tensors,
            )?,
            ops: section(bytes, u32_at(header::OPS_OFFSET), op_count * format::OP_RECORD_LEN, Section::Operators)?,
            constants: section(
                bytes,
                u32_at(header::CONSTANTS_OFFSET),
                u32_at(header::CONSTANTS_LEN),
                Section::Constants,
            )?,
            metadata: section(bytes, u32_at(header::METADATA_OFFSET), u32_at(header::METADATA_LEN), Section::Metadata)?,
            tensor_count,
            op_count,
            input: u16_at(header::INPUT_TENSOR),
            output: u16_at(header::OUTPUT_TENSOR),
            arena_size: u32_at(header::ARENA_SIZE),
        };
        model.validate()?;
        Ok(model)
    }

    /// The whole blob.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The blob's CRC-32 (from its header, checked at load): names the model, so that
    /// a learned head for another model is refused ([`crate::learn::Head`]).
    pub fn checksum(&self) -> u32 {
        let at = crate::format::header::CRC;
        self.bytes.get(at..at + 4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Arena bytes an [`Interpreter`](crate::Interpreter) needs for this model.
    pub fn arena_size(&self) -> usize {
        self.arena_size
    }

    /// Number of activation tensors.
    pub fn tensor_count(&self) -> usize {
        self.tensor_count
    }

    /// Number of operators.
    pub fn op_count(&self) -> usize {
        self.op_count
    }

    /// Index of the input tensor.
    pub fn input_index(&self) -> u16 {
        self.input
    }

    /// Index of the output tensor.
    pub fn output_index(&self) -> u16 {
        self.output
    }

    /// The input tensor.
    pub fn input(&self) -> TensorInfo {
        self.tensor(self.input).unwrap_or(EMPTY_TENSOR)
    }

    /// The output tensor.
    pub fn output(&self) -> TensorInfo {
        self.tensor(self.output).unwrap_or(EMPTY_TENSOR)
    }

    /// Tensor `index`, or an error if it does not exist or its record is invalid.
    pub fn tensor(&self, index: u16) -> Result<TensorInfo, Error> {
        let bad = Error::BadTensor { tensor: index };
        let base = usize::from(index) * format::TENSOR_RECORD_LEN;
        if usize::from(index) >= self.tensor_count {
            return Err(bad);
        }
        let t = self.tensors.get(base..base + format::TENSOR_RECORD_LEN).ok_or(bad)?;
        let dim = |at| read_u16(t, at).map(usize::from).unwrap_or(0);
        let shape = Shape::new(dim(format::tensor::HEIGHT), dim(format::tensor::WIDTH), dim(format::tensor::CHANNELS));
        let scale = read_f32(t, format::tensor::SCALE).unwrap_or(0.0);
        let zero_point = read_i32(t, format::tensor::ZERO_POINT).unwrap_or(i32::MAX);
        let arena_offset = read_u32(t, format::tensor::ARENA_OFFSET).unwrap_or(u32::MAX) as usize;
        let info = TensorInfo {
            shape,
            scale,
            zero_point,
            arena_offset,
            alias_of: read_u16(t, format::tensor::ALIAS_OF).unwrap_or(u16::MAX),
            first: read_u16(t, format::tensor::FIRST).unwrap_or(u16::MAX),
            last: read_u16(t, format::tensor::LAST).unwrap_or(0),
        };
        let valid = shape.height > 0
            && shape.width > 0
            && shape.channels > 0
            && scale.is_finite()
            && scale > 0.0
            && (-128..=127).contains(&zero_point)
            && (shape.height as u64) * (shape.width as u64) * (shape.channels as u64) <= u32::MAX as u64
            && (arena_offset as u64) + (info.bytes() as u64) <= self.arena_size as u64
            && usize::from(info.alias_of) < self.tensor_count
            && info.first <= info.last
            && usize::from(info.last) <= self.op_count + 1;
        if valid {
            Ok(info)
        } else {
            Err(bad)
        }
    }

    /// Operator `index`, decoded. Bounds are re-checked; on a model that loaded this
    /// does not fail.
    pub fn operator(&self, index: usize) -> Result<Operator<'a>, Error> {
        let op_index = index.min(u16::MAX as usize) as u16;
        let bad = |reason| Error::BadOperator { op: op_index, reason };
        let base = index * format::OP_RECORD_LEN;
        let r = self.ops.get(base..base + format::OP_RECORD_LEN).ok_or(bad(OpError::TensorIndex))?;
        let u16_at = |at| read_u16(r, at).unwrap_or(0);
        let usize_at = |at| usize::from(u16_at(at));
        let i32_at = |at| read_i32(r, at).unwrap_or(0);
        let kind_byte = read_u8(r, op::KIND).unwrap_or(0);
        let kind = OpKind::from_u8(kind_byte).ok_or(bad(OpError::UnknownKind(kind_byte)))?;
        let count = usize_at(op::INPUT_COUNT);
        let inputs = if count <= 2 {
            Inputs::Inline { indices: [u16_at(op::INPUT0), u16_at(op::INPUT1)], count }
        } else {
            let offset = read_u32(r, op::INPUT_LIST).unwrap_or(u32::MAX) as usize;
            Inputs::List(self.constant(offset, count * 2).ok_or(bad(OpError::ConstantOutOfBounds))?)
        };
        let output = u16_at(op::OUTPUT);
        let expected_inputs = match kind {
            OpKind::Add => 2..=2,
            OpKind::Concatenation => 1..=usize::from(u16::MAX),
            _ => 1..=1,
        };
        if !expected_inputs.contains(&count) {
            return Err(bad(OpError::TensorIndex));
        }
        for t in inputs.iter().chain(core::iter::once(output)) {
            if usize::from(t) >= self.tensor_count {
                return Err(bad(OpError::TensorIndex));
            }
        }
        let input = self.tensor(inputs.get(0).unwrap_or(0))?;
        let out = self.tensor(output)?;
        let act_min = read_i8(r, op::ACT_MIN).unwrap_or(-128);
        let act_max = read_i8(r, op::ACT_MAX).unwrap_or(127);
        let window = Window {
            kernel_h: usize_at(op::KERNEL_H),
            kernel_w: usize_at(op::KERNEL_W),
            stride_h: usize_at(op::STRIDE_H),
            stride_w: usize_at(op::STRIDE_W),
            dilation_h: usize_at(op::DILATION_H),
            dilation_w: usize_at(op::DILATION_W),
            pad_top: usize_at(op::PAD_TOP),
            pad_left: usize_at(op::PAD_LEFT),
        };
        // Weights, bias, multipliers and shifts of a layer with `channels` outputs.
        let channel_quant = |weights_len: usize, channels: usize| -> Result<(&'a [i8], ChannelQuant<'a>), Error> {
            let at = |field| read_u32(r, field).unwrap_or(format::ABSENT);
            let oob = bad(OpError::ConstantOutOfBounds);
            let weights = self.constant(at(op::WEIGHTS) as usize, weights_len).ok_or(oob)?;
            let bias = match at(op::BIAS) {
                format::ABSENT => None,
                offset => Some(I32s::new(self.constant(offset as usize, channels * 4).ok_or(oob)?)),
            };
            let multipliers = I32s::new(self.constant(at(op::MULTIPLIERS) as usize, channels * 4).ok_or(oob)?);
            let shifts = I32s::new(self.constant(at(op::SHIFTS) as usize, channels * 4).ok_or(oob)?);
            Ok((
                bytemuck::cast_slice(weights),
                ChannelQuant { bias, multipliers, shifts, output_zero_point: out.zero_point, act_min, act_max },
            ))
        };
        let layout = read_u8(r, op::WEIGHT_LAYOUT).unwrap_or(0);
        let expect_layout =
            |wanted: u8| if layout == wanted { Ok(()) } else { Err(bad(OpError::WeightLayout(layout))) };
        let params = match kind {
            OpKind::Conv2d | OpKind::DepthwiseConv2d => {
                expect_layout(weight_layout::ROW_MAJOR)?;
                let taps = window.kernel_h * window.kernel_w;
                let weights_len = if kind == OpKind::Conv2d {
                    taps * input.shape.channels * out.shape.channels
                } else {
                    taps * out.shape.channels
                };
                let (weights, quant) = channel_quant(weights_len, out.shape.channels)?;
                let p = ConvParams { window, depth_multiplier: usize_at(op::DEPTH_MULTIPLIER), weights, quant };
                if kind == OpKind::Conv2d {
                    OpParams::Conv2d(p)
                } else {
                    OpParams::DepthwiseConv2d(p)
                }
            }
            OpKind::FullyConnected => {
                expect_layout(weight_layout::DENSE_BLOCKED)?;
                let len =
                    format::dense_weights_len(out.shape.channels, input.bytes()).ok_or(bad(OpError::Parameter))?;
                let (weights, quant) = channel_quant(len, out.shape.channels)?;
                OpParams::FullyConnected(DenseParams {
                    weights,
                    input_len: input.bytes(),
                    units: out.shape.channels,
                    quant,
                })
            }
            OpKind::MaxPool2d | OpKind::AvgPool2d => {
                let p = PoolParams { window, act_min, act_max };
                if kind == OpKind::MaxPool2d {
                    OpParams::MaxPool2d(p)
                } else {
                    OpParams::AvgPool2d(p)
                }
            }
            OpKind::Mean => OpParams::Mean(MeanParams {
                mode: read_u8(r, op::PARAM0).unwrap_or(0),
                multiplier: i32_at(op::PARAM0 + 4),
                shift: i32_at(op::PARAM0 + 8),
                input_zero_point: input.zero_point,
                output_zero_point: out.zero_point,
            }),
            OpKind::Add => {
                let second = self.tensor(inputs.get(1).unwrap_or(0))?;
                OpParams::Add(AddParams {
                    left_shift: i32_at(op::PARAM0),
                    input1_multiplier: i32_at(op::PARAM0 + 4),
                    input1_shift: i32_at(op::PARAM0 + 8),
                    input2_multiplier: i32_at(op::PARAM0 + 12),
                    input2_shift: i32_at(op::PARAM0 + 16),
                    output_multiplier: i32_at(op::PARAM0 + 20),
                    output_shift: i32_at(op::PARAM0 + 24),
                    input1_zero_point: input.zero_point,
                    input2_zero_point: second.zero_point,
                    output_zero_point: out.zero_point,
                    act_min: read_i8(r, op::PARAM0 + 28).unwrap_or(-128),
                    act_max: read_i8(r, op::PARAM0 + 29).unwrap_or(127),
                })
            }
            OpKind::Concatenation => OpParams::Concatenation,
            OpKind::Softmax => OpParams::Softmax(SoftmaxParams {
                input_multiplier: i32_at(op::PARAM0),
                input_left_shift: i32_at(op::PARAM0 + 4),
                diff_min: i32_at(op::PARAM0 + 8),
                exp_table: match read_u32(r, op::EXP_TABLE).unwrap_or(format::ABSENT) {
                    format::ABSENT => None,
                    offset => Some(I32s::new(
                        self.constant(offset as usize, 4 * format::SOFTMAX_TABLE_LEN)
                            .ok_or(bad(OpError::ConstantOutOfBounds))?,
                    )),
                },
            }),
            OpKind::Requantize => OpParams::Requantize(RequantizeParams {
                multiplier: i32_at(op::PARAM0),
                shift: i32_at(op::PARAM0 + 4),
                input_zero_point: input.zero_point,
                output_zero_point: out.zero_point,
                act_min,
                act_max,
            }),
            OpKind::Reshape => OpParams::Reshape,
        };
        Ok(Operator { kind, inputs, output, params })
    }

    fn constant(&self, offset: usize, len: usize) -> Option<&'a [u8]> {
        self.constants.get(offset..offset.checked_add(len)?)
    }

    /// The model's name, if the exporter recorded one.
    pub fn name(&self) -> Option<&'a str> {
        self.metadata_text(meta::NAME)
    }

    /// The tool that wrote the blob, if recorded.
    pub fn tool(&self) -> Option<&'a str> {
        self.metadata_text(meta::TOOL)
    }

    /// Class labels, one per output channel, if recorded.
    pub fn labels(&self) -> impl Iterator<Item = &'a str> {
        self.metadata_text(meta::LABELS).unwrap_or("").lines().filter(|l| !l.is_empty())
    }

    /// Label of class `index`, if recorded.
    pub fn label(&self, index: usize) -> Option<&'a str> {
        self.labels().nth(index)
    }

    /// Input preprocessing, if recorded.
    pub fn preprocess(&self) -> Option<Preprocess> {
        let entry = self.metadata_entry(meta::PREPROCESS)?;
        Some(Preprocess {
            channels: read_u8(entry, 0)?,
            pixel_scale: read_f32(entry, 4)?,
            pixel_offset: read_f32(entry, 8)?,
        })
    }

    /// The output's dimensions as the source model gave them (without batch), if
    /// recorded; the product always equals the output's element count.
    pub fn output_dims(&self) -> Option<heapless::Vec<usize, 4>> {
        let entry = self.metadata_entry(meta::OUTPUT_DIMS)?;
        let mut dims = heapless::Vec::new();
        for chunk in entry.chunks_exact(2) {
            dims.push(usize::from(u16::from_le_bytes([chunk[0], chunk[1]]))).ok()?;
        }
        (dims.iter().product::<usize>() == self.output().bytes()).then_some(dims)
    }

    fn metadata_text(&self, tag: u8) -> Option<&'a str> {
        core::str::from_utf8(self.metadata_entry(tag)?).ok()
    }

    fn metadata_entry(&self, tag: u8) -> Option<&'a [u8]> {
        metadata_entries(self.metadata).find_map(|e| match e {
            Ok((t, body)) if t == tag => Some(body),
            _ => None,
        })
    }

    fn validate(&self) -> Result<(), Error> {
        // Times are u16 in the tensor records: operator k runs at time k + 1.
        if self.op_count + 1 > usize::from(u16::MAX) {
            return Err(Error::BadGraph { op: u16::MAX });
        }
        if usize::from(self.input) >= self.tensor_count {
            return Err(Error::BadTensor { tensor: self.input });
        }
        if usize::from(self.output) >= self.tensor_count {
            return Err(Error::BadTensor { tensor: self.output });
        }
        for entry in metadata_entries(self.metadata) {
            let (tag, body) = entry?;
            if matches!(tag, meta::NAME | meta::TOOL | meta::LABELS) && core::str::from_utf8(body).is_err() {
                return Err(Error::BadMetadata);
            }
        }
        let labels = self.labels().count();
        let outputs = self.output().shape.channels;
        if labels != 0 && labels != outputs {
            return Err(Error::LabelCount { labels, outputs });
        }
        self.validate_tensor_times()?;
        for i in 0..self.op_count {
            let operator = self.operator(i)?;
            self.validate_operator(i, &operator)?;
            self.validate_order(i, &operator)?;
        }
        self.validate_plan()
    }

    /// Each tensor's recorded write time names its real writer: time 0 is the model
    /// input and nothing else; time `k + 1` is operator `k`, whose output it must be.
    /// So every tensor has exactly one writer, and "written before" is a comparison.
    fn validate_tensor_times(&self) -> Result<(), Error> {
        let end = self.op_count + 1;
        for t in 0..self.tensor_count as u16 {
            let info = self.tensor(t)?;
            let graph = Error::BadGraph { op: info.first.saturating_sub(1) };
            if t == self.input {
                if info.first != 0 || info.alias_of != t {
                    return Err(graph);
                }
            } else {
                let writer = usize::from(info.first).checked_sub(1).ok_or(graph)?;
                let record = writer * format::OP_RECORD_LEN;
                if writer >= self.op_count || read_u16(self.ops, record + op::OUTPUT) != Some(t) {
                    return Err(graph);
                }
            }
            if t == self.output && usize::from(info.last) != end {
                return Err(Error::BadGraph { op: self.op_count as u16 });
            }
        }
        Ok(())
    }

    /// Checks one operator against the tensor records: its inputs were written before
    /// it runs and are still needed when it runs; its output is written by it; a
    /// Reshape output aliases its input, whose lifetime covers the output's.
    fn validate_order(&self, index: usize, operator: &Operator<'_>) -> Result<(), Error> {
        let graph = Error::BadGraph { op: index as u16 };
        let now = index + 1;
        for t in operator.inputs.iter() {
            let info = self.tensor(t)?;
            if usize::from(info.first) >= now || usize::from(info.last) < now {
                return Err(graph);
            }
        }
        let out = self.tensor(operator.output)?;
        if usize::from(out.first) != now {
            return Err(graph);
        }
        if operator.kind == OpKind::Reshape {
            let input = self.tensor(operator.inputs.get(0).unwrap_or(0))?;
            if out.alias_of != input.alias_of || input.last < out.last {
                return Err(graph);
            }
        } else if out.alias_of != operator.output {
            return Err(graph);
        }
        Ok(())
    }

    fn validate_operator(&self, index: usize, operator: &Operator<'_>) -> Result<(), Error> {
        let bad = |reason| Error::BadOperator { op: index as u16, reason };
        let input = self.tensor(operator.inputs.get(0).unwrap_or(0))?;
        let out = self.tensor(operator.output)?;
        let (i, o) = (input.shape, out.shape);
        let same_quant = |a: &TensorInfo, b: &TensorInfo| a.scale == b.scale && a.zero_point == b.zero_point;
        let check = |ok: bool, reason| if ok { Ok(()) } else { Err(bad(reason)) };
        let shift_ok = |shift: i32| (-31..=30).contains(&shift);
        match &operator.params {
            OpParams::Conv2d(p) | OpParams::DepthwiseConv2d(p) => {
                let w = &p.window;
                check_window(w, i, o).map_err(bad)?;
                if operator.kind == OpKind::Conv2d {
                    check(w.kernel_h * w.kernel_w * i.channels <= MAX_ACCUMULATION, OpError::Parameter)?;
                } else {
                    check(
                        p.depth_multiplier >= 1 && o.channels == i.channels * p.depth_multiplier,
                        OpError::ShapeMismatch,
                    )?;
                    check(w.kernel_h * w.kernel_w <= MAX_ACCUMULATION, OpError::Parameter)?;
                }
                check_quant(&p.quant, o.channels).map_err(bad)?;
            }
            OpParams::FullyConnected(p) => {
                check(i.elements() <= MAX_ACCUMULATION, OpError::Parameter)?;
                check(o.height == 1 && o.width == 1, OpError::ShapeMismatch)?;
                check_quant(&p.quant, o.channels).map_err(bad)?;
            }
            OpParams::MaxPool2d(p) | OpParams::AvgPool2d(p) => {
                let w = &p.window;
                check(w.dilation_h == 1 && w.dilation_w == 1, OpError::Parameter)?;
                check_window(w, i, o).map_err(bad)?;
                check(i.channels == o.channels, OpError::ShapeMismatch)?;
                check(w.kernel_h * w.kernel_w <= MAX_ACCUMULATION, OpError::Parameter)?;
                // Every window must hold at least one input cell.
                check(
                    w.pad_top < w.kernel_h
                        && w.pad_left < w.kernel_w
                        && (o.height - 1) * w.stride_h < i.height + w.pad_top
                        && (o.width - 1) * w.stride_w < i.width + w.pad_left,
                    OpError::Parameter,
                )?;
                check(same_quant(&input, &out), OpError::QuantizationMismatch)?;
                check(p.act_min <= p.act_max, OpError::Parameter)?;
            }
            OpParams::Mean(p) => {
                check(o.elements() == i.channels, OpError::ShapeMismatch)?;
                check(o.channels == i.channels, OpError::ShapeMismatch)?;
                check(i.pixels() <= 1 << 23, OpError::Parameter)?;
                check(
                    matches!(p.mode, mean_mode::MULTIPLIER | mean_mode::INTEGER | mean_mode::EQUAL_QUANT),
                    OpError::Parameter,
                )?;
                check(shift_ok(p.shift) && p.multiplier >= 0, OpError::Parameter)?;
            }
            OpParams::Add(p) => {
                let second = self.tensor(operator.inputs.get(1).unwrap_or(0))?;
                check(i == o && second.shape == o, OpError::ShapeMismatch)?;
                check(
                    (0..=20).contains(&p.left_shift)
                        && [p.input1_shift, p.input2_shift, p.output_shift].into_iter().all(shift_ok)
                        && p.act_min <= p.act_max,
                    OpError::Parameter,
                )?;
            }
            OpParams::Concatenation => {
                let mut channels = 0;
                for t in operator.inputs.iter() {
                    let part = self.tensor(t)?;
                    check(part.shape.height == o.height && part.shape.width == o.width, OpError::ShapeMismatch)?;
                    check(same_quant(&part, &out), OpError::QuantizationMismatch)?;
                    channels += part.shape.channels;
                }
                check(channels == o.channels, OpError::ShapeMismatch)?;
            }
            OpParams::Softmax(p) => {
                check(i == o, OpError::ShapeMismatch)?;
                check((0..=30).contains(&p.input_left_shift) && p.diff_min <= 0, OpError::Parameter)?;
                // The table must be the exps the kernel would compute (256 of them).
                check(p.exp_table.is_none_or(|t| p.table_matches(t)), OpError::Parameter)?;
                check(out.zero_point == -128 && (out.scale * 256.0 - 1.0).abs() < 1e-6, OpError::QuantizationMismatch)?;
            }
            OpParams::Requantize(p) => {
                check(i == o, OpError::ShapeMismatch)?;
                check(shift_ok(p.shift) && p.act_min <= p.act_max, OpError::Parameter)?;
            }
            OpParams::Reshape => {
                check(i.elements() == o.elements(), OpError::ShapeMismatch)?;
                check(input.arena_offset == out.arena_offset, OpError::InPlace)?;
                check(same_quant(&input, &out), OpError::QuantizationMismatch)?;
            }
        }
        Ok(())
    }

    /// Checks that no two tensors that are live at the same time share bytes.
    ///
    /// A tensor lives from its write time to its last time (both verified above to
    /// cover every real use). Reshape outputs share their input's bytes and are
    /// covered by it, so only tensors that alias themselves are compared. Two of them
    /// may share bytes while both live only if they occupy exactly the same bytes and
    /// meet at one element-wise operator that reads the first and writes the second.
    fn validate_plan(&self) -> Result<(), Error> {
        for a in 0..self.tensor_count as u16 {
            let ta = self.tensor(a)?;
            if ta.alias_of != a {
                continue;
            }
            for b in (a + 1)..self.tensor_count as u16 {
                let tb = self.tensor(b)?;
                if tb.alias_of != b {
                    continue;
                }
                let (ra, rb) = (ta.arena_range(), tb.arena_range());
                if ra.start >= rb.end || rb.start >= ra.end {
                    continue; // disjoint bytes
                }
                if ta.first.max(tb.first) > ta.last.min(tb.last) {
                    continue; // never live together
                }
                let in_place = ra == rb
                    && ((ta.last == tb.first && self.writes_in_place(tb.first, a, b))
                        || (tb.last == ta.first && self.writes_in_place(ta.first, b, a)));
                if !in_place {
                    return Err(Error::ArenaOverlap { first: a, second: b });
                }
            }
        }
        Ok(())
    }

    /// Whether the operator running at `time` reads (an alias of) `from` and writes
    /// `to` element by element, so that sharing their bytes is safe.
    fn writes_in_place(&self, time: u16, from: u16, to: u16) -> bool {
        let Some(k) = usize::from(time).checked_sub(1) else {
            return false;
        };
        match self.operator(k) {
            Ok(o) => {
                o.kind.allows_in_place()
                    && o.output == to
                    && o.inputs.iter().any(|x| self.tensor(x).is_ok_and(|t| t.alias_of == from))
            }
            Err(_) => false,
        }
    }
}

const EMPTY_TENSOR: TensorInfo = TensorInfo {
    shape: Shape::new(0, 0, 0),
    scale: 1.0,
    zero_point: 0,
    arena_offset: 0,
    alias_of: 0,
    first: 0,
    last: 0,
};

/// Window geometry shared by convolutions and pooling: non-zero kernel, stride and
/// dilation, and extents small enough that index arithmetic cannot overflow.
fn check_window(w: &Window, i: Shape, o: Shape) -> Result<(), OpError> {
    let positive = w.kernel_h > 0 && w.kernel_w > 0 && w.stride_h > 0 && w.stride_w > 0;
    let dilated = w.dilation_h > 0 && w.dilation_w > 0;
    if !positive || !dilated {
        return Err(OpError::Parameter);
    }
    let reach_h = (w.kernel_h - 1) * w.dilation_h;
    let reach_w = (w.kernel_w - 1) * w.dilation_w;
    let fits = reach_h <= format::MAX_DIM
        && reach_w <= format::MAX_DIM
        && w.pad_top <= reach_h
        && w.pad_left <= reach_w
        && (o.height - 1) * w.stride_h <= i.height + w.pad_top
        && (o.width - 1) * w.stride_w <= i.width + w.pad_left;
    if fits {
        Ok(())
    } else {
        Err(OpError::Parameter)
    }
}

fn check_quant(q: &ChannelQuant<'_>, channels: usize) -> Result<(), OpError> {
    if q.act_min > q.act_max {
        return Err(OpError::Parameter);
    }
    for c in 0..channels {
        if !(-31..=30).contains(&q.shifts.get(c)) || q.multipliers.get(c) < 0 {
            return Err(OpError::Parameter);
        }
    }
    Ok(())
}

/// Iterates over `(tag, body)` metadata entries; an overrun gives one error and stops.
fn metadata_entries(bytes: &[u8]) -> impl Iterator<Item = Result<(u8, &[u8]), Error>> {
    let mut at = 0;
    let mut failed = false;
    core::iter::from_fn(move || {
        if failed || at >= bytes.len() {
            return None;
        }
        let entry = (|| {
            let tag = read_u8(bytes, at)?;
            let len = usize::from(read_u16(bytes, at + 1)?);
            let body = bytes.get(at + 3..at + 3 + len)?;
            Some((tag, body, at + 3 + len))
        })();
        match entry {
            Some((tag, body, next)) => {
                at = next;
                Some(Ok((tag, body)))
            }
            None => {
                failed = true;
                Some(Err(Error::BadMetadata))
            }
        }
    })
}
