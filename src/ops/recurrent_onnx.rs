//! ONNX export of the recurrent family (`recurrent::to_onnx` hands its ops here): ONNX `RNN` /
//! `LSTM` / `GRU` (default activations: Keras's tanh and sigmoid) over the time-major transpose
//! of the batch-major input.
//!
//! Input: the IR op and its [`NodeCx`]. Output: the nodes. Invariants: the gates are reordered
//! (Keras i, f, c, o → ONNX i, o, f, c; GRU z, r, h as they are) and the kernels transposed to
//! `[D, G·U, in]`; a GRU's `reset_after` is `linear_before_reset = 1` (bias `[2, 3U]`: input and
//! recurrent halves), without it `linear_before_reset = 0` (bias `[3U]`: the input bias, the
//! recurrent one zero). `go_backwards` runs forwards over the input reversed in time (a
//! `Gather`), whose `Y` is in processing order, as Keras returns it. `bidirectional` is `direction = bidirectional`:
//! ONNX's reverse half of `Y` is already in time order, as Keras's merge wants it; with the
//! wrapped layer's `go_backwards` the Keras forward weights are ONNX's reverse direction, so
//! the halves swap and the merged sequence is reversed in time. Dropout does nothing at
//! inference. An `EmbeddedRnn` is a `Gather` of its projection rows followed by the layer with
//! a 0/1 gate-permutation matrix as `W` (exact: each output is one row element times one).

use super::bidirectional::BiMerge;
use super::onnx::{Attr, Initializer, Layout, NodeCx, TensorData};
use super::op::Op;
use super::recurrent::RnnOptions;
use super::types::RnnCell;

/// What the exported layer is.
struct Layer {
    cell: RnnCell,
    units: usize,
    return_sequences: bool,
    options: RnnOptions,
    /// `None`: one direction; `Some(merge)`: Keras's Bidirectional.
    merge: Option<BiMerge>,
    embedded: bool,
}

/// One direction's ONNX `W`, `R` and `B` rows.
struct Direction {
    w: Vec<f32>,
    r: Vec<f32>,
    b: Vec<f32>,
}

pub fn to_onnx(op: &Op, cx: &mut NodeCx<'_>) -> Result<(), String> {
    let layer = match op {
        Op::Rnn {
            cell,
            units,
            return_sequences,
            options,
            ..
        } => Layer {
            cell: *cell,
            units: *units,
            return_sequences: *return_sequences,
            options: *options,
            merge: None,
            embedded: false,
        },
        Op::EmbeddedRnn {
            cell,
            units,
            return_sequences,
            ..
        } => Layer {
            cell: *cell,
            units: *units,
            return_sequences: *return_sequences,
            options: RnnOptions::default(),
            merge: None,
            embedded: true,
        },
        Op::Bidirectional {
            cell,
            units,
            return_sequences,
            options,
            merge,
            ..
        } => Layer {
            cell: *cell,
            units: *units,
            return_sequences: *return_sequences,
            options: *options,
            merge: Some(*merge),
            embedded: false,
        },
        other => return Err(super::op::not_mine("recurrent", other.kind())),
    };
    export(&layer, cx)
}

