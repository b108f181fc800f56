//! Runs a validated model in a caller-provided arena.

use crate::error::Error;
use crate::model::{Model, OpParams, Operator, TensorInfo};
use crate::ops::{add, concat, conv, dense, depthwise, mean, pool, requantize, softmax};
use core::cell::Cell;

/// When a per-layer hook is called (see [`Interpreter::invoke_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Phase {
    /// Just before the operator runs.
    Start,
    /// Just after it ran.
    End,
}

/// An interpreter: a model plus the arena that holds its activations.
///
/// ```
/// # fn demo(blob: &[u8]) -> Result<(), microcnn_core::Error> {
/// use microcnn_core::{Interpreter, Model};
/// let model = Model::from_bytes(blob)?;
/// let mut arena = [0u8; 16 * 1024];
/// let mut net = Interpreter::new(&model, &mut arena)?;
/// net.input_mut().fill(0);
/// net.invoke()?;
/// let best: heapless::Vec<(u16, i8), 3> = net.top_k();
/// # let _ = best; Ok(()) }
/// ```
pub struct Interpreter<'m, 'a> {
    model: &'m Model<'a>,
    arena: &'m mut [i8],
}

impl<'m, 'a> Interpreter<'m, 'a> {
    /// Prepares an interpreter. Fails with [`Error::ArenaTooSmall`] when `arena` is
    /// shorter than [`Model::arena_size`].
    pub fn new(model: &'m Model<'a>, arena: &'m mut [u8]) -> Result<Self, Error> {
        let needed = model.arena_size();
        if arena.len() < needed {
            return Err(Error::ArenaTooSmall { needed, available: arena.len() });
        }
        let arena: &mut [i8] = bytemuck::cast_slice_mut(arena);
        Ok(Self { model, arena: &mut arena[..needed] })
    }

    /// The model.
    pub fn model(&self) -> &'m Model<'a> {
        self.model
    }

    /// The input tensor's bytes, to fill before [`invoke`](Self::invoke).
    pub fn input_mut(&mut self) -> &mut [i8] {
        let range = self.model.input().arena_range();
        self.arena.get_mut(range).unwrap_or(&mut [])
    }

    /// The output tensor's bytes after [`invoke`](Self::invoke).
    pub fn output(&self) -> &[i8] {
        let range = self.model.output().arena_range();
        self.arena.get(range).unwrap_or(&[])
    }

    /// Runs every operator in order.
    pub fn invoke(&mut self) -> Result<(), Error> {
        self.invoke_with(|_, _| {})
    }

    /// Runs operators `0..end` only (all of them when `end` is past the last), so that
    /// an intermediate tensor can be read with [`tensor_data`](Self::tensor_data):
    /// the features for on-device learning ([`crate::learn`]).
    pub fn invoke_until(&mut self, end: usize) -> Result<(), Error> {
        for index in 0..end.min(self.model.op_count()) {
            let operator = self.model.operator(index)?;
            self.run(&operator)?;
        }
        Ok(())
    }

    /// Runs every operator in order, calling `hook(op_index, phase)` around each one
    /// (for per-layer cycle or instruction counts).
    pub fn invoke_with<F: FnMut(usize, Phase)>(&mut self, mut hook: F) -> Result<(), Error> {
        for index in 0..self.model.op_count() {
            let operator = self.model.operator(index)?;
            hook(index, Phase::Start);
            self.run(&operator)?;
            hook(index, Phase::End);
        }
        Ok(())
    }

    /// Runs operator `index` alone, on what the arena holds now. Calling it for
    /// `0..op_count()` in order computes what [`invoke`](Self::invoke) computes, with
    /// a stop after each operator to read its output before a later operator reuses
    /// the memory (layer-by-layer comparison, `microcnn diff`). Out of order, it
    /// computes on stale data, never out of bounds.
    pub fn invoke_op(&mut self, index: usize) -> Result<(), Error> {
        let operator = self.model.operator(index)?;
        self.run(&operator)
    }

    /// The `K` highest output scores as `(class, score)`, best first; ties go to the
    /// lower class index.
    pub fn top_k<const K: usize>(&self) -> heapless::Vec<(u16, i8), K> {
        top_k(self.output())
    }

    /// Bytes of tensor `info` (for tests and debugging).
    pub fn tensor_data(&self, info: &TensorInfo) -> &[i8] {
        self.arena.get(info.arena_range()).unwrap_or(&[])
    }

