//! Runs int8 samples inside the microcnn firmware under QEMU.
//!
//! The firmware (`firmware/qemu`, crate `microcnn-fw-qemu`) classifies the frames of
//! its frames region with the model of its model region and logs through defmt over
//! semihosting. It runs on three emulated cores ([`Cpu`]): the `thumbv7em-none-eabihf`
//! build on `mps2-an386` (Cortex-M4F, the default) and `mps2-an500` (Cortex-M7), and
//! the `thumbv6m-none-eabi` build on `mps2-an385` (a Cortex-M3 executing the v6m
//! instruction set of the Cortex-M0+, so the counts are those of v6m code). The three
//! boards share one memory map. This module:
//!
//! 1. writes the model blob and a frames image (header + samples as `Int8Tensor`
//!    frames) to temporary files and has QEMU load them at the regions'
//!    addresses (`-device loader`), taken from `microcnn-layout`, the one memory map
//!    the firmware's linker script is generated from;
//! 2. runs QEMU with `-icount shift=`[`QEMU_ICOUNT_SHIFT`] (deterministic instruction
//!    counts) and a timeout, capturing the semihosting output;
//! 3. decodes the defmt stream with the `defmt-decoder` library and the ELF's table,
//!    and parses the lines of the firmware's contract (`microcnn-app`): `output`,
//!    `layer`, `invoke`, `frame`, `done`.
//!
//! Samples that do not fit one frames region are split over several runs.

use crate::inspect::summary;
use anyhow::{anyhow, bail, Context, Result};
use microcnn_core::Model;
use microcnn_layout::frames::{Header, PixelFormat, HEADER_LEN};
use microcnn_layout::{QEMU_ICOUNT_SHIFT, QEMU_MPS2_AN386 as MAP};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-arm";

/// An emulated Cortex-M core: the QEMU board that runs it and the firmware build it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Cpu {
    /// Cortex-M4F on `mps2-an386` (`thumbv7em-none-eabihf`, DSP kernels).
    #[default]
    CortexM4,
    /// Cortex-M7 on `mps2-an500` (the same `thumbv7em-none-eabihf` image).
    CortexM7,
    /// Cortex-M0+ code (`thumbv6m-none-eabi`, portable kernels) on `mps2-an385`.
    CortexM0Plus,
}

impl Cpu {
    /// Every core, in the order the tables list them.
    pub const ALL: [Cpu; 3] = [Cpu::CortexM4, Cpu::CortexM7, Cpu::CortexM0Plus];

    /// The name `--on qemu:NAME` takes.
    pub fn name(self) -> &'static str {
        match self {
            Cpu::CortexM4 => "cortex-m4",
            Cpu::CortexM7 => "cortex-m7",
            Cpu::CortexM0Plus => "cortex-m0plus",
        }
    }

    /// The QEMU machine (`-machine`).
    pub fn machine(self) -> &'static str {
        match self {
            Cpu::CortexM4 => "mps2-an386",
            Cpu::CortexM7 => "mps2-an500",
            Cpu::CortexM0Plus => "mps2-an385",
        }
    }

    /// The QEMU core (`-cpu`): QEMU has no Cortex-M0+ model on these boards; its
    /// Cortex-M3 executes the v6m code unchanged.
    pub fn qemu_cpu(self) -> &'static str {
        match self {
            Cpu::CortexM4 => "cortex-m4",
            Cpu::CortexM7 => "cortex-m7",
            Cpu::CortexM0Plus => "cortex-m3",
        }
    }

    /// The Rust target the firmware is built for.
    pub fn rust_target(self) -> &'static str {
        match self {
            Cpu::CortexM4 | Cpu::CortexM7 => "thumbv7em-none-eabihf",
            Cpu::CortexM0Plus => "thumbv6m-none-eabi",
        }
    }
}

impl std::fmt::Display for Cpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Cpu {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        Cpu::ALL.into_iter().find(|c| c.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Cpu::ALL.iter().map(|c| c.name()).collect();
            anyhow!("unknown QEMU core {s:?}: expected one of {}", names.join(", "))
        })
    }
}

/// Reads an `--on` value: `host` is `None`; `qemu` is the Cortex-M4, `qemu:CPU` the
/// named core.
pub fn parse_on(text: &str) -> Result<Option<Cpu>> {
    match text.split_once(':') {
        None if text == "host" => Ok(None),
        None if text == "qemu" => Ok(Some(Cpu::default())),
        Some(("qemu", cpu)) => cpu.parse().map(Some),
        _ => bail!("expected host, qemu or qemu:CPU, got {text:?}"),
    }
}

