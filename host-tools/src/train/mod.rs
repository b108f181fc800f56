//! f32 training: networks and their kernels ([`nn`]), architecture files ([`arch`]) and
//! [`presets`], one training [`step`] (with optional fake quantization), the loop
//! ([`fit`]), [`checkpoint`]s, the training record ([`metrics`]) and its [`plot`]s,
//! default schedules from the data ([`schedule`]), transfer learning ([`transfer`]), the pretrained bases ([`zoo`]) and float32 TFLite
//! models as networks ([`float_tflite`]).

pub mod arch;
pub mod checkpoint;
pub mod fit;
pub mod float_tflite;
pub mod metrics;
pub mod nn;
pub mod plot;
pub mod presets;
pub mod schedule;
pub mod step;
pub mod transfer;
pub mod zoo;
