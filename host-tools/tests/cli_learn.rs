//! `microcnn learn` and `eval --head`: the head learned on the host equals the one
//! learned inside the QEMU firmware (Cortex-M4 and Cortex-M0+), and bad input gets a
//! one-line error with nothing written.

mod common;

use common::*;
use std::path::Path;

const NEW: &str = "shapes:classes=pentagon+hexagon+arrow+tee+ell+crescent,count=60";

fn base(dir: &Path, zoo: &str) -> String {
    let zoo_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("zoo").join(zoo);
    let out = dir.join(format!("{zoo}.mcnn"));
    run_ok(&["quantize", &s(&zoo_dir), "--calib", "shapes:count=200", "-o", &s(&out)]);
    s(&out)
}

#[test]
fn learn_on_the_host_and_on_qemu_gives_the_same_head() {
    use microcnn_tools::deploy::qemu::{build_firmware, Cpu};
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path(), "vgg-shapes");
    for method in ["prototypes", "sgd"] {
        let host = dir.path().join(format!("{method}-host.head"));
        run_ok(&["learn", &base, "--data", NEW, "-o", &s(&host), "--method", method]);
        let host_bytes = std::fs::read(&host).unwrap();
        for cpu in [Cpu::CortexM4, Cpu::CortexM0Plus] {
            let elf = build_firmware(cpu).unwrap();
            let chip = dir.path().join(format!("{method}-{}.head", cpu.name()));
            let on = format!("qemu:{}", cpu.name());
            let json = run_ok(&[
                "learn",
                &base,
                "--data",
                NEW,
                "-o",
                &s(&chip),
                "--method",
                method,
                "--on",
                &on,
                "--firmware",
                &s(&elf),
                "--json",
            ]);
            let report: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(report["learn_instructions"].as_array().unwrap().len(), 60, "{json}");
            assert_eq!(std::fs::read(&chip).unwrap(), host_bytes, "{method} on {on}");
        }
        let eval = run_ok(&[
            "eval",
            &base,
            "--head",
            &s(&host),
            "--data",
            "shapes:classes=pentagon+hexagon+arrow+tee+ell+crescent,split=test,count=120",
            "--confusion",
            &s(&dir.path().join("c.png")),
        ]);
        assert!(eval.contains("learned head"), "{eval}");
    }
}

#[test]
fn bad_input_is_a_one_line_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path(), "vgg-shapes");
    let out = dir.path().join("head.bin");
    let eleven = "shapes:classes=circle+square+triangle+cross+star+ring+pentagon+hexagon+arrow+tee+ell,count=33";
    let fails = |args: &[&str], needle: &str| {
        let mut all = vec!["learn", &base, "-o"];
        let out_s = s(&out);
        all.push(&out_s);
        all.extend_from_slice(args);
        fails_cleanly(&microcnn(&all), needle);
        assert!(!out.exists(), "{args:?} wrote a head");
    };
    fails(&["--data", eleven], "at most 10");
    fails(&["--data", NEW, "--lr", "100"], "--lr");
    // An empty class folder.
    let folder = dir.path().join("classes");
    for class in ["0", "1"] {
        let from = Path::new(digits_folder("train").as_str()).join(class);
        std::fs::create_dir_all(folder.join(class)).unwrap();
        for entry in std::fs::read_dir(&from).unwrap().take(3) {
            let path = entry.unwrap().path();
            std::fs::copy(&path, folder.join(class).join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::create_dir_all(folder.join("2")).unwrap();
    fails(&["--data", &s(&folder)], "no PNG");
    // A base without a classifier.
    let conv = dir.path().join("conv.mcnn");
    run_ok(&["import", &vector("conv1x1", "model.tflite"), "-o", &s(&conv)]);
    let o = s(&out);
    fails_cleanly(&microcnn(&["learn", &s(&conv), "--data", "digits", "-o", &o]), "no classifier");
    assert!(!out.exists());

    // A head for another model, and a corrupt head.
    let head = dir.path().join("good.head");
    run_ok(&["learn", &base, "--data", NEW, "-o", &s(&head)]);
    let other = base_of(dir.path());
    let test = "shapes:classes=pentagon+hexagon+arrow+tee+ell+crescent,split=test,count=12";
    let png = dir.path().join("c.png");
    fails_cleanly(
        &microcnn(&["eval", &other, "--head", &s(&head), "--data", test, "--confusion", &s(&png)]),
        "another base model",
    );
    let mut bytes = std::fs::read(&head).unwrap();
    bytes[40] ^= 1;
    let corrupt = dir.path().join("corrupt.head");
    std::fs::write(&corrupt, &bytes).unwrap();
    fails_cleanly(
        &microcnn(&["eval", &base, "--head", &s(&corrupt), "--data", test, "--confusion", &s(&png)]),
        "corrupt head",
    );
    assert!(!png.exists());
}

fn base_of(dir: &Path) -> String {
    base(dir, "resnet-shapes")
}

#[test]
fn flash_head_and_pull_use_the_learned_region() {
    use microcnn_tools::deploy::head::{head_from_images, learned_region, region_images, SlotImages};
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path(), "vgg-shapes");
    let head = dir.path().join("h.head");
    run_ok(&["learn", &base, "--data", NEW, "-o", &s(&head)]);
    let bytes = std::fs::read(&head).unwrap();
    // The region image holds the head as core's Store reads it, on both boards.
    for map in [microcnn_layout::QEMU_MPS2_AN386, microcnn_layout::NUCLEO_F411RE] {
        let region = learned_region(&map).unwrap();
        let images = region_images(&region, &bytes).unwrap();
        assert_eq!(images.slots[0].0, region.slots[0].origin);
        assert_eq!(head_from_images(images).unwrap(), bytes);
        assert!(head_from_images(SlotImages::erased(&region)).unwrap_err().to_string().contains("no valid head"));
    }
    // infer --head ranks the head's classes for an image.
    let image = Path::new(&digits_folder("test")).join("3/431.png");
    let ranked = run_ok(&["infer", &base, "--image", &s(&image), "--head", &s(&head), "--top", "3"]);
    assert_eq!(ranked.lines().filter(|l| l.starts_with("class ")).count(), 3, "{ranked}");
    let slot = dir.path().join("slot.bin");
    let out = run_ok(&["flash", "--head", &s(&head), "--image", &s(&slot), "--board", "qemu-mps2-an386"]);
    assert!(out.contains("0x00200000"), "{out}");
    assert_eq!(std::fs::metadata(&slot).unwrap().len(), 32 * 1024);
    // Without a probe: one line, nothing written.
    let pulled = dir.path().join("pulled.head");
    fails_cleanly(&microcnn(&["pull", "--chip", "STM32F411RETx", "-o", &s(&pulled)]), "no debug probe");
    assert!(!pulled.exists());
    fails_cleanly(&microcnn(&["flash", "--head", &s(&head), "--chip", "STM32F411RETx"]), "no debug probe");
    let mut corrupt = bytes.clone();
    corrupt[30] ^= 4;
    let bad = dir.path().join("bad.head");
    std::fs::write(&bad, &corrupt).unwrap();
    let slot2 = dir.path().join("slot2.bin");
    fails_cleanly(&microcnn(&["flash", "--head", &s(&bad), "--image", &s(&slot2)]), "corrupt head");
    assert!(!slot2.exists());
}
