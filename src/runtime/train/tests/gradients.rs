//! Whole-plan gradients against central finite differences.
//!
//! The loss is `L = Σ w ⊙ output` with fixed pseudo-random weights `w` (accumulated in f64),
//! so `dL/doutput = w` seeds backward. Each trainable parameter (and each f32 model input) is
//! checked on up to 12 elements spread over the tensor: `(L(θ+h) − L(θ−h)) / 2h` must match
//! the analytic gradient within `2e-3 + 2e-2·|g|`. A wrong factor, sign or missing term misses
//! by far more. Forwards run in training mode with a fixed step, so dropout masks and batch
//! statistics are those of the analytic pass.

use ndarray::ArrayD;

use super::{distinct, f32_input, noise, trainer, window, Builder};
use crate::ir::{Activation, DType, Init, Op, Padding, RnnCell};
use crate::plan::ExecutionPlan;
use crate::runtime::train::{Input, Trainer};

/// `Σ w ⊙ y` in f64.
fn weighted(y: &ndarray::ArrayViewD<'_, f32>, w: &ArrayD<f32>) -> f64 {
    y.iter()
        .zip(w.iter())
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum()
}

fn loss_at(t: &mut Trainer, inputs: &[Input<'_>], w: &ArrayD<f32>) -> f64 {
    let y = t.forward(inputs, true).unwrap();
    weighted(&y, w)
}

fn views<'a>(inputs: &'a [ArrayD<f32>], ids: Option<&'a ArrayD<i32>>) -> Vec<Input<'a>> {
    ids.iter()
        .map(|a| Input::I32(a.view()))
        .chain(inputs.iter().map(f32_input))
        .collect()
}

/// Up to `k` element indices spread over `0..n`.
fn sample(n: usize, k: usize) -> Vec<usize> {
    if n <= k {
        (0..n).collect()
    } else {
        (0..k).map(|i| i * (n - 1) / (k - 1)).collect()
    }
}

fn close(what: &str, analytic: f64, numeric: f64) {
    let tol = 2e-3 + 2e-2 * numeric.abs().max(analytic.abs());
    assert!(
        (analytic - numeric).abs() <= tol,
        "{what}: analytic {analytic} vs numeric {numeric}"
    );
}

/// Checks every trainable parameter and every f32 input of `plan` at `inputs`.
#[allow(clippy::needless_pass_by_value)] // call sites read better passing owned test data
pub(super) fn check(
    plan: ExecutionPlan,
    mut inputs: Vec<ArrayD<f32>>,
    ids: Option<ArrayD<i32>>,
    h: f32,
) {
    let mut t = trainer(plan, 5).with_input_gradients();
    let out_shape = t
        .forward(&views(&inputs, ids.as_ref()), true)
        .unwrap()
        .shape()
        .to_vec();
    let w = noise(&out_shape, 17, 1.0);
    t.backward(&views(&inputs, ids.as_ref()), &w.view())
        .unwrap();
    let analytic: Vec<Option<ArrayD<f32>>> = (0..t.plan().params.len())
        .map(|i| t.param_grad(i).map(|g| g.to_owned()))
        .collect();
    let offset = usize::from(ids.is_some());
    let input_grads: Vec<ArrayD<f32>> = (0..inputs.len())
        .map(|k| t.input_grad(k + offset).unwrap().to_owned())
        .collect();
    let h64 = 2.0 * f64::from(h);
    let mut checked = 0;
    for (i, g) in analytic.iter().enumerate() {
        let Some(g) = g else { continue };
        if !t.plan().params[i].trainable {
            continue;
        }
        let name = t.plan().params[i].name.clone();
        for e in sample(g.len(), 12) {
            let orig = t.params.tensors_mut()[i].as_slice().unwrap()[e];
            t.params.tensors_mut()[i].as_slice_mut().unwrap()[e] = orig + h;
            let up = loss_at(&mut t, &views(&inputs, ids.as_ref()), &w);
            t.params.tensors_mut()[i].as_slice_mut().unwrap()[e] = orig - h;
            let down = loss_at(&mut t, &views(&inputs, ids.as_ref()), &w);
            t.params.tensors_mut()[i].as_slice_mut().unwrap()[e] = orig;
            close(
                &format!("{name}[{e}]"),
                f64::from(g.as_slice().unwrap()[e]),
                (up - down) / h64,
            );
            checked += 1;
        }
    }
    for k in 0..inputs.len() {
        for e in sample(inputs[k].len(), 12) {
            let orig = inputs[k].as_slice().unwrap()[e];
            inputs[k].as_slice_mut().unwrap()[e] = orig + h;
            let up = loss_at(&mut t, &views(&inputs, ids.as_ref()), &w);
            inputs[k].as_slice_mut().unwrap()[e] = orig - h;
            let down = loss_at(&mut t, &views(&inputs, ids.as_ref()), &w);
            inputs[k].as_slice_mut().unwrap()[e] = orig;
            close(
                &format!("input {k}[{e}]"),
                f64::from(input_grads[k].as_slice().unwrap()[e]),
                (up - down) / h64,
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
}

#[test]
fn dense_with_fused_relu_tanh_sigmoid() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[6]);
    let a = b.dense("d1", x, 5, Activation::Relu);
    let a = b.dense("d2", a, 4, Activation::Tanh);
    let a = b.dense("d3", a, 3, Activation::Sigmoid);
    let plan = b.plan(a);
    // The activations were fused into the dense steps.
    assert_eq!(plan.steps.len(), 3);
    assert!(plan.steps.iter().all(|s| matches!(s.op, Op::Dense { .. })));
    check(plan, vec![noise(&[4, 6], 1, 1.0)], None, 1e-3);
}

#[test]
fn conv_valid_same_and_stride_two() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[7, 7, 2]);
    let a = b.conv("c1", x, 3, 3, 1, Padding::Valid);
    let a = b.node("c1_act", Op::Activation(Activation::Tanh), &[a]);
    let a = b.conv("c2", a, 4, 3, 2, Padding::Same);
    let a = b.node("flat", Op::Flatten, &[a]);
    let a = b.dense("d", a, 2, Activation::Linear);
    check(b.plan(a), vec![noise(&[2, 7, 7, 2], 2, 1.0)], None, 1e-2);
}

