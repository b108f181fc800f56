//! CRC-32 (IEEE 802.3, reflected polynomial `0xEDB88320`), the checksum of the blob.

const fn make_table() -> [u32; 256] {
    let mut table = [0_u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static TABLE: [u32; 256] = make_table();

/// The CRC-32 of `bytes` (the same value zlib's `crc32` and Python's `zlib.crc32` give).
pub fn crc32(bytes: &[u8]) -> u32 {
    Crc32::new().update(bytes).finish()
}

/// A CRC-32 computed over several pieces: `Crc32::new().update(a).update(b).finish()`
/// equals `crc32` of `a` followed by `b`.
#[derive(Clone, Copy, Debug)]
pub struct Crc32(u32);

impl Crc32 {
    /// Nothing seen yet.
    pub const fn new() -> Self {
        Crc32(!0)
    }

    /// Adds `bytes`.
    pub fn update(mut self, bytes: &[u8]) -> Self {
        for &byte in bytes {
            self.0 = TABLE[((self.0 ^ u32::from(byte)) & 0xff) as usize] ^ (self.0 >> 8);
        }
        self
    }

    /// The CRC of everything added.
    pub const fn finish(self) -> u32 {
        !self.0
    }
}

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(super::crc32(b""), 0);
        assert_eq!(super::Crc32::new().update(b"1234").update(b"56789").finish(), 0xCBF4_3926);
    }
}
