//! A Keras-`summary()`-like report of a `.mcnn` model: one row per operator with its
//! output shape, parameters, MACs and place in the arena, plus totals.

use microcnn_core::{Interpreter, Model};
use serde::Serialize;

/// One operator's row.
#[derive(Clone, Debug, Serialize)]
pub struct Layer {
    /// Operator index.
    pub index: usize,
    /// Operator kind (Keras-style name).
    pub op: String,
    /// Output shape `[H, W, C]`.
    pub output_shape: [usize; 3],
    /// Weights and biases.
    pub params: u64,
    /// Multiply-accumulates per invoke.
    pub macs: u64,
    /// Output's arena offset.
    pub arena_offset: usize,
    /// Output's bytes.
    pub bytes: usize,
    /// Constant bytes in the blob (weights, bias, multipliers, shifts).
    pub constant_bytes: usize,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Model name.
    pub name: String,
    /// Input shape `[H, W, C]`.
    pub input_shape: [usize; 3],
    /// Output shape `[H, W, C]`.
    pub output_shape: [usize; 3],
    /// Arena bytes for activations.
    pub arena_bytes: usize,
    /// Bytes of the interpreter struct itself (RAM besides the arena).
    pub interpreter_bytes: usize,
    /// Blob size (flash).
    pub flash_bytes: usize,
    /// Total parameters.
    pub params: u64,
    /// Total MACs per invoke.
    pub macs: u64,
    /// Class labels.
    pub labels: Vec<String>,
    /// One row per operator.
    pub layers: Vec<Layer>,
}

/// Per-layer MACs of `model`, in operator order.
pub fn layer_macs(model: &Model<'_>) -> anyhow::Result<Vec<(String, u64)>> {
    (0..model.op_count())
        .map(|i| {
            let op = model.operator(i).map_err(|e| anyhow::anyhow!("operator {i}: {e}"))?;
            let input = model.tensor(op.inputs.get(0).unwrap_or(0)).map_err(|e| anyhow::anyhow!("{e}"))?;
            let output = model.tensor(op.output).map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok((op.kind.name().to_string(), op.macs(&input.shape, &output.shape)))
        })
        .collect()
}

fn dims(s: microcnn_core::Shape) -> [usize; 3] {
    [s.height, s.width, s.channels]
}

/// Builds the report.
pub fn summarize(model: &Model<'_>) -> Summary {
    let mut layers = Vec::new();
    for index in 0..model.op_count() {
        let Ok(op) = model.operator(index) else { continue };
        let input = model.tensor(op.inputs.get(0).unwrap_or(0)).map(|t| t.shape).unwrap_or_default();
        let Ok(out) = model.tensor(op.output) else { continue };
        layers.push(Layer {
            index,
            op: op.kind.name().to_string(),
            output_shape: dims(out.shape),
            params: op.params_count(),
            macs: op.macs(&input, &out.shape),
            arena_offset: out.arena_offset,
            bytes: out.bytes(),
            constant_bytes: op.constant_bytes(),
        });
    }
    Summary {
        name: model.name().unwrap_or("").to_string(),
        input_shape: dims(model.input().shape),
        output_shape: dims(model.output().shape),
        arena_bytes: model.arena_size(),
        interpreter_bytes: std::mem::size_of::<Interpreter<'static, 'static>>() + std::mem::size_of::<Model<'static>>(),
        flash_bytes: model.as_bytes().len(),
        params: layers.iter().map(|l| l.params).sum(),
        macs: layers.iter().map(|l| l.macs).sum(),
        labels: model.labels().map(str::to_string).collect(),
        layers,
    }
}

/// Renders the report as a text table.
pub fn render(s: &Summary) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let rule = "─".repeat(92);
    let _ = writeln!(out, "Model: \"{}\"", s.name);
    let _ = writeln!(out, "{rule}");
    let _ = writeln!(
        out,
        "{:<4} {:<16} {:<16} {:>10} {:>12} {:>12} {:>10}",
        "#", "Layer", "Output shape", "Params", "MACs", "Arena off.", "Bytes"
    );
    let _ = writeln!(out, "{rule}");
    let _ = writeln!(
        out,
        "{:<4} {:<16} {:<16} {:>10} {:>12} {:>12} {:>10}",
        "-",
        "Input",
        format!("{:?}", s.input_shape),
        0,
        0,
        "",
        s.input_shape.iter().product::<usize>()
    );
    for l in &s.layers {
        let _ = writeln!(
            out,
            "{:<4} {:<16} {:<16} {:>10} {:>12} {:>12} {:>10}",
            l.index,
            l.op,
            format!("{:?}", l.output_shape),
            l.params,
            l.macs,
            l.arena_offset,
            l.bytes
        );
    }
    let _ = writeln!(out, "{rule}");
    let _ = writeln!(out, "Total params: {}", s.params);
    let _ = writeln!(out, "Total MACs per inference: {}", s.macs);
    let _ = writeln!(
        out,
        "Arena (RAM): {} bytes of activations + {} bytes of interpreter state",
        s.arena_bytes, s.interpreter_bytes
    );
    let _ = writeln!(out, "Model blob (flash): {} bytes", s.flash_bytes);
    out
}

