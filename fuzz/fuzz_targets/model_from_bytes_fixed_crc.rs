//! Like `model_from_bytes`, but first rewrites the header's CRC field (bytes 12..16,
//! CRC-32 of bytes 16..total_len, total_len = u32 LE at bytes 8..12) so mutations get
//! past the checksum and reach the structural validation and the interpreter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use microcnn_core::crc::crc32;

mod common;

fuzz_target!(|data: &[u8]| {
    let mut blob = data.to_vec();
    if blob.len() >= 64 {
        let total = u32::from_le_bytes([blob[8], blob[9], blob[10], blob[11]]) as usize;
        if (16..=blob.len()).contains(&total) {
            let crc = crc32(&blob[16..total]);
            blob[12..16].copy_from_slice(&crc.to_le_bytes());
        }
    }
    common::exercise(&blob);
});
