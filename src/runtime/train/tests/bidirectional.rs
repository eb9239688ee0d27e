//! `Op::Bidirectional` in the trainer: its gradients against central finite differences for
//! every merge, and its output against its two directions run as plain recurrent layers (the
//! forward one as written, the backward one with `go_backwards`), merged by hand.

use ndarray::{ArrayD, Axis};

use super::gradients::check;
use super::{noise, trainer, Builder};
use crate::ir::{DType, Op, RnnCell};
use crate::ops::bidirectional::BiMerge;
use crate::ops::recurrent::RnnOptions;

const MERGES: [BiMerge; 4] = [BiMerge::Concat, BiMerge::Sum, BiMerge::Mul, BiMerge::Ave];

#[test]
fn bidirectional_gradients_match_finite_differences() {
    let cases = [
        (RnnCell::Lstm, true, RnnOptions::default()),
        (RnnCell::Gru, false, RnnOptions::default()),
        (
            RnnCell::SimpleRnn,
            true,
            RnnOptions {
                go_backwards: true,
                dropout: 0.3,
                recurrent_dropout: 0.3,
                ..RnnOptions::default()
            },
        ),
        (
            RnnCell::Gru,
            true,
            RnnOptions {
                reset_after: false,
                ..RnnOptions::default()
            },
        ),
    ];
    for merge in MERGES {
        for &(cell, seq, options) in &cases {
            let mut b = Builder::new();
            let x = b.input("x", DType::F32, &[4, 3]);
            let y = b.bidirectional("bi", x, (cell, 3, seq), options, merge);
            check(b.plan(y), vec![noise(&[2, 4, 3], 21, 1.0)], None, 1e-2);
        }
    }
}

/// The output of a one-node plan built by `build` on `x`, its weights drawn from seed 5.
fn run(
    build: impl FnOnce(&mut Builder, crate::ir::ValueId) -> crate::ir::ValueId,
    x: &ArrayD<f32>,
) -> (Vec<ArrayD<f32>>, ArrayD<f32>) {
    let mut b = Builder::new();
    let input = b.input("x", DType::F32, &[5, 3]);
    let y = build(&mut b, input);
    let mut t = trainer(b.plan(y), 5);
    let params: Vec<ArrayD<f32>> = t.params.tensors_mut().to_vec();
    let out = t
        .forward(&[crate::runtime::train::Input::F32(x.view())], false)
        .unwrap()
        .to_owned();
    (params, out)
}

#[test]
fn bidirectional_is_its_two_directions_merged() {
    let x = noise(&[3, 5, 3], 4, 1.0);
    for cell in [RnnCell::Lstm, RnnCell::Gru] {
        for merge in MERGES {
            for seq in [true, false] {
                let (weights, merged) = run(
                    |b, x| b.bidirectional("bi", x, (cell, 4, seq), RnnOptions::default(), merge),
                    &x,
                );
                // The same weights in two plain layers: forward, and backwards.
                let direction = |backwards: bool, w: &[ArrayD<f32>]| {
                    let mut b = Builder::new();
                    let input = b.input("x", DType::F32, &[5, 3]);
                    let options = RnnOptions {
                        go_backwards: backwards,
                        ..RnnOptions::default()
                    };
                    let y = b.rnn_with("r", input, (cell, 4, seq), options);
                    let mut t = trainer(b.plan(y), 5);
                    for (p, v) in t.params.tensors_mut().iter_mut().zip(w) {
                        p.assign(v);
                    }
                    t.forward(&[crate::runtime::train::Input::F32(x.view())], false)
                        .unwrap()
                        .to_owned()
                };
                let f = direction(false, &weights[..3]);
                let mut bk = direction(true, &weights[3..]);
                if seq {
                    bk.invert_axis(Axis(1));
                }
                let want = match merge {
                    BiMerge::Concat => {
                        ndarray::concatenate(Axis(f.ndim() - 1), &[f.view(), bk.view()]).unwrap()
                    }
                    BiMerge::Sum => &f + &bk,
                    BiMerge::Mul => &f * &bk,
                    BiMerge::Ave => (&f + &bk) * 0.5,
                };
                assert_eq!(merged.shape(), want.shape(), "{cell:?} {merge:?} seq={seq}");
                for (a, b) in merged.iter().zip(want.iter()) {
                    assert!(
                        (a - b).abs() <= 1e-6,
                        "{cell:?} {merge:?} seq={seq}: {a} vs {b}"
                    );
                }
            }
        }
    }
}

#[test]
fn bidirectional_lowers_to_one_op_with_six_weights() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[5, 3]);
    let y = b.bidirectional(
        "bi",
        x,
        (RnnCell::Lstm, 4, true),
        RnnOptions::default(),
        BiMerge::Concat,
    );
    let plan = b.plan(y);
    let step = plan
        .steps
        .iter()
        .find(|s| matches!(s.op, Op::Bidirectional { .. }))
        .unwrap();
    assert_eq!(step.op.params().len(), 6);
    let names: Vec<&str> = plan.params.iter().map(|p| p.name.as_str()).collect();
    assert!(names.contains(&"bi.backward.recurrent_kernel"), "{names:?}");
}

#[test]
fn the_interpreter_runs_bidirectional_as_the_trainer_does() {
    use crate::plan::compile;
    use crate::runtime::interp::{Interpreter, TensorRef};
    use crate::runtime::weights::Weights;
    // Five sequences: the interpreter's LSTM takes its batch path.
    let x = noise(&[5, 6, 3], 12, 1.0);
    for (cell, seq, merge) in [
        (RnnCell::Lstm, true, BiMerge::Concat),
        (RnnCell::Gru, false, BiMerge::Mul),
        (RnnCell::SimpleRnn, true, BiMerge::Ave),
    ] {
        let mut b = Builder::new();
        let input = b.input("x", DType::F32, &[6, 3]);
        let options = RnnOptions {
            go_backwards: seq,
            ..RnnOptions::default()
        };
        let y = b.bidirectional("bi", input, (cell, 4, seq), options, merge);
        b.g.outputs.push(y);
        let graph = b.g.clone();
        let train_plan = compile(
            b.g,
            crate::passes::Mode::Train,
            &crate::passes::PassOptions::default(),
            "t".into(),
        )
        .unwrap();
        let infer_plan = compile(
            graph,
            crate::passes::Mode::Infer,
            &crate::passes::PassOptions::default(),
            "t".into(),
        )
        .unwrap();
        let mut t = trainer(train_plan.clone(), 9);
        let want = t
            .forward(&[crate::runtime::train::Input::F32(x.view())], false)
            .unwrap()
            .to_owned();
        let named: Vec<(String, ArrayD<f32>)> = train_plan
            .params
            .iter()
            .zip(t.params.tensors_mut().iter())
            .map(|(p, v)| (p.name.clone(), v.to_owned()))
            .collect();
        let weights = Weights::from_named(&infer_plan, named).unwrap();
        let mut it = Interpreter::new(&infer_plan, weights).unwrap();
        let got = it.run(&[TensorRef::F32(x.view())]).unwrap();
        assert_eq!(got[0].shape(), want.shape());
        for (a, b) in got[0].iter().zip(want.iter()) {
            assert!((a - b).abs() <= 1e-5, "{cell:?} {merge:?}: {a} vs {b}");
        }
    }
}