fn export(layer: &Layer, cx: &mut NodeCx<'_>) -> Result<(), String> {
    let (cell, units) = (layer.cell, layer.units);
    let g = cell.gates() * units;
    let steps = cx.input_fact(0)?.dim(1);
    let x = cx.input(0, Layout::Nhwc)?;
    let (x, features) = if layer.embedded {
        let projection = cx.param(0)?;
        let (shape, data) = (projection.shape.to_vec(), projection.data.to_vec());
        let rows = cx.f32_tensor("projection", shape, data);
        let gathered = cx.node(
            "Gather",
            "gather",
            vec![rows, x],
            vec![("axis", Attr::Int(0))],
        );
        (gathered, g)
    } else {
        (x, cx.param(0)?.shape.first().copied().unwrap_or(0))
    };
    // ONNX's directions in order: a Bidirectional's forward weights (parameters 0..3) are
    // ONNX's forward direction unless the wrapped layer goes backwards.
    let swap = layer.merge.is_some() && layer.options.go_backwards;
    let firsts: &[usize] = match (layer.merge, swap) {
        (None, _) => &[0],
        (Some(_), false) => &[0, 3],
        (Some(_), true) => &[3, 0],
    };
    let mut w = Vec::new();
    let mut r = Vec::new();
    let mut b = Vec::new();
    for &first in firsts {
        let d = direction(cx, layer, first, features)?;
        w.extend(d.w);
        r.extend(d.r);
        b.extend(d.b);
    }
    let dirs = firsts.len();
    let w = cx.f32_tensor("W", vec![dirs, g, features], w);
    let r = cx.f32_tensor("R", vec![dirs, g, units], r);
    let b = cx.f32_tensor("B", vec![dirs, 2 * g], b);
    let time_major = cx.node(
        "Transpose",
        "time_major",
        vec![x],
        vec![("perm", Attr::Ints(vec![1, 0, 2]))],
    );
    // One direction going backwards runs forwards over the time-reversed input: its `Y` is
    // then in processing order, Keras's.
    let one_way_backwards = layer.merge.is_none() && layer.options.go_backwards;
    let time_major = if one_way_backwards {
        reversed_in_time(cx, steps, time_major)?
    } else {
        time_major
    };
    let direction_name = if layer.merge.is_some() {
        "bidirectional"
    } else {
        "forward"
    };
    let (op_type, mut attributes) = match cell {
        RnnCell::SimpleRnn => ("RNN", vec![]),
        RnnCell::Lstm => ("LSTM", vec![]),
        RnnCell::Gru => {
            let linear = i64::from(layer.options.reset_after);
            ("GRU", vec![("linear_before_reset", Attr::Int(linear))])
        }
    };
    attributes.push(("hidden_size", Attr::Int(units as i64)));
    if direction_name != "forward" {
        attributes.push(("direction", Attr::Text(direction_name.into())));
    }
    let sequence = cx.graph.fresh(&cx.base("Y"));
    let last = cx.graph.fresh(&cx.base("Y_h"));
    cx.graph.node_with_outputs(
        op_type,
        vec![time_major, w, r, b],
        vec![sequence.clone(), last.clone()],
        attributes,
    );
    // The (time-major when a sequence) output of each Keras direction, in Keras's order.
    let (source, axis) = if layer.return_sequences {
        (sequence, 1)
    } else {
        (last, 0)
    };
    let mut halves = Vec::with_capacity(dirs);
    if dirs == 1 {
        let axis = cx.i64_vector("direction_axis", vec![axis]);
        let what = if layer.return_sequences {
            "sequence"
        } else {
            "last_state"
        };
        halves.push(cx.node("Squeeze", what, vec![source, axis], vec![]));
    } else {
        for d in 0..dirs {
            let index = scalar(cx, "direction", d as i64);
            halves.push(cx.node(
                "Gather",
                "direction",
                vec![source.clone(), index],
                vec![("axis", Attr::Int(axis))],
            ));
        }
    }
    if swap {
        halves.reverse();
    }
    let mut y = match (layer.merge, halves.as_slice()) {
        (Some(merge), [a, b]) => merged(cx, merge, a.clone(), b.clone()),
        (_, [one]) => one.clone(),
        _ => return Err(format!("internal: {} has {dirs} directions", cx.step)),
    };
    if !layer.return_sequences {
        cx.set_output(y, Layout::Nhwc);
        return Ok(());
    }
    if swap {
        y = reversed_in_time(cx, steps, y)?;
    }
    let y = cx.node(
        "Transpose",
        "batch_major",
        vec![y],
        vec![("perm", Attr::Ints(vec![1, 0, 2]))],
    );
    cx.set_output(y, Layout::Nhwc);
    Ok(())
}

/// The time-major `x` with its time axis reversed (a `Gather` of the steps in reverse order).
fn reversed_in_time(
    cx: &mut NodeCx<'_>,
    steps: Option<usize>,
    x: String,
) -> Result<String, String> {
    let t = steps.ok_or_else(|| {
        "the sequence length is symbolic, so the time reversal of `go_backwards` has no fixed \
         ONNX form"
            .to_string()
    })?;
    let order = cx.i64_vector("reversed", (0..t as i64).rev().collect());
    Ok(cx.node(
        "Gather",
        "reversed",
        vec![x, order],
        vec![("axis", Attr::Int(0))],
    ))
}