/// Where the firmware's release build for `cpu` lands inside this source tree.
pub fn default_firmware_path(cpu: Cpu) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../firmware/target")
        .join(cpu.rust_target())
        .join("release/microcnn-fw-qemu")
        .components()
        .collect()
}

/// Builds the QEMU firmware of this source tree for `cpu` (`cargo build --release -p
/// microcnn-fw-qemu --target T` in `firmware/`, a no-op when it is up to date) and
/// returns the ELF's path. For tests and development; `cargo` must be on the path,
/// with the target installed.
pub fn build_firmware(cpu: Cpu) -> Result<PathBuf> {
    let firmware_dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware").components().collect();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&firmware_dir)
        .args(["build", "--release", "--locked", "-p", "microcnn-fw-qemu", "--target", cpu.rust_target()])
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .context("cannot run cargo to build the QEMU firmware")?;
    if !output.status.success() {
        bail!("building the QEMU firmware failed:\n{}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(default_firmware_path(cpu))
}

/// The firmware ELF to run on `cpu`: `explicit`, else `$MICROCNN_QEMU_FIRMWARE`, else
/// [`default_firmware_path`]; an error says how to build it when it is missing.
pub fn find_firmware(explicit: Option<&Path>, cpu: Cpu) -> Result<PathBuf> {
    let path = match (explicit, std::env::var_os("MICROCNN_QEMU_FIRMWARE")) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(p)) => PathBuf::from(p),
        (None, None) => default_firmware_path(cpu),
    };
    if !path.is_file() {
        bail!(
            "QEMU firmware for {cpu} not found at {}: build it with `cd firmware && cargo build --release -p microcnn-fw-qemu --target {}`, or pass --firmware PATH",
            path.display(),
            cpu.rust_target()
        );
    }
    Ok(path)
}

/// Exit statuses of the QEMU firmware (see `firmware/qemu/src/main.rs`).
pub fn status_meaning(status: i32) -> &'static str {
    match status {
        0 => "every frame classified",
        1 => "panic",
        2 => "the model region holds no valid blob",
        3 => "the frames region holds no valid frames header",
        4 => "the arena is too small for the model",
        5 => "a frame could not be classified",
        6 => "the learning session failed",
        124 => "timed out",
        _ => "unknown status",
    }
}

/// One decoded defmt line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// `ERROR`, `WARN`, `INFO`, `DEBUG`, `TRACE` (empty for `println`).
    pub level: String,
    /// The formatted message.
    pub message: String,
}

/// What one QEMU run gave.
#[derive(Clone, Debug)]
pub struct Run {
    /// The firmware's exit status (124 on timeout).
    pub status: i32,
    /// Every defmt line, in order.
    pub lines: Vec<LogLine>,
}

impl Run {
    /// Fails unless the firmware exited with status 0, with the status's meaning and
    /// the error lines it logged.
    pub fn check_status(&self) -> Result<()> {
        if self.status == 0 {
            return Ok(());
        }
        let errors: Vec<&str> = self.errors().map(|l| l.message.as_str()).collect();
        bail!(
            "the QEMU firmware exited with status {} ({}){}{}",
            self.status,
            status_meaning(self.status),
            if errors.is_empty() { "" } else { ": " },
            errors.join("; ")
        )
    }

    /// Lines at `ERROR` level.
    pub fn errors(&self) -> impl Iterator<Item = &LogLine> {
        self.lines.iter().filter(|l| l.level == "ERROR")
    }

    /// The firmware's classification lines (`frame N: label score S (class K)`).
    pub fn classifications(&self) -> impl Iterator<Item = &LogLine> {
        self.lines.iter().filter(|l| l.message.starts_with("frame ") && l.level == "INFO")
    }
}

/// The firmware's ELF and its defmt table.
pub struct Firmware {
    path: PathBuf,
    elf: Vec<u8>,
    cpu: Cpu,
}

impl Firmware {
    /// Reads the ELF (see [`find_firmware`]) that runs on `cpu`.
    pub fn load(path: &Path, cpu: Cpu) -> Result<Self> {
        let elf = std::fs::read(path).with_context(|| format!("{}: cannot read firmware", path.display()))?;
        if !elf.starts_with(b"\x7fELF") {
            bail!("{}: not an ELF file (the QEMU firmware is the ELF cargo builds in firmware/target)", path.display());
        }
        Ok(Self { path: path.to_path_buf(), elf, cpu })
    }

