//! From quantized layers to the `.mcnn` blob: the int8 [`graph`] every front end
//! builds, TFLM's Prepare arithmetic ([`lower`], the one place for it), the int8
//! quantization [`grid`] shared by PTQ and QAT, the arena [`plan`] and the [`blob`]
//! writer.

pub mod blob;
pub mod graph;
pub mod grid;
pub mod lower;
pub mod plan;
