//! Checkpoint directories.
//!
//! `DIR/model.safetensors` holds the best weights (tensor `"{node}.{param}"`, for
//! example `layer1.kernel` in Keras's `[KH, KW, C_in, C_out]` layout) with metadata
//! (`classes`, `input`, `epoch`, `val_accuracy`); `DIR/arch.toml` the architecture;
//! `DIR/labels.txt` one class name per line. `DIR/state.safetensors` holds the last
//! finished epoch for `--resume`: weights, optimizer moments (`opt.m.*`, `opt.v.*`),
//! the metrics so far and the run's settings. Every file is written atomically, and
//! the header's keys are sorted, so identical runs write identical bytes.
//!
//! Order after an epoch: the best weights (`model.safetensors` and its companions)
//! first, `state.safetensors` last. A run stopped between the two resumes from the
//! epoch before, computes the same epoch again (training is deterministic) and
//! writes the same files; the other order could record an epoch as finished while
//! its better weights were never written.

use crate::io::fs::{self, write_atomic};
use crate::train::arch::Arch;
use crate::train::metrics::EpochMetrics;
use crate::train::nn::optim::{Kind, Optimizer};
use crate::train::nn::{Grads, Network};
use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The lock file a run holds inside its folder while it writes there.
pub const LOCK_FILE: &str = ".microcnn-lock";

/// An exclusive lock on a run folder, held for as long as the value lives: two runs
/// into one `--out` would mix one's weights with the other's state and metrics.
/// (The file stays: deleting it could let a third run lock a new file while a second
/// still holds the old one.)
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// Takes the lock of `dir` (which must exist), or fails at once when another run
/// holds it.
pub fn lock(dir: &Path) -> Result<RunLock> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("{}: cannot create the lock file", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "{}: another microcnn run is writing this folder; wait for it to finish or choose another --out",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("{}: cannot lock", path.display())),
    }
}

/// The weights file of a checkpoint directory.
pub fn model_path(dir: &Path) -> PathBuf {
    dir.join("model.safetensors")
}

/// The resume state file of a checkpoint directory.
pub fn state_path(dir: &Path) -> PathBuf {
    dir.join("state.safetensors")
}

/// What a checkpoint knows besides the weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Info {
    /// Class names.
    pub classes: Vec<String>,
    /// Epoch the weights come from (1-based; 0 = untrained).
    pub epoch: usize,
    /// Validation accuracy at that epoch, if measured.
    pub val_accuracy: Option<f32>,
}

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn serialize(tensors: Vec<(String, Vec<usize>, Vec<u8>)>, meta: HashMap<String, String>) -> Result<Vec<u8>> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, shape, bytes)| Ok((name.clone(), TensorView::new(Dtype::F32, shape.clone(), bytes)?)))
        .collect::<Result<_, safetensors::SafeTensorError>>()?;
    sorted_header(safetensors::serialize(views, Some(meta))?)
}

/// The same safetensors file with its JSON header's keys in sorted order: `safetensors`
/// writes the metadata map in a `HashMap`'s random order, so two identical runs would
/// give checkpoints that differ byte for byte. Offsets are unchanged and the header
/// keeps its length (the same entries, compact, padded with spaces as before).
fn sorted_header(mut file: Vec<u8>) -> Result<Vec<u8>> {
    let corrupt = || anyhow!("internal error: safetensors wrote a header that does not parse");
    let n = file.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes).ok_or_else(corrupt)? as usize;
    let header = file.get(8..8 + n).ok_or_else(corrupt)?;
    let entries: BTreeMap<String, serde_json::Value> = serde_json::from_slice(header).map_err(|_| corrupt())?;
    let mut text = String::from("{");
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text += &serde_json::to_string(key)?;
        text.push(':');
        text += &if key == "__metadata__" {
            let meta: BTreeMap<String, String> = serde_json::from_value(value.clone()).map_err(|_| corrupt())?;
            serde_json::to_string(&meta)?
        } else {
            serde_json::to_string(value)?
        };
    }
    text.push('}');
    if text.len() > n {
        return Err(corrupt());
    }
    // Padded by hand: a format width (`{text:<n$}`) panics above 65,535, and the
    // header of a state with an optimizer for a 30-layer network is longer.
    let mut padded = text.into_bytes();
    padded.resize(n, b' ');
    file[8..8 + n].copy_from_slice(&padded);
    Ok(file)
}

fn weight_tensors(net: &Network) -> Vec<(String, Vec<usize>, Vec<u8>)> {
    net.nodes
        .iter()
        .flat_map(|n| {
            n.params.iter().map(move |p| (format!("{}.{}", n.name, p.name), p.shape.clone(), to_bytes(&p.data)))
        })
        .collect()
}

fn info_meta(net: &Network, info: &Info) -> HashMap<String, String> {
    let mut meta = HashMap::new();
    meta.insert("format".into(), "microcnn-checkpoint-1".into());
    meta.insert("classes".into(), serde_json::to_string(&info.classes).unwrap_or_default());
    meta.insert("input".into(), serde_json::to_string(&net.input_shape()).unwrap_or_default());
    meta.insert("epoch".into(), info.epoch.to_string());
    if let Some(a) = info.val_accuracy {
        meta.insert("val_accuracy".into(), a.to_string());
    }
    meta
}

