//! Raw bytes into `Model::from_bytes`. Mutations rarely pass the CRC-32 check; see
//! `model_from_bytes_fixed_crc` for the target that reaches the validator proper.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    common::exercise(data);
});