    /// The core it runs on.
    pub fn cpu(&self) -> Cpu {
        self.cpu
    }

    /// Runs the firmware once with `model` in the model region and `frames` (a frames
    /// image: header and frames) in the frames region.
    pub fn run(&self, model: &[u8], frames: &[u8], timeout: Duration) -> Result<Run> {
        self.run_with_args(model, frames, timeout, &[])
    }

    /// [`run`](Self::run) with words on the firmware's semihosting command line
    /// (`--dump-layers`).
    pub fn run_with_args(&self, model: &[u8], frames: &[u8], timeout: Duration, args: &[&str]) -> Result<Run> {
        for (what, bytes, region) in [("model", model, MAP.model), ("frames", frames, MAP.frames)] {
            if bytes.len() > region.length as usize {
                bail!("{what}: {} bytes do not fit the {} byte {what} region", bytes.len(), region.length);
            }
        }
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let model_path = dir.path().join("model.bin");
        let frames_path = dir.path().join("frames.bin");
        std::fs::write(&model_path, model).context("cannot write the model image")?;
        std::fs::write(&frames_path, frames).context("cannot write the frames image")?;
        let mut child = Command::new(QEMU)
            .args(["-machine", self.cpu.machine(), "-cpu", self.cpu.qemu_cpu(), "-display", "none", "-monitor", "none"])
            .args(["-serial", "none", "-semihosting-config"])
            .arg(semihosting_config(args)?)
            .args(["-icount", &format!("shift={QEMU_ICOUNT_SHIFT},align=off,sleep=off")])
            .arg("-device")
            .arg(format!("loader,file={},addr={:#x},force-raw=on", model_path.display(), MAP.model.origin))
            .arg("-device")
            .arg(format!("loader,file={},addr={:#x},force-raw=on", frames_path.display(), MAP.frames.origin))
            .arg("-kernel")
            .arg(&self.path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    anyhow!("{QEMU} not found: install it (Debian: apt-get install qemu-system-arm)")
                } else {
                    anyhow!("cannot start {QEMU}: {e}")
                }
            })?;
        let mut stdout = child.stdout.take().context("no stdout")?;
        let mut stderr = child.stderr.take().context("no stderr")?;
        let reader = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stdout.read_to_end(&mut bytes);
            bytes
        });
        let err_reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait().context("waiting for QEMU")? {
                break status.code().unwrap_or(-1);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break 124;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let bytes = reader.join().map_err(|_| anyhow!("QEMU output reader failed"))?;
        let qemu_errors = err_reader.join().unwrap_or_default();
        if status != 0 && bytes.is_empty() && !qemu_errors.trim().is_empty() {
            bail!("{QEMU} failed (status {status}): {}", qemu_errors.trim());
        }
        let lines = self.decode(&bytes)?;
        Ok(Run { status, lines })
    }

    /// Decodes a defmt byte stream with this firmware's table.
    pub fn decode(&self, bytes: &[u8]) -> Result<Vec<LogLine>> {
        let table = defmt_decoder::Table::parse(&self.elf)
            .with_context(|| format!("{}: cannot read its defmt table", self.path.display()))?
            .ok_or_else(|| anyhow!("{}: no defmt table (not a defmt firmware?)", self.path.display()))?;
        let mut decoder = table.new_stream_decoder();
        decoder.received(bytes);
        let mut lines = Vec::new();
        loop {
            match decoder.decode() {
                Ok(frame) => lines.push(LogLine {
                    level: frame.level().map(|l| l.as_str().to_uppercase()).unwrap_or_default(),
                    message: frame.display_message().to_string(),
                }),
                Err(defmt_decoder::DecodeError::UnexpectedEof) => break,
                Err(defmt_decoder::DecodeError::Malformed) => bail!("malformed defmt frame in the firmware's output"),
            }
        }
        Ok(lines)
    }
}

/// The cost of one layer on one sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerCost {
    /// Operator index.
    pub index: usize,
    /// Operator kind as the firmware names it (`Conv2D`, …).
    pub op: String,
    /// Executed instructions.
    pub instructions: u64,
}

/// What the firmware computed for one sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleResult {
    /// The output tensor's bytes.
    pub output: Vec<i8>,
    /// Executed instructions of the whole invoke.
    pub instructions: u64,
    /// Per-layer instructions.
    pub layers: Vec<LayerCost>,
}