/// One layer of an architecture (f32 network) summary.
#[derive(Clone, Debug, Serialize)]
pub struct ArchLayer {
    /// Node name (`layer3`, `layer4.shortcut`, …).
    pub name: String,
    /// Layer kind.
    pub kind: String,
    /// Output shape `[H, W, C]`.
    pub output_shape: [usize; 3],
    /// Parameters (batch-norm moving statistics included, as Keras counts them).
    pub params: usize,
    /// Multiply-accumulates per image.
    pub macs: usize,
}

/// Summary of an architecture: the f32 layers, and what the int8 model will need.
#[derive(Clone, Debug, Serialize)]
pub struct ArchSummary {
    /// Name.
    pub name: String,
    /// Input shape.
    pub input_shape: [usize; 3],
    /// One row per layer.
    pub layers: Vec<ArchLayer>,
    /// Total parameters.
    pub params: usize,
    /// Total MACs.
    pub macs: usize,
    /// The int8 model's arena bytes.
    pub arena_bytes: usize,
    /// Bytes of the interpreter besides the arena.
    pub interpreter_bytes: usize,
    /// The int8 model's blob bytes (flash).
    pub flash_bytes: usize,
    /// Operators of the int8 model.
    pub int8_operators: usize,
}

/// Summarizes a network; the int8 figures come from quantizing it with placeholder
/// ranges (sizes do not depend on the values) and planning its arena.
pub fn summarize_arch(net: &crate::train::nn::Network) -> anyhow::Result<ArchSummary> {
    let layers: Vec<ArchLayer> = net
        .nodes
        .iter()
        .skip(1)
        .map(|n| ArchLayer {
            name: n.name.clone(),
            kind: n.layer.kind().to_string(),
            output_shape: n.shape,
            params: n.param_count(),
            macs: n.macs(&net.nodes),
        })
        .collect();
    let folded = crate::quantize::ptq::fold(net)?;
    let quant = crate::quantize::ptq::tensor_quant(&folded, &vec![(-1.0, 1.0); folded.nodes.len()]);
    let graph = crate::quantize::ptq::to_graph(&folded, &quant, "", &[])?;
    let blob = crate::compile::blob::write(&graph, &crate::compile::plan::plan(&graph))?;
    let model = Model::from_bytes(&blob).map_err(|e| anyhow::anyhow!("internal error: {e}"))?;
    let s = summarize(&model);
    Ok(ArchSummary {
        name: net.arch.name.clone().unwrap_or_default(),
        input_shape: net.input_shape(),
        params: layers.iter().map(|l| l.params).sum(),
        macs: layers.iter().map(|l| l.macs).sum(),
        layers,
        arena_bytes: s.arena_bytes,
        interpreter_bytes: s.interpreter_bytes,
        flash_bytes: s.flash_bytes,
        int8_operators: model.op_count(),
    })
}

/// Renders an architecture summary as a Keras-like table.
pub fn render_arch(s: &ArchSummary) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let rule = "─".repeat(76);
    let _ = writeln!(out, "Architecture: \"{}\"", s.name);
    let _ = writeln!(out, "{rule}");
    let _ = writeln!(out, "{:<22} {:<18} {:<16} {:>8} {:>10}", "Layer", "Type", "Output shape", "Params", "MACs");
    let _ = writeln!(out, "{rule}");
    let _ = writeln!(out, "{:<22} {:<18} {:<16} {:>8} {:>10}", "input", "input", format!("{:?}", s.input_shape), 0, 0);
    for l in &s.layers {
        let _ = writeln!(
            out,
            "{:<22} {:<18} {:<16} {:>8} {:>10}",
            l.name,
            l.kind,
            format!("{:?}", l.output_shape),
            l.params,
            l.macs
        );
    }
    let _ = writeln!(out, "{rule}");
    let _ = writeln!(out, "Total params: {}", s.params);
    let _ = writeln!(out, "Total MACs per inference: {}", s.macs);
    let _ = writeln!(
        out,
        "As int8 ({} operators): arena {} bytes + {} bytes of interpreter state (RAM), blob {} bytes (flash)",
        s.int8_operators, s.arena_bytes, s.interpreter_bytes, s.flash_bytes
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::nn::Network;
    use crate::train::presets::{preset, PRESETS};

    #[test]
    fn every_preset_fits_64k_of_arena_and_256k_of_flash() {
        for (name, _) in PRESETS {
            let net = Network::new(&preset(name).unwrap(), 0).unwrap();
            let s = summarize_arch(&net).unwrap();
            assert!(s.arena_bytes <= 64 * 1024, "{name}: arena {}", s.arena_bytes);
            assert!(s.flash_bytes <= 256 * 1024, "{name}: flash {}", s.flash_bytes);
            assert_eq!(s.input_shape, [32, 32, 3]);
        }
    }
}
