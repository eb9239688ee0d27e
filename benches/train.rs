//! Training throughput: the seed CNN and the seed RNN at batch 64 (samples/s, adam, sparse
//! cross-entropy), and 1000 full-batch gd iterations of linear regression on 10,000 × 16 (ms).
//! GEMM runs on 2 threads (`MATMUL_NUM_THREADS=2`, set here unless already set).
//!
//! Run with `cargo bench --bench train`; `cargo bench --bench train -- regression` (or `cnn`,
//! `rnn`) runs only the named benchmarks.

// A benchmark binary: a failed setup should stop it loudly.
#![allow(clippy::expect_used)]

use std::time::Instant;

use modelc::ir::{
    Activation, DType, Dim, Fact, Graph, Init, Op, Padding, Param, ParamId, ParamSource, RnnCell,
    ValueId, Window,
};
use modelc::passes::{Mode, PassOptions};
use modelc::plan::{compile, ExecutionPlan};
use modelc::runtime::loss::{Loss, SparseLabels, Targets};
use modelc::runtime::optim::{Adam, AdamConfig, Gd, GdConfig, Optimizer};
use modelc::runtime::train::{Input, ParamStore, Trainer};
use ndarray::{ArrayD, IxDyn};

struct Builder {
    g: Graph,
}

impl Builder {
    fn new(dtype: DType, dims: &[usize]) -> (Self, ValueId) {
        let mut g = Graph {
            name: "bench".into(),
            ..Graph::default()
        };
        let mut d = vec![Dim::Symbol("N".into())];
        d.extend(dims.iter().map(|&k| Dim::Known(k)));
        let x = g.add_input("x", Fact::new(dtype, d));
        (Self { g }, x)
    }

    fn param(&mut self, name: String, shape: Vec<usize>, init: Init) -> ParamId {
        self.g.add_param(Param {
            name,
            shape,
            trainable: true,
            init,
            source: ParamSource::Stored,
        })
    }

    fn last(&self, x: ValueId) -> usize {
        self.g.value(x).and_then(|v| v.fact.dim(-1)).unwrap_or(0)
    }

    fn op(&mut self, name: &str, op: Op, x: ValueId) -> ValueId {
        self.g.add_node(name, op, vec![x]).expect("bench graph")
    }

    fn dense(&mut self, name: &str, x: ValueId, units: usize, act: Activation) -> ValueId {
        let last = self.last(x);
        let kernel = self.param(
            format!("{name}.kernel"),
            vec![last, units],
            Init::GlorotUniform,
        );
        let bias = self.param(format!("{name}.bias"), vec![units], Init::Zeros);
        let y = self.op(
            name,
            Op::Dense {
                units,
                kernel,
                bias: Some(bias),
                activation: Activation::Linear,
            },
            x,
        );
        if act == Activation::Linear {
            y
        } else {
            self.op(&format!("{name}_act"), Op::Activation(act), y)
        }
    }

    fn conv_relu(&mut self, name: &str, x: ValueId, filters: usize) -> ValueId {
        let last = self.last(x);
        let kernel = self.param(
            format!("{name}.kernel"),
            vec![3, 3, last, filters],
            Init::GlorotUniform,
        );
        let bias = self.param(format!("{name}.bias"), vec![filters], Init::Zeros);
        let y = self.op(
            name,
            Op::Conv2d {
                filters,
                window: window(3, 1),
                kernel,
                bias: Some(bias),
                activation: Activation::Linear,
            },
            x,
        );
        self.op(&format!("{name}_relu"), Op::Activation(Activation::Relu), y)
    }

    fn lstm(&mut self, name: &str, x: ValueId, units: usize, seq: bool) -> ValueId {
        let f = self.last(x);
        let kernel = self.param(
            format!("{name}.kernel"),
            vec![f, 4 * units],
            Init::GlorotUniform,
        );
        let recurrent = self.param(
            format!("{name}.recurrent_kernel"),
            vec![units, 4 * units],
            Init::Orthogonal,
        );
        let bias = self.param(
            format!("{name}.bias"),
            vec![4 * units],
            Init::UnitForgetBias,
        );
        self.op(
            name,
            Op::Rnn {
                cell: RnnCell::Lstm,
                units,
                return_sequences: seq,
                kernel,
                recurrent,
                bias,
            },
            x,
        )
    }

    fn plan(mut self, y: ValueId) -> ExecutionPlan {
        self.g.outputs.push(y);
        compile(self.g, Mode::Train, &PassOptions::default(), "bench".into()).expect("plan")
    }
}

fn window(k: usize, stride: usize) -> Window {
    Window {
        size: [k, k],
        strides: [stride, stride],
        dilation: [1, 1],
        padding: Padding::Valid,
    }
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
    let (mut b, x) = Builder::new(DType::F32, &[28, 28, 1]);
    let mut a = x;
    for (i, f) in [32, 64, 128].into_iter().enumerate() {
        a = b.conv_relu(&format!("conv2d_{i}"), a, f);
        a = b.op(
            &format!("pool_{i}"),
            Op::MaxPool2d {
                window: window(2, 2),
            },
            a,
        );
    }
    let a = b.op("flatten", Op::Flatten, a);
    let a = b.dense("dense_0", a, 128, Activation::Relu);
    let y = b.dense("dense_1", a, 10, Activation::Softmax);
    b.plan(y)
}

fn seed_rnn() -> ExecutionPlan {
    let (mut b, ids) = Builder::new(DType::I32, &[100]);
    let table = b.param(
        "embedding.embeddings".into(),
        vec![1000, 64],
        Init::Uniform { limit: 0.05 },
    );
    let e = b.op("embedding", Op::Embedding { table }, ids);
    let h = b.lstm("lstm_0", e, 64, true);
    let h = b.lstm("lstm_1", h, 64, false);
    let y = b.dense("dense", h, 10, Activation::Softmax);
    b.plan(y)
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
    let (b, xin) = Builder::new(DType::F32, &[feats]);
    let mut b = b;
    let out = b.dense("linear", xin, 1, Activation::Linear);
    let mut t = trainer(b.plan(out));
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
