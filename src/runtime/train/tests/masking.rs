//! Keras's padding mask (`ops::mask`, `embedding(..., mask_zero: true)`) in the trainer and the
//! interpreter: the masked recurrent layers, `bidirectional` and `global_avg_pool1d` against
//! Keras 3's numbers (hard-coded from `tests/fixtures/kernels/masking_keras.py`), a sequence
//! padded at its end against the unpadded one, gradients against finite differences (no
//! gradient into a masked step's input), and the folded embedding against `-O0`.

use ndarray::{ArrayD, IxDyn};

use super::gradients::check;
use super::{noise, trainer, Builder};
use crate::ir::{DType, Graph, Op, RnnCell, ValueId};
use crate::ops::bidirectional::BiMerge;
use crate::ops::recurrent::RnnOptions;
use crate::passes::{Mode, PassOptions};
use crate::plan::{compile, ExecutionPlan};
use crate::runtime::interp::{Interpreter, TensorRef};
use crate::runtime::train::Input;
use crate::runtime::weights::Weights;

const N: usize = 2;
const T: usize = 5;
const F: usize = 3;
const U: usize = 2;
/// Token ids whose zeros are Keras's mask `[[1, 0, 1, 1, 0], [1, 1, 1, 0, 0]]` (`KEEP`).
const IDS: [i32; N * T] = [3, 0, 2, 1, 0, 4, 1, 2, 0, 0];

/// `scale · sin(a·k + b)` for `k` in `0..len`, in f64 then rounded, as numpy computes it.
#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
fn wave(len: usize, a: f64, b: f64, scale: f64) -> Vec<f32> {
    (0..len)
        .map(|k| (scale * (a * k as f64 + b).sin()) as f32)
        .collect()
}

/// The script's input `x: [N, T, F]`.
fn x() -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(&[N, T, F]), wave(N * T * F, 0.7, 0.3, 1.0)).unwrap()
}

fn ids() -> ArrayD<i32> {
    ArrayD::from_shape_vec(IxDyn(&[N, T]), IDS.to_vec()).unwrap()
}

/// The script's weights: `0.5·sin(0.37·k + salt)`, salt 1, 2, 3 for the kernel, recurrent
/// kernel and bias, plus 0.5 for a bidirectional layer's backward direction.
fn keras_weight(name: &str, len: usize) -> Vec<f32> {
    let mut salt = if name.ends_with(".kernel") {
        1.0
    } else if name.ends_with(".recurrent_kernel") {
        2.0
    } else {
        3.0
    };
    if name.contains(".backward.") {
        salt += 0.5;
    }
    wave(len, 0.37, salt, 0.5)
}

fn cell_name(cell: RnnCell) -> &'static str {
    match cell {
        RnnCell::SimpleRnn => "simple",
        RnnCell::Lstm => "lstm",
        RnnCell::Gru => "gru",
    }
}

/// The cells of the script: each with Keras's GRU `reset_after` true, and a GRU without it.
const CELLS: [(RnnCell, bool); 4] = [
    (RnnCell::SimpleRnn, true),
    (RnnCell::Lstm, true),
    (RnnCell::Gru, true),
    (RnnCell::Gru, false),
];

fn keras(key: &str) -> &'static [f32] {
    KERAS
        .iter()
        .find(|(k, _)| *k == key)
        .unwrap_or_else(|| panic!("no Keras reference {key}"))
        .1
}

/// A graph `ids [N, T], x [N, T, F] → build(x)` whose masked layers read `ids` as their mask.
fn graph(build: impl FnOnce(&mut Builder, ValueId, ValueId) -> ValueId) -> Graph {
    let mut b = Builder::new();
    let ids = b.input("ids", DType::I32, &[T]);
    let x = b.input("x", DType::F32, &[T, F]);
    let y = build(&mut b, ids, x);
    b.g.outputs.push(y);
    b.g
}