#[test]
fn max_avg_global_pools_concat_and_add() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[6, 6, 3]);
    let m = b.node(
        "mp",
        Op::MaxPool2d {
            window: window(2, 2, Padding::Valid),
        },
        &[x],
    );
    let a = b.node(
        "ap",
        Op::AvgPool2d {
            window: window(2, 2, Padding::Same),
        },
        &[m],
    );
    let ga = b.node("gap", Op::GlobalAvgPool2d, &[a]);
    let gm = b.node("gmp", Op::GlobalMaxPool2d, &[m]);
    let c = b.node("cat", Op::Concat { axis: -1 }, &[ga, gm]);
    let d1 = b.dense("d1", c, 4, Activation::Linear);
    let d2 = b.dense("d2", c, 4, Activation::Linear);
    let s = b.node("sum", Op::Add, &[d1, d2, d1]);
    check(b.plan(s), vec![distinct(&[2, 6, 6, 3], 3)], None, 1e-2);
}

#[test]
fn batch_norm_in_training_mode_and_layer_norm() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[4, 4, 2]);
    let a = b.conv("c", x, 3, 3, 1, Padding::Same);
    let a = b.batch_norm("bn", a);
    let a = b.node("flat", Op::Flatten, &[a]);
    let a = b.dense("d", a, 5, Activation::Linear);
    let a = b.layer_norm("ln", a);
    let a = b.batch_norm("bn2", a);
    check(b.plan(a), vec![noise(&[3, 4, 4, 2], 4, 1.0)], None, 1e-2);
}

#[test]
fn reshape_dropout_and_affine() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[12]);
    let a = b.node(
        "aff",
        Op::Affine {
            scale: (0..12).map(|i| 0.5 + 0.1 * i as f32).collect(),
            shift: (0..12).map(|i| 0.1 * i as f32).collect(),
        },
        &[x],
    );
    let a = b.node("rs", Op::Reshape { shape: vec![3, 4] }, &[a]);
    let a = b.dense("d1", a, 6, Activation::Linear);
    let a = b.node("drop", Op::Dropout { rate: 0.5 }, &[a]);
    let a = b.node("flat", Op::Flatten, &[a]);
    let a = b.dense("d2", a, 3, Activation::Linear);
    check(b.plan(a), vec![noise(&[4, 12], 5, 1.0)], None, 1e-2);
}

