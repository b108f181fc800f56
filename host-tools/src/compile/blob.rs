//! Writes a [`Graph`] and its [`Plan`] as a `.mcnn` blob (layout in `core/FORMAT.md`,
//! offsets from [`microcnn_core::format`]).

use crate::compile::graph::{ChannelConsts, Graph, LayerParams};
use crate::compile::plan::Plan;
use anyhow::{bail, Result};
use microcnn_core::crc::crc32;
use microcnn_core::format::{self, header, meta, op, tensor, ABSENT};
use microcnn_core::ops::conv::Window;
use microcnn_core::ops::softmax::SoftmaxParams;

/// The tool name and version recorded in every blob.
pub const TOOL: &str = concat!("microcnn ", env!("CARGO_PKG_VERSION"));

/// Serialises `graph` with `plan` into a blob, and checks it loads in the core.
pub fn write(graph: &Graph, plan: &Plan) -> Result<Vec<u8>> {
    if graph.tensors.len() > usize::from(u16::MAX) || graph.ops.len() + 1 >= usize::from(u16::MAX) {
        bail!("model too large: {} tensors, {} operators", graph.tensors.len(), graph.ops.len());
    }
    let mut constants = Constants::default();
    let mut ops = Vec::with_capacity(graph.ops.len() * format::OP_RECORD_LEN);
    for def in &graph.ops {
        let mut r = [0_u8; format::OP_RECORD_LEN];
        r[op::KIND] = def.params.kind() as u8;
        put_u16(&mut r, op::OUTPUT, def.output);
        put_u16(&mut r, op::INPUT_COUNT, def.inputs.len());
        if def.inputs.len() <= 2 {
            for (i, &t) in def.inputs.iter().enumerate() {
                put_u16(&mut r, op::INPUT0 + 2 * i, t);
            }
        } else {
            let list: Vec<u8> = def.inputs.iter().flat_map(|&t| (t as u16).to_le_bytes()).collect();
            put_u32(&mut r, op::INPUT_LIST, constants.add(&list));
        }
        match &def.params {
            LayerParams::Conv2d { window, weights, quant } => {
                put_window(&mut r, window);
                put_u16(&mut r, op::DEPTH_MULTIPLIER, 1);
                put_channel_consts(&mut r, &mut constants, weights, quant);
            }
            LayerParams::DepthwiseConv2d { window, depth_multiplier, weights, quant } => {
                put_window(&mut r, window);
                put_u16(&mut r, op::DEPTH_MULTIPLIER, *depth_multiplier);
                put_channel_consts(&mut r, &mut constants, weights, quant);
            }
            LayerParams::FullyConnected { weights, quant } => {
                // Re-laid for the kernels (`format::dense_index`); the graph keeps `[C_out, N]`.
                let units = quant.multipliers.len();
                let n = def.inputs.first().and_then(|&t| graph.tensors.get(t)).map_or(0, |t| t.shape.elements());
                let Some(mut blocked) = format::dense_weights_len(units, n).map(|len| vec![0_i8; len]) else {
                    bail!("dense layer of {units} units over {n} inputs is too large");
                };
                if !format::pack_dense(weights, units, n, &mut blocked) {
                    bail!("dense layer: {} weights for {units} units over {n} inputs", weights.len());
                }
                r[op::WEIGHT_LAYOUT] = format::weight_layout::DENSE_BLOCKED;
                put_channel_consts(&mut r, &mut constants, &blocked, quant);
            }
            LayerParams::MaxPool2d { window, act } | LayerParams::AvgPool2d { window, act } => {
                put_window(&mut r, window);
                put_act(&mut r, *act);
            }
            LayerParams::Mean { mode, multiplier, shift } => {
                r[op::PARAM0] = *mode;
                put_i32s(&mut r, op::PARAM0 + 4, &[*multiplier, *shift]);
            }
            LayerParams::Add { params, act } => {
                put_i32s(&mut r, op::PARAM0, params);
                r[op::PARAM0 + 28] = act.0 as u8;
                r[op::PARAM0 + 29] = act.1 as u8;
            }
            LayerParams::Softmax { input_multiplier, input_left_shift, diff_min } => {
                put_i32s(&mut r, op::PARAM0, &[*input_multiplier, *input_left_shift, *diff_min]);
                // The exps of the 256 possible differences, for the kernel to read.
                let params = SoftmaxParams {
                    input_multiplier: *input_multiplier,
                    input_left_shift: *input_left_shift,
                    diff_min: *diff_min,
                    exp_table: None,
                };
                let table: Vec<i32> = (0..format::SOFTMAX_TABLE_LEN).map(|k| params.exp_table_entry(k)).collect();
                put_u32(&mut r, op::EXP_TABLE, constants.add_i32s(&table));
            }
            LayerParams::Requantize { multiplier, shift, act } => {
                put_i32s(&mut r, op::PARAM0, &[*multiplier, *shift]);
                put_act(&mut r, *act);
            }
            LayerParams::Concatenation | LayerParams::Reshape => {}
        }
        ops.extend_from_slice(&r);
    }

    let mut tensors = Vec::with_capacity(graph.tensors.len() * format::TENSOR_RECORD_LEN);
    for (t, def) in graph.tensors.iter().enumerate() {
        let mut r = [0_u8; format::TENSOR_RECORD_LEN];
        put_u32(&mut r, tensor::ARENA_OFFSET, plan.offsets[t]);
        put_u16(&mut r, tensor::HEIGHT, def.shape.height);
        put_u16(&mut r, tensor::WIDTH, def.shape.width);
        put_u16(&mut r, tensor::CHANNELS, def.shape.channels);
        put_u16(&mut r, tensor::ALIAS_OF, plan.alias_of[t]);
        r[tensor::SCALE..tensor::SCALE + 4].copy_from_slice(&def.scale.to_le_bytes());
        r[tensor::ZERO_POINT..tensor::ZERO_POINT + 4].copy_from_slice(&def.zero_point.to_le_bytes());
        put_u16(&mut r, tensor::FIRST, plan.first[t]);
        put_u16(&mut r, tensor::LAST, plan.last[t]);
        tensors.extend_from_slice(&r);
    }

    let mut metadata = Vec::new();
    let mut entry = |tag: u8, body: &[u8]| -> Result<()> {
        if body.len() > usize::from(u16::MAX) {
            bail!("metadata entry {tag} is too long ({} bytes)", body.len());
        }
        metadata.push(tag);
        metadata.extend_from_slice(&(body.len() as u16).to_le_bytes());
        metadata.extend_from_slice(body);
        Ok(())
    };
    if !graph.name.is_empty() {
        entry(meta::NAME, graph.name.as_bytes())?;
    }
    entry(meta::TOOL, TOOL.as_bytes())?;
    if !graph.labels.is_empty() {
        // One label per line: a label may not be empty or hold a line break, and
        // there is one per output channel (the loader checks it too).
        if let Some(bad) = graph.labels.iter().find(|l| l.trim().is_empty() || l.contains(['\n', '\r'])) {
            bail!("class label {bad:?} is empty or holds a line break");
        }
        let outputs = graph.tensors[graph.output].shape.channels;
        if graph.labels.len() != outputs {
            bail!("{} class labels for {outputs} output channels", graph.labels.len());
        }
        entry(meta::LABELS, graph.labels.join("\n").as_bytes())?;
    }
    if let Some(p) = &graph.preprocess {
        let mut body = vec![p.channels, 0, 0, 0];
        body.extend_from_slice(&p.pixel_scale.to_le_bytes());
        body.extend_from_slice(&p.pixel_offset.to_le_bytes());
        entry(meta::PREPROCESS, &body)?;
    }

    if !graph.output_dims.is_empty() {
        let body: Vec<u8> = graph.output_dims.iter().flat_map(|&d| (d as u16).to_le_bytes()).collect();
        entry(meta::OUTPUT_DIMS, &body)?;
    }

    let tensors_offset = format::HEADER_LEN;
    let ops_offset = tensors_offset + tensors.len();
    let constants_offset = (ops_offset + ops.len()).next_multiple_of(16);
    let metadata_offset = constants_offset + constants.bytes.len();
    let total = metadata_offset + metadata.len();
    if total > u32::MAX as usize {
        bail!("model too large: {total} bytes");
    }
    let mut blob = vec![0_u8; total];
    blob[header::MAGIC..header::MAGIC + 4].copy_from_slice(&format::MAGIC);
    put_u16(&mut blob, header::VERSION, usize::from(format::VERSION));
    put_u16(&mut blob, header::HEADER_LEN, format::HEADER_LEN);
    put_u32(&mut blob, header::TOTAL_LEN, total);
    put_u32(&mut blob, header::ARENA_SIZE, plan.arena_size);
    put_u16(&mut blob, header::TENSOR_COUNT, graph.tensors.len());
    put_u16(&mut blob, header::OP_COUNT, graph.ops.len());
    put_u16(&mut blob, header::INPUT_TENSOR, graph.input);
    put_u16(&mut blob, header::OUTPUT_TENSOR, graph.output);
    put_u32(&mut blob, header::TENSORS_OFFSET, tensors_offset);
    put_u32(&mut blob, header::OPS_OFFSET, ops_offset);
    put_u32(&mut blob, header::CONSTANTS_OFFSET, constants_offset);
    put_u32(&mut blob, header::CONSTANTS_LEN, constants.bytes.len());
    put_u32(&mut blob, header::METADATA_OFFSET, metadata_offset);
    put_u32(&mut blob, header::METADATA_LEN, metadata.len());
    blob[tensors_offset..ops_offset].copy_from_slice(&tensors);
    blob[ops_offset..ops_offset + ops.len()].copy_from_slice(&ops);
    blob[constants_offset..metadata_offset].copy_from_slice(&constants.bytes);
    blob[metadata_offset..].copy_from_slice(&metadata);
    let crc = crc32(&blob[header::CRC_START..]);
    put_u32(&mut blob, header::CRC, crc as usize);

    if let Err(e) = microcnn_core::Model::from_bytes(&blob) {
        bail!("internal error: the written blob does not validate: {e}");
    }
    Ok(blob)
}

