//! The trainer's fold of an embedding into the recurrent layer reading it
//! (`ops::recurrent_fold`) against the unfolded pair: the same outputs and, up to rounding
//! (the fold sums per token first), the same gradients of the table, the layer and what
//! follows, for every cell, with a padding mask, recurrent dropout and a frozen table, on
//! one to three threads; and the pairs it must leave alone.

use super::{noise, trainer, Builder};
use crate::ir::{Activation, DType, Init, Op, ParamId, RnnCell};
use crate::ops::recurrent::RnnOptions;
use crate::plan::ExecutionPlan;
use crate::runtime::ops::recurrent_fold::embedding_folds;
use crate::runtime::train::context::StepState;
use crate::runtime::train::{Input, Trainer};

const N: usize = 4;
const T: usize = 5;
const V: usize = 9;
const F: usize = 3;
const U: usize = 4;
/// Ids over `0..V`, every one used, some repeated; zeros are masked when the layer reads a
/// padding mask.
const IDS: [i32; N * T] = [3, 0, 2, 8, 0, 4, 1, 2, 7, 5, 6, 6, 3, 0, 0, 1, 8, 8, 4, 2];

struct Case {
    cell: RnnCell,
    reset_after: bool,
    sequences: bool,
    recurrent_dropout: f32,
    masked: bool,
    table: Table,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Table {
    Trained,
    Frozen,
}

fn plan(c: &Case) -> (ExecutionPlan, ParamId) {
    let mut b = Builder::new();
    let ids = b.input("ids", DType::I32, &[T]);
    let table = b.param(
        "emb.embeddings",
        &[V, F],
        Init::Uniform { limit: 0.8 },
        c.table == Table::Trained,
    );
    let e = b.node("emb", Op::Embedding { table }, &[ids]);
    let options = RnnOptions {
        reset_after: c.reset_after,
        recurrent_dropout: c.recurrent_dropout,
        ..RnnOptions::default()
    };
    let r = b.rnn_with("rnn", e, (c.cell, U, c.sequences), options);
    if c.masked {
        b.g.nodes.last_mut().unwrap().inputs.push(ids);
    }
    let r = if c.sequences {
        b.node("flat", Op::Flatten, &[r])
    } else {
        r
    };
    let y = b.dense("d", r, 3, Activation::Tanh);
    (b.plan(y), table)
}

/// The forward's output, then every parameter's gradient (empty when none was written), after
/// two training steps' worth of forward and backward (the second draws new dropout masks).
fn run(t: &mut Trainer, ids: &ndarray::ArrayD<i32>) -> (Vec<f32>, Vec<Vec<f32>>) {
    let inputs = [Input::I32(ids.view())];
    let mut out = Vec::new();
    for _ in 0..2 {
        let y = t.forward(&inputs, true).unwrap().to_owned();
        let w = noise(y.shape(), 3, 1.0);
        t.backward(&inputs, &w.view()).unwrap();
        out = y.iter().copied().collect();
    }
    let grads = (0..t.plan().params.len())
        .map(|i| {
            t.param_grad(i)
                .map(|g| g.iter().copied().collect())
                .unwrap_or_default()
        })
        .collect();
    (out, grads)
}

fn fold_of(t: &Trainer) -> Option<bool> {
    t.state.iter().find_map(|s| match s {
        StepState::Rnn(r) => Some(r.fold.is_some() && r.workspace.folded()),
        _ => None,
    })
}

fn unfold(t: &mut Trainer) {
    for s in &mut t.state {
        if let StepState::Rnn(r) = s {
            r.fold = None;
        }
    }
}

/// `a` within `tol` of `b` relative to `b`'s largest magnitude.
fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * scale, "{what}[{i}]: {x} vs {y}");
    }
}

