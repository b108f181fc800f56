//! On-device learning: a new classifier learned on the chip, on top of the frozen int8
//! network.
//!
//! # Features
//!
//! The frozen network up to its classifier is the feature extractor: by default the
//! input of the **last FullyConnected** operator ([`FeatureCut::find`]). The
//! interpreter runs the operators before it ([`Interpreter::invoke_until`]) and the
//! learner reads that int8 tensor `q` (length `F`, zero point `z`, scale `s`).
//!
//! Dequantized, the features are `x = s·(q − z)`. Both methods compare directions, so
//! the embedding is the unit vector `e = x / ‖x‖ = (q − z) / ‖q − z‖`: the positive
//! per-tensor scale cancels exactly, and the embedding is computed from integers
//! alone ([`embed`]): `‖q − z‖²` is an exact integer (at most 255² · 65535 < 2³²), its
//! square root is the exact integer square root of `‖q − z‖² · 2³²`, and each
//! component is `(q − z) · ⌊2⁴⁸ / n⌋ >> 16` in [`I16F16`] (`|e_i| ≤ 1`). No
//! approximation is needed for the norm, so none is used (`micromath`'s `sqrt` is off
//! by up to 8 %, harmless for a direction but not needed).
//!
//! # Two ways to learn
//!
//! - [`Method::Prototypes`] (imprinting): the class weight row is the normalised sum of
//!   the class's embeddings; a frame is learned in one pass, and classification is the
//!   cosine between the embedding and each prototype.
//! - [`Method::Sgd`]: a dense softmax head `z = W·e + b` trained by stochastic gradient
//!   descent on the cross-entropy over a replay buffer of the stored int8 features,
//!   for several epochs ([`Learner::train`]). The gradient of the loss for one sample
//!   with label `y` is `∂/∂W_c = (p_c − [c = y])·e`, `∂/∂b_c = p_c − [c = y]`, with
//!   `p = softmax(z)`.
//!
//! Both give the same head: weights `W` (`C × F`) and biases `b` in [`I16F16`], scored
//! as `b_c + Σ_i W_ci · e_i` ([`Head::scores`]); its bytes are described in [`head`].
//!
//! # Arithmetic and determinism
//!
//! Weights, biases, embeddings, the learning rate and the gradient are [`I16F16`]
//! (`fixed`); dot products accumulate exact `i64` products (bound argued at
//! [`dot`]). The one approximation is the exponential of the softmax in the gradient:
//! `micromath`'s `exp` (a few percent off). It is harmless there: it changes each
//! step's size a little, not the sign of the error `p − y` (probabilities still sum to
//! one after the division, and the largest logit still gets the largest `p`), and
//! classification never uses it (the head compares logits).
//!
//! The learned bytes are identical on the host and on every target:
//!
//! - everything but the softmax is integer arithmetic (`fixed` is integers underneath),
//!   done in one fixed order (classes, then features; samples in a seeded stride
//!   permutation);
//! - the softmax works in `f32`, but only with operations IEEE 754 specifies exactly:
//!   conversions from and to fixed point (exact, or rounded by `fixed`'s integer code),
//!   add, multiply, divide and comparisons inside `micromath`'s `exp` and here.
//!   x86-64 (SSE), Cortex-M4/M33 (FPv4/FPv5, single precision in hardware) and
//!   Cortex-M0+ (soft float, correctly rounded by `compiler_builtins`) give the same
//!   bits for these; Rust never fuses a multiply and an add into an FMA unless asked;
//! - the exponent is clamped to `[-16, 0]` so no result is subnormal, and the chip's
//!   flush-to-zero setting cannot matter.
//!
//! # Capacity and memory
//!
//! [`Learner<C, F, S>`] holds at most `C` classes, `F` features and `S` replay
//! samples, all in fixed-size arrays and a `heapless::Vec`; [`Learner::RAM_BYTES`] is
//! its size, known at build time. Nothing is allocated.

pub mod head;
pub mod store;

pub use head::Head;

use crate::error::Error;
use crate::format::OpKind;
use crate::interpreter::Interpreter;
use crate::model::Model;
use core::fmt;
use fixed::types::I16F16;

