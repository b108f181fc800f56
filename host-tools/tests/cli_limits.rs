//! Hostile sizes are one-line errors that state the limit, before anything is
//! allocated: a billion filters or units, a huge input, a dataset larger than the
//! memory budget; and `shapes` refuses a class named twice.

mod common;
use common::*;

fn arch_file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    s(&path)
}

#[test]
fn huge_layers_and_inputs_are_refused_before_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let filters = arch_file(
        d,
        "filters.toml",
        "input = [16, 16, 1]\n[[layer]]\ntype = \"conv2d\"\nfilters = 1000000000\nkernel = 3\n",
    );
    fails_cleanly(&microcnn(&["summary", &filters]), "layer 1 (conv2d): a 14×14×1000000000 output is too large");
    let units = arch_file(
        d,
        "units.toml",
        "input = [16, 16, 1]\n[[layer]]\ntype = \"flatten\"\n[[layer]]\ntype = \"dense\"\nunits = 1000000000\n",
    );
    fails_cleanly(&microcnn(&["summary", &units]), "layer 2 (dense): a 256×1000000000 kernel is too large");
    let input = arch_file(d, "input.toml", "input = [100000, 100000, 3]\n[[layer]]\ntype = \"flatten\"\n");
    fails_cleanly(&microcnn(&["summary", &input]), "a 100000×100000×3 activation is too large");
    let out = d.join("run");
    fails_cleanly(
        &microcnn(&["train", "--data", "digits", "--arch", &units, "--out", &s(&out)]),
        "kernel is too large",
    );
    assert!(!out.exists());
}

#[test]
fn datasets_beyond_the_memory_budget_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let grid = dir.path().join("grid.png");
    for count in ["10000000", "99999999999"] {
        let spec = format!("shapes:count={count}");
        fails_cleanly(&microcnn(&["augment", "--data", &spec, "--preview", &s(&grid)]), "more than the memory budget");
    }
    // The budget can be set: 1 MiB refuses even a small set (2,000 images of 32×32×3
    // take 5.9 MiB at a byte per value).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_microcnn"))
        .args(["augment", "--data", "shapes:count=2000", "--preview", &s(&grid)])
        .env("MICROCNN_MEMORY_BUDGET", "1M")
        .output()
        .unwrap();
    fails_cleanly(&out, "memory budget of 0.0 GiB");
    // The flag sets it too, and wins over the environment.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_microcnn"))
        .args(["augment", "--data", "shapes:count=2000", "--preview", &s(&grid), "--memory-budget", "1M"])
        .env("MICROCNN_MEMORY_BUDGET", "64G")
        .output()
        .unwrap();
    fails_cleanly(&out, "memory budget of 0.0 GiB");
    let bad = microcnn(&["augment", "--data", "shapes:count=200", "--preview", &s(&grid), "--memory-budget", "lots"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected bytes, or a number with K, M or G"));
    fails_cleanly(
        &microcnn(&["augment", "--data", "shapes:classes=circle+circle", "--preview", &s(&grid)]),
        "circle is named twice",
    );
    assert!(!grid.exists());
}
