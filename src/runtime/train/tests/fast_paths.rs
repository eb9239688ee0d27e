//! The trainer's relu-through-pool fast path against its plain path, bit for bit: a conv with
//! a fused relu read only by a max pool (the pool's backward applies the relu's derivative,
//! the conv's backward skips it) gives the same gradients as the two steps differentiating
//! apart.

use super::{distinct, f32_input, noise, trainer, window, Builder};
use crate::ir::{Activation, DType, Op, Padding};
use crate::runtime::train::context::StepState;
use crate::runtime::train::Trainer;

fn bits(a: &ndarray::ArrayViewD<'_, f32>) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

/// Every parameter gradient and the input gradient after one forward and backward.
fn grads(t: &mut Trainer, x: &ndarray::ArrayD<f32>) -> Vec<Vec<u32>> {
    let inputs = [f32_input(x)];
    let shape = t.forward(&inputs, true).unwrap().shape().to_vec();
    let w = noise(&shape, 3, 1.0);
    t.backward(&inputs, &w.view()).unwrap();
    let mut out: Vec<Vec<u32>> = (0..t.plan().params.len())
        .map(|i| bits(&t.param_grad(i).unwrap()))
        .collect();
    out.push(bits(&t.input_grad(0).unwrap()));
    out
}

#[test]
fn relu_through_pool_gives_the_plain_gradients_bit_for_bit() {
    for padding in [Padding::Valid, Padding::Same] {
        let mut b = Builder::new();
        let x = b.input("x", DType::F32, &[9, 8, 3]);
        let a = b.conv("c1", x, 4, 3, 1, padding);
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
        let mut fast = trainer(plan.clone(), 5).with_input_gradients();
        let mut plain = trainer(plan, 5).with_input_gradients();
        let mut flagged = 0;
        for st in &mut plain.state {
            match st {
                StepState::Conv { relu_in_pool, .. } => {
                    flagged += usize::from(*relu_in_pool);
                    *relu_in_pool = false;
                }
                StepState::Pool { relu_input } => {
                    flagged += usize::from(*relu_input);
                    *relu_input = false;
                }
                _ => {}
            }
        }
        assert_eq!(flagged, 2, "the fast path is taken");
        let x = distinct(&[3, 9, 8, 3], 4);
        let (a, b) = (grads(&mut fast, &x), grads(&mut plain, &x));
        assert_eq!(a, b, "{padding:?}");
        assert!(a
            .iter()
            .all(|g| g.iter().any(|&v| f32::from_bits(v) != 0.0)));
    }
}