/// A masked recurrent layer over `x` reading `ids`' mask.
fn masked_rnn(
    b: &mut Builder,
    (ids, x): (ValueId, ValueId),
    (cell, seq): (RnnCell, bool),
    options: RnnOptions,
) -> ValueId {
    let y = b.rnn_with("rnn", x, (cell, U, seq), options);
    with_mask(b, ids)
        .map(|()| y)
        .expect("the layer reads a mask")
}

/// Adds `ids` as the mask input of the graph's last node.
fn with_mask(b: &mut Builder, ids: ValueId) -> Option<()> {
    let node = b.g.nodes.last_mut()?;
    node.inputs.push(ids);
    Some(())
}

fn options(reset_after: bool, go_backwards: bool) -> RnnOptions {
    RnnOptions {
        go_backwards,
        reset_after,
        ..RnnOptions::default()
    }
}

/// The trainer's forward (inference semantics) with the script's weights.
fn train_forward(g: Graph) -> Vec<f32> {
    let plan = compile(g, Mode::Train, &PassOptions::default(), "t".into()).unwrap();
    let mut t = trainer(plan.clone(), 5);
    for (p, tensor) in plan.params.iter().zip(t.params.tensors_mut()) {
        let w = keras_weight(&p.name, tensor.len());
        tensor.as_slice_mut().unwrap().copy_from_slice(&w);
    }
    let (ids, x) = (ids(), x());
    let y = t
        .forward(&[Input::I32(ids.view()), Input::F32(x.view())], false)
        .unwrap();
    y.iter().copied().collect()
}

/// The interpreter's output with the script's weights, optimized or `-O0`.
fn infer(g: Graph, optimize: bool, (ids, x): (&ArrayD<i32>, &ArrayD<f32>)) -> Vec<f32> {
    let options = PassOptions {
        no_optimize: !optimize,
        ..PassOptions::default()
    };
    let plan = compile(g, Mode::Infer, &options, "t".into()).unwrap();
    run(&plan, (ids, x))
}

fn run(plan: &ExecutionPlan, (ids, x): (&ArrayD<i32>, &ArrayD<f32>)) -> Vec<f32> {
    let stored = plan
        .params
        .iter()
        .filter(|p| p.source == crate::ir::ParamSource::Stored)
        .map(|p| {
            let data = keras_weight(&p.name, p.shape.iter().product());
            (
                p.name.clone(),
                ArrayD::from_shape_vec(IxDyn(&p.shape), data).unwrap(),
            )
        })
        .collect();
    let w = Weights::from_named(plan, stored).unwrap();
    let out = Interpreter::new(plan, w)
        .unwrap()
        .run(&[TensorRef::I32(ids.view()), TensorRef::F32(x.view())])
        .unwrap();
    out[0].iter().copied().collect()
}

fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol,
            "{what}[{i}]: {g} vs Keras {w}\n{got:?}"
        );
    }
}

#[test]
fn masked_recurrences_give_keras_outputs_in_the_trainer_and_the_interpreter() {
    for (cell, reset_after) in CELLS {
        for go_backwards in [false, true] {
            for seq in [true, false] {
                let key = format!(
                    "{} reset_after={} go_backwards={} {}",
                    cell_name(cell),
                    if reset_after { "True" } else { "False" },
                    if go_backwards { "True" } else { "False" },
                    if seq { "seq" } else { "last" }
                );
                let build = |b: &mut Builder, ids, x| {
                    masked_rnn(b, (ids, x), (cell, seq), options(reset_after, go_backwards))
                };
                let want = keras(&key);
                assert_close(
                    &format!("{key} train"),
                    &train_forward(graph(build)),
                    want,
                    2e-5,
                );
                for optimize in [true, false] {
                    let got = infer(graph(build), optimize, (&ids(), &x()));
                    assert_close(&format!("{key} infer O{optimize}"), &got, want, 2e-5);
                }
            }
        }
    }
}

