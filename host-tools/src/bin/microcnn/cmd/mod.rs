//! One file per subcommand, each with an argument struct and `run`.

pub mod augment;
pub mod diff;
pub mod eval;
pub mod export;
pub mod finetune;
pub mod flash;
pub mod import;
pub mod infer;
pub mod learn;
pub mod pull;
pub mod quantize;
pub mod summary;
pub mod train;
pub mod zoo;
