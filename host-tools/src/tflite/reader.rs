//! A small, self-contained reader for TFLite flatbuffer model files.
//!
//! This module decodes the parts of a `.tflite` file that an int8 CNN toolchain
//! needs: operator codes, subgraphs (tensors, operators, inputs and outputs),
//! quantization parameters, the options of the common builtin operators, and
//! the constant buffers.
//!
//! It is written directly against the flatbuffer binary format:
//!
//! * the file starts with a `u32` offset to the root table, followed by the
//!   4-byte file identifier `TFL3`;
//! * a table starts with an `i32` offset back to its vtable
//!   (`vtable = table - soffset`); the vtable holds `u16` entries: its own byte
//!   size, the table's inline size, then one offset per field (field `N` at byte
//!   `4 + 2 * N`; 0 or past the end of the vtable means "absent, use the
//!   default");
//! * offsets to tables, vectors and strings are `u32` relative to where the
//!   offset itself is stored;
//! * vectors and strings start with a `u32` element count;
//! * a union field occupies two field ids: a `u8` type, then the table offset.
//!
//! Field numbers follow the declaration order of the TFLite schema (including
//! deprecated fields). Every read is bounds-checked: a truncated or hostile
//! file yields a [`TfliteError`], never a panic. Vector lengths are checked
//! against the bytes left in the file, and the total decoded size is capped
//! relative to the file size, so data shared between many references cannot
//! blow up memory use.

use std::cell::Cell;
use std::fmt;

/// Errors returned by [`parse`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TfliteError {
    /// The file is too small to hold a flatbuffer header.
    #[error("file is {len} bytes, too short to be a TFLite model")]
    TooShort {
        /// Length of the file in bytes.
        len: usize,
    },
    /// Bytes 4..8 are not the TFLite file identifier `TFL3`.
    #[error("not a TFLite model: file identifier is {found:?}, expected \"TFL3\"")]
    BadIdentifier {
        /// The four identifier bytes found, shown with escapes.
        found: String,
    },
    /// Some structure or data lies (partly) outside the file.
    #[error("{what} is out of bounds (offset {offset}, length {length}, file {file_len} bytes)")]
    OutOfBounds {
        /// What was being read, e.g. `buffer 3`.
        what: String,
        /// Byte offset of the read.
        offset: u64,
        /// Number of bytes the read needed.
        length: u64,
        /// Length of the file in bytes.
        file_len: usize,
    },
    /// A vector claims more elements than the rest of the file can hold.
    #[error(
        "{what} claims {count} elements ({elem_size} bytes each), \
         but only {available} bytes follow in the file"
    )]
    VectorTooLong {
        /// What was being read.
        what: String,
        /// Element count stored in the file.
        count: u64,
        /// Size of one element in bytes.
        elem_size: usize,
        /// Bytes available after the length prefix.
        available: usize,
    },
    /// A flatbuffer structure is invalid (for example a malformed vtable).
    #[error("{what}: malformed flatbuffer ({reason})")]
    Malformed {
        /// What was being read.
        what: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An enum field holds a value this reader cannot interpret.
    #[error("{what} has invalid value {value}")]
    InvalidValue {
        /// The field, e.g. `subgraph 0 operator 1 padding`.
        what: String,
        /// The raw value.
        value: i64,
    },
    /// An index refers to an element that does not exist.
    #[error("{what} refers to {target} {index}, but there are only {count}")]
    BadIndex {
        /// Where the index was found.
        what: String,
        /// The kind of thing indexed (`tensor`, `buffer`, `operator code`).
        target: &'static str,
        /// The index found.
        index: i64,
        /// How many such elements exist.
        count: usize,
    },
    /// Decoding would allocate far more memory than the file size justifies
    /// (many references to the same shared data).
    #[error(
        "model would decode to more than {limit} bytes from a {file_len}-byte file \
         (shared data referenced too many times)"
    )]
    TooLarge {
        /// The decoding budget in bytes.
        limit: usize,
        /// Length of the file in bytes.
        file_len: usize,
    },
}

/// A decoded TFLite model (the schema's root table `Model`).
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Schema version (3 for all current files).
    pub version: u32,
    /// Operator codes; [`Operator::opcode_index`] indexes this list.
    pub operator_codes: Vec<OperatorCode>,
    /// Subgraphs; the first is the main graph.
    pub subgraphs: Vec<SubGraph>,
    /// Constant data buffers; [`Tensor::buffer`] indexes this list.
    /// Index 0 is the empty sentinel: if the file has no buffers at all, an
    /// empty buffer 0 is inserted so that index 0 is always valid.
    pub buffers: Vec<Vec<u8>>,
    /// Free-form description (often the converter's name), empty if absent.
    pub description: String,
}

/// An operator code: which builtin (or custom) operator, and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorCode {
    /// The builtin operator (see [`builtin`]): the larger of the schema's
    /// `deprecated_builtin_code` (an `i8`) and `builtin_code` (an `i32`).
    pub builtin_code: i32,
    /// The custom operator's name, if any (for [`builtin::CUSTOM`]).
    pub custom_code: Option<String>,
    /// Operator version (schema default 1).
    pub version: i32,
}

impl OperatorCode {
    /// A readable name: the custom code for custom operators, otherwise the
    /// builtin name (see [`builtin_name`]).
    pub fn name(&self) -> &str {
        match &self.custom_code {
            Some(custom) if self.builtin_code == builtin::CUSTOM => custom,
            _ => builtin_name(self.builtin_code),
        }
    }
}

/// A subgraph: tensors, the operators connecting them, and its inputs/outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct SubGraph {
    /// All tensors of the subgraph.
    pub tensors: Vec<Tensor>,
    /// Indices into [`SubGraph::tensors`] of the graph inputs.
    pub inputs: Vec<i32>,
    /// Indices into [`SubGraph::tensors`] of the graph outputs.
    pub outputs: Vec<i32>,
    /// Operators in execution order.
    pub operators: Vec<Operator>,
    /// Subgraph name, empty if absent.
    pub name: String,
}

/// A tensor description.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Shape (NHWC for images).
    pub shape: Vec<i32>,
    /// Element type.
    pub tensor_type: TensorType,
    /// Index into [`Model::buffers`]; 0 means no constant data.
    pub buffer: u32,
    /// Tensor name, empty if absent.
    pub name: String,
    /// Quantization parameters; `None` if the file gives none, or gives a
    /// table with neither scales nor zero points (i.e. not quantized).
    pub quantization: Option<Quantization>,
    /// Whether the tensor is a variable (mutable state).
    pub is_variable: bool,
}

/// Affine quantization parameters: `real = scale * (q - zero_point)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantization {
    /// One scale per tensor, or one per channel along `quantized_dimension`.
    pub scale: Vec<f32>,
    /// Zero points, same length as `scale` in well-formed files.
    pub zero_point: Vec<i64>,
    /// The dimension the per-channel parameters run along.
    pub quantized_dimension: i32,
}

/// Tensor element types, with the schema's numeric codes.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TensorType {
    /// `FLOAT32` (0).
    Float32,
    /// `FLOAT16` (1).
    Float16,
    /// `INT32` (2).
    Int32,
    /// `UINT8` (3).
    UInt8,
    /// `INT64` (4).
    Int64,
    /// `STRING` (5).
    String,
    /// `BOOL` (6).
    Bool,
    /// `INT16` (7).
    Int16,
    /// `INT8` (9).
    Int8,
    /// `FLOAT64` (10).
    Float64,
    /// Any other code (complex, unsigned 16/32/64, int4, resource, ...).
    Other(i8),
}

impl TensorType {
    /// Decodes a schema `TensorType` value.
    pub fn from_code(code: i8) -> Self {
        match code {
            0 => Self::Float32,
            1 => Self::Float16,
            2 => Self::Int32,
            3 => Self::UInt8,
            4 => Self::Int64,
            5 => Self::String,
            6 => Self::Bool,
            7 => Self::Int16,
            9 => Self::Int8,
            10 => Self::Float64,
            other => Self::Other(other),
        }
    }

    /// The schema's numeric value of this type.
    pub fn code(self) -> i8 {
        match self {
            Self::Float32 => 0,
            Self::Float16 => 1,
            Self::Int32 => 2,
            Self::UInt8 => 3,
            Self::Int64 => 4,
            Self::String => 5,
            Self::Bool => 6,
            Self::Int16 => 7,
            Self::Int8 => 9,
            Self::Float64 => 10,
            Self::Other(code) => code,
        }
    }

    /// The schema's name of this type (`"INT8"`, ...), `"UNKNOWN"` for
    /// unrecognised codes.
    pub fn name(self) -> &'static str {
        match self.code() {
            0 => "FLOAT32",
            1 => "FLOAT16",
            2 => "INT32",
            3 => "UINT8",
            4 => "INT64",
            5 => "STRING",
            6 => "BOOL",
            7 => "INT16",
            8 => "COMPLEX64",
            9 => "INT8",
            10 => "FLOAT64",
            11 => "COMPLEX128",
            12 => "UINT64",
            13 => "RESOURCE",
            14 => "VARIANT",
            15 => "UINT32",
            16 => "UINT16",
            17 => "INT4",
            _ => "UNKNOWN",
        }
    }

    /// Size of one element in bytes, for fixed-size types this reader names.
    pub fn element_size(self) -> Option<usize> {
        match self {
            Self::Bool | Self::Int8 | Self::UInt8 => Some(1),
            Self::Int16 | Self::Float16 => Some(2),
            Self::Int32 | Self::Float32 => Some(4),
            Self::Int64 | Self::Float64 => Some(8),
            Self::String | Self::Other(_) => None,
        }
    }
}

/// An operator instance in a subgraph.
#[derive(Debug, Clone, PartialEq)]
pub struct Operator {
    /// Index into [`Model::operator_codes`].
    pub opcode_index: u32,
    /// Input tensor indices; -1 marks an omitted optional input.
    pub inputs: Vec<i32>,
    /// Output tensor indices.
    pub outputs: Vec<i32>,
    /// Decoded builtin options.
    pub options: BuiltinOptions,
}

/// Padding scheme of convolutions and pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// `SAME` (0): output size `ceil(in / stride)`.
    Same,
    /// `VALID` (1): no padding.
    Valid,
}