/// What can go wrong while learning, reading a head or keeping it in flash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LearnError {
    /// The base model has no FullyConnected operator, so no classifier input to learn on.
    NoClassifier,
    /// The feature tensor is longer than the learner's capacity `F`.
    TooManyFeatures {
        /// Features of the model.
        features: usize,
        /// Capacity.
        capacity: usize,
    },
    /// A label at or above the learner's class capacity `C`.
    TooManyClasses {
        /// The label given (or the class count).
        label: usize,
        /// Capacity.
        capacity: usize,
    },
    /// The replay buffer is full.
    ReplayFull {
        /// Capacity `S`.
        capacity: usize,
    },
    /// A class below the highest label has no sample.
    EmptyClass {
        /// The class.
        class: usize,
    },
    /// Nothing has been learned.
    NothingLearned,
    /// A features slice of the wrong length.
    WrongFeatureLength {
        /// Expected.
        expected: usize,
        /// Given.
        found: usize,
    },
    /// An output buffer is too small for the head.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
    /// The bytes are not a head (bad magic or version, or lengths that do not agree).
    NotAHead,
    /// The head's CRC-32 does not match its bytes.
    HeadChecksum {
        /// Stored CRC.
        stored: u32,
        /// Computed CRC.
        computed: u32,
    },
    /// The head was learned on another base model.
    WrongBaseModel {
        /// The base model checksum the head records.
        head: u32,
        /// The checksum of the model given.
        model: u32,
    },
    /// The head does not fit the model's feature tensor.
    FeatureMismatch,
    /// The learned-head flash region holds no valid head (erased, or both slots
    /// corrupt).
    NoHead,
    /// The flash region is too small, or not aligned to the flash's erase size.
    BadRegion,
    /// The flash driver failed.
    Flash(FlashErrorKind),
    /// Reading back a written head gave other bytes.
    VerifyFailed,
    /// The base model failed.
    Model(Error),
}

/// Why a flash operation failed (a copy of `embedded_storage`'s kinds, with defmt).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FlashErrorKind {
    /// An address or length not aligned to the write or erase size.
    NotAligned,
    /// Outside the flash.
    OutOfBounds,
    /// Anything else the driver reports.
    Other,
}

impl From<Error> for LearnError {
    fn from(error: Error) -> Self {
        LearnError::Model(error)
    }
}

impl fmt::Display for LearnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LearnError::NoClassifier => {
                write!(f, "the base model has no classifier (no FullyConnected operator) to learn on")
            }
            LearnError::TooManyFeatures { features, capacity } => {
                write!(f, "the model has {features} features, the learner holds at most {capacity}")
            }
            LearnError::TooManyClasses { label, capacity } => {
                write!(f, "class {label} is beyond the learner's capacity of {capacity} classes")
            }
            LearnError::ReplayFull { capacity } => write!(f, "the replay buffer is full ({capacity} samples)"),
            LearnError::EmptyClass { class } => write!(f, "class {class} has no samples"),
            LearnError::NothingLearned => write!(f, "nothing has been learned"),
            LearnError::WrongFeatureLength { expected, found } => {
                write!(f, "features have {found} values, expected {expected}")
            }
            LearnError::BufferTooSmall { needed, available } => {
                write!(f, "buffer too small for the head: {needed} bytes needed, {available} given")
            }
            LearnError::NotAHead => write!(f, "not a learned head (bad magic, version or lengths)"),
            LearnError::HeadChecksum { stored, computed } => {
                write!(f, "corrupt head: CRC says {stored:#010x}, contents give {computed:#010x}")
            }
            LearnError::WrongBaseModel { head, model } => write!(
                f,
                "the head was learned on another base model (checksum {head:#010x}, this model {model:#010x})"
            ),
            LearnError::FeatureMismatch => write!(f, "the head does not fit this model's feature tensor"),
            LearnError::NoHead => write!(f, "no valid head in the learned region (erased or corrupt)"),
            LearnError::BadRegion => {
                write!(f, "learned region too small or not aligned to the flash erase size")
            }
            LearnError::Flash(kind) => write!(f, "flash error: {kind:?}"),
            LearnError::VerifyFailed => write!(f, "flash verify failed: read-back differs from what was written"),
            LearnError::Model(error) => write!(f, "base model: {error}"),
        }
    }
}