#[test]
fn embedding_and_recurrent_layers_both_ways() {
    let mut b = Builder::new();
    let ids = b.input("ids", DType::I32, &[5]);
    let table = b.param(
        "emb.embeddings",
        &[7, 3],
        Init::Uniform { limit: 0.8 },
        true,
    );
    let e = b.node("emb", Op::Embedding { table }, &[ids]);
    let r = b.rnn("rnn", e, RnnCell::SimpleRnn, 4, true);
    let r = b.rnn("lstm", r, RnnCell::Lstm, 3, true);
    let r = b.rnn("gru", r, RnnCell::Gru, 3, false);
    let a = b.dense("d", r, 2, Activation::Linear);
    let ids = ndarray::arr2(&[[1, 3, 6, 0, 3], [2, 2, 5, 4, 1]]).into_dyn();
    check(b.plan(a), vec![], Some(ids), 1e-2);
}

#[test]
fn recurrent_layers_on_float_inputs_with_input_gradients() {
    for cell in [RnnCell::SimpleRnn, RnnCell::Lstm, RnnCell::Gru] {
        for seq in [true, false] {
            let mut b = Builder::new();
            let x = b.input("x", DType::F32, &[4, 3]);
            let a = b.dense("pre", x, 3, Activation::Linear);
            let r = b.rnn("r", a, cell, 3, seq);
            check(b.plan(r), vec![noise(&[2, 4, 3], 6, 1.0)], None, 1e-2);
        }
    }
}

#[test]
fn conv_relu_then_max_pool_takes_the_relu_derivative_in_the_pool() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[8, 8, 2]);
    let a = b.conv("c1", x, 4, 3, 1, Padding::Same);
    let a = b.node("c1_act", Op::Activation(Activation::Relu), &[a]);
    let a = b.node(
        "mp",
        Op::MaxPool2d {
            window: window(2, 2, Padding::Valid),
        },
        &[a],
    );
    let a = b.node("flat", Op::Flatten, &[a]);
    let a = b.dense("d", a, 3, Activation::Linear);
    let plan = b.plan(a);
    // The relu was fused into the convolution, and the pool alone reads it: both flagged.
    let flags = crate::runtime::train::relu_through_pool(&plan);
    let kinds: Vec<(&str, bool)> = plan
        .steps
        .iter()
        .zip(&flags)
        .map(|(s, &f)| (s.op.kind(), f))
        .collect();
    assert_eq!(
        kinds[..2],
        [("conv2d", true), ("max_pool2d", true)],
        "{kinds:?}"
    );
    assert!(flags[2..].iter().all(|&f| !f));
    check(plan, vec![distinct(&[2, 8, 8, 2], 4)], None, 1e-3);
}

#[test]
fn a_relu_read_by_more_than_the_pool_keeps_its_own_derivative() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[6, 6, 2]);
    let c = b.conv("c1", x, 3, 3, 1, Padding::Same);
    let c = b.node("c1_act", Op::Activation(Activation::Relu), &[c]);
    let m = b.node(
        "mp",
        Op::MaxPool2d {
            window: window(2, 2, Padding::Valid),
        },
        &[c],
    );
    let g1 = b.node("gap", Op::GlobalAvgPool2d, &[m]);
    let g2 = b.node("gap_c", Op::GlobalAvgPool2d, &[c]);
    let s = b.node("cat", Op::Concat { axis: -1 }, &[g1, g2]);
    let plan = b.plan(s);
    assert!(crate::runtime::train::relu_through_pool(&plan)
        .iter()
        .all(|&f| !f));
    // Every unit reaches the loss through the average, so a step of 1e-3 would move some
    // pre-activation across the relu's kink; 1e-4 does not.
    check(plan, vec![distinct(&[2, 6, 6, 2], 5)], None, 1e-4);
}