/// The frames image for `count` int8 samples of the model's input.
pub fn frames_image(model: &Model<'_>, samples: &[i8]) -> Result<Vec<u8>> {
    let shape = model.input().shape;
    let per_sample = shape.elements();
    let count = samples.len() / per_sample.max(1);
    let dims = [shape.width, shape.height, shape.channels];
    if dims.iter().any(|&d| d > usize::from(u16::MAX)) || count > usize::from(u16::MAX) {
        bail!("input shape or sample count too large for a frames header");
    }
    let header = Header {
        format: PixelFormat::Int8Tensor,
        width: shape.width as u16,
        height: shape.height as u16,
        channels: shape.channels as u16,
        count: count as u16,
    };
    let mut image = header.to_bytes().to_vec();
    image.extend(samples.iter().map(|&v| v as u8));
    Ok(image)
}

/// QEMU's `-semihosting-config` value: the firmware's name, then `args`.
fn semihosting_config(args: &[&str]) -> Result<String> {
    let mut config = String::from("enable=on,target=native,arg=microcnn-fw-qemu");
    for arg in args {
        if arg.contains([',', ' ']) {
            bail!("semihosting argument {arg:?} holds a comma or a space");
        }
        config.push_str(",arg=");
        config.push_str(arg);
    }
    Ok(config)
}

/// Runs one sample inside the firmware operator by operator (`--dump-layers`) and
/// returns every operator's output tensor, in operator order.
pub fn layer_outputs(firmware: &Firmware, blob: &[u8], sample: &[i8]) -> Result<Vec<Vec<i8>>> {
    let model = Model::from_bytes(blob).map_err(|e| anyhow!("invalid model: {e}"))?;
    if sample.len() != model.input().bytes() {
        bail!("a sample of {} bytes for a {} byte input", sample.len(), model.input().bytes());
    }
    check_fits(&model)?;
    let frames = frames_image(&model, sample)?;
    let run = firmware.run_with_args(blob, &frames, Duration::from_secs(60), &["--dump-layers"])?;
    run.check_status()?;
    let mut layers: Vec<Option<Vec<i8>>> = vec![None; model.op_count()];
    for line in &run.lines {
        let Some(rest) = line.message.strip_prefix("tensor ") else { continue };
        let (head, bytes) = rest.split_once(": ").context("bad tensor line")?;
        let index: usize = head.split_whitespace().nth(1).unwrap_or("").parse().context("bad tensor line")?;
        let slot = layers.get_mut(index).with_context(|| format!("firmware reported operator {index}"))?;
        *slot = Some(parse_bytes(bytes).with_context(|| format!("bad tensor bytes for operator {index}"))?);
    }
    layers
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            l.ok_or_else(|| {
                anyhow!("the firmware reported no output for operator {i} (is its defmt level below debug?)")
            })
        })
        .collect()
}

/// A defmt `{=[u8]}` list (`[1, 2, 255]`) as int8 values.
fn parse_bytes(text: &str) -> Result<Vec<i8>> {
    let list = text.trim().trim_start_matches('[').trim_end_matches(']');
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    Ok(list.split(',').map(|v| v.trim().parse::<u8>().map(|b| b as i8)).collect::<Result<_, _>>()?)
}

/// Refuses a model the QEMU firmware cannot hold.
fn check_fits(model: &Model<'_>) -> Result<()> {
    MAP.check_model(model.arena_size(), model.as_bytes().len()).map_err(|e| anyhow!("{e}"))?;
    MAP.check_sample(model.input().bytes()).map_err(|e| anyhow!("{e}"))
}

/// Runs every sample (`samples` = N × the model's input, int8) inside the firmware
/// and returns, per sample, the output bytes and the instruction counts.
pub fn infer(firmware: &Firmware, blob: &[u8], samples: &[i8]) -> Result<Vec<SampleResult>> {
    let model = Model::from_bytes(blob).map_err(|e| anyhow!("invalid model: {e}"))?;
    let per_sample = model.input().bytes();
    if per_sample == 0 || !samples.len().is_multiple_of(per_sample) {
        bail!("{} input bytes are not a whole number of {per_sample}-byte samples", samples.len());
    }
    check_fits(&model)?;
    let per_run = ((MAP.frames.length as usize - HEADER_LEN) / per_sample).min(usize::from(u16::MAX));
    let output_bytes = model.output().bytes();
    let mut results = Vec::with_capacity(samples.len() / per_sample);
    for chunk in samples.chunks(per_run * per_sample) {
        let count = chunk.len() / per_sample;
        let frames = frames_image(&model, chunk)?;
        // Generous: a 290k-MAC model runs 8 samples in about 0.1 s.
        let timeout = Duration::from_secs(30 + count as u64);
        let run = firmware.run(blob, &frames, timeout)?;
        run.check_status()?;
        let parsed = parse_results(&run, count, output_bytes)?;
        results.extend(parsed);
    }
    Ok(results)
}

