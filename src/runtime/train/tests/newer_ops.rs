//! Whole-plan gradients (central finite differences, as `gradients.rs`) through the layers of
//! issue 15: the newer activations fused into dense steps and as steps of their own.

use super::gradients::check;
use super::{noise, Builder};
use crate::ir::{Activation, DType, Op};

#[test]
fn dense_with_the_newer_activations_fused_and_apart() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[6]);
    let a = b.dense("d1", x, 6, Activation::Elu { alpha: 0.7 });
    let a = b.dense("d2", a, 6, Activation::Selu);
    let a = b.dense("d3", a, 6, Activation::Softplus);
    let a = b.dense("d4", a, 6, Activation::Swish);
    let a = b.dense("d5", a, 6, Activation::Mish);
    let a = b.dense("d6", a, 5, Activation::HardSigmoid);
    let a = b.dense("d7", a, 3, Activation::Relu6);
    let plan = b.plan(a);
    // Elu, selu, softplus, hard_sigmoid and relu6 fused into their dense steps; swish and mish
    // (whose derivatives need the pre-activation) stayed steps of their own.
    let kinds: Vec<&str> = plan.steps.iter().map(|s| s.op.kind()).collect();
    assert_eq!(
        kinds,
        ["dense", "dense", "dense", "dense", "swish", "dense", "mish", "dense", "dense"]
    );
    assert!(plan.steps.iter().any(|s| matches!(
        s.op,
        Op::Dense {
            activation: Activation::Elu { .. },
            ..
        }
    )));
    check(plan, vec![noise(&[4, 6], 3, 2.0)], None, 1e-3);
}