#[test]
fn masked_bidirectional_layers_give_keras_outputs() {
    for (cell, reset_after) in CELLS {
        let key = format!(
            "{} reset_after={} bidirectional seq",
            cell_name(cell),
            if reset_after { "True" } else { "False" }
        );
        let build = |b: &mut Builder, ids, x| {
            let o = options(reset_after, false);
            let y = b.bidirectional("bi", x, (cell, U, true), o, BiMerge::Concat);
            with_mask(b, ids).map(|()| y).unwrap()
        };
        let want = keras(&key);
        assert_close(
            &format!("{key} train"),
            &train_forward(graph(build)),
            want,
            2e-5,
        );
        let got = infer(graph(build), true, (&ids(), &x()));
        assert_close(&format!("{key} infer"), &got, want, 2e-5);
    }
}

#[test]
fn a_masked_global_average_pool_is_the_mean_of_the_kept_steps() {
    let build = |b: &mut Builder, ids, x| {
        let y = b.node("pool", Op::GlobalAvgPool1d, &[x]);
        with_mask(b, ids).map(|()| y).unwrap()
    };
    let want = keras("gap");
    assert_close("gap train", &train_forward(graph(build)), want, 1e-6);
    assert_close(
        "gap infer",
        &infer(graph(build), true, (&ids(), &x())),
        want,
        1e-6,
    );
}

#[test]
fn trailing_padding_ends_in_the_state_of_the_unpadded_sequence() {
    // Sample 1 keeps its first 3 steps: its final state is the layer's over those 3 alone.
    for (cell, reset_after) in CELLS {
        let o = options(reset_after, false);
        let masked = infer(
            graph(|b, ids, x| masked_rnn(b, (ids, x), (cell, false), o)),
            true,
            (&ids(), &x()),
        );
        let mut b = Builder::new();
        let short = b.input("x", DType::F32, &[3, F]);
        let y = b.rnn_with("rnn", short, (cell, U, false), o);
        b.g.outputs.push(y);
        let plan = compile(b.g, Mode::Infer, &PassOptions::default(), "t".into()).unwrap();
        let xs = x();
        let first3 = xs.slice(ndarray::s![1..2, 0..3, ..]).to_owned().into_dyn();
        let stored = plan
            .params
            .iter()
            .map(|p| {
                let data = keras_weight(&p.name, p.shape.iter().product());
                (
                    p.name.clone(),
                    ArrayD::from_shape_vec(IxDyn(&p.shape), data).unwrap(),
                )
            })
            .collect();
        let w = Weights::from_named(&plan, stored).unwrap();
        let unpadded = Interpreter::new(&plan, w)
            .unwrap()
            .run(&[TensorRef::F32(first3.view())])
            .unwrap();
        let unpadded: Vec<f32> = unpadded[0].iter().copied().collect();
        assert_eq!(masked[U..], unpadded[..], "{cell:?}: padded vs unpadded");
    }
}

#[test]
fn masked_gradients_match_finite_differences_and_skip_masked_inputs() {
    for (cell, reset_after) in CELLS {
        for (go_backwards, seq) in [(false, true), (true, false), (false, false)] {
            let o = options(reset_after, go_backwards);
            let build = |b: &mut Builder, ids, x| masked_rnn(b, (ids, x), (cell, seq), o);
            let plan = compile(
                graph(build),
                Mode::Train,
                &PassOptions::default(),
                "t".into(),
            )
            .unwrap();
            let x = noise(&[N, T, F], 31, 1.0);
            check(plan.clone(), vec![x.clone()], Some(ids()), 1e-2);
            assert_masked_inputs_get_no_gradient(plan, &x);
        }
    }
    let bi = |b: &mut Builder, ids, x| {
        let o = options(true, false);
        let y = b.bidirectional("bi", x, (RnnCell::Lstm, U, true), o, BiMerge::Sum);
        with_mask(b, ids).map(|()| y).unwrap()
    };
    let pool = |b: &mut Builder, ids, x| {
        let y = b.node("pool", Op::GlobalAvgPool1d, &[x]);
        with_mask(b, ids).map(|()| y).unwrap()
    };
    for g in [graph(bi), graph(pool)] {
        let plan = compile(g, Mode::Train, &PassOptions::default(), "t".into()).unwrap();
        let x = noise(&[N, T, F], 32, 1.0);
        check(plan.clone(), vec![x.clone()], Some(ids()), 1e-2);
        assert_masked_inputs_get_no_gradient(plan, &x);
    }
}

