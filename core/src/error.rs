//! The one error type of `microcnn-core`.

use core::fmt;

/// Everything that can go wrong when loading a model blob or preparing an interpreter.
///
/// `invoke` on a model that loaded cannot fail: all of these are found by
/// [`Model::from_bytes`](crate::Model::from_bytes) and
/// [`Interpreter::new`](crate::Interpreter::new).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The blob is shorter than its header or than the length the header states.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The blob does not start with the `MCNN` magic.
    BadMagic,
    /// The blob was written in a format version this core does not read.
    UnsupportedVersion {
        /// Version found in the header.
        found: u16,
        /// Version this core reads.
        supported: u16,
    },
    /// The CRC-32 over the blob does not match the header.
    ChecksumMismatch {
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
    /// A section (tensor table, operator table, constants, metadata) lies outside the blob.
    SectionOutOfBounds {
        /// Which section.
        section: Section,
    },
    /// A tensor record is invalid (zero or oversized dimension, zero point outside int8,
    /// non-positive scale, or outside the arena).
    BadTensor {
        /// Tensor index.
        tensor: u16,
    },
    /// An operator record is invalid: unknown kind, a tensor index out of range,
    /// shapes that do not agree, parameters out of range or constants outside the blob.
    BadOperator {
        /// Operator index.
        op: u16,
        /// What is wrong.
        reason: OpError,
    },
    /// The operators are not in an order in which every input exists before it is read,
    /// or a tensor is produced twice.
    BadGraph {
        /// Operator index where the order breaks.
        op: u16,
    },
    /// Two tensors that are live at the same time share arena bytes.
    ArenaOverlap {
        /// First tensor.
        first: u16,
        /// Second tensor.
        second: u16,
    },
    /// The arena handed to [`Interpreter::new`](crate::Interpreter::new) is smaller
    /// than [`Model::arena_size`](crate::Model::arena_size).
    ArenaTooSmall {
        /// Bytes the model's plan needs.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
    /// The metadata section is malformed (an entry overruns it, or text is not UTF-8).
    BadMetadata,
    /// The recorded class labels do not name the output's channels one to one.
    LabelCount {
        /// Labels recorded.
        labels: usize,
        /// Channels of the output tensor.
        outputs: usize,
    },
    /// An input buffer handed to a preprocessing or inference call has the wrong length.
    WrongLength {
        /// Bytes expected.
        expected: usize,
        /// Bytes given.
        found: usize,
    },
}

/// The sections of a blob, for [`Error::SectionOutOfBounds`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Section {
    /// The tensor table.
    Tensors,
    /// The operator table.
    Operators,
    /// The constant data.
    Constants,
    /// The metadata.
    Metadata,
}

/// Why an operator record was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum OpError {
    /// The kind byte names no operator this core knows.
    UnknownKind(u8),
    /// An input or output tensor index is out of range, or the input count is wrong.
    TensorIndex,
    /// Input and output shapes do not agree with the operator's parameters.
    ShapeMismatch,
    /// A parameter is out of its valid range (zero stride, zero kernel, a padding that
    /// leaves a pooling window empty, an accumulator that could overflow …).
    Parameter,
    /// A constant (weights, bias, multipliers) lies outside the constant section.
    ConstantOutOfBounds,
    /// Input and output quantization must be equal for this operator and are not.
    QuantizationMismatch,
    /// The output shares arena bytes with an input in a way the operator cannot allow.
    InPlace,
    /// The weight layout tag (`format::op::WEIGHT_LAYOUT`) is not the one this kind of
    /// operator uses.
    WeightLayout(u8),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { needed, available } => {
                write!(f, "blob truncated: needs {needed} bytes, has {available}")
            }
            Error::BadMagic => write!(f, "not a microcnn model (bad magic)"),
            Error::UnsupportedVersion { found, supported } => {
                write!(f, "blob format version {found} is not supported (this build reads version {supported})")
            }
            Error::ChecksumMismatch { stored, computed } => {
                write!(f, "checksum mismatch: header says {stored:#010x}, contents give {computed:#010x}")
            }
            Error::SectionOutOfBounds { section } => {
                write!(f, "{section:?} section lies outside the blob")
            }
            Error::BadTensor { tensor } => write!(f, "tensor {tensor} is invalid"),
            Error::BadOperator { op, reason } => write!(f, "operator {op} is invalid: {reason}"),
            Error::BadGraph { op } => {
                write!(f, "operator {op} reads a tensor that is not produced before it, or writes one twice")
            }
            Error::ArenaOverlap { first, second } => {
                write!(f, "arena plan is unsound: tensors {first} and {second} are live together and overlap")
            }
            Error::ArenaTooSmall { needed, available } => {
                write!(f, "arena too small: the model needs {needed} bytes, {available} given")
            }
            Error::BadMetadata => write!(f, "metadata section is malformed"),
            Error::LabelCount { labels, outputs } => {
                write!(f, "{labels} class labels for {outputs} output channels")
            }
            Error::WrongLength { expected, found } => {
                write!(f, "buffer has {found} bytes, expected {expected}")
            }
        }
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            OpError::UnknownKind(kind) => write!(f, "unknown operator kind {kind}"),
            OpError::TensorIndex => write!(f, "tensor index out of range or wrong input count"),
            OpError::ShapeMismatch => write!(f, "input and output shapes do not agree"),
            OpError::Parameter => write!(f, "parameter out of range"),
            OpError::ConstantOutOfBounds => write!(f, "constant data out of bounds"),
            OpError::QuantizationMismatch => {
                write!(f, "input and output quantization must be equal")
            }
            OpError::InPlace => write!(f, "output overlaps an input it cannot share"),
            OpError::WeightLayout(tag) => write!(f, "weight layout {tag} is not the one this operator kind uses"),
        }
    }
}

impl core::error::Error for Error {}
