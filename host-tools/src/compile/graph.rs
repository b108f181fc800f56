//! The int8 graph: the host's model between the two front ends (the TFLite importer,
//! [`crate::tflite::import`], and post-training quantization, [`crate::quantize::ptq`])
//! and the arena planner and blob writer. Tensors (shape and quantization), operators
//! with their int8 constants and the requantization parameters [`crate::compile::lower`]
//! computed, and metadata (labels, input preprocessing, output dimensions). The layer
//! vocabulary is the core's ([`OpKind`]); this module only owns the constants.

use microcnn_core::format::OpKind;
use microcnn_core::ops::conv::Window;
use microcnn_core::Shape;

/// An activation tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorDef {
    /// A name for reports (the TFLite tensor name, or a layer name).
    pub name: String,
    /// Shape, batch 1.
    pub shape: Shape,
    /// Quantization scale.
    pub scale: f32,
    /// Quantization zero point.
    pub zero_point: i32,
}

/// Bias, per-channel requantization and clamp of a conv or dense layer.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelConsts {
    /// int32 bias per output channel.
    pub bias: Option<Vec<i32>>,
    /// Q31 multipliers per output channel.
    pub multipliers: Vec<i32>,
    /// Shifts per output channel.
    pub shifts: Vec<i32>,
    /// Lower clamp.
    pub act_min: i8,
    /// Upper clamp.
    pub act_max: i8,
}

/// Operator parameters with owned constants.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerParams {
    /// 2-D convolution, weights `[C_out, KH, KW, C_in]`.
    Conv2d {
        /// Geometry.
        window: Window,
        /// Weights.
        weights: Vec<i8>,
        /// Requantization.
        quant: ChannelConsts,
    },
    /// Depthwise convolution, weights `[KH, KW, C_out]`.
    DepthwiseConv2d {
        /// Geometry.
        window: Window,
        /// Depth multiplier.
        depth_multiplier: usize,
        /// Weights.
        weights: Vec<i8>,
        /// Requantization.
        quant: ChannelConsts,
    },
    /// Dense layer, weights `[C_out, N]`.
    FullyConnected {
        /// Weights.
        weights: Vec<i8>,
        /// Requantization.
        quant: ChannelConsts,
    },
    /// Max pooling.
    MaxPool2d {
        /// Geometry.
        window: Window,
        /// Clamp.
        act: (i8, i8),
    },
    /// Average pooling.
    AvgPool2d {
        /// Geometry.
        window: Window,
        /// Clamp.
        act: (i8, i8),
    },
    /// Mean over height and width.
    Mean {
        /// [`mean_mode`](microcnn_core::format::mean_mode).
        mode: u8,
        /// Multiplier.
        multiplier: i32,
        /// Shift.
        shift: i32,
    },
    /// Residual addition.
    Add {
        /// `[left_shift, m1, s1, m2, s2, m_out, s_out]`.
        params: [i32; 7],
        /// Clamp.
        act: (i8, i8),
    },
    /// Channel concatenation.
    Concatenation,
    /// Softmax.
    Softmax {
        /// Input multiplier.
        input_multiplier: i32,
        /// Input left shift.
        input_left_shift: i32,
        /// Smallest difference that counts.
        diff_min: i32,
    },
    /// Requantize and clamp (ReLU, ReLU6, QUANTIZE).
    Requantize {
        /// Multiplier.
        multiplier: i32,
        /// Shift.
        shift: i32,
        /// Clamp.
        act: (i8, i8),
    },
    /// Reshape (alias).
    Reshape,
}

impl LayerParams {
    /// The core's kind for these parameters.
    pub fn kind(&self) -> OpKind {
        match self {
            LayerParams::Conv2d { .. } => OpKind::Conv2d,
            LayerParams::DepthwiseConv2d { .. } => OpKind::DepthwiseConv2d,
            LayerParams::FullyConnected { .. } => OpKind::FullyConnected,
            LayerParams::MaxPool2d { .. } => OpKind::MaxPool2d,
            LayerParams::AvgPool2d { .. } => OpKind::AvgPool2d,
            LayerParams::Mean { .. } => OpKind::Mean,
            LayerParams::Add { .. } => OpKind::Add,
            LayerParams::Concatenation => OpKind::Concatenation,
            LayerParams::Softmax { .. } => OpKind::Softmax,
            LayerParams::Requantize { .. } => OpKind::Requantize,
            LayerParams::Reshape => OpKind::Reshape,
        }
    }
}

/// One operator.
#[derive(Clone, Debug, PartialEq)]
pub struct OpDef {
    /// Input tensor indices.
    pub inputs: Vec<usize>,
    /// Output tensor index.
    pub output: usize,
    /// Parameters and constants.
    pub params: LayerParams,
}

/// Input preprocessing to record in the blob.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PreprocessDef {
    /// 1 (gray) or 3 (RGB).
    pub channels: u8,
    /// `real = pixel × pixel_scale + pixel_offset`.
    pub pixel_scale: f32,
    /// See `pixel_scale`.
    pub pixel_offset: f32,
}

/// A whole model, in execution order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    /// Activation tensors.
    pub tensors: Vec<TensorDef>,
    /// Operators in the order they run.
    pub ops: Vec<OpDef>,
    /// The input tensor.
    pub input: usize,
    /// The output tensor.
    pub output: usize,
    /// Model name.
    pub name: String,
    /// Class labels.
    pub labels: Vec<String>,
    /// Input preprocessing.
    pub preprocess: Option<PreprocessDef>,
    /// The output's dimensions without batch, as the source model gave them.
    pub output_dims: Vec<usize>,
}