/// The input gradient of every masked step is exactly zero, and of some kept step not.
fn assert_masked_inputs_get_no_gradient(plan: ExecutionPlan, x: &ArrayD<f32>) {
    let mut t = trainer(plan, 5).with_input_gradients();
    let ids = ids();
    let inputs = [Input::I32(ids.view()), Input::F32(x.view())];
    let shape = t.forward(&inputs, true).unwrap().shape().to_vec();
    t.backward(&inputs, &noise(&shape, 17, 1.0).view()).unwrap();
    let dx = t.input_grad(1).unwrap();
    let dx = dx.as_slice().unwrap();
    for (step, &id) in IDS.iter().enumerate() {
        let g = &dx[step * F..(step + 1) * F];
        if id == 0 {
            assert!(g.iter().all(|&v| v == 0.0), "masked step {step}: {g:?}");
        }
    }
    assert!(dx.iter().any(|&v| v != 0.0));
}

#[test]
fn a_folded_masked_embedding_gives_the_unfolded_numbers() {
    // `ids → embedding → lstm(mask ids)`: `fold-embedding-projection` keeps the mask input.
    for (cell, reset_after) in CELLS {
        let mut b = Builder::new();
        let ids_in = b.input("ids", DType::I32, &[T]);
        let table = b.param("emb.embeddings", &[5, F], crate::ir::Init::Zeros, true);
        let e = b.node("emb", Op::Embedding { table }, &[ids_in]);
        let o = options(reset_after, false);
        let y = b.rnn_with("rnn", e, (cell, U, true), o);
        with_mask(&mut b, ids_in).unwrap();
        b.g.outputs.push(y);
        let opt = compile(
            b.g.clone(),
            Mode::Infer,
            &PassOptions::default(),
            "t".into(),
        )
        .unwrap();
        let folded = opt
            .steps
            .iter()
            .any(|s| matches!(s.op, Op::EmbeddedRnn { .. }) && s.inputs.len() == 2);
        assert!(folded || !reset_after, "{cell:?}: not folded");
        let raw_options = PassOptions {
            no_optimize: true,
            ..PassOptions::default()
        };
        let raw = compile(b.g, Mode::Infer, &raw_options, "t".into()).unwrap();
        let ids = ids();
        let run_ids = |plan: &ExecutionPlan| {
            let stored = plan
                .params
                .iter()
                .filter(|p| p.source == crate::ir::ParamSource::Stored)
                .map(|p| {
                    let data = keras_weight(&p.name, p.shape.iter().product());
                    (
                        p.name.clone(),
                        ArrayD::from_shape_vec(IxDyn(&p.shape), data).unwrap(),
                    )
                })
                .collect();
            let w = Weights::from_named(plan, stored).unwrap();
            let out = Interpreter::new(plan, w)
                .unwrap()
                .run(&[TensorRef::I32(ids.view())])
                .unwrap();
            out[0].iter().copied().collect::<Vec<f32>>()
        };
        let (a, b) = (run_ids(&opt), run_ids(&raw));
        assert_close(&format!("{cell:?} folded vs -O0"), &a, &b, 1e-5);
        // Masked steps repeat the previous output.
        assert_eq!(a[U..2 * U], a[..U], "{cell:?}");
    }
}