#[cfg(test)]
thread_local! {
    /// Tests: the file name whose next writes fail, as a kill before that write would.
    pub(crate) static FAIL_WRITE: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    #[cfg(test)]
    if FAIL_WRITE.with(std::cell::Cell::get).is_some_and(|name| path.file_name().is_some_and(|n| n == name)) {
        bail!("{}: simulated failure", path.display());
    }
    write_atomic(path, bytes)
}

/// Writes `model.safetensors`, `arch.toml` and `labels.txt` into `dir`.
pub fn save(dir: &Path, net: &Network, info: &Info) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the directory", dir.display()))?;
    let bytes = serialize(weight_tensors(net), info_meta(net, info))?;
    write(&dir.join("arch.toml"), net.arch.to_toml().as_bytes())?;
    write(&dir.join("labels.txt"), (info.classes.join("\n") + "\n").as_bytes())?;
    write(&model_path(dir), &bytes)
}

fn read_tensors<'a>(path: &Path, bytes: &'a [u8]) -> Result<(SafeTensors<'a>, HashMap<String, String>)> {
    let st =
        SafeTensors::deserialize(bytes).map_err(|e| anyhow!("{}: not a safetensors file ({e})", path.display()))?;
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok((st, metadata.metadata().clone().unwrap_or_default()))
}

