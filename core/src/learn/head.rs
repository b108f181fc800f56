//! The learned head as bytes: what is kept in flash, sent to the host and read back.
//!
//! One little-endian byte string, `C` classes of `F` features:
//!
//! | offset | field | |
//! | --- | --- | --- |
//! | 0 | magic `MCHD` | |
//! | 4 | `u16` version | [`VERSION`] |
//! | 6 | `u8` method | 0 prototypes, 1 SGD ([`Method::code`]) |
//! | 7 | `u8` classes `C` | ≥ 1 |
//! | 8 | `u16` features `F` | length of the feature tensor |
//! | 10 | `u16` feature tensor | the cut: input of the last FullyConnected |
//! | 12 | `u32` base model CRC-32 | the base blob's header CRC ([`Model::checksum`](crate::Model::checksum)) |
//! | 16 | `i32` feature zero point | |
//! | 20 | `u32` samples learned | |
//! | 24 | `C × u16` samples per class | |
//! | 24 + 2C | `C × i32` biases | [`I16F16`] bits |
//! | 24 + 6C | `C × F × i32` weights | [`I16F16`] bits, row-major `[class][feature]` |
//! | 24 + 6C + 4CF | `u32` CRC-32 | of every byte before it |
//!
//! A class scores `b_c + Σ_i W_ci · e_i` on the unit embedding `e` of the features
//! ([`embed`]); prototypes have `b = 0` and unit rows, so the score is a cosine.

use super::{dot, embed, FeatureCut, LearnError, Method};
use crate::crc::crc32;
use crate::model::Model;
use fixed::types::I16F16;

/// `MCHD`.
pub const MAGIC: [u8; 4] = *b"MCHD";
/// The version this core writes and reads.
pub const VERSION: u16 = 1;
/// Bytes before the per-class tables.
pub const HEADER_LEN: usize = 24;

/// Bytes of a head with `classes` classes of `features` features.
pub const fn len(classes: usize, features: usize) -> usize {
    HEADER_LEN + 6 * classes + 4 * classes * features + 4
}

/// Writes a head in order; the caller gives a buffer of exactly [`len`] bytes.
pub(super) struct Writer<'b> {
    out: &'b mut [u8],
    at: usize,
}

impl<'b> Writer<'b> {
    pub(super) fn new(out: &'b mut [u8]) -> Self {
        Writer { out, at: 0 }
    }

    fn bytes(&mut self, bytes: &[u8]) {
        if let Some(slot) = self.out.get_mut(self.at..self.at + bytes.len()) {
            slot.copy_from_slice(bytes);
        }
        self.at += bytes.len();
    }

    pub(super) fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }

    pub(super) fn fixed(&mut self, v: I16F16) {
        self.bytes(&v.to_bits().to_le_bytes());
    }

    pub(super) fn header(
        &mut self,
        method: Method,
        classes: usize,
        features: usize,
        cut: &FeatureCut,
        base_crc: u32,
        samples: u32,
    ) {
        self.bytes(&MAGIC);
        self.u16(VERSION);
        self.bytes(&[method.code(), classes as u8]);
        self.u16(features as u16);
        self.u16(cut.tensor);
        self.bytes(&base_crc.to_le_bytes());
        self.bytes(&cut.zero_point.to_le_bytes());
        self.bytes(&samples.to_le_bytes());
    }

    /// Appends the CRC of everything written.
    pub(super) fn finish(mut self) {
        let crc = crc32(self.out.get(..self.at).unwrap_or(&[]));
        self.bytes(&crc.to_le_bytes());
    }
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    bytes.get(at..at + 2).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    bytes.get(at..at + 4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// A validated head, read in place (from flash or a file).
#[derive(Clone, Copy, Debug)]
pub struct Head<'h> {
    bytes: &'h [u8],
    method: Method,
    classes: usize,
    features: usize,
}

