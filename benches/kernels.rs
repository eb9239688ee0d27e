//! Kernel benchmarks: GEMM 1024³ GFLOP/s and the seed CNN's inference forward, with 1 and 2
//! GEMM threads. Run: `cargo bench --bench kernels`.
//!
//! matrixmultiply reads `MATMUL_NUM_THREADS` once per process, so the parent re-runs this
//! binary once per thread count (with `KERNELS_BENCH_THREADS` set) and each child measures.

// A benchmark binary, not library code: a failed setup should abort loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use modelc::runtime::init::{initialize, Initializer};
use modelc::runtime::kernels::activation::{activation_forward, Activation};
use modelc::runtime::kernels::conv::{conv2d_forward, Conv2dGeometry, Conv2dShape, ConvWorkspace};
use modelc::runtime::kernels::dense::dense_forward;
use modelc::runtime::kernels::pool::{
    pool2d_forward, pool2d_output_shape, Pool2dParams, PoolKind, PoolPadding,
};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, Array4, ArrayD, Ix1, Ix2, Ix4, IxDyn};

const CHILD_ENV: &str = "KERNELS_BENCH_THREADS";

fn main() {
    if let Ok(threads) = std::env::var(CHILD_ENV) {
        run(&threads);
        return;
    }
    let exe = std::env::current_exe().expect("bench binary path");
    for threads in ["1", "2"] {
        let status = Command::new(&exe)
            .env(CHILD_ENV, threads)
            .env("MATMUL_NUM_THREADS", threads)
            .status()
            .expect("re-run bench binary");
        assert!(
            status.success(),
            "bench child with {threads} threads failed"
        );
    }
}