/// Keras 3.15 outputs (`x` and weights as [`wave`] makes them, mask [`KEEP`]), by
/// `tests/fixtures/kernels/masking_keras.py`.
#[allow(clippy::unreadable_literal, clippy::excessive_precision)] // Keras's numbers as printed
const KERAS: &[(&str, &[f32])] = &[
    (
        "simple reset_after=True go_backwards=False seq",
        &[
            0.72316569,
            0.48931527,
            0.72316569,
            0.48931527,
            -0.43542504,
            -0.64407182,
            0.53765845,
            0.36664894,
            0.53765845,
            0.36664894,
            -0.70825464,
            -0.77024871,
            0.43200862,
            0.29004249,
            0.38435921,
            0.26575401,
            0.38435921,
            0.26575401,
            0.38435921,
            0.26575401,
        ],
    ),
    (
        "simple reset_after=True go_backwards=False last",
        &[0.53765845, 0.36664894, 0.38435921, 0.26575401],
    ),
    (
        "simple reset_after=True go_backwards=True seq",
        &[
            0.0,
            0.0,
            0.72811347,
            0.49791089,
            -0.43223518,
            -0.64298165,
            -0.43223518,
            -0.64298165,
            0.53138167,
            0.35775638,
            0.0,
            0.0,
            0.0,
            0.0,
            0.15090436,
            0.11656152,
            0.77241987,
            0.5456422,
            -0.40184876,
            -0.63096976,
        ],
    ),
    (
        "simple reset_after=True go_backwards=True last",
        &[0.53138167, 0.35775638, -0.40184876, -0.63096976],
    ),
    (
        "simple reset_after=True bidirectional seq",
        &[
            0.72316569,
            0.48931527,
            0.1969997,
            -0.014831334,
            0.0,
            0.0,
            0.0,
            0.0,
            -0.43542504,
            -0.64407182,
            -0.72781801,
            -0.72542667,
            0.53765845,
            0.36664894,
            0.37401539,
            -0.07067693,
            0.0,
            0.0,
            0.0,
            0.0,
            -0.70825464,
            -0.77024871,
            -0.72215992,
            -0.72531295,
            0.43200862,
            0.29004249,
            0.4070172,
            -0.05752559,
            0.38435921,
            0.26575401,
            0.10038877,
            0.045856215,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
        ],
    ),
    (
        "lstm reset_after=True go_backwards=False seq",
        &[
            -0.062267259,
            -0.070987821,
            -0.062267259,
            -0.070987821,
            -0.1213814,
            -0.11713952,
            -0.12012575,
            -0.11847096,
            -0.12012575,
            -0.11847096,
            -0.10027246,
            -0.091495372,
            -0.10956972,
            -0.1076639,
            -0.13552105,
            -0.13560309,
            -0.13552105,
            -0.13560309,
            -0.13552105,
            -0.13560309,
        ],
    ),
    (
        "lstm reset_after=True go_backwards=False last",
        &[-0.12012575, -0.11847096, -0.13552105, -0.13560309],
    ),
    (
        "lstm reset_after=True go_backwards=True seq",
        &[
            0.0,
            0.0,
            -0.062173586,
            -0.071072713,
            -0.12136897,
            -0.11720748,
            -0.12136897,
            -0.11720748,
            -0.12019756,
            -0.11845004,
            0.0,
            0.0,
            0.0,
            0.0,
            -0.097714595,
            -0.099605292,
            -0.11310182,
            -0.11723179,
            -0.13854815,
            -0.13380316,
        ],
    ),
    (
        "lstm reset_after=True go_backwards=True last",
        &[-0.12019756, -0.11845004, -0.13854815, -0.13380316],
    ),
    (
        "lstm reset_after=True bidirectional seq",
        &[
            -0.062267259,
            -0.070987821,
            -0.11478281,
            -0.1004215,
            0.0,
            0.0,
            0.0,
            0.0,
            -0.1213814,
            -0.11713952,
            -0.11263583,
            -0.091054395,
            -0.12012575,
            -0.11847096,
            -0.072211616,
            -0.070154697,
            0.0,
            0.0,
            0.0,
            0.0,
            -0.10027246,
            -0.091495372,
            -0.12852807,
            -0.10516087,
            -0.10956972,
            -0.1076639,
            -0.11561868,
            -0.10560552,
            -0.13552105,
            -0.13560309,
            -0.098311342,
            -0.08868175,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
        ],
    ),
    (
        "gru reset_after=True go_backwards=False seq",
        &[
            -0.27800977,
            -0.19195095,
            -0.27800977,
            -0.19195095,
            -0.31364724,
            -0.18951987,
            -0.36612216,
            -0.22343621,
            -0.36612216,
            -0.22343621,
            -0.23753156,
            -0.15417594,
            -0.34432143,
            -0.22092585,
            -0.32952726,
            -0.31809911,
            -0.32952726,
            -0.31809911,
            -0.32952726,
            -0.31809911,
        ],
    ),
    (
        "gru reset_after=True go_backwards=False last",
        &[-0.36612216, -0.22343621, -0.32952726, -0.31809911],
    ),
    (
        "gru reset_after=True go_backwards=True seq",
        &[
            0.0,
            0.0,
            -0.27733186,
            -0.1931704,
            -0.31332603,
            -0.18993032,
            -0.31332603,
            -0.18993032,
            -0.36616185,
            -0.22199965,
            0.0,
            0.0,
            0.0,
            0.0,
            -0.16975972,
            -0.23362747,
            -0.31403649,
            -0.24829072,
            -0.32099158,
            -0.20166989,
        ],
    ),
    (
        "gru reset_after=True go_backwards=True last",
        &[-0.36616185, -0.22199965, -0.32099158, -0.20166989],
    ),
    (
        "gru reset_after=True bidirectional seq",
        &[
            -0.27800977,
            -0.19195095,
            -0.18680954,
            0.035862606,
            0.0,
            0.0,
            0.0,
            0.0,
            -0.31364724,
            -0.18951987,
            -0.15314554,
            0.034766115,
            -0.36612216,
            -0.22343621,
            -0.1503223,
            -0.0044718999,
            0.0,
            0.0,
            0.0,
            0.0,
            -0.23753156,
            -0.15417594,
            -0.16095887,
            0.016026562,
            -0.34432143,
            -0.22092585,
            -0.20296004,
            -0.081580967,
            -0.32952726,
            -0.31809911,
            -0.25078091,
            -0.28042203,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
        ],
    ),
    (
        "gru reset_after=False go_backwards=False seq",
        &[
            -0.26433909,
            -0.23933797,
            -0.26433909,
            -0.23933797,
            -0.33268493,
            -0.28681165,
            -0.39084762,
            -0.32906348,
            -0.39084762,
            -0.32906348,
            -0.23225483,
            -0.20913762,
            -0.35232779,
            -0.30659112,
            -0.36519033,
            -0.39976126,
            -0.36519033,
            -0.39976126,
            -0.36519033,
            -0.39976126,
        ],
    ),
    (
        "gru reset_after=False go_backwards=False last",
        &[-0.39084762, -0.32906348, -0.36519033, -0.39976126],
    ),
    (
        "gru reset_after=False go_backwards=True seq",
        &[
            0.0,
            0.0,
            -0.26358452,
            -0.24013136,
            -0.3322978,
            -0.28716579,
            -0.3322978,
            -0.28716579,
            -0.39078385,
            -0.32793438,
            0.0,
            0.0,
            0.0,
            0.0,
            -0.1600993,
            -0.24335548,
            -0.316809,
            -0.32307872,
            -0.35017401,
            -0.31558895,
        ],
    ),
    (
        "gru reset_after=False go_backwards=True last",
        &[-0.39078385, -0.32793438, -0.35017401, -0.31558895],
    ),
    (
        "gru reset_after=False bidirectional seq",
        &[
            -0.26433909,
            -0.23933797,
            -0.30285564,
            -0.16448526,
            0.0,
            0.0,
            0.0,
            0.0,
            -0.33268493,
            -0.28681165,
            -0.26511377,
            -0.15199798,
            -0.39084762,
            -0.32906348,
            -0.22087681,
            -0.13471316,
            0.0,
            0.0,
            0.0,
            0.0,
            -0.23225483,
            -0.20913762,
            -0.28946173,
            -0.18920429,
            -0.35232779,
            -0.30659112,
            -0.30445093,
            -0.24885839,
            -0.36519033,
            -0.39976126,
            -0.27025118,
            -0.33480039,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
        ],
    ),
    (
        "gap",
        &[
            -0.12348953,
            0.26948431,
            0.53571552,
            -0.0010579824,
            -0.0027757278,
            -0.003188014,
        ],
    ),
];