/// Runs camera frames through the firmware's whole camera path (centred crop, resize,
/// colour conversion, quantization on the device, then invoke) and returns, per frame,
/// the output bytes and the instruction counts. Every frame is `width × height` pixels
/// in `format` (`Gray8`, `Rgb888` or `Rgb565Be`).
pub fn classify_frames(
    firmware: &Firmware,
    blob: &[u8],
    format: PixelFormat,
    width: u16,
    height: u16,
    frames: &[Vec<u8>],
) -> Result<Vec<SampleResult>> {
    let model = Model::from_bytes(blob).map_err(|e| anyhow!("invalid model: {e}"))?;
    check_fits(&model)?;
    let (bytes_per_pixel, channels) = match format {
        PixelFormat::Gray8 => (1, 1),
        PixelFormat::Rgb888 => (3, 3),
        PixelFormat::Rgb565Be => (2, 3),
        PixelFormat::Int8Tensor => bail!("int8 tensors are samples, not camera frames: use infer"),
    };
    let frame_bytes = usize::from(width) * usize::from(height) * bytes_per_pixel;
    if let Some(i) = frames.iter().position(|f| f.len() != frame_bytes) {
        bail!("frame {i} has {} bytes; {width}×{height} {format:?} takes {frame_bytes}", frames[i].len());
    }
    let count = u16::try_from(frames.len()).map_err(|_| anyhow!("{} frames: at most 65535 per run", frames.len()))?;
    let header = Header { format, width, height, channels, count };
    let mut image = header.to_bytes().to_vec();
    for frame in frames {
        image.extend_from_slice(frame);
    }
    let run = firmware.run(blob, &image, Duration::from_secs(30 + u64::from(count)))?;
    run.check_status()?;
    parse_results(&run, frames.len(), model.output().bytes())
}

/// Collects `output`, `layer` and `invoke` lines for frames `0..count`.
fn parse_results(run: &Run, count: usize, output_bytes: usize) -> Result<Vec<SampleResult>> {
    let mut results = vec![SampleResult { output: Vec::new(), instructions: 0, layers: Vec::new() }; count];
    let mut seen = vec![false; count];
    let frame_of = |s: &str| -> Result<usize> {
        let n: usize = s.parse().with_context(|| format!("bad frame number {s:?}"))?;
        if n >= count {
            bail!("firmware reported frame {n} of {count}");
        }
        Ok(n)
    };
    for line in &run.lines {
        let m = line.message.as_str();
        if let Some(rest) = m.strip_prefix("output ") {
            let (n, bytes) = rest.split_once(": ").context("bad output line")?;
            let n = frame_of(n)?;
            results[n].output = parse_bytes(bytes).with_context(|| format!("bad output bytes in {m:?}"))?;
            seen[n] = true;
        } else if let Some(rest) = m.strip_prefix("layer ") {
            // layer {frame} {op} {KIND}: {count} instructions
            let (head, cost) = rest.split_once(": ").context("bad layer line")?;
            let mut parts = head.split_whitespace();
            let n = frame_of(parts.next().unwrap_or(""))?;
            let index: usize = parts.next().unwrap_or("").parse().context("bad layer index")?;
            let op = parts.next().unwrap_or("?").to_string();
            let instructions = parse_cost(cost)?;
            results[n].layers.push(LayerCost { index, op, instructions });
        } else if let Some(rest) = m.strip_prefix("invoke ") {
            let (n, cost) = rest.split_once(": ").context("bad invoke line")?;
            results[frame_of(n)?].instructions = parse_cost(cost)?;
        }
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        bail!("the firmware reported no output for sample {missing} (is its defmt level below debug?)");
    }
    if let Some(bad) = results.iter().position(|r| r.output.len() != output_bytes) {
        bail!("sample {bad}: {} output bytes, the model has {output_bytes}", results[bad].output.len());
    }
    Ok(results)
}

fn parse_cost(text: &str) -> Result<u64> {
    let (count, unit) = text.trim().split_once(' ').context("bad cost")?;
    if unit != "instructions" {
        bail!("cost in {unit:?}, expected instructions");
    }
    count.parse().context("bad cost")
}