/// Fused activation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `NONE` (0).
    None,
    /// `RELU` (1).
    Relu,
    /// `RELU_N1_TO_1` (2).
    ReluN1To1,
    /// `RELU6` (3).
    Relu6,
    /// `TANH` (4).
    Tanh,
    /// `SIGN_BIT` (5).
    SignBit,
    /// Any other value.
    Other(i8),
}

impl Activation {
    /// Decodes a schema `ActivationFunctionType` value.
    pub fn from_code(code: i8) -> Self {
        match code {
            0 => Self::None,
            1 => Self::Relu,
            2 => Self::ReluN1To1,
            3 => Self::Relu6,
            4 => Self::Tanh,
            5 => Self::SignBit,
            other => Self::Other(other),
        }
    }
}

/// Builtin operator options (the schema's `BuiltinOptions` union), for the
/// option tables this toolkit uses. Absent fields take the schema defaults.
#[derive(Debug, Clone, PartialEq)]
pub enum BuiltinOptions {
    /// No options in the file.
    None,
    /// `Conv2DOptions` (union type 1).
    Conv2D {
        /// Padding scheme.
        padding: Padding,
        /// Horizontal stride.
        stride_w: i32,
        /// Vertical stride.
        stride_h: i32,
        /// Fused activation.
        activation: Activation,
        /// Horizontal dilation (default 1).
        dilation_w: i32,
        /// Vertical dilation (default 1).
        dilation_h: i32,
    },
    /// `DepthwiseConv2DOptions` (union type 2).
    DepthwiseConv2D {
        /// Padding scheme.
        padding: Padding,
        /// Horizontal stride.
        stride_w: i32,
        /// Vertical stride.
        stride_h: i32,
        /// Output channels per input channel (default 0; redundant with shapes).
        depth_multiplier: i32,
        /// Fused activation.
        activation: Activation,
        /// Horizontal dilation (default 1).
        dilation_w: i32,
        /// Vertical dilation (default 1).
        dilation_h: i32,
    },
    /// `Pool2DOptions` (union type 5), used by the pooling operators.
    Pool2D {
        /// Padding scheme.
        padding: Padding,
        /// Horizontal stride.
        stride_w: i32,
        /// Vertical stride.
        stride_h: i32,
        /// Window width.
        filter_w: i32,
        /// Window height.
        filter_h: i32,
        /// Fused activation.
        activation: Activation,
    },
    /// `FullyConnectedOptions` (union type 8).
    FullyConnected {
        /// Fused activation.
        activation: Activation,
        /// Weights format: 0 = `DEFAULT`, 1 = `SHUFFLED4x16INT8`.
        weights_format: i8,
        /// Keep the input's leading dimensions in the output.
        keep_num_dims: bool,
    },
    /// `SoftmaxOptions` (union type 9).
    Softmax {
        /// Input multiplier (default 0.0; converters write 1.0).
        beta: f32,
    },
    /// `AddOptions` (union type 11).
    Add {
        /// Fused activation.
        activation: Activation,
    },
    /// `ConcatenationOptions` (union type 10).
    Concatenation {
        /// Axis to concatenate along (may be negative).
        axis: i32,
        /// Fused activation.
        activation: Activation,
    },
    /// `ReshapeOptions` (union type 17).
    Reshape {
        /// Target shape (often empty: the shape is then given by an input).
        new_shape: Vec<i32>,
    },
    /// `ReducerOptions` (union type 27), used by MEAN, SUM, REDUCE_MAX, ...
    Reducer {
        /// Keep reduced dimensions with size 1.
        keep_dims: bool,
    },
    /// Any other options table, identified by its union type.
    Other {
        /// The schema's `BuiltinOptions` union type value.
        union_type: u8,
    },
}

/// Builtin operator codes (the schema's `BuiltinOperator` enum), for the
/// operators most often found in CNN models.
pub mod builtin {
    /// `ADD`.
    pub const ADD: i32 = 0;
    /// `AVERAGE_POOL_2D`.
    pub const AVERAGE_POOL_2D: i32 = 1;
    /// `CONCATENATION`.
    pub const CONCATENATION: i32 = 2;
    /// `CONV_2D`.
    pub const CONV_2D: i32 = 3;
    /// `DEPTHWISE_CONV_2D`.
    pub const DEPTHWISE_CONV_2D: i32 = 4;
    /// `DEPTH_TO_SPACE`.
    pub const DEPTH_TO_SPACE: i32 = 5;
    /// `DEQUANTIZE`.
    pub const DEQUANTIZE: i32 = 6;
    /// `FLOOR`.
    pub const FLOOR: i32 = 8;
    /// `FULLY_CONNECTED`.
    pub const FULLY_CONNECTED: i32 = 9;
    /// `L2_NORMALIZATION`.
    pub const L2_NORMALIZATION: i32 = 11;
    /// `L2_POOL_2D`.
    pub const L2_POOL_2D: i32 = 12;
    /// `LOGISTIC` (sigmoid).
    pub const LOGISTIC: i32 = 14;
    /// `MAX_POOL_2D`.
    pub const MAX_POOL_2D: i32 = 17;
    /// `MUL`.
    pub const MUL: i32 = 18;
    /// `RELU`.
    pub const RELU: i32 = 19;
    /// `RELU_N1_TO_1`.
    pub const RELU_N1_TO_1: i32 = 20;
    /// `RELU6`.
    pub const RELU6: i32 = 21;
    /// `RESHAPE`.
    pub const RESHAPE: i32 = 22;
    /// `RESIZE_BILINEAR`.
    pub const RESIZE_BILINEAR: i32 = 23;
    /// `SOFTMAX`.
    pub const SOFTMAX: i32 = 25;
    /// `SPACE_TO_DEPTH`.
    pub const SPACE_TO_DEPTH: i32 = 26;
    /// `TANH`.
    pub const TANH: i32 = 28;
    /// `CUSTOM`.
    pub const CUSTOM: i32 = 32;
    /// `PAD`.
    pub const PAD: i32 = 34;
    /// `GATHER`.
    pub const GATHER: i32 = 36;
    /// `TRANSPOSE`.
    pub const TRANSPOSE: i32 = 39;
    /// `MEAN`.
    pub const MEAN: i32 = 40;
    /// `SUB`.
    pub const SUB: i32 = 41;
    /// `DIV`.
    pub const DIV: i32 = 42;
    /// `SQUEEZE`.
    pub const SQUEEZE: i32 = 43;
    /// `STRIDED_SLICE`.
    pub const STRIDED_SLICE: i32 = 45;
    /// `EXP`.
    pub const EXP: i32 = 47;
    /// `SPLIT`.
    pub const SPLIT: i32 = 49;
    /// `LOG_SOFTMAX`.
    pub const LOG_SOFTMAX: i32 = 50;
    /// `CAST`.
    pub const CAST: i32 = 53;
    /// `PRELU`.
    pub const PRELU: i32 = 54;
    /// `MAXIMUM`.
    pub const MAXIMUM: i32 = 55;
    /// `ARG_MAX`.
    pub const ARG_MAX: i32 = 56;
    /// `MINIMUM`.
    pub const MINIMUM: i32 = 57;
    /// `PADV2`.
    pub const PADV2: i32 = 60;
    /// `SLICE`.
    pub const SLICE: i32 = 65;
    /// `TRANSPOSE_CONV`.
    pub const TRANSPOSE_CONV: i32 = 67;
    /// `TILE`.
    pub const TILE: i32 = 69;
    /// `EXPAND_DIMS`.
    pub const EXPAND_DIMS: i32 = 70;
    /// `SUM`.
    pub const SUM: i32 = 74;
    /// `SQRT`.
    pub const SQRT: i32 = 75;
    /// `RSQRT`.
    pub const RSQRT: i32 = 76;
    /// `SHAPE`.
    pub const SHAPE: i32 = 77;
    /// `ARG_MIN`.
    pub const ARG_MIN: i32 = 79;
    /// `REDUCE_PROD`.
    pub const REDUCE_PROD: i32 = 81;
    /// `REDUCE_MAX`.
    pub const REDUCE_MAX: i32 = 82;
    /// `PACK`.
    pub const PACK: i32 = 83;
    /// `UNPACK`.
    pub const UNPACK: i32 = 88;
    /// `REDUCE_MIN`.
    pub const REDUCE_MIN: i32 = 89;
    /// `SQUARE`.
    pub const SQUARE: i32 = 92;
    /// `RESIZE_NEAREST_NEIGHBOR`.
    pub const RESIZE_NEAREST_NEIGHBOR: i32 = 97;
    /// `LEAKY_RELU`.
    pub const LEAKY_RELU: i32 = 98;
    /// `SQUARED_DIFFERENCE`.
    pub const SQUARED_DIFFERENCE: i32 = 99;
    /// `MIRROR_PAD`.
    pub const MIRROR_PAD: i32 = 100;
    /// `ABS`.
    pub const ABS: i32 = 101;
    /// `SPLIT_V`.
    pub const SPLIT_V: i32 = 102;
    /// `ADD_N`.
    pub const ADD_N: i32 = 106;
    /// `ELU`.
    pub const ELU: i32 = 111;
    /// `QUANTIZE`.
    pub const QUANTIZE: i32 = 114;
    /// `HARD_SWISH`.
    pub const HARD_SWISH: i32 = 117;
    /// `BATCH_MATMUL`.
    pub const BATCH_MATMUL: i32 = 126;
    /// `BROADCAST_TO`.
    pub const BROADCAST_TO: i32 = 130;
    /// `GELU`.
    pub const GELU: i32 = 150;
}