/// Median wall time of `f` over repetitions filling about `budget`.
fn time(budget: Duration, mut f: impl FnMut()) -> Duration {
    f();
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 5 || (start.elapsed() < budget && samples.len() < 1000) {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    samples.sort();
    samples[samples.len() / 2]
}

fn run(threads: &str) {
    println!("== {threads} GEMM thread(s) ==");
    let n = 1024;
    let a = initialize(Initializer::GlorotUniform, &[n, n], 1)
        .unwrap()
        .into_dimensionality::<Ix2>()
        .unwrap();
    let b = initialize(Initializer::GlorotUniform, &[n, n], 2)
        .unwrap()
        .into_dimensionality::<Ix2>()
        .unwrap();
    let mut c = Array2::<f32>::zeros((n, n));
    let t = time(Duration::from_secs(3), || {
        general_mat_mul(1.0, &a, &b, 0.0, &mut c);
    });
    let flops = 2.0 * (n as f64).powi(3);
    println!(
        "gemm 1024^3: {:.2} ms, {:.1} GFLOP/s",
        t.as_secs_f64() * 1e3,
        flops / t.as_secs_f64() / 1e9
    );
    for batch in [64, 1] {
        cnn(batch);
    }
}

struct ConvLayer {
    kernel: Array4<f32>,
    bias: Array1<f32>,
    out: Array4<f32>,
    act: Array4<f32>,
    pooled: Array4<f32>,
    ws: ConvWorkspace,
}

fn cnn(batch: usize) {
    let geom = Conv2dGeometry::default();
    let pool = Pool2dParams {
        kind: PoolKind::Max,
        pool: (2, 2),
        stride: (2, 2),
        padding: PoolPadding::Valid,
    };
    let x = initialize(
        Initializer::Uniform {
            low: 0.0,
            high: 1.0,
        },
        &[batch, 28, 28, 1],
        3,
    )
    .unwrap()
    .into_dimensionality::<Ix4>()
    .unwrap();
    let mut layers = Vec::new();
    let mut shape = [batch, 28, 28, 1];
    let mut flops = 0.0;
    for (i, filters) in [32usize, 64, 128].into_iter().enumerate() {
        let kshape = [3, 3, shape[3], filters];
        let s = Conv2dShape::new(shape, kshape, &geom).unwrap();
        flops += 2.0 * (s.oh * s.ow * 9 * shape[3] * filters) as f64;
        let kernel = initialize(Initializer::GlorotUniform, &kshape, 10 + i as u64)
            .unwrap()
            .into_dimensionality::<Ix4>()
            .unwrap();
        let pooled_shape = pool2d_output_shape(s.output(), &pool).unwrap();
        layers.push(ConvLayer {
            kernel,
            bias: Array1::zeros(filters),
            out: Array4::zeros(s.output()),
            act: Array4::zeros(s.output()),
            pooled: Array4::zeros(pooled_shape),
            ws: ConvWorkspace::new(),
        });
        shape = pooled_shape;
    }
    let flat = shape[1] * shape[2] * shape[3];
    flops += 2.0 * (flat * 128 + 128 * 10) as f64;
    let d1 = initialize(Initializer::GlorotUniform, &[flat, 128], 20)
        .unwrap()
        .into_dimensionality::<Ix2>()
        .unwrap();
    let d2 = initialize(Initializer::GlorotUniform, &[128, 10], 21)
        .unwrap()
        .into_dimensionality::<Ix2>()
        .unwrap();
    let (b1, b2) = (Array1::<f32>::zeros(128), Array1::<f32>::zeros(10));
    let (mut h1, mut h1a) = (
        ArrayD::<f32>::zeros(IxDyn(&[batch, 128])),
        ArrayD::<f32>::zeros(IxDyn(&[batch, 128])),
    );
    let (mut logits, mut probs) = (
        ArrayD::<f32>::zeros(IxDyn(&[batch, 10])),
        ArrayD::<f32>::zeros(IxDyn(&[batch, 10])),
    );
    let mut parts = [Duration::ZERO; 4]; // conv gemm+im2col, relu, pool, dense+softmax
    let mut forward = |parts: &mut [Duration; 4]| {
        let mut input = x.view();
        for layer in &mut layers {
            let t = Instant::now();
            conv2d_forward(
                input,
                layer.kernel.view(),
                Some(layer.bias.view()),
                &geom,
                &mut layer.ws,
                layer.out.view_mut(),
            )
            .unwrap();
            let t1 = Instant::now();
            activation_forward(
                Activation::Relu,
                layer.out.view().into_dyn(),
                layer.act.view_mut().into_dyn(),
            )
            .unwrap();
            let t2 = Instant::now();
            pool2d_forward(layer.act.view(), &pool, layer.pooled.view_mut()).unwrap();
            let t3 = Instant::now();
            parts[0] += t1 - t;
            parts[1] += t2 - t1;
            parts[2] += t3 - t2;
            input = layer.pooled.view();
        }
        let t = Instant::now();
        let flat_in = input
            .into_shape_with_order((batch, flat))
            .unwrap()
            .into_dyn();
        dense_forward(
            flat_in,
            d1.view(),
            Some(b1.view().into_dimensionality::<Ix1>().unwrap()),
            h1.view_mut(),
        )
        .unwrap();
        activation_forward(Activation::Relu, h1.view(), h1a.view_mut()).unwrap();
        dense_forward(h1a.view(), d2.view(), Some(b2.view()), logits.view_mut()).unwrap();
        activation_forward(
            Activation::Softmax { axis: 1 },
            logits.view(),
            probs.view_mut(),
        )
        .unwrap();
        parts[3] += t.elapsed();
        black_box(&probs);
    };
    let t = time(Duration::from_secs(3), || {
        forward(&mut parts);
    });
    let total: Duration = parts.iter().sum();
    let share = |d: Duration| 100.0 * d.as_secs_f64() / total.as_secs_f64();
    println!(
        "cnn batch {batch}: {:.3} ms/batch, {:.0} samples/s, {:.1} GFLOP/s ({:.2} MFLOP/sample); time: conv {:.0}%, relu {:.0}%, pool {:.0}%, dense+softmax {:.0}%",
        t.as_secs_f64() * 1e3,
        batch as f64 / t.as_secs_f64(),
        flops * batch as f64 / t.as_secs_f64() / 1e9,
        flops / 1e6,
        share(parts[0]),
        share(parts[1]),
        share(parts[2]),
        share(parts[3]),
    );
}
