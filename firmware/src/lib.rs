//! microcnn firmware (placeholder). The camera app, the QEMU and board targets and
//! the flash model region come with the firmware issue; for now this crate proves
//! that the engine links into a Cortex-M build with an arena sized at build time.
#![no_std]
#![forbid(unsafe_code)]

use microcnn_core::{Error, Interpreter, Model};

/// Bytes of arena this build reserves; `Interpreter::new` refuses a model that
/// needs more.
pub const ARENA_BYTES: usize = 16 * 1024;

/// Classifies one int8 input with the model in `blob`: the best three classes.
pub fn classify(
    blob: &[u8],
    arena: &mut [u8; ARENA_BYTES],
    input: &[i8],
) -> Result<heapless::Vec<(u16, i8), 3>, Error> {
    let model = Model::from_bytes(blob)?;
    let mut net = Interpreter::new(&model, arena)?;
    let slot = net.input_mut();
    if slot.len() != input.len() {
        return Err(Error::WrongLength { expected: slot.len(), found: input.len() });
    }
    slot.copy_from_slice(input);
    net.invoke()?;
    Ok(net.top_k())
}