/// Names of the schema's `BuiltinOperator` values 0..=205, in order.
const BUILTIN_NAMES: [&str; 206] = [
    // 0
    "ADD",
    "AVERAGE_POOL_2D",
    "CONCATENATION",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "DEPTH_TO_SPACE",
    "DEQUANTIZE",
    "EMBEDDING_LOOKUP",
    "FLOOR",
    "FULLY_CONNECTED",
    // 10
    "HASHTABLE_LOOKUP",
    "L2_NORMALIZATION",
    "L2_POOL_2D",
    "LOCAL_RESPONSE_NORMALIZATION",
    "LOGISTIC",
    "LSH_PROJECTION",
    "LSTM",
    "MAX_POOL_2D",
    "MUL",
    "RELU",
    // 20
    "RELU_N1_TO_1",
    "RELU6",
    "RESHAPE",
    "RESIZE_BILINEAR",
    "RNN",
    "SOFTMAX",
    "SPACE_TO_DEPTH",
    "SVDF",
    "TANH",
    "CONCAT_EMBEDDINGS",
    // 30
    "SKIP_GRAM",
    "CALL",
    "CUSTOM",
    "EMBEDDING_LOOKUP_SPARSE",
    "PAD",
    "UNIDIRECTIONAL_SEQUENCE_RNN",
    "GATHER",
    "BATCH_TO_SPACE_ND",
    "SPACE_TO_BATCH_ND",
    "TRANSPOSE",
    // 40
    "MEAN",
    "SUB",
    "DIV",
    "SQUEEZE",
    "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "STRIDED_SLICE",
    "BIDIRECTIONAL_SEQUENCE_RNN",
    "EXP",
    "TOPK_V2",
    "SPLIT",
    // 50
    "LOG_SOFTMAX",
    "DELEGATE",
    "BIDIRECTIONAL_SEQUENCE_LSTM",
    "CAST",
    "PRELU",
    "MAXIMUM",
    "ARG_MAX",
    "MINIMUM",
    "LESS",
    "NEG",
    // 60
    "PADV2",
    "GREATER",
    "GREATER_EQUAL",
    "LESS_EQUAL",
    "SELECT",
    "SLICE",
    "SIN",
    "TRANSPOSE_CONV",
    "SPARSE_TO_DENSE",
    "TILE",
    // 70
    "EXPAND_DIMS",
    "EQUAL",
    "NOT_EQUAL",
    "LOG",
    "SUM",
    "SQRT",
    "RSQRT",
    "SHAPE",
    "POW",
    "ARG_MIN",
    // 80
    "FAKE_QUANT",
    "REDUCE_PROD",
    "REDUCE_MAX",
    "PACK",
    "LOGICAL_OR",
    "ONE_HOT",
    "LOGICAL_AND",
    "LOGICAL_NOT",
    "UNPACK",
    "REDUCE_MIN",
    // 90
    "FLOOR_DIV",
    "REDUCE_ANY",
    "SQUARE",
    "ZEROS_LIKE",
    "FILL",
    "FLOOR_MOD",
    "RANGE",
    "RESIZE_NEAREST_NEIGHBOR",
    "LEAKY_RELU",
    "SQUARED_DIFFERENCE",
    // 100
    "MIRROR_PAD",
    "ABS",
    "SPLIT_V",
    "UNIQUE",
    "CEIL",
    "REVERSE_V2",
    "ADD_N",
    "GATHER_ND",
    "COS",
    "WHERE",
    // 110
    "RANK",
    "ELU",
    "REVERSE_SEQUENCE",
    "MATRIX_DIAG",
    "QUANTIZE",
    "MATRIX_SET_DIAG",
    "ROUND",
    "HARD_SWISH",
    "IF",
    "WHILE",
    // 120
    "NON_MAX_SUPPRESSION_V4",
    "NON_MAX_SUPPRESSION_V5",
    "SCATTER_ND",
    "SELECT_V2",
    "DENSIFY",
    "SEGMENT_SUM",
    "BATCH_MATMUL",
    "PLACEHOLDER_FOR_GREATER_OP_CODES",
    "CUMSUM",
    "CALL_ONCE",
    // 130
    "BROADCAST_TO",
    "RFFT2D",
    "CONV_3D",
    "IMAG",
    "REAL",
    "COMPLEX_ABS",
    "HASHTABLE",
    "HASHTABLE_FIND",
    "HASHTABLE_IMPORT",
    "HASHTABLE_SIZE",
    // 140
    "REDUCE_ALL",
    "CONV_3D_TRANSPOSE",
    "VAR_HANDLE",
    "READ_VARIABLE",
    "ASSIGN_VARIABLE",
    "BROADCAST_ARGS",
    "RANDOM_STANDARD_NORMAL",
    "BUCKETIZE",
    "RANDOM_UNIFORM",
    "MULTINOMIAL",
    // 150
    "GELU",
    "DYNAMIC_UPDATE_SLICE",
    "RELU_0_TO_1",
    "UNSORTED_SEGMENT_PROD",
    "UNSORTED_SEGMENT_MAX",
    "UNSORTED_SEGMENT_SUM",
    "ATAN2",
    "UNSORTED_SEGMENT_MIN",
    "SIGN",
    "BITCAST",
    // 160
    "BITWISE_XOR",
    "RIGHT_SHIFT",
    "STABLEHLO_LOGISTIC",
    "STABLEHLO_ADD",
    "STABLEHLO_DIVIDE",
    "STABLEHLO_MULTIPLY",
    "STABLEHLO_MAXIMUM",
    "STABLEHLO_RESHAPE",
    "STABLEHLO_CLAMP",
    "STABLEHLO_CONCATENATE",
    // 170
    "STABLEHLO_BROADCAST_IN_DIM",
    "STABLEHLO_CONVOLUTION",
    "STABLEHLO_SLICE",
    "STABLEHLO_CUSTOM_CALL",
    "STABLEHLO_REDUCE",
    "STABLEHLO_ABS",
    "STABLEHLO_AND",
    "STABLEHLO_COSINE",
    "STABLEHLO_EXPONENTIAL",
    "STABLEHLO_FLOOR",
    // 180
    "STABLEHLO_LOG",
    "STABLEHLO_MINIMUM",
    "STABLEHLO_NEGATE",
    "STABLEHLO_OR",
    "STABLEHLO_POWER",
    "STABLEHLO_REMAINDER",
    "STABLEHLO_RSQRT",
    "STABLEHLO_SELECT",
    "STABLEHLO_SUBTRACT",
    "STABLEHLO_TANH",
    // 190
    "STABLEHLO_SCATTER",
    "STABLEHLO_COMPARE",
    "STABLEHLO_CONVERT",
    "STABLEHLO_DYNAMIC_SLICE",
    "STABLEHLO_DYNAMIC_UPDATE_SLICE",
    "STABLEHLO_PAD",
    "STABLEHLO_IOTA",
    "STABLEHLO_DOT_GENERAL",
    "STABLEHLO_REDUCE_WINDOW",
    "STABLEHLO_SORT",
    // 200
    "STABLEHLO_WHILE",
    "STABLEHLO_GATHER",
    "STABLEHLO_TRANSPOSE",
    "DILATE",
    "STABLEHLO_RNG_BIT_GENERATOR",
    "REDUCE_WINDOW",
];

/// The schema name of a builtin operator code (`"CONV_2D"`, ...), or
/// `"UNKNOWN"` for codes this reader does not know.
pub fn builtin_name(code: i32) -> &'static str {
    usize::try_from(code).ok().and_then(|i| BUILTIN_NAMES.get(i).copied()).unwrap_or("UNKNOWN")
}

/// Parses a TFLite flatbuffer model.
///
/// `bytes` must be the whole file: buffers stored outside the flatbuffer
/// (the `offset`/`size` form used by models over 2 GB) are located relative
/// to its start. Besides the flatbuffer structure, the cross-references are
/// checked: every operator's `opcode_index`, every tensor's `buffer`, every
/// subgraph input/output and every operator input/output (which may be -1 for
/// an omitted optional tensor) must be in range.
pub fn parse(bytes: &[u8]) -> Result<Model, TfliteError> {
    if bytes.len() < 8 {
        return Err(TfliteError::TooShort { len: bytes.len() });
    }
    let ident = bytes.get(4..8).unwrap_or_default();
    if ident != b"TFL3" {
        return Err(TfliteError::BadIdentifier { found: ident.escape_ascii().to_string() });
    }
    let r = Reader::new(bytes);
    let ctx = Ctx::root("model");
    let root = r.deref(0, &ctx)?;
    let model_table = r.table_at(root, &ctx)?;
    let model = r.model(model_table, &ctx)?;
    validate(&model)?;
    Ok(model)
}

// ---------------------------------------------------------------------------
// Field ids of the TFLite schema (declaration order, unions take two ids).

mod field {
    // table Model
    pub const MODEL_VERSION: u16 = 0;
    pub const MODEL_OPERATOR_CODES: u16 = 1;
    pub const MODEL_SUBGRAPHS: u16 = 2;
    pub const MODEL_DESCRIPTION: u16 = 3;
    pub const MODEL_BUFFERS: u16 = 4;

    // table OperatorCode
    pub const OPCODE_DEPRECATED_BUILTIN_CODE: u16 = 0;
    pub const OPCODE_CUSTOM_CODE: u16 = 1;
    pub const OPCODE_VERSION: u16 = 2;
    pub const OPCODE_BUILTIN_CODE: u16 = 3;

    // table SubGraph
    pub const SUBGRAPH_TENSORS: u16 = 0;
    pub const SUBGRAPH_INPUTS: u16 = 1;
    pub const SUBGRAPH_OUTPUTS: u16 = 2;
    pub const SUBGRAPH_OPERATORS: u16 = 3;
    pub const SUBGRAPH_NAME: u16 = 4;

    // table Buffer
    pub const BUFFER_DATA: u16 = 0;
    pub const BUFFER_OFFSET: u16 = 1;
    pub const BUFFER_SIZE: u16 = 2;

    // table Tensor
    pub const TENSOR_SHAPE: u16 = 0;
    pub const TENSOR_TYPE: u16 = 1;
    pub const TENSOR_BUFFER: u16 = 2;
    pub const TENSOR_NAME: u16 = 3;
    pub const TENSOR_QUANTIZATION: u16 = 4;
    pub const TENSOR_IS_VARIABLE: u16 = 5;

    // table QuantizationParameters (min 0, max 1, details union 4 and 5)
    pub const QUANT_SCALE: u16 = 2;
    pub const QUANT_ZERO_POINT: u16 = 3;
    pub const QUANT_QUANTIZED_DIMENSION: u16 = 6;

    // table Operator
    pub const OP_OPCODE_INDEX: u16 = 0;
    pub const OP_INPUTS: u16 = 1;
    pub const OP_OUTPUTS: u16 = 2;
    pub const OP_BUILTIN_OPTIONS_TYPE: u16 = 3;
    pub const OP_BUILTIN_OPTIONS: u16 = 4;

