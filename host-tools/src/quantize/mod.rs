//! From a trained f32 network to the int8 graph: post-training quantization
//! ([`ptq`]) and the quantization-aware training driver ([`qat`]).

pub mod ptq;
pub mod qat;