impl<'h> Head<'h> {
    /// Checks magic, version, lengths and CRC, and that the head was learned on the
    /// model whose blob CRC is `base_crc`.
    pub fn from_bytes(bytes: &'h [u8], base_crc: u32) -> Result<Self, LearnError> {
        if bytes.len() < HEADER_LEN + 4 || bytes[..4] != MAGIC || read_u16(bytes, 4) != VERSION {
            return Err(LearnError::NotAHead);
        }
        let method = Method::from_code(bytes[6]).ok_or(LearnError::NotAHead)?;
        let classes = usize::from(bytes[7]);
        let features = usize::from(read_u16(bytes, 8));
        let total = len(classes, features);
        if classes == 0 || features == 0 || bytes.len() < total {
            return Err(LearnError::NotAHead);
        }
        let bytes = &bytes[..total];
        let stored = read_u32(bytes, total - 4);
        let computed = crc32(&bytes[..total - 4]);
        if stored != computed {
            return Err(LearnError::HeadChecksum { stored, computed });
        }
        let head = Head { bytes, method, classes, features };
        if head.base_crc() != base_crc {
            return Err(LearnError::WrongBaseModel { head: head.base_crc(), model: base_crc });
        }
        Ok(head)
    }

    /// [`from_bytes`](Self::from_bytes) for `model`, also checking that the head's
    /// feature tensor is the model's classifier input.
    pub fn for_model(bytes: &'h [u8], model: &Model<'_>) -> Result<(Self, FeatureCut), LearnError> {
        let head = Head::from_bytes(bytes, model.checksum())?;
        let cut = FeatureCut::find(model)?;
        if cut.tensor != head.feature_tensor() || cut.len != head.features || cut.zero_point != head.zero_point() {
            return Err(LearnError::FeatureMismatch);
        }
        Ok((head, cut))
    }

    /// The head's bytes (exactly [`len`] long).
    pub fn as_bytes(&self) -> &'h [u8] {
        self.bytes
    }

    /// How it was learned.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Features per embedding.
    pub fn features(&self) -> usize {
        self.features
    }

    /// The feature tensor of the base model.
    pub fn feature_tensor(&self) -> u16 {
        read_u16(self.bytes, 10)
    }

    /// The base model's blob CRC.
    pub fn base_crc(&self) -> u32 {
        read_u32(self.bytes, 12)
    }

    /// The feature tensor's zero point.
    pub fn zero_point(&self) -> i32 {
        read_u32(self.bytes, 16) as i32
    }

    /// Samples learned in all.
    pub fn samples(&self) -> u32 {
        read_u32(self.bytes, 20)
    }

    /// Samples learned for `class`.
    pub fn class_samples(&self, class: usize) -> u16 {
        read_u16(self.bytes, HEADER_LEN + 2 * class)
    }

    /// The bias of `class`.
    pub fn bias(&self, class: usize) -> I16F16 {
        I16F16::from_bits(read_u32(self.bytes, HEADER_LEN + 2 * self.classes + 4 * class) as i32)
    }

    /// The weights of `class`.
    pub fn weights(&self, class: usize) -> impl Iterator<Item = I16F16> + 'h {
        let start = HEADER_LEN + 6 * self.classes + 4 * self.features * class;
        let row = self.bytes.get(start..start + 4 * self.features).unwrap_or(&[]);
        row.chunks_exact(4).map(|b| I16F16::from_bits(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
    }

    /// The score of `class` for a unit embedding.
    pub fn score(&self, class: usize, embedding: &[I16F16]) -> I16F16 {
        dot(self.bias(class), self.weights(class), embedding)
    }

    /// Scores of every class into `out` (as many as fit).
    pub fn scores(&self, embedding: &[I16F16], out: &mut [I16F16]) {
        for (class, o) in out.iter_mut().enumerate().take(self.classes) {
            *o = self.score(class, embedding);
        }
    }

    /// The best class and its score for a unit embedding; ties go to the lower class.
    pub fn classify(&self, embedding: &[I16F16]) -> (usize, I16F16) {
        let mut best = (0, I16F16::MIN);
        for class in 0..self.classes {
            let score = self.score(class, embedding);
            if score > best.1 {
                best = (class, score);
            }
        }
        best
    }

    /// [`classify`](Self::classify) on raw int8 features, embedded into `scratch`
    /// (at least [`features`](Self::features) long; a shorter one gives class 0).
    pub fn classify_features(&self, features: &[i8], scratch: &mut [I16F16]) -> (usize, I16F16) {
        let Some(embedding) = scratch.get_mut(..self.features) else { return (0, I16F16::MIN) };
        embed(features, self.zero_point(), embedding);
        self.classify(embedding)
    }
}