impl core::error::Error for LearnError {}

/// How the head is learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Method {
    /// Imprinting: normalised mean embeddings, one pass.
    Prototypes,
    /// A dense softmax head trained by SGD over the replay buffer.
    Sgd,
}

impl Method {
    /// The byte that stands for the method in a head.
    pub const fn code(self) -> u8 {
        match self {
            Method::Prototypes => 0,
            Method::Sgd => 1,
        }
    }

    /// The method of a head's method byte.
    pub const fn from_code(code: u8) -> Option<Method> {
        match code {
            0 => Some(Method::Prototypes),
            1 => Some(Method::Sgd),
            _ => None,
        }
    }
}

/// Where the features are read: the input of operator `op`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FeatureCut {
    /// The operator whose input is the feature tensor (it and later ones are not run).
    pub op: usize,
    /// The feature tensor.
    pub tensor: u16,
    /// Its length.
    pub len: usize,
    /// Its zero point.
    pub zero_point: i32,
}

impl FeatureCut {
    /// The input of the model's last FullyConnected operator.
    pub fn find(model: &Model<'_>) -> Result<Self, LearnError> {
        for op in (0..model.op_count()).rev() {
            let operator = model.operator(op)?;
            if operator.kind == OpKind::FullyConnected {
                let tensor = operator.inputs.get(0).ok_or(LearnError::NoClassifier)?;
                let info = model.tensor(tensor)?;
                return Ok(FeatureCut { op, tensor, len: info.bytes(), zero_point: info.zero_point });
            }
        }
        Err(LearnError::NoClassifier)
    }

    /// Runs the network up to the cut on the input already in `net`, and returns the
    /// int8 features.
    pub fn extract<'n>(&self, net: &'n mut Interpreter<'_, '_>) -> Result<&'n [i8], LearnError> {
        net.invoke_until(self.op)?;
        let info = net.model().tensor(self.tensor)?;
        Ok(net.tensor_data(&info))
    }
}

/// The unit embedding of int8 features `q` with zero point `zero_point` into `out`
/// (see the module doc). All zeros when every feature equals the zero point. Exact for
/// fewer than 2¹⁶ features (the learner's limit); longer inputs saturate, never panic.
pub fn embed(features: &[i8], zero_point: i32, out: &mut [I16F16]) {
    // ‖q − z‖² ≤ 255² · len; len ≤ 65535 (the learner refuses more), so < 2³² and u64
    // holds it shifted left by 32 without overflow.
    let squares: u64 = features
        .iter()
        .map(|&q| {
            let d = i64::from(q) - i64::from(zero_point);
            (d * d) as u64
        })
        .sum();
    let norm = (squares.saturating_mul(1 << 32)).isqrt(); // ‖q − z‖ · 2¹⁶
                                                          // ⌊2⁴⁸ / n⌋ ≤ 2³² for n ≥ 2¹⁶ (any nonzero norm); (q − z) · that ≤ 2⁸·2³² fits i64.
    let inverse = (1u64 << 48).checked_div(norm).unwrap_or(0) as i64;
    for (o, &q) in out.iter_mut().zip(features) {
        let d = i64::from(q) - i64::from(zero_point);
        // |d| · inverse / 2¹⁶ ≤ 2¹⁶ · ‖d‖/‖d‖: at most 1.0, which I16F16 holds.
        *o = I16F16::from_bits(((d * inverse) >> 16) as i32);
    }
}

/// `bias + Σ weight_i · e_i`, saturated to [`I16F16`].
pub fn dot(bias: I16F16, weights: impl Iterator<Item = I16F16>, embedding: &[I16F16]) -> I16F16 {
    let mut sum: i64 = 0;
    for (w, e) in weights.zip(embedding) {
        // |w| ≤ 2³¹ and |e| ≤ 2¹⁶ (raw bits; |e_i| ≤ 1), so a product is below 2⁴⁷ and
        // fewer than 2¹⁶ of them (the learner's feature limit) sum below 2⁶³: no overflow.
        sum += i64::from(w.to_bits()) * i64::from(e.to_bits());
    }
    let logit = (sum >> 16).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    I16F16::from_bits(logit).saturating_add(bias)
}