fn compare(c: &Case, threads: usize) {
    let (plan, table) = plan(c);
    let ids = ndarray::Array::from_shape_vec((N, T), IDS.to_vec())
        .unwrap()
        .into_dyn();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let (fast, plain) = pool.install(|| {
        let mut fast = trainer(plan.clone(), 5);
        let mut plain = trainer(plan, 5);
        unfold(&mut plain);
        let a = run(&mut fast, &ids);
        assert_eq!(fold_of(&fast), Some(true), "the fold is taken");
        assert_eq!(fold_of(&plain), Some(false));
        (a, run(&mut plain, &ids))
    });
    let what = format!(
        "{:?} reset_after {} seq {} rd {} masked {} table {:?} threads {threads}",
        c.cell, c.reset_after, c.sequences, c.recurrent_dropout, c.masked, c.table
    );
    assert_eq!(fast.0, plain.0, "forward output bits, {what}");
    for (i, (a, b)) in fast.1.iter().zip(&plain.1).enumerate() {
        close(a, b, 2e-6, &format!("gradient {i}, {what}"));
    }
    let table_grad = &fast.1[table.index()];
    if c.table == Table::Trained {
        assert!(table_grad.iter().any(|&v| v != 0.0), "{what}");
    } else {
        assert!(table_grad.iter().all(|&v| v == 0.0), "{what}");
    }
    assert!(
        fast.1.iter().filter(|g| !g.is_empty()).count() >= 4,
        "{what}"
    );
}

#[test]
fn a_folded_embedding_trains_as_the_unfolded_pair() {
    let cells = [
        (RnnCell::SimpleRnn, true),
        (RnnCell::Lstm, true),
        (RnnCell::Gru, true),
        (RnnCell::Gru, false),
    ];
    for (cell, reset_after) in cells {
        for (sequences, recurrent_dropout, masked) in [
            (true, 0.0, false),
            (false, 0.3, false),
            (true, 0.0, true),
            (false, 0.25, true),
        ] {
            let case = Case {
                cell,
                reset_after,
                sequences,
                recurrent_dropout,
                masked,
                table: Table::Trained,
            };
            for threads in [1, 2, 3] {
                compare(&case, threads);
            }
        }
    }
}

#[test]
fn a_frozen_table_gets_no_gradient_and_the_layer_the_same_ones() {
    let case = Case {
        cell: RnnCell::Lstm,
        reset_after: true,
        sequences: true,
        recurrent_dropout: 0.0,
        masked: false,
        table: Table::Frozen,
    };
    compare(&case, 2);
}

#[test]
fn a_vocabulary_larger_than_the_batch_runs_unfolded() {
    // 9 rows in the table, 2·5 = 10 tokens fold; 1·5 = 5 do not.
    let case = Case {
        cell: RnnCell::Lstm,
        reset_after: true,
        sequences: false,
        recurrent_dropout: 0.0,
        masked: false,
        table: Table::Trained,
    };
    let (plan, _) = plan(&case);
    let mut t = trainer(plan, 5);
    let few = ndarray::Array::from_shape_vec((1, T), IDS[..T].to_vec())
        .unwrap()
        .into_dyn();
    let many = ndarray::Array::from_shape_vec((2, T), IDS[..2 * T].to_vec())
        .unwrap()
        .into_dyn();
    run(&mut t, &few);
    assert_eq!(fold_of(&t), Some(false));
    run(&mut t, &many);
    assert_eq!(fold_of(&t), Some(true));
    run(&mut t, &few);
    assert_eq!(fold_of(&t), Some(false), "each batch chooses anew");
}

#[test]
fn pairs_the_fold_must_leave_alone() {
    let base = |options: RnnOptions, second_reader: bool| {
        let mut b = Builder::new();
        let ids = b.input("ids", DType::I32, &[T]);
        let table = b.param("emb.embeddings", &[V, F], Init::Zeros, true);
        let e = b.node("emb", Op::Embedding { table }, &[ids]);
        let r = b.rnn_with("rnn", e, (RnnCell::Lstm, U, false), options);
        let y = if second_reader {
            let m = b.node("pool", Op::GlobalAvgPool1d, &[e]);
            b.node("cat", Op::Concat { axis: 1 }, &[r, m])
        } else {
            r
        };
        embedding_folds(&b.plan(y)).iter().flatten().count()
    };
    assert_eq!(base(RnnOptions::default(), false), 1);
    assert_eq!(base(RnnOptions::default(), true), 0, "a second reader");
    let dropout = RnnOptions {
        dropout: 0.2,
        ..RnnOptions::default()
    };
    assert_eq!(base(dropout, false), 0, "input dropout");
    let backwards = RnnOptions {
        go_backwards: true,
        ..RnnOptions::default()
    };
    assert_eq!(base(backwards, false), 0, "go_backwards");
}