    // table Conv2DOptions
    pub const CONV_PADDING: u16 = 0;
    pub const CONV_STRIDE_W: u16 = 1;
    pub const CONV_STRIDE_H: u16 = 2;
    pub const CONV_ACTIVATION: u16 = 3;
    pub const CONV_DILATION_W: u16 = 4;
    pub const CONV_DILATION_H: u16 = 5;

    // table DepthwiseConv2DOptions
    pub const DW_PADDING: u16 = 0;
    pub const DW_STRIDE_W: u16 = 1;
    pub const DW_STRIDE_H: u16 = 2;
    pub const DW_DEPTH_MULTIPLIER: u16 = 3;
    pub const DW_ACTIVATION: u16 = 4;
    pub const DW_DILATION_W: u16 = 5;
    pub const DW_DILATION_H: u16 = 6;

    // table Pool2DOptions
    pub const POOL_PADDING: u16 = 0;
    pub const POOL_STRIDE_W: u16 = 1;
    pub const POOL_STRIDE_H: u16 = 2;
    pub const POOL_FILTER_W: u16 = 3;
    pub const POOL_FILTER_H: u16 = 4;
    pub const POOL_ACTIVATION: u16 = 5;

    // table FullyConnectedOptions
    pub const FC_ACTIVATION: u16 = 0;
    pub const FC_WEIGHTS_FORMAT: u16 = 1;
    pub const FC_KEEP_NUM_DIMS: u16 = 2;

    // table SoftmaxOptions
    pub const SOFTMAX_BETA: u16 = 0;

    // table ConcatenationOptions
    pub const CONCAT_AXIS: u16 = 0;
    pub const CONCAT_ACTIVATION: u16 = 1;

    // table AddOptions
    pub const ADD_ACTIVATION: u16 = 0;

    // table ReshapeOptions
    pub const RESHAPE_NEW_SHAPE: u16 = 0;

    // table ReducerOptions
    pub const REDUCER_KEEP_DIMS: u16 = 0;
}

/// Values of the schema's `BuiltinOptions` union type.
mod union_type {
    pub const CONV_2D: u8 = 1;
    pub const DEPTHWISE_CONV_2D: u8 = 2;
    pub const POOL_2D: u8 = 5;
    pub const FULLY_CONNECTED: u8 = 8;
    pub const SOFTMAX: u8 = 9;
    pub const CONCATENATION: u8 = 10;
    pub const ADD: u8 = 11;
    pub const RESHAPE: u8 = 17;
    pub const REDUCER: u8 = 27;
}

// ---------------------------------------------------------------------------
// Error context: a lazily formatted path like "subgraph 0 tensor 5 shape".

#[derive(Clone, Copy)]
struct Ctx<'p> {
    parent: Option<&'p Ctx<'p>>,
    label: &'static str,
    index: Option<usize>,
}

impl<'p> Ctx<'p> {
    fn root(label: &'static str) -> Self {
        Ctx { parent: None, label, index: None }
    }

    /// A named part of this item (not shown for the `model` root).
    fn field(&'p self, label: &'static str) -> Ctx<'p> {
        Ctx { parent: Some(self), label, index: None }
    }

    /// The `index`-th element of a list of `label`s inside this item.
    fn item(&'p self, label: &'static str, index: usize) -> Ctx<'p> {
        Ctx { parent: Some(self), label, index: Some(index) }
    }
}

impl fmt::Display for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.parent, self.index) {
            // Right under the root: "model description", but "buffer 3".
            (Some(root), Some(_)) if root.parent.is_none() => {}
            (Some(parent), _) => write!(f, "{parent} ")?,
            (None, _) => {}
        }
        f.write_str(self.label)?;
        if let Some(i) = self.index {
            write!(f, " {i}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Bounds-checked flatbuffer access.

/// A table located in the buffer. `vt_len == 0` stands for an absent table,
/// whose fields all read as their defaults.
#[derive(Clone, Copy)]
struct Table {
    pos: usize,
    vt: usize,
    vt_len: usize,
}

impl Table {
    const ABSENT: Table = Table { pos: 0, vt: 0, vt_len: 0 };
}

/// Little-endian scalars readable from the buffer.
trait Scalar: Sized + Copy {
    const SIZE: usize;
    fn from_le(bytes: &[u8]) -> Option<Self>;
}

macro_rules! impl_scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn from_le(bytes: &[u8]) -> Option<Self> {
                Some(<$t>::from_le_bytes(bytes.try_into().ok()?))
            }
        }
    )*};
}
impl_scalar!(u8, i8, u16, u32, i32, u64, i64, f32);