/// SGD settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SgdConfig {
    /// Passes over the replay buffer.
    pub epochs: u16,
    /// Learning rate (at most 64; larger values are clamped).
    pub learning_rate: I16F16,
}

impl Default for SgdConfig {
    /// 30 epochs at 0.25: the best of a sweep over 0.25–8 × 10–100 epochs on the
    /// README's few-shot task (`tests/tests/learn.rs`, `sgd_learning_rate_sweep`).
    fn default() -> Self {
        SgdConfig { epochs: 30, learning_rate: I16F16::from_bits(1 << 14) }
    }
}

/// One stored sample of the replay buffer: the raw int8 features and the label.
#[derive(Clone, Copy, Debug)]
pub struct Sample<const F: usize> {
    /// The class.
    pub label: u8,
    /// The int8 features (the first `feature_len` are used).
    pub features: [i8; F],
}

/// A learner for at most `C` classes, `F` features and `S` replay samples.
///
/// ```
/// use microcnn_core::learn::{FeatureCut, Learner, Method, SgdConfig, Head};
/// let cut = FeatureCut { op: 0, tensor: 0, len: 4, zero_point: 0 };
/// let mut learner: Learner<2, 4, 8> = Learner::new(Method::Sgd, &cut, 0x1234_5678).unwrap();
/// learner.learn(0, &[100, 0, 0, 10]).unwrap();
/// learner.learn(1, &[0, 100, 10, 0]).unwrap();
/// learner.train(&SgdConfig::default()).unwrap();
/// let mut bytes = [0u8; 256];
/// let len = learner.write_head(&mut bytes).unwrap();
/// let head = Head::from_bytes(&bytes[..len], 0x1234_5678).unwrap();
/// let mut scratch = [fixed::types::I16F16::ZERO; 4];
/// assert_eq!(head.classify_features(&[90, 5, 0, 20], &mut scratch).0, 0);
/// assert_eq!(head.classify_features(&[5, 80, 20, 0], &mut scratch).0, 1);
/// assert_eq!(Learner::<2, 4, 8>::RAM_BYTES, core::mem::size_of::<Learner<2, 4, 8>>());
/// ```
pub struct Learner<const C: usize, const F: usize, const S: usize> {
    method: Method,
    cut: FeatureCut,
    base_crc: u32,
    counts: [u16; C],
    bias: [I16F16; C],
    weights: [[I16F16; F]; C],
    replay: heapless::Vec<Sample<F>, S>,
    embedding: [I16F16; F],
}

impl<const C: usize, const F: usize, const S: usize> Learner<C, F, S> {
    /// Bytes of RAM the learner takes (known at build time).
    pub const RAM_BYTES: usize = core::mem::size_of::<Self>();

    /// A learner with nothing learned, for features at `cut` of the model whose blob
    /// CRC is `base_crc` ([`Model::checksum`]).
    pub fn new(method: Method, cut: &FeatureCut, base_crc: u32) -> Result<Self, LearnError> {
        let mut learner = Self::EMPTY;
        learner.reset(method, cut, base_crc)?;
        Ok(learner)
    }

    /// A learner for no features: a `static` can start as this, then be
    /// [`reset`](Self::reset) in place (no copy of the whole learner on the stack).
    pub const EMPTY: Self = Learner {
        method: Method::Prototypes,
        cut: FeatureCut { op: 0, tensor: 0, len: 0, zero_point: 0 },
        base_crc: 0,
        counts: [0; C],
        bias: [I16F16::ZERO; C],
        weights: [[I16F16::ZERO; F]; C],
        replay: heapless::Vec::new(),
        embedding: [I16F16::ZERO; F],
    };

