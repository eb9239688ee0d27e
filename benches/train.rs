//! Training throughput of the shipped specs' models: the seed CNN and the seed RNN at batch 64 (samples/s, adam, sparse
//! cross-entropy), and 1000 full-batch gd iterations of linear regression on 10,000 × 16 (ms).
//! GEMM runs on 2 threads (`MATMUL_NUM_THREADS=2`, set here unless already set).
//!
//! Run with `cargo bench --bench train`; `cargo bench --bench train -- regression` (or `cnn`,
//! `rnn`) runs only the named benchmarks. Peers, to run in the same minute: Keras with
//! `../shared/peers/quick_peers.py keras-train`, NumPy's regression loop with
//! `benches/peers/regression_numpy.py`.

// A benchmark binary: a failed setup should stop it loudly.
#![allow(clippy::expect_used)]

use std::time::Instant;

use modelc::diag::FileId;
use modelc::passes::{Mode, PassOptions};
use modelc::plan::{self, compile, ExecutionPlan};
use modelc::runtime::loss::{Loss, SparseLabels, Targets};
use modelc::runtime::optim::{Adam, AdamConfig, Gd, GdConfig, Optimizer};
use modelc::runtime::train::{Input, ParamStore, Trainer};
use modelc::syntax::{parse, Limits};
use ndarray::{ArrayD, IxDyn};

/// The training plan of a shipped spec's (first) model: the benchmarks measure exactly what
/// `modelc train` runs.
fn spec_plan(spec: &str) -> ExecutionPlan {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(spec);
    let text = std::fs::read_to_string(&path).expect("read spec");
    let parsed = parse(FileId::default(), &text, &Limits::default());
    let checked = modelc::check::check_file(FileId::default(), &parsed.file);
    assert!(
        !parsed.has_errors() && !checked.has_errors(),
        "{spec} does not check"
    );
    let graph = modelc::ir::lower(&checked.models[0]).expect("lower");
    compile(
        graph,
        Mode::Train,
        &PassOptions::default(),
        plan::spec_hash(text.as_bytes()),
    )
    .expect("compile")
}

fn trainer(plan: ExecutionPlan) -> Trainer {
    let params = ParamStore::init(&plan, 1).expect("init");
    Trainer::new(plan, params, 1).expect("trainer")
}

fn adam() -> Optimizer {
    Optimizer::Adam(Adam::new(AdamConfig::default()).expect("adam"))
}

/// Deterministic values in `[0, 1)`.
fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (s >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

fn seed_cnn() -> ExecutionPlan {
    spec_plan("specs/seed_cnn.model")
}

fn seed_rnn() -> ExecutionPlan {
    spec_plan("specs/seed_rnn.model")
}

fn time_steps(mut step: impl FnMut(), warmup: usize, steps: usize) -> f64 {
    for _ in 0..warmup {
        step();
    }
    let start = Instant::now();
    for _ in 0..steps {
        step();
    }
    start.elapsed().as_secs_f64()
}

fn main() {
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        std::env::set_var("MATMUL_NUM_THREADS", "2");
    }
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let runs = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    if runs("cnn") {
        cnn();
    }
    if runs("rnn") {
        rnn();
    }
    if runs("regression") {
        regression();
    }
}

fn sparse_setup() -> (usize, Loss, ArrayD<i32>) {
    let batch = 64;
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let labels =
        ArrayD::from_shape_vec(IxDyn(&[batch]), (0..batch as i32).map(|i| i % 10).collect())
            .expect("labels");
    (batch, loss, labels)
}

fn cnn() {
    let (batch, loss, labels) = sparse_setup();
    let images = ArrayD::from_shape_vec(IxDyn(&[batch, 28, 28, 1]), uniform(batch * 784, 3))
        .expect("images");
    let mut t = trainer(seed_cnn());
    let mut opt = adam();
    let steps = 30;
    let secs = time_steps(
        || {
            t.train_step(
                &[Input::F32(images.view())],
                &Targets::Sparse(SparseLabels::I32(labels.view())),
                loss,
                &mut opt,
                1e-3,
                None,
            )
            .expect("cnn step");
        },
        3,
        steps,
    );
    println!(
        "seed CNN   train, batch {batch}: {:8.0} samples/s ({:.2} ms/step; target >= 4500)",
        (steps * batch) as f64 / secs,
        1e3 * secs / steps as f64
    );
}

fn rnn() {
    let (batch, loss, labels) = sparse_setup();
    let ids = ArrayD::from_shape_vec(
        IxDyn(&[batch, 100]),
        uniform(batch * 100, 5)
            .into_iter()
            .map(|u| (u * 1000.0) as i32 % 1000)
            .collect(),
    )
    .expect("ids");
    let mut t = trainer(seed_rnn());
    let mut opt = adam();
    let steps = 20;
    let secs = time_steps(
        || {
            t.train_step(
                &[Input::I32(ids.view())],
                &Targets::Sparse(SparseLabels::I32(labels.view())),
                loss,
                &mut opt,
                1e-3,
                None,
            )
            .expect("rnn step");
        },
        2,
        steps,
    );
    println!(
        "seed RNN   train, batch {batch}: {:8.0} samples/s ({:.2} ms/step; target >= 1500)",
        (steps * batch) as f64 / secs,
        1e3 * secs / steps as f64
    );
}

fn regression() {
    let (rows, feats) = (10_000, 16);
    let x = ArrayD::from_shape_vec(IxDyn(&[rows, feats]), uniform(rows * feats, 7)).expect("x");
    let y = ArrayD::from_shape_vec(IxDyn(&[rows, 1]), uniform(rows, 9)).expect("y");
    let mut t = trainer(spec_plan("specs/linear_regression.model"));
    let mut opt = Optimizer::Gd(Gd::new(GdConfig::default()).expect("gd"));
    let mut run = || {
        for _ in 0..1000 {
            t.train_step(
                &[Input::F32(x.view())],
                &Targets::Dense(y.view()),
                Loss::MeanSquaredError,
                &mut opt,
                0.01,
                None,
            )
            .expect("regression step");
        }
    };
    let secs = time_steps(&mut run, 0, 1);
    println!(
        "regression 1000 gd steps, 10000x16: {:8.1} ms (target < 36 ms, NumPy)",
        secs * 1e3
    );
}
