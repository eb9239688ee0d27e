//! `cargo bench --bench stages`: the time of each stage on generated specs of 2k to 100k
//! layers (dense, batch_norm, relu, dropout repeated; 100k is `--max-layers`'s default), in
//! microseconds per layer. Every stage must be linear in the spec's size: the µs/layer column
//! must stay flat as the spec grows (a quadratic stage shows as a column that grows with it).
//!
//! Stages: parse + check, lower to IR, the graph passes, building the plan (fusion, views,
//! memory planning), writing it as RON, reading it back with validation (what `inspect` and
//! `run` do first), initializing weights and building the interpreter, and one inference of
//! a batch of 1.

#![allow(clippy::expect_used, clippy::cast_precision_loss)]

use modelc::diag::FileId;
use modelc::passes::{self, Mode, PassOptions};
use modelc::plan::{self, ExecutionPlan};
use modelc::runtime::interp::{Interpreter, TensorRef};
use modelc::runtime::weights::init_weights;
use modelc::syntax::{parse, Limits};
use ndarray::{ArrayD, IxDyn};
use std::fmt::Write as _;
use std::time::Instant;

const STAGES: [&str; 8] = [
    "check", "lower", "passes", "plan", "to RON", "from RON", "weights", "run",
];

fn spec(layers: usize) -> String {
    let mut s = String::from("model Deep(x: f32[N, 16]) -> f32[N, 16] {\n");
    let block = ["dense(16)", "batch_norm()", "relu()", "dropout(0.1)"];
    for i in 0..layers {
        let _ = writeln!(s, "    {}", block[i % block.len()]);
    }
    s.push_str("}\n");
    s
}

/// The seconds each stage took on a spec of `layers` layers.
fn measure(layers: usize) -> [f64; 8] {
    let text = spec(layers);
    let limits = Limits {
        max_source_bytes: u64::MAX,
        ..Limits::default()
    };
    let mut t = Instant::now();
    let mut lap = || {
        let s = t.elapsed().as_secs_f64();
        t = Instant::now();
        s
    };
    let parsed = parse(FileId::from_index(0), &text, &limits);
    let checked = modelc::check::check_file(FileId::from_index(0), &parsed.file);
    assert!(!parsed.has_errors() && !checked.has_errors());
    let check = lap();
    let graph = modelc::ir::lower(&checked.models[0]).expect("lowers");
    let lower = lap();
    let mut optimized = graph.clone();
    passes::run(&mut optimized, Mode::Infer, &PassOptions::default()).expect("passes");
    let passes = lap();
    drop(graph);
    // The graph passes are switched off here: they ran above, and this times the plan stages.
    let only_plan_stages = PassOptions {
        disabled: passes::pipeline()
            .iter()
            .map(|p| p.name().to_string())
            .collect(),
        ..PassOptions::default()
    };
    lap();
    let compiled =
        plan::compile(optimized, Mode::Infer, &only_plan_stages, String::new()).expect("compiles");
    let plan_stage = lap();
    let ron = compiled.to_ron().expect("serializes");
    let to_ron = lap();
    let loaded = ExecutionPlan::from_ron(&ron).expect("reads back");
    let from_ron = lap();
    let weights = init_weights(&loaded, 0).expect("weights");
    let mut interp = Interpreter::new(&loaded, weights).expect("interpreter");
    let weights_stage = lap();
    let x = ArrayD::<f32>::zeros(IxDyn(&[1, 16]));
    let out = interp.run(&[TensorRef::F32(x.view())]).expect("runs");
    let run = lap();
    assert_eq!(out[0].shape(), [1, 16]);
    [
        check,
        lower,
        passes,
        plan_stage,
        to_ron,
        from_ron,
        weights_stage,
        run,
    ]
}

fn main() {
    print!("{:>8}", "layers");
    for stage in STAGES {
        print!("  {stage:>9}");
    }
    println!("   (µs per layer, best of 3)");
    for n in [2_000usize, 8_000, 32_000, 100_000] {
        let mut best = [f64::MAX; 8];
        for _ in 0..3 {
            for (b, s) in best.iter_mut().zip(measure(n)) {
                *b = b.min(s);
            }
        }
        print!("{n:>8}");
        for b in best {
            print!("  {:>9.2}", b * 1e6 / n as f64);
        }
        println!();
    }
}
