//! End-to-end tests live in `tests/`; this library holds what several of them share.

use std::path::{Path, PathBuf};

/// `tests/data`.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// Every vector case (a folder with `model.tflite`) of `data/vectors` and
/// `data/vectors_extra`, sorted.
pub fn vector_cases() -> Vec<PathBuf> {
    let mut all = Vec::new();
    for set in ["vectors", "vectors_extra"] {
        let dir = data_dir().join(set);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            if path.join("model.tflite").exists() {
                all.push(path);
            }
        }
    }
    all.sort();
    assert_eq!(all.len(), 35, "the vector sets hold 35 cases (tests/data/vectors, vectors_extra)");
    all
}

/// A seeded xorshift generator: random test data without a dependency.
pub struct Xorshift(u64);

impl Xorshift {
    /// A generator for `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        Xorshift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// A generator that starts from `state` as it is (it must not be 0).
    pub fn from_state(state: u64) -> Self {
        Xorshift(state)
    }
    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        (self.next_u64() >> 56) as u8
    }
    /// A random int8.
    pub fn i8(&mut self) -> i8 {
        self.byte() as i8
    }
    /// A coin flip.
    pub fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// `len` random bytes for `seed`.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Xorshift::new(seed);
    (0..len).map(|_| rng.byte()).collect()
}

/// `len` random int8 values for `seed` (the bytes of [`random_bytes`]).
pub fn random_i8(seed: u64, len: usize) -> Vec<i8> {
    random_bytes(seed, len).into_iter().map(|b| b as i8).collect()
}
