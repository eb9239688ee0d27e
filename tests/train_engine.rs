//! End-to-end training on in-memory data: linear regression against the least-squares
//! solution (normal equations solved here in f64), a small CNN and a small LSTM on separable
//! synthetic tasks, bit-identical determinism, and the NaN guard on a diverging run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelc::ir::{
    Activation, DType, Dim, Fact, Graph, Init, Op, Padding, Param, ParamId, ParamSource, RnnCell,
    ValueId, Window,
};
use modelc::passes::{Mode, PassOptions};
use modelc::plan::{compile, ExecutionPlan};
use modelc::runtime::loss::{Loss, SparseLabels, Targets};
use modelc::runtime::optim::{Adam, AdamConfig, Gd, GdConfig, Optimizer};
use modelc::runtime::train::{Input, ParamStore, TrainError, Trainer};
use ndarray::{Array2, ArrayD, Axis, IxDyn};

/// Deterministic uniform values in `[0, 1)` (SplitMix64), so the test needs no RNG crate.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (1.0 - self.next(), self.next());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

struct Builder {
    g: Graph,
}

impl Builder {
    fn new(dtype: DType, dims: &[usize]) -> (Self, ValueId) {
        let mut g = Graph {
            name: "e2e".into(),
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
        self.g.value(x).unwrap().fact.dim(-1).unwrap()
    }

    fn dense(&mut self, name: &str, x: ValueId, units: usize, act: Activation) -> ValueId {
        let last = self.last(x);
        let kernel = self.param(
            format!("{name}.kernel"),
            vec![last, units],
            Init::GlorotUniform,
        );
        let bias = self.param(format!("{name}.bias"), vec![units], Init::Zeros);
        let y = self
            .g
            .add_node(
                name,
                Op::Dense {
                    units,
                    kernel,
                    bias: Some(bias),
                    activation: Activation::Linear,
                },
                vec![x],
            )
            .unwrap();
        if act == Activation::Linear {
            y
        } else {
            self.op(&format!("{name}_act"), Op::Activation(act), y)
        }
    }

    fn conv(&mut self, name: &str, x: ValueId, filters: usize) -> ValueId {
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

    fn op(&mut self, name: &str, op: Op, x: ValueId) -> ValueId {
        self.g.add_node(name, op, vec![x]).unwrap()
    }

    fn plan(mut self, y: ValueId) -> ExecutionPlan {
        self.g.outputs.push(y);
        compile(self.g, Mode::Train, &PassOptions::default(), "e2e".into()).unwrap()
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

fn trainer(plan: ExecutionPlan, seed: u64) -> Trainer {
    let params = ParamStore::init(&plan, seed).unwrap();
    Trainer::new(plan, params, seed).unwrap()
}

// ---------------------------------------------------------------- linear regression

const ROWS: usize = 10_000;
const FEATURES: usize = 16;

/// `y = X·w + b + 0.1·noise` with standard normal features.
fn regression_data() -> (ArrayD<f32>, ArrayD<f32>) {
    let mut s = Stream(42);
    let w: Vec<f64> = (0..FEATURES).map(|i| (i as f64 - 7.5) / 4.0).collect();
    let mut x = Vec::with_capacity(ROWS * FEATURES);
    let mut y = Vec::with_capacity(ROWS);
    for _ in 0..ROWS {
        let row: Vec<f64> = (0..FEATURES).map(|_| s.normal()).collect();
        let t = row.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() + 0.7 + 0.1 * s.normal();
        x.extend(row.iter().map(|&v| v as f32));
        y.push(t as f32);
    }
    (
        ArrayD::from_shape_vec(IxDyn(&[ROWS, FEATURES]), x).unwrap(),
        ArrayD::from_shape_vec(IxDyn(&[ROWS, 1]), y).unwrap(),
    )
}

/// The least-squares `[w; b]` from the normal equations, in f64 (Gaussian elimination with
/// partial pivoting on the augmented `(AᵀA | Aᵀy)`, `A = [X 1]`).
fn least_squares(x: &ArrayD<f32>, y: &ArrayD<f32>) -> Vec<f64> {
    let n = FEATURES + 1;
    let mut m = Array2::<f64>::zeros((n, n + 1));
    for (row, t) in x.axis_iter(Axis(0)).zip(y.iter()) {
        let a: Vec<f64> = row.iter().map(|&v| f64::from(v)).chain([1.0]).collect();
        for i in 0..n {
            for j in 0..n {
                m[[i, j]] += a[i] * a[j];
            }
            m[[i, n]] += a[i] * f64::from(*t);
        }
    }
    for c in 0..n {
        let p = (c..n)
            .max_by(|&a, &b| m[[a, c]].abs().total_cmp(&m[[b, c]].abs()))
            .unwrap();
        for j in 0..=n {
            m.swap([c, j], [p, j]);
        }
        for r in 0..n {
            if r != c {
                let f = m[[r, c]] / m[[c, c]];
                for j in c..=n {
                    m[[r, j]] -= f * m[[c, j]];
                }
            }
        }
    }
    (0..n).map(|i| m[[i, n]] / m[[i, i]]).collect()
}

fn regression_plan() -> ExecutionPlan {
    let (mut b, x) = Builder::new(DType::F32, &[FEATURES]);
    let y = b.dense("linear", x, 1, Activation::Linear);
    b.plan(y)
}

fn fit_regression(optimizer: &mut Optimizer, lr: f32, steps: usize) -> (Trainer, Vec<f32>) {
    let (x, y) = regression_data();
    let mut t = trainer(regression_plan(), 1);
    let mut curve = Vec::new();
    for _ in 0..steps {
        let r = t
            .train_step(
                &[Input::F32(x.view())],
                &Targets::Dense(y.view()),
                Loss::MeanSquaredError,
                optimizer,
                lr,
                None,
            )
            .unwrap();
        curve.push(r.loss);
    }
    (t, curve)
}

fn assert_least_squares(t: &Trainer, tolerance: f64) {
    let (x, y) = regression_data();
    let want = least_squares(&x, &y);
    let w = t.params().get("linear.kernel").unwrap();
    let b = t.params().get("linear.bias").unwrap();
    let got: Vec<f64> = w.iter().chain(b.iter()).map(|&v| f64::from(v)).collect();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() < tolerance,
            "coefficient {i}: {g} vs least squares {w}"
        );
    }
}

#[test]
fn full_batch_gd_converges_to_the_least_squares_solution() {
    let mut opt = Optimizer::Gd(Gd::new(GdConfig::default()).unwrap());
    let (t, curve) = fit_regression(&mut opt, 0.01, 1000);
    assert_least_squares(&t, 1e-3);
    // The residual is the noise: mse ≈ 0.1² = 0.01.
    let last = *curve.last().unwrap();
    assert!((0.009..0.011).contains(&last), "final mse {last}");
    assert!(curve[0] > 10.0 * last);
}

#[test]
fn adam_converges_on_the_same_regression() {
    let mut opt = Optimizer::Adam(Adam::new(AdamConfig::default()).unwrap());
    let (t, _) = fit_regression(&mut opt, 0.01, 1500);
    assert_least_squares(&t, 2e-3);
}

#[test]
fn a_huge_learning_rate_diverges_and_the_error_names_the_step() {
    let (x, y) = regression_data();
    let mut t = trainer(regression_plan(), 1);
    let mut opt = Optimizer::Gd(Gd::new(GdConfig::default()).unwrap());
    let mut failure = None;
    for _ in 0..200 {
        match t.train_step(
            &[Input::F32(x.view())],
            &Targets::Dense(y.view()),
            Loss::MeanSquaredError,
            &mut opt,
            50.0,
            None,
        ) {
            Ok(r) => assert!(r.loss.is_finite()),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let err = failure.expect("the run should diverge");
    let step = match &err {
        TrainError::NonFiniteLoss { step, .. } => *step,
        TrainError::NonFiniteGradient { step, layer, .. }
        | TrainError::NonFiniteParam { step, layer, .. } => {
            assert_eq!(layer, "linear");
            *step
        }
        other => panic!("unexpected error {other}"),
    };
    assert!(step > 1);
    assert!(
        err.to_string().contains(&format!("training step {step}")),
        "{err}"
    );
    if matches!(
        err,
        TrainError::NonFiniteLoss { .. } | TrainError::NonFiniteGradient { .. }
    ) {
        assert!(t
            .params()
            .tensors()
            .iter()
            .all(|p| p.iter().all(|v| v.is_finite())));
    }
}

// ---------------------------------------------------------------- small CNN

/// 8×8 images: class 0 has a bright 3×3 blob in the top-left quadrant, class 1 in the
/// bottom-right; both on uniform noise.
fn blob_images(n: usize, seed: u64) -> (ArrayD<f32>, ArrayD<i32>) {
    let mut s = Stream(seed);
    let mut x = ArrayD::<f32>::zeros(IxDyn(&[n, 8, 8, 1]));
    let mut labels = ArrayD::<i32>::zeros(IxDyn(&[n]));
    for i in 0..n {
        let class = (s.next() * 2.0) as usize;
        labels[[i]] = class as i32;
        for v in &mut x.index_axis_mut(Axis(0), i) {
            *v = (s.next() * 0.5) as f32;
        }
        let (oy, ox) = (1 + (s.next() * 2.0) as usize, 1 + (s.next() * 2.0) as usize);
        let base = if class == 0 { 0 } else { 4 };
        for dy in 0..3 {
            for dx in 0..3 {
                let (py, px) = ((base + oy + dy).min(7), (base + ox + dx).min(7));
                x[[i, py, px, 0]] += 1.0;
            }
        }
    }
    (x, labels)
}

fn cnn_plan(dropout: bool) -> ExecutionPlan {
    let (mut b, x) = Builder::new(DType::F32, &[8, 8, 1]);
    let a = b.conv("conv", x, 4);
    let a = b.op(
        "pool",
        Op::MaxPool2d {
            window: window(2, 2),
        },
        a,
    );
    let mut a = b.op("flat", Op::Flatten, a);
    if dropout {
        a = b.op("drop", Op::Dropout { rate: 0.25 }, a);
    }
    let y = b.dense("out", a, 2, Activation::Softmax);
    b.plan(y)
}

fn accuracy(probs: &ndarray::ArrayViewD<'_, f32>, labels: &ArrayD<i32>) -> f64 {
    let hits = probs
        .axis_iter(Axis(0))
        .zip(labels.iter())
        .filter(|(p, &l)| {
            let best = p
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0;
            best as i32 == l
        })
        .count();
    hits as f64 / labels.len() as f64
}

/// Trains on 512 images in batches of 32 for `epochs`; returns the trainer and loss curve.
fn train_cnn(seed: u64, dropout: bool, epochs: usize) -> (Trainer, Vec<f32>) {
    let (x, labels) = blob_images(512, 7);
    let mut t = trainer(cnn_plan(dropout), seed);
    let mut opt = Optimizer::Adam(Adam::new(AdamConfig::default()).unwrap());
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let mut curve = Vec::new();
    for _ in 0..epochs {
        for start in (0..512).step_by(32) {
            let xb = x.slice_axis(Axis(0), (start..start + 32).into()).to_owned();
            let lb = labels
                .slice_axis(Axis(0), (start..start + 32).into())
                .to_owned();
            let r = t
                .train_step(
                    &[Input::F32(xb.view())],
                    &Targets::Sparse(SparseLabels::I32(lb.view())),
                    loss,
                    &mut opt,
                    0.01,
                    None,
                )
                .unwrap();
            curve.push(r.loss);
        }
    }
    (t, curve)
}

#[test]
fn a_small_cnn_learns_to_locate_the_blob() {
    let (mut t, curve) = train_cnn(3, true, 4);
    let early: f32 = curve[..4].iter().sum::<f32>() / 4.0;
    let late: f32 = curve[curve.len() - 4..].iter().sum::<f32>() / 4.0;
    assert!(late < 0.3 * early, "loss {early} → {late}");
    let (x, labels) = blob_images(256, 99);
    let probs = t.evaluate(&[Input::F32(x.view())]).unwrap();
    let acc = accuracy(&probs, &labels);
    assert!(acc >= 0.97, "held-out accuracy {acc}");
}

#[test]
fn same_seed_same_data_gives_a_bit_identical_loss_curve() {
    let (a, curve_a) = train_cnn(11, true, 1);
    let (b, curve_b) = train_cnn(11, true, 1);
    let bits = |c: &[f32]| c.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&curve_a), bits(&curve_b));
    assert_eq!(a.params(), b.params());
    let (_, curve_c) = train_cnn(12, true, 1);
    assert_ne!(bits(&curve_a), bits(&curve_c));
}

// ---------------------------------------------------------------- small LSTM

/// Sequences of 10 ids in `1..8`; class 1 when the sequence contains the id 7.
fn sequences(n: usize, seed: u64) -> (ArrayD<i32>, ArrayD<i32>) {
    let mut s = Stream(seed);
    let mut ids = ArrayD::<i32>::zeros(IxDyn(&[n, 10]));
    let mut labels = ArrayD::<i32>::zeros(IxDyn(&[n]));
    for i in 0..n {
        let positive = s.next() < 0.5;
        for t in 0..10 {
            ids[[i, t]] = 1 + (s.next() * 6.0) as i32; // 1..=6
        }
        if positive {
            ids[[i, (s.next() * 10.0) as usize]] = 7;
        }
        labels[[i]] = i32::from(positive);
    }
    (ids, labels)
}

#[test]
fn a_small_lstm_learns_whether_a_token_occurs() {
    let (mut b, ids) = Builder::new(DType::I32, &[10]);
    let table = b.param(
        "emb.embeddings".into(),
        vec![8, 8],
        Init::Uniform { limit: 0.05 },
    );
    let e = b.op("emb", Op::Embedding { table }, ids);
    let kernel = b.param("lstm.kernel".into(), vec![8, 64], Init::GlorotUniform);
    let recurrent = b.param(
        "lstm.recurrent_kernel".into(),
        vec![16, 64],
        Init::Orthogonal,
    );
    let bias = b.param("lstm.bias".into(), vec![64], Init::UnitForgetBias);
    let h = b.op(
        "lstm",
        Op::Rnn {
            cell: RnnCell::Lstm,
            units: 16,
            return_sequences: false,
            options: modelc::ops::recurrent::RnnOptions::default(),
            kernel,
            recurrent,
            bias,
        },
        e,
    );
    let y = b.dense("out", h, 2, Activation::Softmax);
    let mut t = trainer(b.plan(y), 5);
    let (xs, labels) = sequences(1024, 3);
    let mut opt = Optimizer::Adam(Adam::new(AdamConfig::default()).unwrap());
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let mut curve = Vec::new();
    for _ in 0..6 {
        for start in (0..1024).step_by(64) {
            let xb = xs
                .slice_axis(Axis(0), (start..start + 64).into())
                .to_owned();
            let lb = labels
                .slice_axis(Axis(0), (start..start + 64).into())
                .to_owned();
            let r = t
                .train_step(
                    &[Input::I32(xb.view())],
                    &Targets::Sparse(SparseLabels::I32(lb.view())),
                    loss,
                    &mut opt,
                    0.01,
                    None,
                )
                .unwrap();
            curve.push(r.loss);
        }
    }
    let late: f32 = curve[curve.len() - 4..].iter().sum::<f32>() / 4.0;
    assert!(late < 0.5 * curve[0], "loss {} → {late}", curve[0]);
    let (test_x, test_labels) = sequences(512, 77);
    let probs = t.evaluate(&[Input::I32(test_x.view())]).unwrap();
    let acc = accuracy(&probs, &test_labels);
    assert!(acc >= 0.95, "held-out accuracy {acc}");
}