fn f32s(path: &Path, st: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let t = st
        .tensor(name)
        .map_err(|_| anyhow!("{}: no tensor `{name}`; the checkpoint's architecture does not match", path.display()))?;
    if t.dtype() != Dtype::F32 || t.shape() != shape {
        bail!(
            "{}: tensor `{name}` is {:?} {:?}, the architecture needs F32 {shape:?} (the checkpoint's architecture does not match)",
            path.display(),
            t.dtype(),
            t.shape()
        );
    }
    Ok(t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// Loads weights named as `net`'s parameters into it; errors name the file and the
/// first tensor that is missing or has the wrong shape, and extra tensors.
fn load_weights(path: &Path, st: &SafeTensors<'_>, net: &mut Network) -> Result<()> {
    let mut expected = 0;
    for node in &mut net.nodes {
        for p in &mut node.params {
            p.data = f32s(path, st, &format!("{}.{}", node.name, p.name), &p.shape)?;
            expected += 1;
        }
    }
    let present = st.names().iter().filter(|n| !n.starts_with("opt.")).count();
    if present != expected {
        bail!(
            "{}: holds {present} weight tensors, the architecture has {expected} (the checkpoint's architecture does not match)",
            path.display()
        );
    }
    Ok(())
}

fn parse_info(path: &Path, meta: &HashMap<String, String>) -> Result<Info> {
    let classes: Vec<String> = meta
        .get("classes")
        .and_then(|c| serde_json::from_str(c).ok())
        .ok_or_else(|| anyhow!("{}: no class names in the metadata", path.display()))?;
    Ok(Info {
        classes,
        epoch: meta.get("epoch").and_then(|e| e.parse().ok()).unwrap_or(0),
        val_accuracy: meta.get("val_accuracy").and_then(|a| a.parse().ok()),
    })
}

/// Loads a checkpoint directory: its architecture and its best weights.
pub fn load(dir: &Path) -> Result<(Network, Info)> {
    let arch_path = dir.join("arch.toml");
    if !dir.is_dir() || !arch_path.is_file() || !model_path(dir).is_file() {
        bail!("{}: not a checkpoint directory (it needs arch.toml and model.safetensors)", dir.display());
    }
    let arch_text =
        std::fs::read_to_string(&arch_path).with_context(|| format!("{}: cannot read", arch_path.display()))?;
    let path = model_path(dir);
    let bytes = fs::read(&path)?;
    from_parts(&arch_text, &arch_path, &bytes, &path)
}

/// A checkpoint from its architecture text and weights file contents (`arch_path`
/// and `path` name them in errors).
pub fn from_parts(arch_text: &str, arch_path: &Path, bytes: &[u8], path: &Path) -> Result<(Network, Info)> {
    let arch = Arch::parse(arch_text).with_context(|| format!("{}", arch_path.display()))?;
    let mut net = Network::new(&arch, 0).with_context(|| format!("{}", arch_path.display()))?;
    let (st, meta) = read_tensors(path, bytes)?;
    load_weights(path, &st, &mut net)?;
    let info = parse_info(path, &meta)?;
    if info.classes.len() != net.output_size() {
        bail!("{}: {} classes for {} outputs", path.display(), info.classes.len(), net.output_size());
    }
    Ok((net, info))
}

/// Everything `--resume` needs.
#[derive(Clone, Debug)]
pub struct State {
    /// Weights after the last finished epoch.
    pub net: Network,
    /// Optimizer after it.
    pub optimizer: Optimizer,
    /// Metrics of the finished epochs.
    pub metrics: Vec<EpochMetrics>,
    /// Class names.
    pub classes: Vec<String>,
}

fn opt_tensors(net: &Network, prefix: &str, slots: &Grads) -> Vec<(String, Vec<usize>, Vec<u8>)> {
    let mut out = Vec::new();
    for (node, node_slots) in net.nodes.iter().zip(slots) {
        for (p, s) in node.params.iter().zip(node_slots) {
            out.push((format!("{prefix}{}.{}", node.name, p.name), p.shape.clone(), to_bytes(s)));
        }
    }
    out
}

/// Writes `state.safetensors` atomically, with the run's `settings` (hyper-parameters
/// that `--resume` must not change silently, see [`load_settings`]).
pub fn save_state(dir: &Path, state: &State, settings: &BTreeMap<String, String>) -> Result<()> {
    let net = &state.net;
    let mut tensors = weight_tensors(net);
    tensors.extend(opt_tensors(net, "opt.m.", &state.optimizer.m));
    if state.optimizer.kind == Kind::Adam {
        tensors.extend(opt_tensors(net, "opt.v.", &state.optimizer.v));
    }
    let info = Info { classes: state.classes.clone(), epoch: state.metrics.len(), val_accuracy: None };
    let mut meta = info_meta(net, &info);
    meta.insert("optimizer".into(), serde_json::to_string(&state.optimizer.kind)?);
    meta.insert("momentum".into(), state.optimizer.momentum.to_string());
    meta.insert("step".into(), state.optimizer.step.to_string());
    meta.insert("metrics".into(), serde_json::to_string(&state.metrics)?);
    meta.insert("settings".into(), serde_json::to_string(settings)?);
    write(&state_path(dir), &serialize(tensors, meta)?)
}

/// The settings a run's `state.safetensors` was written with (empty for a state
/// written before settings were recorded).
pub fn load_settings(dir: &Path) -> Result<BTreeMap<String, String>> {
    let path = state_path(dir);
    let bytes = fs::read(&path)?;
    let (_, meta) = read_tensors(&path, &bytes)?;
    match meta.get("settings") {
        None => Ok(BTreeMap::new()),
        Some(s) => serde_json::from_str(s).map_err(|e| anyhow!("{}: bad `settings` metadata ({e})", path.display())),
    }
}

/// Loads `state.safetensors` for the architecture in `dir`. A folder without one (a run
/// stopped before its first epoch finished) is "no finished epoch", whatever else it holds.
pub fn load_state(dir: &Path) -> Result<State> {
    if !state_path(dir).is_file() {
        bail!("{}: no finished epoch to resume; start again without --resume", dir.display());
    }
    let arch = Arch::load(&dir.join("arch.toml"))?;
    let mut net = Network::new(&arch, 0)?;
    let path = state_path(dir);
    let bytes = fs::read(&path)?;
    let (st, meta) = read_tensors(&path, &bytes)?;
    load_weights(&path, &st, &mut net)?;
    let info = parse_info(&path, &meta)?;
    let bad = |what: &str| anyhow!("{}: bad or missing `{what}` metadata", path.display());
    let kind: Kind =
        meta.get("optimizer").and_then(|k| serde_json::from_str(k).ok()).ok_or_else(|| bad("optimizer"))?;
    let momentum: f32 = meta.get("momentum").and_then(|m| m.parse().ok()).ok_or_else(|| bad("momentum"))?;
    let mut optimizer = Optimizer::new(kind, momentum, &net);
    optimizer.step = meta.get("step").and_then(|s| s.parse().ok()).ok_or_else(|| bad("step"))?;
    let metrics: Vec<EpochMetrics> =
        meta.get("metrics").and_then(|m| serde_json::from_str(m).ok()).ok_or_else(|| bad("metrics"))?;
    for (prefix, slots) in [("opt.m.", &mut optimizer.m), ("opt.v.", &mut optimizer.v)] {
        for (node, node_slots) in net.nodes.iter().zip(slots.iter_mut()) {
            for (p, s) in node.params.iter().zip(node_slots.iter_mut()) {
                *s = f32s(&path, &st, &format!("{prefix}{}.{}", node.name, p.name), &p.shape)?;
            }
        }
    }
    Ok(State { net, optimizer, metrics, classes: info.classes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_longer_than_a_format_width_is_sorted() {
        // 3,000 tensors: a JSON header of over 65,535 bytes (the largest format width).
        let tensors: Vec<_> =
            (0..3000).rev().map(|i| (format!("layer{i:05}.weight"), vec![1], to_bytes(&[i as f32]))).collect();
        let meta = HashMap::from([("b".to_string(), "2".to_string()), ("a".to_string(), "1".to_string())]);
        let file = serialize(tensors, meta).unwrap();
        let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
        assert!(n > 65_535, "{n}");
        let header = std::str::from_utf8(&file[8..8 + n]).unwrap();
        assert!(header.starts_with(r#"{"__metadata__":{"a":"1","b":"2"},"layer00000.weight":"#), "{}", &header[..80]);
        let loaded = safetensors::SafeTensors::deserialize(&file).unwrap();
        assert_eq!(loaded.tensor("layer02999.weight").unwrap().data(), 2999f32.to_le_bytes());
    }
}
