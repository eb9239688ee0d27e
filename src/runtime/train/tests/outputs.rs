//! A model with two outputs trained with one loss each (`outputs.rs`): the total against
//! `w₁·l₁ + w₂·l₂` recomputed by hand from the outputs, the gradients against central finite
//! differences of that hand-computed total, and an output of weight 0 contributing nothing.

use ndarray::{ArrayD, IxDyn};

use super::{noise, trainer, Builder};
use crate::ir::{Activation, DType, Op};
use crate::plan::ExecutionPlan;
use crate::runtime::loss::{Loss, SparseLabels, Targets};
use crate::runtime::train::{Input, OutputLoss, Trainer};

/// `x [N, 3] → h = dense(4, tanh)`, then `digit = h → dense(3) → softmax` and
/// `parity = h → dense(1) → sigmoid`: two heads sharing `h`.
fn two_heads() -> ExecutionPlan {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[3]);
    let h = b.dense("h", x, 4, Activation::Tanh);
    let digit = b.dense("digit", h, 3, Activation::Softmax);
    let parity = b.dense("parity", h, 1, Activation::Sigmoid);
    b.g.outputs.push(digit);
    b.plan(parity)
}

const LABELS: [i64; 5] = [0, 2, 1, 2, 0];
const BITS: [f32; 5] = [1.0, 0.0, 0.0, 1.0, 1.0];

/// `−mean ln p[label]` and `−mean (t ln q + (1 − t) ln(1 − q))`, in f64, from the outputs.
fn hand_losses(
    digit: &ndarray::ArrayViewD<'_, f32>,
    parity: &ndarray::ArrayViewD<'_, f32>,
) -> (f64, f64) {
    let n = LABELS.len() as f64;
    let mut l1 = 0.0;
    let mut l2 = 0.0;
    for (i, (&c, &t)) in LABELS.iter().zip(&BITS).enumerate() {
        let c = usize::try_from(c).unwrap();
        l1 -= f64::from(digit[[i, c]]).ln();
        let q = f64::from(parity[[i, 0]]);
        let t = f64::from(t);
        l2 -= t * q.ln() + (1.0 - t) * (1.0 - q).ln();
    }
    (l1 / n, l2 / n)
}

fn parts<'a>(labels: &'a ArrayD<i64>, bits: &'a ArrayD<f32>, w: (f32, f32)) -> Vec<OutputLoss<'a>> {
    vec![
        OutputLoss {
            targets: Targets::Sparse(SparseLabels::I64(labels.view())),
            loss: Loss::SparseCategoricalCrossentropy { from_logits: false },
            weight: w.0,
        },
        OutputLoss {
            targets: Targets::Dense(bits.view()),
            loss: Loss::BinaryCrossentropy { from_logits: false },
            weight: w.1,
        },
    ]
}

fn data() -> (ArrayD<f32>, ArrayD<i64>, ArrayD<f32>) {
    let x = noise(&[5, 3], 3, 1.5);
    let labels = ArrayD::from_shape_vec(IxDyn(&[5]), LABELS.to_vec()).unwrap();
    let bits = ArrayD::from_shape_vec(IxDyn(&[5, 1]), BITS.to_vec()).unwrap();
    (x, labels, bits)
}

/// The hand-computed weighted total at the trainer's current parameters.
fn hand_total(t: &mut Trainer, x: &ArrayD<f32>, w: (f64, f64)) -> f64 {
    let outs = t.forward_outputs(&[Input::F32(x.view())], true).unwrap();
    let (l1, l2) = hand_losses(&outs[0], &outs[1]);
    w.0 * l1 + w.1 * l2
}

#[test]
fn the_total_is_the_weighted_sum_of_each_outputs_loss_computed_by_hand() {
    let (x, labels, bits) = data();
    let mut t = trainer(two_heads(), 7);
    let (l1, l2) = {
        let outs = t.forward_outputs(&[Input::F32(x.view())], true).unwrap();
        assert_eq!(outs.len(), 2);
        assert_eq!(outs[0].shape(), &[5, 3]);
        assert_eq!(outs[1].shape(), &[5, 1]);
        hand_losses(&outs[0], &outs[1])
    };
    let (total, losses) = t
        .outputs_backward(&[Input::F32(x.view())], &parts(&labels, &bits, (1.0, 0.5)))
        .unwrap();
    assert!(
        (f64::from(losses[0]) - l1).abs() < 1e-5,
        "{} vs {l1}",
        losses[0]
    );
    assert!(
        (f64::from(losses[1]) - l2).abs() < 1e-5,
        "{} vs {l2}",
        losses[1]
    );
    let expected = l1 + 0.5 * l2;
    assert!(
        (f64::from(total) - expected).abs() < 1e-5,
        "{total} vs {expected}"
    );
}