/// The constant section, each entry aligned to 4 bytes.
#[derive(Default)]
struct Constants {
    bytes: Vec<u8>,
}

impl Constants {
    fn add(&mut self, data: &[u8]) -> usize {
        let offset = self.bytes.len().next_multiple_of(4);
        self.bytes.resize(offset, 0);
        self.bytes.extend_from_slice(data);
        offset
    }

    fn add_i32s(&mut self, values: &[i32]) -> usize {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.add(&bytes)
    }
}

fn put_channel_consts(r: &mut [u8], constants: &mut Constants, weights: &[i8], quant: &ChannelConsts) {
    let weight_bytes: Vec<u8> = weights.iter().map(|&w| w as u8).collect();
    put_u32(r, op::WEIGHTS, constants.add(&weight_bytes));
    match &quant.bias {
        Some(bias) => put_u32(r, op::BIAS, constants.add_i32s(bias)),
        None => r[op::BIAS..op::BIAS + 4].copy_from_slice(&ABSENT.to_le_bytes()),
    }
    put_u32(r, op::MULTIPLIERS, constants.add_i32s(&quant.multipliers));
    put_u32(r, op::SHIFTS, constants.add_i32s(&quant.shifts));
    put_act(r, (quant.act_min, quant.act_max));
}

fn put_window(r: &mut [u8], w: &Window) {
    put_u16(r, op::KERNEL_H, w.kernel_h);
    put_u16(r, op::KERNEL_W, w.kernel_w);
    put_u16(r, op::STRIDE_H, w.stride_h);
    put_u16(r, op::STRIDE_W, w.stride_w);
    put_u16(r, op::DILATION_H, w.dilation_h);
    put_u16(r, op::DILATION_W, w.dilation_w);
    put_u16(r, op::PAD_TOP, w.pad_top);
    put_u16(r, op::PAD_LEFT, w.pad_left);
}

fn put_act(r: &mut [u8], (lo, hi): (i8, i8)) {
    r[op::ACT_MIN] = lo as u8;
    r[op::ACT_MAX] = hi as u8;
}

fn put_i32s(r: &mut [u8], at: usize, values: &[i32]) {
    for (i, v) in values.iter().enumerate() {
        r[at + 4 * i..at + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
}

fn put_u16(r: &mut [u8], at: usize, value: usize) {
    r[at..at + 2].copy_from_slice(&(value.min(usize::from(u16::MAX)) as u16).to_le_bytes());
}

fn put_u32(r: &mut [u8], at: usize, value: usize) {
    r[at..at + 4].copy_from_slice(&(value.min(u32::MAX as usize) as u32).to_le_bytes());
}