struct Reader<'a> {
    buf: &'a [u8],
    /// Bytes the decoded model may still allocate.
    budget: Cell<usize>,
    limit: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        // Without shared data a model decodes to at most ~15x its size (a
        // tensor table can be 8 bytes in the file); 32x leaves room.
        let limit = buf.len().saturating_mul(32).saturating_add(1 << 20);
        Reader { buf, budget: Cell::new(limit), limit }
    }

    fn charge(&self, bytes: usize) -> Result<(), TfliteError> {
        match self.budget.get().checked_sub(bytes) {
            Some(rest) => {
                self.budget.set(rest);
                Ok(())
            }
            None => Err(TfliteError::TooLarge { limit: self.limit, file_len: self.buf.len() }),
        }
    }

    fn out_of_bounds(&self, ctx: &Ctx<'_>, offset: u64, length: u64) -> TfliteError {
        TfliteError::OutOfBounds { what: ctx.to_string(), offset, length, file_len: self.buf.len() }
    }

    fn bytes(&self, pos: usize, len: usize, ctx: &Ctx<'_>) -> Result<&'a [u8], TfliteError> {
        pos.checked_add(len)
            .and_then(|end| self.buf.get(pos..end))
            .ok_or_else(|| self.out_of_bounds(ctx, pos as u64, len as u64))
    }

    fn scalar<T: Scalar>(&self, pos: usize, ctx: &Ctx<'_>) -> Result<T, TfliteError> {
        let b = self.bytes(pos, T::SIZE, ctx)?;
        T::from_le(b).ok_or_else(|| self.out_of_bounds(ctx, pos as u64, T::SIZE as u64))
    }

    /// Follows the `u32` offset stored at `pos`.
    fn deref(&self, pos: usize, ctx: &Ctx<'_>) -> Result<usize, TfliteError> {
        let off: u32 = self.scalar(pos, ctx)?;
        let target = usize::try_from(off)
            .ok()
            .and_then(|o| pos.checked_add(o))
            .filter(|&t| t < self.buf.len())
            .ok_or_else(|| self.out_of_bounds(ctx, (pos as u64).saturating_add(u64::from(off)), 4))?;
        Ok(target)
    }

    /// Reads the table starting at `pos` and checks its vtable.
    fn table_at(&self, pos: usize, ctx: &Ctx<'_>) -> Result<Table, TfliteError> {
        let soff: i32 = self.scalar(pos, ctx)?;
        let vt = i64::try_from(pos)
            .ok()
            .and_then(|p| p.checked_sub(i64::from(soff)))
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| TfliteError::Malformed {
                what: ctx.to_string(),
                reason: "vtable offset points before the start of the file",
            })?;
        let vt_len: u16 = self.scalar(vt, ctx)?;
        let vt_len = usize::from(vt_len);
        if vt_len < 4 || vt_len % 2 != 0 {
            return Err(TfliteError::Malformed {
                what: ctx.to_string(),
                reason: "vtable size is odd or smaller than 4",
            });
        }
        self.bytes(vt, vt_len, ctx)?;
        Ok(Table { pos, vt, vt_len })
    }

    /// Position of field `id` of table `t`, or `None` if absent.
    fn field_pos(&self, t: Table, id: u16, ctx: &Ctx<'_>) -> Result<Option<usize>, TfliteError> {
        let slot = 4 + 2 * usize::from(id);
        if slot + 2 > t.vt_len {
            return Ok(None);
        }
        let off: u16 = self.scalar(t.vt + slot, ctx)?;
        if off == 0 {
            return Ok(None);
        }
        t.pos
            .checked_add(usize::from(off))
            .map(Some)
            .ok_or_else(|| self.out_of_bounds(ctx, (t.pos as u64).saturating_add(u64::from(off)), 1))
    }

    fn get<T: Scalar>(&self, t: Table, id: u16, default: T, ctx: &Ctx<'_>) -> Result<T, TfliteError> {
        match self.field_pos(t, id, ctx)? {
            Some(pos) => self.scalar(pos, ctx),
            None => Ok(default),
        }
    }

    fn get_bool(&self, t: Table, id: u16, default: bool, ctx: &Ctx<'_>) -> Result<bool, TfliteError> {
        Ok(self.get::<u8>(t, id, u8::from(default), ctx)? != 0)
    }

    /// The sub-table in field `id`, or [`Table::ABSENT`].
    fn get_table(&self, t: Table, id: u16, ctx: &Ctx<'_>) -> Result<Table, TfliteError> {
        match self.field_pos(t, id, ctx)? {
            Some(pos) => {
                let target = self.deref(pos, ctx)?;
                self.table_at(target, ctx)
            }
            None => Ok(Table::ABSENT),
        }
    }

    fn has_field(&self, t: Table, id: u16, ctx: &Ctx<'_>) -> Result<bool, TfliteError> {
        Ok(self.field_pos(t, id, ctx)?.is_some())
    }

    /// The vector in field `id`: position of its first element and its
    /// length, checked to fit in the file. `(0, 0)` if absent.
    fn get_vector(&self, t: Table, id: u16, elem_size: usize, ctx: &Ctx<'_>) -> Result<(usize, usize), TfliteError> {
        let Some(pos) = self.field_pos(t, id, ctx)? else {
            return Ok((0, 0));
        };
        let start = self.deref(pos, ctx)?;
        let count: u32 = self.scalar(start, ctx)?;
        let data = start + 4; // start + 4 <= len: the u32 was read
        let available = self.buf.len() - data;
        let fits = usize::try_from(count).ok().and_then(|c| c.checked_mul(elem_size)).filter(|&n| n <= available);
        match fits {
            Some(_) => Ok((data, count as usize)),
            None => {
                Err(TfliteError::VectorTooLong { what: ctx.to_string(), count: u64::from(count), elem_size, available })
            }
        }
    }

    fn get_scalars<T: Scalar>(&self, t: Table, id: u16, ctx: &Ctx<'_>) -> Result<Vec<T>, TfliteError> {
        let (data, count) = self.get_vector(t, id, T::SIZE, ctx)?;
        self.charge(count.saturating_mul(std::mem::size_of::<T>()))?;
        let bytes = self.bytes(data, count * T::SIZE, ctx)?;
        bytes
            .chunks_exact(T::SIZE)
            .map(|c| T::from_le(c).ok_or_else(|| self.out_of_bounds(ctx, data as u64, 0)))
            .collect()
    }

    fn get_bytes(&self, t: Table, id: u16, ctx: &Ctx<'_>) -> Result<&'a [u8], TfliteError> {
        let (data, count) = self.get_vector(t, id, 1, ctx)?;
        self.bytes(data, count, ctx)
    }

    fn get_string(&self, t: Table, id: u16, ctx: &Ctx<'_>) -> Result<Option<String>, TfliteError> {
        if !self.has_field(t, id, ctx)? {
            return Ok(None);
        }
        let bytes = self.get_bytes(t, id, ctx)?;
        self.charge(bytes.len())?;
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }

    /// Decodes each table of the vector of tables in field `id`.
    fn get_tables<T>(
        &self,
        t: Table,
        id: u16,
        owner: &Ctx<'_>,
        (list, label): (&'static str, &'static str),
        mut decode: impl FnMut(Table, &Ctx<'_>) -> Result<T, TfliteError>,
    ) -> Result<Vec<T>, TfliteError> {
        let (data, count) = self.get_vector(t, id, 4, &owner.field(list))?;
        self.charge(count.saturating_mul(std::mem::size_of::<T>()))?;
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let item_ctx = owner.item(label, i);
            let target = self.deref(data + 4 * i, &item_ctx)?;
            let table = self.table_at(target, &item_ctx)?;
            out.push(decode(table, &item_ctx)?);
        }
        Ok(out)
    }

    // -- TFLite tables ------------------------------------------------------

    fn model(&self, t: Table, ctx: &Ctx<'_>) -> Result<Model, TfliteError> {
        use field::*;
        let version = self.get(t, MODEL_VERSION, 0u32, &ctx.field("version"))?;
        let operator_codes =
            self.get_tables(t, MODEL_OPERATOR_CODES, ctx, ("operator codes", "operator code"), |t, c| {
                self.operator_code(t, c)
            })?;
        let subgraphs =
            self.get_tables(t, MODEL_SUBGRAPHS, ctx, ("subgraphs", "subgraph"), |t, c| self.subgraph(t, c))?;
        let description = self.get_string(t, MODEL_DESCRIPTION, &ctx.field("description"))?.unwrap_or_default();
        let mut buffers = self.get_tables(t, MODEL_BUFFERS, ctx, ("buffers", "buffer"), |t, c| self.buffer(t, c))?;
        if buffers.is_empty() {
            buffers.push(Vec::new());
        }
        Ok(Model { version, operator_codes, subgraphs, buffers, description })
    }

    fn operator_code(&self, t: Table, ctx: &Ctx<'_>) -> Result<OperatorCode, TfliteError> {
        use field::*;
        let deprecated = self.get(t, OPCODE_DEPRECATED_BUILTIN_CODE, 0i8, ctx)?;
        let code = self.get(t, OPCODE_BUILTIN_CODE, 0i32, ctx)?;
        Ok(OperatorCode {
            builtin_code: code.max(i32::from(deprecated)),
            custom_code: self.get_string(t, OPCODE_CUSTOM_CODE, &ctx.field("custom code"))?,
            version: self.get(t, OPCODE_VERSION, 1i32, ctx)?,
        })
    }

    fn buffer(&self, t: Table, ctx: &Ctx<'_>) -> Result<Vec<u8>, TfliteError> {
        use field::*;
        let offset = self.get(t, BUFFER_OFFSET, 0u64, ctx)?;
        if offset > 1 {
            // Data stored after the flatbuffer, relative to the file start.
            let size = self.get(t, BUFFER_SIZE, 0u64, ctx)?;
            let region = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(size).ok())
                .and_then(|(o, s)| self.buf.get(o..o.checked_add(s)?))
                .ok_or_else(|| self.out_of_bounds(ctx, offset, size))?;
            self.charge(region.len())?;
            return Ok(region.to_vec());
        }
        let data = self.get_bytes(t, BUFFER_DATA, ctx)?;
        self.charge(data.len())?;
        Ok(data.to_vec())
    }

    fn subgraph(&self, t: Table, ctx: &Ctx<'_>) -> Result<SubGraph, TfliteError> {
        use field::*;
        Ok(SubGraph {
            tensors: self.get_tables(t, SUBGRAPH_TENSORS, ctx, ("tensors", "tensor"), |t, c| self.tensor(t, c))?,
            inputs: self.get_scalars(t, SUBGRAPH_INPUTS, &ctx.field("inputs"))?,
            outputs: self.get_scalars(t, SUBGRAPH_OUTPUTS, &ctx.field("outputs"))?,
            operators: self
                .get_tables(t, SUBGRAPH_OPERATORS, ctx, ("operators", "operator"), |t, c| self.operator(t, c))?,
            name: self.get_string(t, SUBGRAPH_NAME, &ctx.field("name"))?.unwrap_or_default(),
        })
    }

    fn tensor(&self, t: Table, ctx: &Ctx<'_>) -> Result<Tensor, TfliteError> {
        use field::*;
        let shape = self.get_scalars(t, TENSOR_SHAPE, &ctx.field("shape"))?;
        let tensor_type = TensorType::from_code(self.get(t, TENSOR_TYPE, 0i8, &ctx.field("type"))?);
        let buffer = self.get(t, TENSOR_BUFFER, 0u32, &ctx.field("buffer index"))?;
        let name = self.get_string(t, TENSOR_NAME, &ctx.field("name"))?.unwrap_or_default();
        let quantization = if self.has_field(t, TENSOR_QUANTIZATION, ctx)? {
            let qctx = ctx.field("quantization");
            let q = self.get_table(t, TENSOR_QUANTIZATION, &qctx)?;
            let scale = self.get_scalars(q, QUANT_SCALE, &qctx.field("scales"))?;
            let zero_point = self.get_scalars(q, QUANT_ZERO_POINT, &qctx.field("zero points"))?;
            let quantized_dimension = self.get(q, QUANT_QUANTIZED_DIMENSION, 0i32, &qctx)?;
            if scale.is_empty() && zero_point.is_empty() {
                None
            } else {
                Some(Quantization { scale, zero_point, quantized_dimension })
            }
        } else {
            None
        };
        let is_variable = self.get_bool(t, TENSOR_IS_VARIABLE, false, ctx)?;
        Ok(Tensor { shape, tensor_type, buffer, name, quantization, is_variable })
    }

    fn operator(&self, t: Table, ctx: &Ctx<'_>) -> Result<Operator, TfliteError> {
        use field::*;
        Ok(Operator {
            opcode_index: self.get(t, OP_OPCODE_INDEX, 0u32, ctx)?,
            inputs: self.get_scalars(t, OP_INPUTS, &ctx.field("inputs"))?,
            outputs: self.get_scalars(t, OP_OUTPUTS, &ctx.field("outputs"))?,
            options: self.options(t, &ctx.field("builtin options"))?,
        })
    }

    fn padding(&self, t: Table, id: u16, ctx: &Ctx<'_>) -> Result<Padding, TfliteError> {
        match self.get(t, id, 0i8, ctx)? {
            0 => Ok(Padding::Same),
            1 => Ok(Padding::Valid),
            other => Err(TfliteError::InvalidValue { what: ctx.field("padding").to_string(), value: i64::from(other) }),
        }
    }

    fn activation(&self, t: Table, id: u16, ctx: &Ctx<'_>) -> Result<Activation, TfliteError> {
        Ok(Activation::from_code(self.get(t, id, 0i8, ctx)?))
    }

    fn options(&self, op: Table, ctx: &Ctx<'_>) -> Result<BuiltinOptions, TfliteError> {
        use field::*;
        let ty: u8 = self.get(op, OP_BUILTIN_OPTIONS_TYPE, 0u8, ctx)?;
        if ty == 0 {
            return Ok(BuiltinOptions::None);
        }
        // An absent options table reads as all schema defaults.
        let t = self.get_table(op, OP_BUILTIN_OPTIONS, ctx)?;
        let opts = match ty {
            union_type::CONV_2D => BuiltinOptions::Conv2D {
                padding: self.padding(t, CONV_PADDING, ctx)?,
                stride_w: self.get(t, CONV_STRIDE_W, 0i32, ctx)?,
                stride_h: self.get(t, CONV_STRIDE_H, 0i32, ctx)?,
                activation: self.activation(t, CONV_ACTIVATION, ctx)?,
                dilation_w: self.get(t, CONV_DILATION_W, 1i32, ctx)?,
                dilation_h: self.get(t, CONV_DILATION_H, 1i32, ctx)?,
            },
            union_type::DEPTHWISE_CONV_2D => BuiltinOptions::DepthwiseConv2D {
                padding: self.padding(t, DW_PADDING, ctx)?,
                stride_w: self.get(t, DW_STRIDE_W, 0i32, ctx)?,
                stride_h: self.get(t, DW_STRIDE_H, 0i32, ctx)?,
                depth_multiplier: self.get(t, DW_DEPTH_MULTIPLIER, 0i32, ctx)?,
                activation: self.activation(t, DW_ACTIVATION, ctx)?,
                dilation_w: self.get(t, DW_DILATION_W, 1i32, ctx)?,
                dilation_h: self.get(t, DW_DILATION_H, 1i32, ctx)?,
            },
            union_type::POOL_2D => BuiltinOptions::Pool2D {
                padding: self.padding(t, POOL_PADDING, ctx)?,
                stride_w: self.get(t, POOL_STRIDE_W, 0i32, ctx)?,
                stride_h: self.get(t, POOL_STRIDE_H, 0i32, ctx)?,
                filter_w: self.get(t, POOL_FILTER_W, 0i32, ctx)?,
                filter_h: self.get(t, POOL_FILTER_H, 0i32, ctx)?,
                activation: self.activation(t, POOL_ACTIVATION, ctx)?,
            },
            union_type::FULLY_CONNECTED => BuiltinOptions::FullyConnected {
                activation: self.activation(t, FC_ACTIVATION, ctx)?,
                weights_format: self.get(t, FC_WEIGHTS_FORMAT, 0i8, ctx)?,
                keep_num_dims: self.get_bool(t, FC_KEEP_NUM_DIMS, false, ctx)?,
            },
            union_type::SOFTMAX => BuiltinOptions::Softmax { beta: self.get(t, SOFTMAX_BETA, 0.0f32, ctx)? },
            union_type::CONCATENATION => BuiltinOptions::Concatenation {
                axis: self.get(t, CONCAT_AXIS, 0i32, ctx)?,
                activation: self.activation(t, CONCAT_ACTIVATION, ctx)?,
            },
            union_type::ADD => BuiltinOptions::Add { activation: self.activation(t, ADD_ACTIVATION, ctx)? },
            union_type::RESHAPE => {
                BuiltinOptions::Reshape { new_shape: self.get_scalars(t, RESHAPE_NEW_SHAPE, &ctx.field("new shape"))? }
            }
            union_type::REDUCER => {
                BuiltinOptions::Reducer { keep_dims: self.get_bool(t, REDUCER_KEEP_DIMS, false, ctx)? }
            }
            other => BuiltinOptions::Other { union_type: other },
        };
        Ok(opts)
    }
}