/// `digit = softmax(z)` where `z = dense(h)` also feeds the parity head: the softmax stays a
/// step of its own (its input has two readers), so the cross-entropy is taken on the logits
/// and `z` receives the digit loss's gradient and the parity head's together.
fn shared_logits() -> ExecutionPlan {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[3]);
    let h = b.dense("h", x, 4, Activation::Tanh);
    let z = b.dense("z", h, 3, Activation::Linear);
    let digit = b.node("digit", Op::Activation(Activation::Softmax), &[z]);
    let parity = b.dense("parity", z, 1, Activation::Sigmoid);
    b.g.outputs.push(digit);
    b.plan(parity)
}

/// Every parameter element's analytic gradient against central differences of the
/// hand-computed total; returns how many were checked.
fn check_against_finite_differences(plan: ExecutionPlan, seed: u64) -> usize {
    let (x, labels, bits) = data();
    let w = (1.0f32, 0.5f32);
    let mut t = trainer(plan, seed);
    t.outputs_backward(&[Input::F32(x.view())], &parts(&labels, &bits, w))
        .unwrap();
    let n_params = t.plan().params.len();
    let analytic: Vec<ArrayD<f32>> = (0..n_params)
        .map(|i| t.param_grad(i).unwrap().to_owned())
        .collect();
    let h = 1e-2f32;
    let wf = (f64::from(w.0), f64::from(w.1));
    let mut checked = 0;
    for (i, grad) in analytic.iter().enumerate() {
        for k in 0..grad.len() {
            let original = t.params.tensors()[i].as_slice().unwrap()[k];
            t.params.tensors_mut()[i].as_slice_mut().unwrap()[k] = original + h;
            let up = hand_total(&mut t, &x, wf);
            t.params.tensors_mut()[i].as_slice_mut().unwrap()[k] = original - h;
            let down = hand_total(&mut t, &x, wf);
            t.params.tensors_mut()[i].as_slice_mut().unwrap()[k] = original;
            let numeric = (up - down) / (2.0 * f64::from(h));
            let a = f64::from(grad.as_slice().unwrap()[k]);
            let tol = 2e-3 + 2e-2 * numeric.abs().max(a.abs());
            assert!(
                (a - numeric).abs() <= tol,
                "{} [{k}]: analytic {a} vs numeric {numeric}",
                t.plan().params[i].name
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn gradients_of_the_weighted_total_match_finite_differences() {
    // h: 3·4 + 4, digit: 4·3 + 3, parity: 4 + 1
    assert_eq!(check_against_finite_differences(two_heads(), 11), 36);
}

#[test]
fn gradients_through_logits_shared_with_the_other_head_match_finite_differences() {
    let plan = shared_logits();
    let softmax_steps = plan
        .steps
        .iter()
        .filter(|s| matches!(s.op, Op::Activation(Activation::Softmax)))
        .count();
    assert_eq!(
        softmax_steps, 1,
        "the softmax must stay a step for this case"
    );
    // h: 3·4 + 4, z: 4·3 + 3, parity: 3 + 1
    assert_eq!(check_against_finite_differences(plan, 13), 35);
}

#[test]
fn an_output_of_weight_zero_adds_nothing_to_the_gradients() {
    let (x, labels, bits) = data();
    let mut both = trainer(two_heads(), 5);
    both.outputs_backward(&[Input::F32(x.view())], &parts(&labels, &bits, (1.0, 0.0)))
        .unwrap();
    let mut other = trainer(two_heads(), 5);
    other
        .outputs_backward(&[Input::F32(x.view())], &parts(&labels, &bits, (1.0, 2.0)))
        .unwrap();
    let names: Vec<String> = both.plan().params.iter().map(|p| p.name.clone()).collect();
    for (i, name) in names.iter().enumerate() {
        let g = both.param_grad(i).unwrap();
        if name.starts_with("parity") {
            assert!(g.iter().all(|&v| v == 0.0), "{name}: {g:?}");
        } else if name.starts_with("digit") {
            // the digit head does not see the parity loss: same bits either way
            assert_eq!(g, other.param_grad(i).unwrap(), "{name}");
        } else {
            // the shared layer does: its gradient changes with the parity weight
            assert_ne!(g, other.param_grad(i).unwrap(), "{name}");
        }
    }
}

#[test]
fn a_single_loss_for_a_plan_with_two_outputs_is_refused() {
    let (x, labels, _) = data();
    let mut t = trainer(two_heads(), 1);
    let mut opt = crate::runtime::optim::Optimizer::Sgd(
        crate::runtime::optim::Sgd::new(crate::runtime::optim::SgdConfig::default()).unwrap(),
    );
    let r = t.train_step(
        &[Input::F32(x.view())],
        &Targets::Sparse(SparseLabels::I64(labels.view())),
        Loss::SparseCategoricalCrossentropy { from_logits: false },
        &mut opt,
        0.1,
        None,
    );
    assert_eq!(r, Err(crate::runtime::train::TrainError::OutputCount(2)));
}
