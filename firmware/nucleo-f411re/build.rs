//! Writes `memory.x` from the one memory map in `microcnn-layout`, and, when
//! `MICROCNN_MODEL=path/to/model.mcnn` is set, links that blob into the model region
//! (the `include_bytes!` path: `cargo run --release` then flashes firmware and model).
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let mut script = String::new();
    microcnn_layout::NUCLEO_F411RE.write_memory_x(&mut script).expect("format memory.x");
    fs::write(out.join("memory.x"), script).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../layout/src/lib.rs");
    println!("cargo::rustc-check-cfg=cfg(microcnn_embedded_model)");
    println!("cargo:rerun-if-env-changed=MICROCNN_MODEL");
    if let Some(model) = env::var_os("MICROCNN_MODEL") {
        println!("cargo:rerun-if-changed={}", PathBuf::from(&model).display());
        println!("cargo:rustc-cfg=microcnn_embedded_model");
    }
}
