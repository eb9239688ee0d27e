//! Inference benchmark: the seed CNN (28x28x1) and an Embedding(1000, 64) → LSTM(64, sequences)
//! → LSTM(64) → dense(10) softmax text model over `[N, 100]` tokens, both compiled as optimized
//! inference plans with fresh weights, at batch 64 (samples/s) and batch 1 (ms), with 1 and 2
//! threads. Run: `cargo bench --bench infer`.
//!
//! The interpreter parallelizes conv and recurrent steps over slices of the batch with rayon;
//! GEMMs then run single-threaded (`MATMUL_NUM_THREADS=1`) so the two pools do not fight for
//! the cores. rayon sizes its pool once per process, so the parent re-runs this binary once per
//! thread count (`INFER_BENCH_THREADS`, `RAYON_NUM_THREADS`) and each child measures.
//! `INFER_BENCH_ONLY=cnn` (or `lstm`) measures one model only (for profiling and A/B runs);
//! `INFER_BENCH_DISABLE=pass,pass` compiles the plans without those passes (A/B of a pass).

// A benchmark binary, not library code: a failed setup should abort loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use modelc::passes::{Mode, PassOptions};
use modelc::plan::{compile, ExecutionPlan};
use modelc::runtime::interp::bench::run_bench;
use modelc::runtime::interp::zoo::{lstm_classifier, seed_cnn, BENCH_TEXT};
use modelc::runtime::weights::init_weights;

const CHILD_ENV: &str = "INFER_BENCH_THREADS";

fn main() {
    if let Ok(threads) = std::env::var(CHILD_ENV) {
        run(&threads);
        return;
    }
    let exe = std::env::current_exe().expect("bench binary path");
    for threads in ["1", "2"] {
        let status = Command::new(&exe)
            .env(CHILD_ENV, threads)
            .env("MATMUL_NUM_THREADS", "1")
            .env("RAYON_NUM_THREADS", threads)
            .status()
            .expect("re-run bench binary");
        assert!(
            status.success(),
            "bench child with {threads} threads failed"
        );
    }
}

fn plan(graph: modelc::ir::Graph) -> ExecutionPlan {
    let disabled = std::env::var("INFER_BENCH_DISABLE")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let options = PassOptions {
        disabled,
        ..PassOptions::default()
    };
    compile(graph, Mode::Infer, &options, "bench".into()).unwrap()
}

/// Iterations so that one measurement lasts about two seconds.
fn iterations(plan: &ExecutionPlan, batch: usize) -> usize {
    let probe = run_bench(plan, init_weights(plan, 1).unwrap(), batch, 3).unwrap();
    ((2000.0 / probe.ms_per_batch.max(1e-3)) as usize).clamp(5, 20_000)
}

fn run(threads: &str) {
    println!("== {threads} thread(s) ==");
    let only = std::env::var("INFER_BENCH_ONLY").unwrap_or_default();
    let models = [
        ("seed cnn", "cnn", plan(seed_cnn().unwrap())),
        (
            "embedding+2xlstm",
            "lstm",
            plan(lstm_classifier(BENCH_TEXT).unwrap()),
        ),
    ];
    for (name, _, plan) in models
        .into_iter()
        .filter(|(_, key, _)| only.is_empty() || only == *key)
    {
        for batch in [64, 1] {
            let iters = iterations(&plan, batch);
            let r = run_bench(&plan, init_weights(&plan, 1).unwrap(), batch, iters).unwrap();
            println!(
                "{name:>18} batch {batch:>2}: {:>9.0} samples/s, {:>8.3} ms/batch ({iters} iterations, median)",
                r.samples_per_sec, r.ms_per_batch
            );
        }
    }
}
