//! Learning inside the QEMU firmware: a scripted session in the frames region
//! (`microcnn_layout::session`), whose defmt lines give the head's bytes and the
//! instructions spent.

use crate::data::dataset::Dataset;
use crate::deploy::qemu::{frames_image, Firmware};
use crate::inspect::eval;
use anyhow::{bail, Context, Result};
use microcnn_core::learn::{Method, SgdConfig};
use microcnn_core::Model;
use microcnn_layout::session;
use serde::Serialize;
use std::time::Duration;

/// What the chip reported.
#[derive(Clone, Debug, Serialize)]
pub struct ChipLearning {
    /// The head's bytes, as the chip wrote them to its learned region.
    #[serde(skip)]
    pub head: Vec<u8>,
    /// Instructions per learned frame (features + update), in frame order.
    pub learn_instructions: Vec<u64>,
    /// Instructions of the training pass (SGD; about nothing for prototypes).
    pub train_instructions: u64,
    /// Bytes of RAM of the chip's learner.
    pub learner_ram_bytes: u64,
}

/// The session image for `data` (all learned, none classified).
pub fn session_image(model: &Model<'_>, data: &Dataset, method: Method, config: &SgdConfig) -> Result<Vec<u8>> {
    let inputs = eval::quantize_inputs(model, data)?;
    let header = session::Header {
        method: method.code(),
        epochs: config.epochs,
        learning_rate_bits: config.learning_rate.to_bits(),
        learn_count: u16::try_from(data.len()).context("too many images for one session")?,
        classify_count: 0,
    };
    let mut image = header.to_bytes().to_vec();
    image.extend(data.labels.iter().map(|&l| l as u8));
    image.resize(header.frames_offset(), 0);
    image.extend(frames_image(model, &inputs)?);
    Ok(image)
}

fn number_after(line: &str, word: &str) -> Option<u64> {
    let rest = line.split_once(word)?.1.trim_start();
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Learns `data` inside `firmware` and returns the chip's head and costs.
pub fn learn(
    firmware: &Firmware,
    blob: &[u8],
    data: &Dataset,
    method: Method,
    config: &SgdConfig,
) -> Result<ChipLearning> {
    let model = Model::from_bytes(blob).map_err(|e| anyhow::anyhow!("{e}"))?;
    let image = session_image(&model, data, method, config)?;
    let run = firmware.run(blob, &image, Duration::from_secs(600))?;
    if let Some(error) = run.errors().next() {
        bail!("the chip refused: {}", error.message);
    }
    if run.status != 0 {
        bail!("the QEMU firmware ended with status {}", run.status);
    }
    let lines: Vec<&str> = run.lines.iter().map(|l| l.message.as_str()).collect();
    let head_line = lines.iter().find(|l| l.starts_with("head ")).context("the chip printed no head")?;
    let list = head_line.split_once('[').and_then(|(_, r)| r.split_once(']')).map_or("", |(l, _)| l);
    let head = list
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse::<u8>())
        .collect::<Result<Vec<u8>, _>>()
        .context("unreadable head line")?;
    let learn_instructions =
        lines.iter().filter(|l| l.starts_with("learn ")).filter_map(|l| number_after(l, ",")).collect();
    let train_instructions =
        lines.iter().find(|l| l.starts_with("train:")).and_then(|l| number_after(l, "samples,")).unwrap_or(0);
    let learner_ram_bytes =
        lines.iter().find(|l| l.starts_with("learner:")).and_then(|l| number_after(l, ":")).unwrap_or(0);
    Ok(ChipLearning { head, learn_instructions, train_instructions, learner_ram_bytes })
}