    /// Forgets everything and starts over, in place, as [`new`](Self::new) would.
    pub fn reset(&mut self, method: Method, cut: &FeatureCut, base_crc: u32) -> Result<(), LearnError> {
        // The head stores the length in 16 bits, and the bounds in `embed` and `dot`
        // rely on fewer than 2¹⁶ features.
        let capacity = F.min(u16::MAX as usize);
        if cut.len > capacity {
            return Err(LearnError::TooManyFeatures { features: cut.len, capacity });
        }
        if C > u8::MAX as usize {
            return Err(LearnError::TooManyClasses { label: C, capacity: u8::MAX as usize });
        }
        self.method = method;
        self.cut = *cut;
        self.base_crc = base_crc;
        self.counts.fill(0);
        self.bias.fill(I16F16::ZERO);
        self.weights.iter_mut().for_each(|row| row.fill(I16F16::ZERO));
        self.replay.clear();
        self.embedding.fill(I16F16::ZERO);
        Ok(())
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Samples learned per class.
    pub fn counts(&self) -> &[u16; C] {
        &self.counts
    }

    /// Classes learned so far: one more than the highest label seen.
    pub fn classes(&self) -> usize {
        self.counts.iter().rposition(|&n| n > 0).map_or(0, |c| c + 1)
    }

    /// Learns one frame's int8 `features` as class `label`: prototypes add its
    /// embedding to the class sum; SGD stores it in the replay buffer.
    pub fn learn(&mut self, label: usize, features: &[i8]) -> Result<(), LearnError> {
        let len = self.cut.len;
        if features.len() != len {
            return Err(LearnError::WrongFeatureLength { expected: len, found: features.len() });
        }
        if label >= C {
            return Err(LearnError::TooManyClasses { label, capacity: C });
        }
        match self.method {
            Method::Prototypes => {
                embed(features, self.cut.zero_point, &mut self.embedding[..len]);
                for (w, e) in self.weights[label].iter_mut().zip(&self.embedding[..len]) {
                    // Each embedding adds at most 1.0 per component; saturating keeps a
                    // very long session (over 32767 frames) from wrapping.
                    *w = w.saturating_add(*e);
                }
            }
            Method::Sgd => {
                let mut sample = Sample { label: label as u8, features: [0; F] };
                sample.features[..len].copy_from_slice(features);
                self.replay.push(sample).map_err(|_| LearnError::ReplayFull { capacity: S })?;
            }
        }
        self.counts[label] = self.counts[label].saturating_add(1);
        Ok(())
    }

    fn check_classes(&self) -> Result<usize, LearnError> {
        let classes = self.classes();
        if classes == 0 {
            return Err(LearnError::NothingLearned);
        }
        match self.counts[..classes].iter().position(|&n| n == 0) {
            Some(class) => Err(LearnError::EmptyClass { class }),
            None => Ok(classes),
        }
    }

    /// Trains the SGD head from zero over the replay buffer (`config.epochs` passes,
    /// each in a seeded stride order). Prototypes need no training: a no-op.
    pub fn train(&mut self, config: &SgdConfig) -> Result<(), LearnError> {
        let classes = self.check_classes()?;
        if self.method != Method::Sgd {
            return Ok(());
        }
        let len = self.cut.len;
        let rate = config.learning_rate.clamp(I16F16::ZERO, I16F16::from_bits(64 << 16));
        self.weights.iter_mut().for_each(|row| row.fill(I16F16::ZERO));
        self.bias.fill(I16F16::ZERO);
        let n = self.replay.len();
        let mut logits = [I16F16::ZERO; C];
        for epoch in 0..usize::from(config.epochs) {
            let (offset, stride) = stride_order(n, epoch);
            for k in 0..n {
                let index = (offset + k * stride) % n;
                let Some(sample) = self.replay.get(index) else { continue };
                embed(&sample.features[..len], self.cut.zero_point, &mut self.embedding[..len]);
                let rows = self.weights.iter().zip(&self.bias).take(classes);
                for (logit, (row, &bias)) in logits.iter_mut().zip(rows) {
                    *logit = dot(bias, row[..len].iter().copied(), &self.embedding[..len]);
                }
                let mut probabilities = [0f32; C];
                softmax(&logits[..classes], &mut probabilities[..classes]);
                let rows = self.weights.iter_mut().zip(self.bias.iter_mut()).zip(&probabilities);
                for (c, ((row, bias), &p)) in rows.enumerate().take(classes) {
                    let target = if c == usize::from(sample.label) { I16F16::ONE } else { I16F16::ZERO };
                    // p ∈ [0, 1] so p − target ∈ [−1, 1]; rate ≤ 64: the step is at most
                    // 64 in magnitude, within I16F16 (saturating all the same).
                    let error = I16F16::saturating_from_num(p).saturating_sub(target);
                    let step = rate.saturating_mul(error);
                    // |step · e_i| ≤ 64 fits; the weight itself saturates rather than wrap
                    // if many epochs push it to the I16F16 limit.
                    for (w, e) in row[..len].iter_mut().zip(&self.embedding[..len]) {
                        *w = w.saturating_sub(step.saturating_mul(*e));
                    }
                    *bias = bias.saturating_sub(step);
                }
            }
        }
        Ok(())
    }

    /// Bytes [`write_head`](Self::write_head) writes for the classes learned so far.
    pub fn head_len(&self) -> usize {
        head::len(self.classes(), self.cut.len)
    }

    /// Writes the learned head (see [`head`]) into `out` and returns its length.
    /// Prototype rows are normalised here.
    pub fn write_head(&self, out: &mut [u8]) -> Result<usize, LearnError> {
        let classes = self.check_classes()?;
        let len = self.cut.len;
        let needed = head::len(classes, len);
        let Some(out) = out.get_mut(..needed) else {
            return Err(LearnError::BufferTooSmall { needed, available: out.len() });
        };
        let total = self.counts[..classes].iter().map(|&n| u32::from(n)).sum();
        let mut writer = head::Writer::new(out);
        writer.header(self.method, classes, len, &self.cut, self.base_crc, total);
        for &count in &self.counts[..classes] {
            writer.u16(count);
        }
        for &bias in &self.bias[..classes] {
            writer.fixed(bias);
        }
        for row in &self.weights[..classes] {
            let row = &row[..len];
            match self.method {
                Method::Sgd => row.iter().for_each(|&w| writer.fixed(w)),
                Method::Prototypes => {
                    // Σ w² with |w| < 2³¹ raw and < 2¹⁶ terms: below 2⁷⁸, u128 holds it.
                    let squares: u128 = row
                        .iter()
                        .map(|w| {
                            let v = i128::from(w.to_bits());
                            (v * v) as u128
                        })
                        .sum();
                    let norm = squares.isqrt(); // ‖w‖ in raw units (2¹⁶ = 1.0)
                    for &w in row {
                        // w · 2¹⁶ / ‖w‖: |w| ≤ ‖w‖, so at most 1.0; |w · 2¹⁶| < 2⁴⁷.
                        let unit = (i128::from(w.to_bits()) << 16).checked_div(norm as i128).unwrap_or(0);
                        writer.fixed(I16F16::from_bits(unit as i32));
                    }
                }
            }
        }
        writer.finish();
        Ok(needed)
    }
}

/// An `(offset, stride)` with `gcd(stride, n) = 1`, different for each epoch: the
/// order `(offset + k · stride) mod n` visits every sample once and mixes classes.
fn stride_order(n: usize, epoch: usize) -> (usize, usize) {
    if n < 2 {
        return (0, 1);
    }
    const STRIDES: [usize; 8] = [7, 11, 13, 17, 19, 23, 29, 31];
    let mut stride = 1;
    for k in 0..STRIDES.len() {
        let candidate = STRIDES[(epoch + k) % STRIDES.len()] % n;
        if candidate > 1 && gcd(candidate, n) == 1 {
            stride = candidate;
            break;
        }
    }
    ((epoch * 5) % n, stride)
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `p = softmax(logits)` in f32 with `micromath`'s `exp` (see the module doc for why
/// this is deterministic and why the approximation is harmless).
fn softmax(logits: &[I16F16], probabilities: &mut [f32]) {
    use micromath::F32Ext;
    let Some(&max) = logits.iter().max() else { return };
    let mut sum = 0f32;
    for (p, &z) in probabilities.iter_mut().zip(logits) {
        // z − max ∈ [−65536, 0], clamped to [−16, 0]: exp stays within [1.1e−7, 1],
        // normal f32 numbers; the conversion is exact (at most 21 significant bits).
        let x: f32 = z.saturating_sub(max).max(I16F16::from_bits(-16 << 16)).to_num();
        // Called through the trait: on the host, `f32::exp` (std) would shadow it.
        *p = F32Ext::exp(x);
        sum += *p;
    }
    // sum ≥ exp(0) ≈ 1 (the maximum's own term): no division by zero.
    for p in probabilities.iter_mut() {
        *p /= sum;
    }
}

#[cfg(test)]
mod tests;
