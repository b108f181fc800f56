//! Offline arena planning: liveness-aware, greedy by size (the same strategy as TFLM's
//! `GreedyMemoryPlanner`), with two savings TFLM's reference planner lacks: Reshape
//! outputs alias their input, and element-wise operators (Add, activation, Softmax)
//! write over an input that dies at that operator.
//!
//! Times: 0 is before the first operator; operator `k` runs at time `k + 1`.

use crate::compile::graph::Graph;
use microcnn_core::format::OpKind;

/// Offsets of every tensor and the arena size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Arena offset of each tensor.
    pub offsets: Vec<usize>,
    /// The tensor whose bytes each tensor aliases (Reshape chains).
    pub alias_of: Vec<usize>,
    /// Write time of each tensor.
    pub first: Vec<usize>,
    /// Last time each tensor's bytes are needed.
    pub last: Vec<usize>,
    /// Arena bytes.
    pub arena_size: usize,
}

/// Alignment of every buffer in the arena (word loads on Cortex-M).
pub const ALIGN: usize = 4;

/// Plans the arena of `graph`.
pub fn plan(graph: &Graph) -> Plan {
    let n = graph.tensors.len();
    let end = graph.ops.len() + 1;
    let mut first = vec![0; n];
    let mut alias_of: Vec<usize> = (0..n).collect();
    for (k, op) in graph.ops.iter().enumerate() {
        first[op.output] = k + 1;
        if op.params.kind() == OpKind::Reshape {
            alias_of[op.output] = alias_of[op.inputs[0]];
        }
    }
    // Last use of each alias group (reads of any member; the output lives to the end).
    let mut group_last = vec![0; n];
    for t in 0..n {
        group_last[alias_of[t]] = group_last[alias_of[t]].max(first[t]);
    }
    for (k, op) in graph.ops.iter().enumerate() {
        for &x in &op.inputs {
            group_last[alias_of[x]] = group_last[alias_of[x]].max(k + 1);
        }
    }
    group_last[alias_of[graph.output]] = end;
    let last: Vec<usize> = (0..n).map(|t| group_last[alias_of[t]]).collect();

    // Buffers: one per alias group, except that an element-wise output may take over
    // the buffer of an input group that dies at that operator.
    let mut buffer_of: Vec<usize> = (0..n).collect();
    let mut taken = vec![false; n];
    for (k, op) in graph.ops.iter().enumerate() {
        if !op.params.kind().allows_in_place() {
            continue;
        }
        let size = graph.tensors[op.output].shape.elements();
        for &x in &op.inputs {
            let g = alias_of[x];
            if group_last[g] == k + 1 && !taken[g] && graph.tensors[g].shape.elements() == size {
                taken[g] = true;
                buffer_of[op.output] = buffer_of[g];
                break;
            }
        }
    }
    for t in 0..n {
        buffer_of[t] = buffer_of[alias_of[t]];
    }
    // Lifetime and size of each buffer.
    let mut spans: Vec<Option<(usize, usize, usize)>> = vec![None; n]; // (first, last, size)
    for t in 0..n {
        let b = buffer_of[t];
        let size = graph.tensors[t].shape.elements();
        spans[b] = Some(match spans[b] {
            None => (first[t], last[t], size),
            Some((f, l, s)) => (f.min(first[t]), l.max(last[t]), s.max(size)),
        });
    }
    let mut order: Vec<usize> = (0..n).filter(|&b| spans[b].is_some()).collect();
    order.sort_by_key(|&b| {
        let (f, _, s) = spans[b].unwrap_or((0, 0, 0));
        (std::cmp::Reverse(s), f, b)
    });
    let mut placed: Vec<(usize, usize, usize, usize)> = Vec::new(); // (offset, size, first, last)
    let mut buffer_offset = vec![0; n];
    let mut arena_size = 0;
    for b in order {
        let (f, l, size) = spans[b].unwrap_or((0, 0, 0));
        let mut conflicts: Vec<(usize, usize)> =
            placed.iter().filter(|&&(_, _, pf, pl)| f.max(pf) <= l.min(pl)).map(|&(o, s, _, _)| (o, o + s)).collect();
        conflicts.sort_unstable();
        let mut offset = 0;
        for (start, stop) in conflicts {
            if offset + size <= start {
                break;
            }
            offset = offset.max(stop.next_multiple_of(ALIGN));
        }
        buffer_offset[b] = offset;
        arena_size = arena_size.max(offset + size);
        placed.push((offset, size, f, l));
    }
    Plan {
        offsets: (0..n).map(|t| buffer_offset[buffer_of[t]]).collect(),
        alias_of,
        first,
        last,
        arena_size: arena_size.next_multiple_of(ALIGN),
    }
}