/// Checks that the model's indices refer to existing elements.
fn validate(model: &Model) -> Result<(), TfliteError> {
    let n_codes = model.operator_codes.len();
    let n_buffers = model.buffers.len();
    for (s, sg) in model.subgraphs.iter().enumerate() {
        let n_tensors = sg.tensors.len();
        let tensor_ok = |i: i32| usize::try_from(i).is_ok_and(|i| i < n_tensors);
        let bad_tensor = |what: String, index: i32| TfliteError::BadIndex {
            what,
            target: "tensor",
            index: i64::from(index),
            count: n_tensors,
        };
        for (t, tensor) in sg.tensors.iter().enumerate() {
            if usize::try_from(tensor.buffer).map_or(true, |b| b >= n_buffers) {
                return Err(TfliteError::BadIndex {
                    what: format!("subgraph {s} tensor {t}"),
                    target: "buffer",
                    index: i64::from(tensor.buffer),
                    count: n_buffers,
                });
            }
        }
        for (kind, list) in [("input", &sg.inputs), ("output", &sg.outputs)] {
            if let Some(&i) = list.iter().find(|&&i| !tensor_ok(i)) {
                return Err(bad_tensor(format!("subgraph {s} {kind}"), i));
            }
        }
        for (o, op) in sg.operators.iter().enumerate() {
            if usize::try_from(op.opcode_index).map_or(true, |c| c >= n_codes) {
                return Err(TfliteError::BadIndex {
                    what: format!("subgraph {s} operator {o}"),
                    target: "operator code",
                    index: i64::from(op.opcode_index),
                    count: n_codes,
                });
            }
            for (kind, list) in [("input", &op.inputs), ("output", &op.outputs)] {
                if let Some(&i) = list.iter().find(|&&i| i != -1 && !tensor_ok(i)) {
                    return Err(bad_tensor(format!("subgraph {s} operator {o} {kind}"), i));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASES: &[&str] = &[
        "avgpool2x2_valid",
        "conv1x1",
        "conv3x3_same_s1",
        "conv3x3_same_s1_pertensor",
        "conv3x3_valid_s2",
        "conv_relu6",
        "dense_relu",
        "dense_softmax",
        "dwconv3x3_dm1",
        "global_avgpool",
        "maxpool2x2",
        "residual_add",
        "small_cnn_28x28",
    ];

    fn case_dir(case: &str) -> String {
        format!("{}/../tests/data/vectors/{case}", env!("CARGO_MANIFEST_DIR"))
    }

    fn read_case(case: &str) -> (Vec<u8>, serde_json::Value, serde_json::Value) {
        let dir = case_dir(case);
        let bytes = std::fs::read(format!("{dir}/model.tflite")).expect("read model");
        let meta = std::fs::read_to_string(format!("{dir}/meta.json")).expect("read meta");
        let tensors = std::fs::read_to_string(format!("{dir}/tensors.json")).expect("read tensors");
        (bytes, serde_json::from_str(&meta).expect("meta json"), serde_json::from_str(&tensors).expect("tensors json"))
    }

    fn ints(v: &serde_json::Value) -> Vec<i64> {
        v.as_array().expect("array").iter().map(|x| x.as_i64().expect("int")).collect()
    }

    fn flatten_ints(v: &serde_json::Value) -> Vec<i64> {
        match v.as_array() {
            Some(items) => items.iter().flat_map(flatten_ints).collect(),
            None => vec![v.as_i64().expect("int data")],
        }
    }

    fn int(v: &serde_json::Value, key: &str) -> i64 {
        v[key].as_i64().unwrap_or_else(|| panic!("{key} missing in {v}"))
    }

    fn padding_of(v: &serde_json::Value) -> Padding {
        match v["padding"].as_str() {
            Some("SAME") => Padding::Same,
            Some("VALID") => Padding::Valid,
            other => panic!("padding {other:?}"),
        }
    }

    fn activation_of(v: &serde_json::Value) -> Activation {
        match v["fusedActivationFunction"].as_str() {
            Some("NONE") => Activation::None,
            Some("RELU") => Activation::Relu,
            Some("RELU6") => Activation::Relu6,
            other => panic!("activation {other:?}"),
        }
    }

    fn check_options(name: &str, json: &serde_json::Value, opts: &BuiltinOptions) {
        match (name, opts) {
            ("CONV_2D", BuiltinOptions::Conv2D { padding, stride_w, stride_h, activation, dilation_w, dilation_h }) => {
                assert_eq!(*padding, padding_of(json));
                assert_eq!(i64::from(*stride_w), int(json, "strideW"));
                assert_eq!(i64::from(*stride_h), int(json, "strideH"));
                assert_eq!(*activation, activation_of(json));
                assert_eq!(i64::from(*dilation_w), int(json, "dilationWFactor"));
                assert_eq!(i64::from(*dilation_h), int(json, "dilationHFactor"));
            }
            (
                "DEPTHWISE_CONV_2D",
                BuiltinOptions::DepthwiseConv2D {
                    padding,
                    stride_w,
                    stride_h,
                    depth_multiplier,
                    activation,
                    dilation_w,
                    dilation_h,
                },
            ) => {
                assert_eq!(*padding, padding_of(json));
                assert_eq!(i64::from(*stride_w), int(json, "strideW"));
                assert_eq!(i64::from(*stride_h), int(json, "strideH"));
                assert_eq!(i64::from(*depth_multiplier), int(json, "depthMultiplier"));
                assert_eq!(*activation, activation_of(json));
                assert_eq!(i64::from(*dilation_w), int(json, "dilationWFactor"));
                assert_eq!(i64::from(*dilation_h), int(json, "dilationHFactor"));
            }
            (
                "MAX_POOL_2D" | "AVERAGE_POOL_2D",
                BuiltinOptions::Pool2D { padding, stride_w, stride_h, filter_w, filter_h, activation },
            ) => {
                assert_eq!(*padding, padding_of(json));
                assert_eq!(i64::from(*stride_w), int(json, "strideW"));
                assert_eq!(i64::from(*stride_h), int(json, "strideH"));
                assert_eq!(i64::from(*filter_w), int(json, "filterWidth"));
                assert_eq!(i64::from(*filter_h), int(json, "filterHeight"));
                assert_eq!(*activation, activation_of(json));
            }
            ("FULLY_CONNECTED", BuiltinOptions::FullyConnected { activation, weights_format, keep_num_dims }) => {
                assert_eq!(*activation, activation_of(json));
                assert_eq!(i64::from(*weights_format), int(json, "weightsFormat"));
                assert_eq!(Some(*keep_num_dims), json["keepNumDims"].as_bool());
            }
            ("SOFTMAX", BuiltinOptions::Softmax { beta }) => {
                assert_eq!(Some(f64::from(*beta)), json["beta"].as_f64());
            }
            ("ADD", BuiltinOptions::Add { activation }) => {
                assert_eq!(*activation, activation_of(json));
            }
            ("MEAN", BuiltinOptions::Reducer { keep_dims }) => {
                assert_eq!(Some(*keep_dims), json["keepDims"].as_bool());
            }
            ("RESHAPE", BuiltinOptions::None) => {
                assert_eq!(json.as_object().map(|o| o.len()), Some(0));
            }
            ("RESHAPE", BuiltinOptions::Reshape { new_shape }) => match json.get("newShape") {
                Some(v) => assert_eq!(new_shape.iter().map(|&x| i64::from(x)).collect::<Vec<_>>(), ints(v)),
                None => assert!(new_shape.is_empty()),
            },
            _ => panic!("{name}: unexpected options {opts:?} for {json}"),
        }
    }

    fn type_of(json_name: &str) -> TensorType {
        match json_name.to_ascii_uppercase().as_str() {
            "INT8" => TensorType::Int8,
            "INT32" => TensorType::Int32,
            "FLOAT32" => TensorType::Float32,
            "INT64" => TensorType::Int64,
            "UINT8" => TensorType::UInt8,
            "INT16" => TensorType::Int16,
            other => panic!("type {other}"),
        }
    }

    #[test]
    fn real_models_match_meta() {
        for case in CASES {
            let (bytes, meta, tensors_json) = read_case(case);
            let model = parse(&bytes).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(model.version, 3, "{case}");
            assert_eq!(model.subgraphs.len(), 1, "{case}");
            assert!(model.buffers[0].is_empty(), "{case}: sentinel buffer");
            let sg = &model.subgraphs[0];

            // Operators: names, versions, connections, options.
            let ops = meta["operators"].as_array().expect("operators");
            assert_eq!(sg.operators.len(), ops.len(), "{case}");
            for (op, j) in sg.operators.iter().zip(ops) {
                let code = &model.operator_codes[op.opcode_index as usize];
                let name = builtin_name(code.builtin_code);
                assert_eq!(Some(name), j["op"].as_str(), "{case}");
                assert_eq!(code.name(), name);
                assert_eq!(i64::from(code.version), int(j, "version"), "{case} {name}");
                let as_i64 = |v: &[i32]| v.iter().map(|&x| i64::from(x)).collect::<Vec<_>>();
                assert_eq!(as_i64(&op.inputs), ints(&j["inputs"]), "{case} {name}");
                assert_eq!(as_i64(&op.outputs), ints(&j["outputs"]), "{case} {name}");
                check_options(name, &j["options"], &op.options);
            }
            let as_i64 = |v: &[i32]| v.iter().map(|&x| i64::from(x)).collect::<Vec<_>>();
            assert_eq!(as_i64(&sg.inputs), ints(&meta["subgraph_inputs"]), "{case}");
            assert_eq!(as_i64(&sg.outputs), ints(&meta["subgraph_outputs"]), "{case}");

            // Tensors: names, types, shapes, buffer indices.
            let fb_tensors = meta["flatbuffer_tensors"].as_array().expect("tensors");
            assert_eq!(sg.tensors.len(), fb_tensors.len(), "{case}");
            for j in fb_tensors {
                let t = &sg.tensors[int(j, "index") as usize];
                assert_eq!(Some(t.name.as_str()), j["name"].as_str(), "{case}");
                assert_eq!(t.tensor_type, type_of(j["type"].as_str().expect("type")), "{case}");
                assert_eq!(t.tensor_type.name(), j["type"].as_str().expect("type"));
                let shape: Vec<i64> = t.shape.iter().map(|&x| i64::from(x)).collect();
                assert_eq!(shape, ints(&j["shape"]), "{case} {}", t.name);
                assert_eq!(i64::from(t.buffer), int(j, "buffer"), "{case}");
                assert!(!t.is_variable);
            }

            // Quantization and constant data, against tensors.json.
            for j in tensors_json["tensors"].as_array().expect("tensors") {
                // tensors.json may list runtime scratch tensors past the file's.
                let Some(t) = sg.tensors.get(int(j, "index") as usize) else {
                    continue;
                };
                let scales: Vec<f64> =
                    j["scales"].as_array().expect("scales").iter().map(|x| x.as_f64().expect("scale")).collect();
                if scales.is_empty() {
                    assert_eq!(t.quantization, None, "{case} {}", t.name);
                } else {
                    let q = t.quantization.as_ref().expect("quantized");
                    assert_eq!(q.scale.len(), scales.len(), "{case} {}", t.name);
                    for (a, b) in q.scale.iter().zip(&scales) {
                        assert_eq!(*a, *b as f32, "{case} {}", t.name);
                    }
                    assert_eq!(q.zero_point, ints(&j["zero_points"]), "{case}");
                    assert_eq!(i64::from(q.quantized_dimension), int(j, "quantized_dimension"));
                }
                let data = &model.buffers[t.buffer as usize];
                let elems: i64 = t.shape.iter().map(|&d| i64::from(d)).product();
                let elem_size = t.tensor_type.element_size().expect("size") as i64;
                if j["constant"].as_bool() == Some(true) {
                    assert_eq!(data.len() as i64, elems * elem_size, "{case} {}", t.name);
                    let want = flatten_ints(&j["data"]);
                    let got: Vec<i64> = match t.tensor_type {
                        TensorType::Int8 => data.iter().map(|&b| i64::from(b as i8)).collect(),
                        TensorType::Int32 => {
                            data.chunks_exact(4).map(|c| i64::from(i32::from_le_bytes(c.try_into().unwrap()))).collect()
                        }
                        other => panic!("{other:?}"),
                    };
                    assert_eq!(got, want, "{case} {}", t.name);
                } else {
                    assert!(data.is_empty(), "{case} {}", t.name);
                }
            }

            // Input and output quantization as recorded in meta.json.
            let input = &sg.tensors[sg.inputs[0] as usize];
            let output = &sg.tensors[sg.outputs[0] as usize];
            for (t, key) in [(input, "input"), (output, "output")] {
                let q = t.quantization.as_ref().expect("quantized io");
                assert_eq!(q.scale[0], meta[format!("{key}_scale")].as_f64().unwrap() as f32);
                assert_eq!(q.zero_point[0], int(&meta, &format!("{key}_zero_point")));
                let shape: Vec<i64> = t.shape.iter().map(|&x| i64::from(x)).collect();
                assert_eq!(shape, ints(&meta[format!("{key}_shape")]));
            }
        }
    }

    #[test]
    fn per_channel_scale_counts() {
        let (bytes, ..) = read_case("conv3x3_same_s1");
        let model = parse(&bytes).unwrap();
        let sg = &model.subgraphs[0];
        let weights = &sg.tensors[sg.operators[0].inputs[1] as usize];
        assert_eq!(weights.shape, vec![8, 3, 3, 3]);
        assert_eq!(weights.quantization.as_ref().unwrap().scale.len(), 8);

        let (bytes, ..) = read_case("conv3x3_same_s1_pertensor");
        let model = parse(&bytes).unwrap();
        let sg = &model.subgraphs[0];
        let weights = &sg.tensors[sg.operators[0].inputs[1] as usize];
        assert_eq!(weights.quantization.as_ref().unwrap().scale.len(), 1);
    }

    #[test]
    fn truncation_never_panics() {
        for case in CASES {
            let (bytes, ..) = read_case(case);
            for len in 0..bytes.len() {
                assert!(parse(&bytes[..len]).is_err(), "{case}: truncated to {len} parsed");
            }
        }
    }

    /// Parses `bytes` with each byte in turn XORed with each of `masks`.
    fn parse_all_flips(bytes: &[u8], masks: &[u8]) {
        let mut copy = bytes.to_vec();
        for i in 0..bytes.len() {
            for &mask in masks {
                copy[i] = bytes[i] ^ mask;
                let _ = parse(&copy);
            }
            copy[i] = bytes[i];
        }
    }

    #[test]
    fn byte_flips_never_panic() {
        for case in CASES {
            let (bytes, ..) = read_case(case);
            parse_all_flips(&bytes, &[0xff]);
        }
    }

    #[test]
    fn bit_flips_never_panic() {
        for case in ["avgpool2x2_valid", "global_avgpool", "dwconv3x3_dm1"] {
            let (bytes, ..) = read_case(case);
            parse_all_flips(&bytes, &[0x01, 0x02, 0x10, 0x80]);
        }
    }

    #[test]
    fn header_errors() {
        assert!(matches!(parse(&[]), Err(TfliteError::TooShort { len: 0 })));
        let (mut bytes, ..) = read_case("maxpool2x2");
        bytes[4..8].copy_from_slice(b"TFL2");
        let err = parse(&bytes).unwrap_err();
        assert!(matches!(err, TfliteError::BadIdentifier { .. }), "{err}");
        assert!(err.to_string().contains("TFL2"), "{err}");
    }

    #[test]
    fn builtin_names() {
        assert_eq!(builtin_name(builtin::ADD), "ADD");
        assert_eq!(builtin_name(builtin::CONV_2D), "CONV_2D");
        assert_eq!(builtin_name(builtin::MEAN), "MEAN");
        assert_eq!(builtin_name(builtin::SQUEEZE), "SQUEEZE");
        assert_eq!(builtin_name(builtin::QUANTIZE), "QUANTIZE");
        assert_eq!(builtin_name(builtin::HARD_SWISH), "HARD_SWISH");
        assert_eq!(builtin_name(builtin::BATCH_MATMUL), "BATCH_MATMUL");
        assert_eq!(builtin_name(builtin::GELU), "GELU");
        assert_eq!(builtin_name(161), "RIGHT_SHIFT");
        assert_eq!(builtin_name(162), "STABLEHLO_LOGISTIC");
        assert_eq!(builtin_name(203), "DILATE");
        assert_eq!(builtin_name(205), "REDUCE_WINDOW");
        assert_eq!(builtin_name(206), "UNKNOWN");
        assert_eq!(builtin_name(-1), "UNKNOWN");
    }

    // -- A tiny flatbuffer writer for hand-made test files -----------------

    enum Val {
        I8(i8),
        U8(u8),
        I32(i32),
        U32(u32),
        U64(u64),
        F32(f32),
        Str(&'static str),
        Bytes(Vec<u8>),
        I32s(Vec<i32>),
        Table(Vec<(u16, Val)>),
        Tables(Vec<Vec<(u16, Val)>>),
        /// A vector of `n` offsets that all point to one shared table.
        SharedTables(usize, Vec<(u16, Val)>),
    }

    struct Writer {
        out: Vec<u8>,
    }

    impl Writer {
        fn align(&mut self, n: usize) {
            while !self.out.len().is_multiple_of(n) {
                self.out.push(0);
            }
        }

        fn patch(&mut self, slot: usize, target: usize) {
            let off = (target - slot) as u32;
            self.out[slot..slot + 4].copy_from_slice(&off.to_le_bytes());
        }

        /// Writes a table (vtable first, children after) and returns its position.
        fn table(&mut self, fields: &[(u16, Val)]) -> usize {
            let max_id = fields.iter().map(|f| f.0).max().map_or(0, |m| m + 1);
            // Inline layout: soffset, then 8-byte slots for every field.
            let vt_len = 4 + 2 * max_id as usize;
            let obj_len = 4 + 8 * fields.len();
            self.align(4);
            let vt = self.out.len();
            self.out.extend_from_slice(&(vt_len as u16).to_le_bytes());
            self.out.extend_from_slice(&(obj_len as u16).to_le_bytes());
            for id in 0..max_id {
                let k = fields.iter().position(|f| f.0 == id);
                let off = k.map_or(0, |k| 4 + 8 * k as u16);
                self.out.extend_from_slice(&off.to_le_bytes());
            }
            self.align(8);
            let pos = self.out.len();
            self.out.extend_from_slice(&((pos - vt) as i32).to_le_bytes());
            let mut pending = Vec::new();
            for (_, v) in fields {
                let slot = self.out.len();
                let mut inline = [0u8; 8];
                match v {
                    Val::I8(x) => inline[0] = *x as u8,
                    Val::U8(x) => inline[0] = *x,
                    Val::I32(x) => inline[..4].copy_from_slice(&x.to_le_bytes()),
                    Val::U32(x) => inline[..4].copy_from_slice(&x.to_le_bytes()),
                    Val::U64(x) => inline.copy_from_slice(&x.to_le_bytes()),
                    Val::F32(x) => inline[..4].copy_from_slice(&x.to_le_bytes()),
                    _ => pending.push((slot, v)),
                }
                self.out.extend_from_slice(&inline);
            }
            for (slot, v) in pending {
                let target = self.child(v);
                self.patch(slot, target);
            }
            pos
        }

        fn child(&mut self, v: &Val) -> usize {
            self.align(4);
            let start = self.out.len();
            match v {
                Val::Str(s) => {
                    self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                    self.out.extend_from_slice(s.as_bytes());
                    self.out.push(0);
                }
                Val::Bytes(b) => {
                    self.out.extend_from_slice(&(b.len() as u32).to_le_bytes());
                    self.out.extend_from_slice(b);
                }
                Val::I32s(v) => {
                    self.out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    for x in v {
                        self.out.extend_from_slice(&x.to_le_bytes());
                    }
                }
                Val::Table(fields) => return self.table(fields),
                Val::Tables(tables) => {
                    self.out.extend_from_slice(&(tables.len() as u32).to_le_bytes());
                    let slots: Vec<usize> = (0..tables.len()).map(|i| start + 4 + 4 * i).collect();
                    self.out.resize(start + 4 + 4 * tables.len(), 0);
                    for (slot, t) in slots.into_iter().zip(tables) {
                        let pos = self.table(t);
                        self.patch(slot, pos);
                    }
                }
                Val::SharedTables(n, t) => {
                    self.out.extend_from_slice(&(*n as u32).to_le_bytes());
                    self.out.resize(start + 4 + 4 * n, 0);
                    let pos = self.table(t);
                    for i in 0..*n {
                        self.patch(start + 4 + 4 * i, pos);
                    }
                }
                _ => unreachable!("scalars are inline"),
            }
            start
        }
    }

    fn build(model_fields: Vec<(u16, Val)>, trailer: &[u8]) -> Vec<u8> {
        let mut w = Writer { out: vec![0, 0, 0, 0, b'T', b'F', b'L', b'3'] };
        let root = w.table(&model_fields);
        w.patch(0, root);
        w.out.extend_from_slice(trailer);
        w.out
    }

    /// One subgraph with one CONV_2D whose options table has only `padding`
    /// and `stride_w`, and buffers given in the three ways the schema allows.
    fn hand_made_model() -> Vec<u8> {
        let tensor = |name: &'static str, buffer: u32| {
            vec![(0, Val::I32s(vec![1, 4, 4, 1])), (1, Val::I8(9)), (2, Val::U32(buffer)), (3, Val::Str(name))]
        };
        let mut model = build(
            vec![
                (0, Val::U32(3)),
                (
                    1,
                    Val::Tables(vec![
                        // Old file: only the deprecated byte code.
                        vec![(0, Val::I8(3))],
                        // New file: extended code; the byte holds the placeholder.
                        vec![(0, Val::I8(127)), (3, Val::I32(150)), (2, Val::I32(2))],
                        vec![(0, Val::I8(32)), (1, Val::Str("MyOp")), (3, Val::I32(32))],
                    ]),
                ),
                (
                    2,
                    Val::Tables(vec![vec![
                        (
                            0,
                            Val::Tables(vec![
                                tensor("in", 0),
                                tensor("w", 1),
                                tensor("ext", 2),
                                vec![(0, Val::I32s(vec![2])), (1, Val::I8(8)), (5, Val::U8(1))],
                            ]),
                        ),
                        (1, Val::I32s(vec![0])),
                        (2, Val::I32s(vec![2])),
                        (
                            3,
                            Val::Tables(vec![
                                vec![
                                    (1, Val::I32s(vec![0, 1, -1])),
                                    (2, Val::I32s(vec![2])),
                                    (3, Val::U8(1)),
                                    (4, Val::Table(vec![(0, Val::I8(1)), (1, Val::I32(2))])),
                                ],
                                vec![(0, Val::U32(1)), (3, Val::U8(2))],
                                vec![(0, Val::U32(2)), (3, Val::U8(99)), (4, Val::Table(vec![]))],
                                vec![(3, Val::U8(9)), (4, Val::Table(vec![(0, Val::F32(0.5))]))],
                            ]),
                        ),
                    ]]),
                ),
                (3, Val::Str("hand made")),
                (
                    4,
                    Val::Tables(vec![
                        vec![],
                        vec![(0, Val::Bytes(vec![1, 2, 3]))],
                        // Patched below to point at the trailer.
                        vec![(1, Val::U64(0xdead_beef)), (2, Val::U64(4))],
                    ]),
                ),
            ],
            &[9, 8, 7, 6],
        );
        // Point the external buffer at the 4 trailing bytes.
        let off = (model.len() - 4) as u64;
        let marker = 0xdead_beef_u64.to_le_bytes();
        let at = model.windows(8).position(|w| w == marker).unwrap();
        model[at..at + 8].copy_from_slice(&off.to_le_bytes());
        model
    }

    #[test]
    fn hand_made_defaults_and_buffers() {
        let bytes = hand_made_model();
        let m = parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.version, 3);
        assert_eq!(m.description, "hand made");
        assert_eq!(m.operator_codes[0].builtin_code, builtin::CONV_2D);
        assert_eq!(m.operator_codes[0].version, 1, "schema default");
        assert_eq!(m.operator_codes[0].custom_code, None);
        assert_eq!(m.operator_codes[1].builtin_code, builtin::GELU);
        assert_eq!(m.operator_codes[1].version, 2);
        assert_eq!(m.operator_codes[2].name(), "MyOp");
        assert_eq!(m.buffers, vec![vec![], vec![1, 2, 3], vec![9, 8, 7, 6]]);
        let sg = &m.subgraphs[0];
        assert_eq!(sg.name, "");
        assert_eq!(sg.tensors[1].name, "w");
        assert_eq!(sg.tensors[1].tensor_type, TensorType::Int8);
        assert_eq!(sg.tensors[1].quantization, None);
        assert_eq!(sg.tensors[3].tensor_type, TensorType::Other(8));
        assert_eq!(sg.tensors[3].name, "");
        assert!(sg.tensors[3].is_variable);
        assert_eq!(sg.tensors[3].buffer, 0);
        let ops = &sg.operators;
        assert_eq!(ops[0].opcode_index, 0);
        assert_eq!(ops[0].inputs, vec![0, 1, -1]);
        assert_eq!(
            ops[0].options,
            BuiltinOptions::Conv2D {
                padding: Padding::Valid,
                stride_w: 2,
                stride_h: 0,
                activation: Activation::None,
                dilation_w: 1,
                dilation_h: 1,
            }
        );
        // A union type without its table: the table's defaults.
        assert_eq!(
            ops[1].options,
            BuiltinOptions::DepthwiseConv2D {
                padding: Padding::Same,
                stride_w: 0,
                stride_h: 0,
                depth_multiplier: 0,
                activation: Activation::None,
                dilation_w: 1,
                dilation_h: 1,
            }
        );
        assert_eq!(ops[2].options, BuiltinOptions::Other { union_type: 99 });
        assert!(ops[2].inputs.is_empty());
        assert_eq!(ops[3].options, BuiltinOptions::Softmax { beta: 0.5 });
    }

    #[test]
    fn hand_made_truncation_and_flips() {
        let bytes = hand_made_model();
        for len in 0..bytes.len() {
            assert!(parse(&bytes[..len]).is_err(), "truncated to {len} parsed");
        }
        parse_all_flips(&bytes, &[0xff, 0x01, 0x80, 0x10]);
    }

    #[test]
    fn external_buffer_out_of_bounds_is_reported() {
        let mut bytes = hand_made_model();
        let off = (bytes.len() - 4) as u64;
        let at = bytes.windows(8).position(|w| w == off.to_le_bytes()).unwrap();
        bytes[at..at + 8].copy_from_slice(&1234u64.to_le_bytes());
        let err = parse(&bytes).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("buffer 2 is out of bounds (offset 1234"), "{msg}");
        assert!(msg.contains(&format!("file {} bytes", bytes.len())), "{msg}");
    }

    #[test]
    fn bad_indices_are_reported() {
        let (bytes, ..) = read_case("maxpool2x2");
        let mut model_bytes = bytes.clone();
        // Find the subgraph's outputs vector ([1] with value 1) by parsing.
        let m = parse(&bytes).unwrap();
        assert_eq!(m.subgraphs[0].outputs, vec![1]);
        // Rewrite every `u32 count = 1, i32 value = 1` occurrence until the
        // outputs change; then the error must name the subgraph output.
        let pattern = [1u8, 0, 0, 0, 1, 0, 0, 0];
        let mut hit = false;
        for at in 0..bytes.len().saturating_sub(8) {
            if bytes[at..at + 8] != pattern {
                continue;
            }
            model_bytes[at + 4] = 77;
            let found = match parse(&model_bytes) {
                Err(TfliteError::BadIndex { what, index, target, .. }) => {
                    what == "subgraph 0 output" && (index, target) == (77, "tensor")
                }
                _ => false,
            };
            if found {
                hit = true;
                break;
            }
            model_bytes[at + 4] = 1;
        }
        assert!(hit);
    }

    #[test]
    fn shared_tables_cannot_amplify_memory() {
        // 200k references to one tensor whose shape has 100k dimensions:
        // ~1.2 MB of file that would decode to 80 GB without the budget.
        let big_tensor = vec![(0, Val::I32s(vec![1; 100_000]))];
        let bytes = build(vec![(2, Val::Tables(vec![vec![(0, Val::SharedTables(200_000, big_tensor))]]))], &[]);
        let err = parse(&bytes).unwrap_err();
        assert!(matches!(err, TfliteError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn huge_vector_length_is_rejected() {
        // A subgraph inputs vector claiming 2^30 elements.
        let bytes = build(vec![(2, Val::Tables(vec![vec![(1, Val::I32s(vec![0, 0]))]]))], &[]);
        let mut bad = bytes.clone();
        let at = bytes.windows(12).position(|w| w == [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        bad[at..at + 4].copy_from_slice(&(1u32 << 30).to_le_bytes());
        let err = parse(&bad).unwrap_err();
        assert!(matches!(err, TfliteError::VectorTooLong { .. }), "{err}");
        assert!(err.to_string().starts_with("subgraph 0 inputs claims 1073741824"), "{err}");
    }
}
