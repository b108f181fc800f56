//! Writes `memory.x` from the one memory map in `microcnn-layout`.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let mut script = String::new();
    microcnn_layout::QEMU_MPS2_AN386.write_memory_x(&mut script).expect("format memory.x");
    fs::write(out.join("memory.x"), script).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../layout/src/lib.rs");
}
