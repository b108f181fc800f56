//! Layer-by-layer comparison of two runs of one model (`microcnn diff`): the host
//! engine against the firmware on an emulated chip. Both give every operator's output
//! tensor; the first operator whose output differs, and its first differing element,
//! is where host and device part ways (later layers only inherit the difference).

use anyhow::{anyhow, bail, Result};
use microcnn_core::{Interpreter, Model};

/// Every operator's output tensor for one sample, computed on the host, operator by
/// operator (the same kernels [`Interpreter::invoke`] runs).
pub fn host_layer_outputs(model: &Model<'_>, sample: &[i8]) -> Result<Vec<Vec<i8>>> {
    if sample.len() != model.input().bytes() {
        bail!("a sample of {} bytes for a {} byte input", sample.len(), model.input().bytes());
    }
    let mut arena = vec![0_u8; model.arena_size()];
    let mut net = Interpreter::new(model, &mut arena).map_err(|e| anyhow!("{e}"))?;
    net.input_mut().copy_from_slice(sample);
    let mut layers = Vec::with_capacity(model.op_count());
    for index in 0..model.op_count() {
        net.invoke_op(index).map_err(|e| anyhow!("operator {index}: {e}"))?;
        let operator = model.operator(index).map_err(|e| anyhow!("operator {index}: {e}"))?;
        let info = model.tensor(operator.output).map_err(|e| anyhow!("operator {index}: {e}"))?;
        layers.push(net.tensor_data(&info).to_vec());
    }
    Ok(layers)
}

/// Where two runs first differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerDifference {
    /// The operator's index.
    pub layer: usize,
    /// Its kind (`Conv2D`, …).
    pub op: String,
    /// The first differing element, in the output tensor's NHWC order.
    pub element: usize,
    /// That element as (row, column, channel) of the output tensor.
    pub position: (usize, usize, usize),
    /// The host's value.
    pub host: i8,
    /// The device's value.
    pub device: i8,
    /// How many of the layer's elements differ.
    pub differing: usize,
    /// The layer's elements.
    pub elements: usize,
}

/// The outcome of a comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// Every layer's output is the same, byte for byte.
    Identical {
        /// Layers compared.
        layers: usize,
    },
    /// The first layer that differs.
    Differs(LayerDifference),
}

/// Compares the layer outputs of two runs of `model`.
pub fn compare(model: &Model<'_>, host: &[Vec<i8>], device: &[Vec<i8>]) -> Result<Comparison> {
    if host.len() != model.op_count() || device.len() != model.op_count() {
        bail!("{} host and {} device layers for a {}-operator model", host.len(), device.len(), model.op_count());
    }
    for (layer, (h, d)) in host.iter().zip(device).enumerate() {
        let operator = model.operator(layer).map_err(|e| anyhow!("operator {layer}: {e}"))?;
        let info = model.tensor(operator.output).map_err(|e| anyhow!("operator {layer}: {e}"))?;
        if h.len() != d.len() {
            bail!("layer {layer}: {} host bytes, {} device bytes", h.len(), d.len());
        }
        let Some(element) = h.iter().zip(d).position(|(a, b)| a != b) else { continue };
        let shape = info.shape;
        let channels = shape.channels.max(1);
        let width = shape.width.max(1);
        let position = (element / channels / width, element / channels % width, element % channels);
        return Ok(Comparison::Differs(LayerDifference {
            layer,
            op: operator.kind.name().to_string(),
            element,
            position,
            host: h[element],
            device: d[element],
            differing: h.iter().zip(d).filter(|(a, b)| a != b).count(),
            elements: h.len(),
        }));
    }
    Ok(Comparison::Identical { layers: host.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_model() -> Vec<u8> {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/vectors/small_cnn_28x28/model.tflite");
        crate::tflite::to_blob(&path).unwrap()
    }

    #[test]
    fn host_layers_end_in_the_invoke_output() {
        let blob = small_model();
        let model = Model::from_bytes(&blob).unwrap();
        let sample: Vec<i8> = (0..model.input().bytes()).map(|i| (i * 7 % 251) as i8).collect();
        let layers = host_layer_outputs(&model, &sample).unwrap();
        assert_eq!(layers.len(), model.op_count());
        let whole = crate::inspect::run::run_samples(&model, &sample).unwrap();
        assert_eq!(layers.last().unwrap(), &whole);
        assert_eq!(compare(&model, &layers, &layers).unwrap(), Comparison::Identical { layers: 7 });
    }

    #[test]
    fn the_first_differing_layer_and_element_are_named() {
        let blob = small_model();
        let model = Model::from_bytes(&blob).unwrap();
        let sample = vec![3_i8; model.input().bytes()];
        let host = host_layer_outputs(&model, &sample).unwrap();
        let mut device = host.clone();
        // Layer 2 (the second conv, 14×14×16 output) at row 1, column 2, channel 3,
        // and everything after it.
        let element = (14 + 2) * 16 + 3;
        device[2][element] = device[2][element].wrapping_add(1);
        device[2][element + 5] = device[2][element + 5].wrapping_add(1);
        device[5][0] = device[5][0].wrapping_add(1);
        let Comparison::Differs(d) = compare(&model, &host, &device).unwrap() else { panic!("no difference found") };
        assert_eq!((d.layer, d.op.as_str(), d.element, d.position), (2, "Conv2D", element, (1, 2, 3)));
        assert_eq!((d.host, d.device), (host[2][element], host[2][element].wrapping_add(1)));
        assert_eq!((d.differing, d.elements), (2, 14 * 14 * 16));
    }
}