/// A scalar i64 initializer (a `Gather` index that drops its axis).
fn scalar(cx: &mut NodeCx<'_>, what: &str, value: i64) -> String {
    let name = cx.graph.fresh(&cx.base(what));
    cx.graph.initializers.push(Initializer {
        name: name.clone(),
        dims: vec![],
        data: TensorData::I64(vec![value]),
    });
    name
}

/// Keras's merge of the two directions' outputs (same shape, units on the last axis).
fn merged(cx: &mut NodeCx<'_>, merge: BiMerge, a: String, b: String) -> String {
    match merge {
        BiMerge::Concat => cx.node("Concat", "merge", vec![a, b], vec![("axis", Attr::Int(-1))]),
        BiMerge::Sum => cx.node("Add", "merge", vec![a, b], vec![]),
        BiMerge::Mul => cx.node("Mul", "merge", vec![a, b], vec![]),
        BiMerge::Ave => {
            let sum = cx.node("Add", "merge_sum", vec![a, b], vec![]);
            let half = cx.f32_tensor("half", vec![], vec![0.5]);
            cx.node("Mul", "merge", vec![sum, half], vec![])
        }
    }
}

/// The ONNX rows of the direction whose kernel, recurrent kernel and bias are parameters
/// `first..first + 3`.
fn direction(
    cx: &NodeCx<'_>,
    layer: &Layer,
    first: usize,
    features: usize,
) -> Result<Direction, String> {
    let (cell, units) = (layer.cell, layer.units);
    let g = cell.gates() * units;
    let w = if layer.embedded {
        let mut identity = vec![0.0f32; g * g];
        for i in 0..g {
            if let Some(slot) = identity.get_mut(i * g + i) {
                *slot = 1.0;
            }
        }
        gate_matrix(&identity, g, cell, units)
    } else {
        gate_matrix(cx.param(first)?.data, features, cell, units)
    };
    let r = gate_matrix(cx.param(first + 1)?.data, units, cell, units);
    let bias = cx.param(first + 2)?.data;
    let zeros = vec![0.0; g];
    let (input_bias, recurrent_bias) = if layer.embedded {
        // The input bias is in the projection rows; a GRU's recurrent half stays.
        let recurrent = if cell == RnnCell::Gru {
            bias.get(g..).unwrap_or_default().to_vec()
        } else {
            zeros.clone()
        };
        (zeros, recurrent)
    } else if layer.options.two_biases(cell) {
        (
            bias.get(..g).unwrap_or_default().to_vec(),
            bias.get(g..).unwrap_or_default().to_vec(),
        )
    } else {
        (bias.to_vec(), zeros)
    };
    if input_bias.len() != g || recurrent_bias.len() != g {
        return Err(format!(
            "internal: {} has a bias of {} numbers",
            cx.step,
            bias.len()
        ));
    }
    let mut b = gate_vector(&input_bias, cell, units);
    b.extend(gate_vector(&recurrent_bias, cell, units));
    Ok(Direction { w, r, b })
}

/// For each ONNX gate slot, the Keras gate it takes (LSTM: ONNX i, o, f, c from Keras i, f, c,
/// o; GRU z, r, h and the simple RNN's one gate as they are).
fn gate_order(cell: RnnCell) -> &'static [usize] {
    match cell {
        RnnCell::Lstm => &[0, 3, 1, 2],
        RnnCell::Gru => &[0, 1, 2],
        RnnCell::SimpleRnn => &[0],
    }
}

/// A Keras `[rows, G·U]` matrix as ONNX's `[G·U, rows]` with the gates reordered.
fn gate_matrix(m: &[f32], rows: usize, cell: RnnCell, units: usize) -> Vec<f32> {
    let g = cell.gates() * units;
    let mut out = vec![0.0f32; g * rows];
    for (slot, &keras) in gate_order(cell).iter().enumerate() {
        for u in 0..units {
            for r in 0..rows {
                if let (Some(&v), Some(dst)) = (
                    m.get(r * g + keras * units + u),
                    out.get_mut((slot * units + u) * rows + r),
                ) {
                    *dst = v;
                }
            }
        }
    }
    out
}

/// A Keras `[G·U]` bias with the gates reordered.
fn gate_vector(v: &[f32], cell: RnnCell, units: usize) -> Vec<f32> {
    gate_order(cell)
        .iter()
        .flat_map(|&keras| v.iter().skip(keras * units).take(units).copied())
        .collect()
}