    fn run(&mut self, operator: &Operator<'a>) -> Result<(), Error> {
        let model = self.model;
        let input_index = operator.inputs.get(0).unwrap_or(0);
        let input = model.tensor(input_index)?;
        let output = model.tensor(operator.output)?;
        // The tensors with their indices, to name them in an (impossible) arena error.
        let (x_at, y_at) = ((input_index, &input), (operator.output, &output));
        let arena = &mut *self.arena;
        match &operator.params {
            OpParams::Conv2d(p) => {
                let (x, y) = split(arena, x_at, y_at)?;
                conv::conv2d_s8(x, input.shape, input.zero_point, y, output.shape, p);
            }
            OpParams::DepthwiseConv2d(p) => {
                let (x, y) = split(arena, x_at, y_at)?;
                depthwise::depthwise_conv2d_s8(x, input.shape, input.zero_point, y, output.shape, p);
            }
            OpParams::FullyConnected(p) => {
                let (x, y) = split(arena, x_at, y_at)?;
                dense::fully_connected_s8(x, input.zero_point, y, p);
            }
            OpParams::MaxPool2d(p) => {
                let (x, y) = split(arena, x_at, y_at)?;
                pool::max_pool2d_s8(x, input.shape, y, output.shape, p);
            }
            OpParams::AvgPool2d(p) => {
                let (x, y) = split(arena, x_at, y_at)?;
                pool::avg_pool2d_s8(x, input.shape, y, output.shape, p);
            }
            OpParams::Mean(p) => {
                let (x, y) = split(arena, x_at, y_at)?;
                mean::mean_hw_s8(x, input.shape, y, p);
            }
            OpParams::Concatenation => {
                let mut channel_offset = 0;
                for t in operator.inputs.iter() {
                    let part = model.tensor(t)?;
                    let (x, y) = split(arena, (t, &part), y_at)?;
                    concat::concat_channels_s8(
                        x,
                        part.shape.channels,
                        y,
                        output.shape.channels,
                        channel_offset,
                        output.shape.pixels(),
                    );
                    channel_offset += part.shape.channels;
                }
            }
            OpParams::Add(p) => {
                let second = model.tensor(operator.inputs.get(1).unwrap_or(0))?;
                let cells = Cell::from_mut(arena).as_slice_of_cells();
                add::add_s8(cells_of(cells, &input)?, cells_of(cells, &second)?, cells_of(cells, &output)?, p);
            }
            OpParams::Softmax(p) => {
                let cells = Cell::from_mut(arena).as_slice_of_cells();
                softmax::softmax_s8(cells_of(cells, &input)?, cells_of(cells, &output)?, output.shape.channels, p);
            }
            OpParams::Requantize(p) => {
                let cells = Cell::from_mut(arena).as_slice_of_cells();
                requantize::requantize_s8(cells_of(cells, &input)?, cells_of(cells, &output)?, p);
            }
            OpParams::Reshape => {} // the output aliases the input
        }
        Ok(())
    }
}

/// The `K` highest values of `scores` as `(index, value)`, best first; ties go to the
/// lower index.
pub fn top_k<const K: usize>(scores: &[i8]) -> heapless::Vec<(u16, i8), K> {
    let mut best: heapless::Vec<(u16, i8), K> = heapless::Vec::new();
    for (i, &score) in scores.iter().enumerate() {
        let i = i.min(u16::MAX as usize) as u16;
        let position = best.iter().position(|&(_, s)| score > s).unwrap_or(best.len());
        if position < K {
            if best.len() == K {
                best.pop();
            }
            // Cannot fail: there is room after the pop above.
            let _ = best.insert(position, (i, score));
        }
    }
    best
}

/// Disjoint input (shared) and output (exclusive) slices of the arena, for tensors
/// given as `(index, info)`. The plan was checked at load, so that they fit the arena
/// and do not overlap; should that ever fail, the error names the arena size or the
/// two tensors.
fn split<'x>(
    arena: &'x mut [i8],
    (input_index, input): (u16, &TensorInfo),
    (output_index, output): (u16, &TensorInfo),
) -> Result<(&'x [i8], &'x mut [i8]), Error> {
    let (ri, ro) = (input.arena_range(), output.arena_range());
    let needed = ri.end.max(ro.end);
    if needed > arena.len() {
        return Err(Error::ArenaTooSmall { needed, available: arena.len() });
    }
    if ri.end <= ro.start {
        let (low, high) = arena.split_at_mut(ro.start);
        Ok((&low[ri], &mut high[..ro.end - ro.start]))
    } else if ro.end <= ri.start {
        let (low, high) = arena.split_at_mut(ri.start);
        Ok((&high[..ri.end - ri.start], &mut low[ro]))
    } else {
        Err(Error::ArenaOverlap { first: input_index, second: output_index })
    }
}

fn cells_of<'x>(cells: &'x [Cell<i8>], info: &TensorInfo) -> Result<&'x [Cell<i8>], Error> {
    let range = info.arena_range();
    let needed = range.end;
    cells.get(range).ok_or(Error::ArenaTooSmall { needed, available: cells.len() })
}

#[cfg(test)]
mod tests {
    use super::top_k;

    #[test]
    fn top_k_orders_and_breaks_ties_low() {
        let best: heapless::Vec<(u16, i8), 3> = top_k(&[5, 9, -3, 9, 7]);
        assert_eq!(best.as_slice(), &[(1, 9), (3, 9), (4, 7)]);
        let one: heapless::Vec<(u16, i8), 3> = top_k(&[-128]);
        assert_eq!(one.as_slice(), &[(0, -128)]);
    }
}