/// Mean instructions of layer `index` over the samples.
fn mean_layer(results: &[SampleResult], index: usize) -> f64 {
    let total: u64 =
        results.iter().filter_map(|r| r.layers.iter().find(|l| l.index == index)).map(|l| l.instructions).sum();
    total as f64 / results.len().max(1) as f64
}

fn per_mac(instructions: f64, macs: u64) -> Option<f64> {
    (macs > 0).then(|| instructions / macs as f64)
}

/// The `--json` report of `infer --on qemu`.
pub fn cost_report(model: &Model<'_>, results: &[SampleResult], cpu: Cpu) -> Result<serde_json::Value> {
    let macs = summary::layer_macs(model)?;
    let total_macs: u64 = macs.iter().map(|(_, m)| m).sum();
    let mean_total = results.iter().map(|r| r.instructions).sum::<u64>() as f64 / results.len().max(1) as f64;
    let layers: Vec<_> = macs
        .iter()
        .enumerate()
        .map(|(i, (op, m))| {
            let mean = mean_layer(results, i);
            serde_json::json!({"index": i, "op": op, "macs": m, "instructions_mean": mean,
                               "instructions_per_mac": per_mac(mean, *m)})
        })
        .collect();
    let samples: Vec<_> = results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let layers: Vec<_> = r
                .layers
                .iter()
                .map(|l| serde_json::json!({"index": l.index, "op": l.op, "instructions": l.instructions}))
                .collect();
            serde_json::json!({"index": i, "instructions": r.instructions, "layers": layers})
        })
        .collect();
    Ok(serde_json::json!({
        "target": format!("qemu-{} ({cpu}, {})", cpu.machine(), cpu.rust_target()),
        "cpu": cpu.name(),
        "unit": "executed instructions (QEMU -icount, SysTick)",
        "samples_count": results.len(),
        "macs": total_macs,
        "instructions_mean": mean_total,
        "instructions_per_mac": per_mac(mean_total, total_macs),
        "layers": layers,
        "samples": samples,
    }))
}

/// The human table of `infer --on qemu`: per layer, MACs, mean instructions and
/// instructions per MAC, then the whole invoke.
pub fn cost_table(model: &Model<'_>, results: &[SampleResult]) -> Result<String> {
    use std::fmt::Write;
    let macs = summary::layer_macs(model)?;
    let mut t = String::new();
    writeln!(t, "{:>3}  {:<18} {:>10} {:>14} {:>10}", "#", "layer", "MACs", "instructions", "instr/MAC")?;
    for (i, (op, m)) in macs.iter().enumerate() {
        let mean = mean_layer(results, i);
        let ratio = per_mac(mean, *m).map_or_else(|| "-".to_string(), |r| format!("{r:.2}"));
        writeln!(t, "{i:>3}  {op:<18} {m:>10} {mean:>14.0} {ratio:>10}")?;
    }
    let total_macs: u64 = macs.iter().map(|(_, m)| m).sum();
    let mean_total = results.iter().map(|r| r.instructions).sum::<u64>() as f64 / results.len().max(1) as f64;
    let ratio = per_mac(mean_total, total_macs).map_or_else(|| "-".to_string(), |r| format!("{r:.2}"));
    writeln!(t, "{:>3}  {:<18} {total_macs:>10} {mean_total:>14.0} {ratio:>10}", "", "invoke (total)")?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_firmware_contract() {
        let line = |level: &str, message: &str| LogLine { level: level.into(), message: message.into() };
        let run = Run {
            status: 0,
            lines: vec![
                line("DEBUG", "layer 0 0 Conv2D: 120 instructions"),
                line("DEBUG", "layer 0 1 Dense: 30 instructions"),
                line("DEBUG", "invoke 0: 170 instructions"),
                line("DEBUG", "output 0: [0, 255, 128]"),
                line("INFO", "frame 0: cat score 0.5 (class 1)"),
            ],
        };
        let r = parse_results(&run, 1, 3).unwrap();
        assert_eq!(r[0].output, vec![0, -1, -128]);
        assert_eq!(r[0].instructions, 170);
        assert_eq!(r[0].layers[1], LayerCost { index: 1, op: "Dense".into(), instructions: 30 });
        assert_eq!(run.classifications().count(), 1);
        assert!(parse_results(&run, 2, 3).is_err(), "a missing sample is an error");
    }
}
