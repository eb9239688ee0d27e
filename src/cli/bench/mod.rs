//! `modelc bench FILE.model [--model NAME] [--batch B] [--mode infer|train] [--threads T]
//! [--iterations N] [--format json]`: throughput of a model on synthetic data.
//!
//! Input: a spec. Infer mode compiles an optimized inference plan with fresh weights and times
//! `Interpreter::forward` on random inputs; train mode compiles a `Mode::Train` plan and times
//! `Trainer::train_step` (adam, lr 1e-3) on random inputs and random labels (sparse
//! cross-entropy over the output's last axis, or MSE for a width-1 output). Output: samples/s,
//! ms per batch (median over the timed iterations, after one warm-up) and achieved GFLOP/s from
//! the checker's FLOPs per sample (training counts 3× the forward FLOPs), and the process's
//! resident memory: its baseline just before the benchmark (plan compiled, threads started)
//! and its peak during it (`resident`: Linux's `/proc/self/status`; absent elsewhere). The peak
//! covers the weights or parameters and optimizer state, the activations, scratch and inputs.
//!
//! Threads: the work runs in a rayon pool of `--threads` threads (default: the machine's
//! cores). matrixmultiply reads `MATMUL_NUM_THREADS` once, at the process's first GEMM, so it
//! is set before anything runs: to 1 in infer mode (the interpreter splits conv and recurrent
//! steps over the rayon threads; two pools would fight for the cores), to `--threads` in train
//! mode (the trainer's parallelism is in its GEMMs).

mod resident;

use super::common::{diag_format, load_plan, report};
use super::options::{mode_parser, ColorWhen, SummaryFormat};
use super::output::Output;
use crate::diag::{codes, human_bytes, Diagnostic, SourceMap};
use crate::ir::{Activation, DType, Dim, Op};
use crate::passes::Mode;
use crate::plan::ExecutionPlan;
use crate::runtime::interp::bench::{random_inputs, run_bench_with_budget, OwnedInput};
use crate::runtime::loss::{Loss, SparseLabels, Targets};
use crate::runtime::optim::{Adam, AdamConfig, Optimizer};
use crate::runtime::train::{Input, ParamStore, Trainer};
use crate::runtime::weights::init_weights;
use clap::Args;
use ndarray::{ArrayD, IxDyn};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The `.model` file.
    #[arg(value_name = "FILE.model")]
    pub file: PathBuf,
    /// The model to benchmark, when the file defines several.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Samples per batch.
    #[arg(long, value_name = "B", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch: u32,
    /// Time inference (`Interpreter`) or training steps (`Trainer`).
    #[arg(long, value_parser = mode_parser(), default_value = "infer")]
    pub mode: Mode,
    /// Worker threads (default: the machine's cores).
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Timed iterations (after one warm-up).
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub iterations: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Human)]
    pub format: SummaryFormat,
    #[command(flatten)]
    pub activations: super::limits::ActivationLimitArgs,
}

/// What one benchmark measured.
struct Measured {
    ms_per_batch: f64,
    samples_per_sec: f64,
}

/// Runs `bench`; returns the exit status.
pub fn run(args: &BenchArgs, color: ColorWhen) -> u8 {
    let out = Output::new(color, diag_format(args.format));
    let mut map = SourceMap::new();
    if args.file.extension().is_none_or(|e| e != "model") {
        let d = Diagnostic::error(
            codes::IO_USAGE,
            format!("`bench` takes a `.model` spec, not {}", args.file.display()),
        )
        .note("the FLOP count comes from the spec's checker");
        return report(&out, &map, vec![d]);
    }
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        |t| t as usize,
    );
    // Before the first GEMM of the process (see the module doc).
    let gemm_threads = match args.mode {
        Mode::Infer => 1,
        Mode::Train => threads,
    };
    std::env::set_var("MATMUL_NUM_THREADS", gemm_threads.to_string());
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(p) => p,
        Err(e) => {
            let d = Diagnostic::error(
                codes::IO_USAGE,
                format!("cannot start {threads} threads: {e}"),
            );
            return report(&out, &map, vec![d]);
        }
    };
    let loaded = match load_plan(&mut map, &args.file, args.model.as_deref(), args.mode) {
        Ok(l) => l,
        Err(diags) => return report(&out, &map, diags),
    };
    if args.format == SummaryFormat::Human {
        out.diagnostics(&map, &loaded.warnings);
    }
    let batch = args.batch as usize;
    let iterations = args.iterations as usize;
    let plan = loaded.plan;
    let what = match args.mode {
        Mode::Infer => super::limits::Use::Running,
        Mode::Train => super::limits::Use::Training,
    };
    if let Err(d) = super::limits::check_activations(
        &plan,
        u64::from(args.batch),
        what,
        args.activations.max_activation_bytes,
    ) {
        return report(&out, &map, vec![d]);
    }
    let resident = resident::Resident::start();
    let measured = pool.install(|| match args.mode {
        Mode::Infer => bench_infer(
            &plan,
            batch,
            iterations,
            args.activations.max_activation_bytes,
        ),
        Mode::Train => bench_train(&plan, batch, iterations),
    });
    let m = match measured {
        Ok(m) => m,
        Err(d) => return report(&out, &map, vec![d]),
    };
    let memory = resident.and_then(|r| r.peak().map(|p| (p, r.peak_since_start)));
    let forward = loaded.flops_per_sample.unwrap_or(0) as f64;
    let flops_per_sample = match args.mode {
        Mode::Infer => forward,
        Mode::Train => 3.0 * forward,
    };
    let gflops = flops_per_sample * m.samples_per_sec / 1e9;
    let mode = match args.mode {
        Mode::Infer => "infer",
        Mode::Train => "train",
    };
    match args.format {
        SummaryFormat::Json => {
            let json = serde_json::json!({
                "model": plan.model,
                "mode": mode,
                "batch": batch,
                "threads": threads,
                "iterations": iterations,
                "samples_per_sec": m.samples_per_sec,
                "ms_per_batch": m.ms_per_batch,
                "gflops": gflops,
                "flops_per_sample": flops_per_sample,
                "baseline_rss_bytes": memory.map(|(p, _)| p.baseline),
                "peak_rss_bytes": memory.map(|(p, _)| p.peak),
                "peak_above_baseline_bytes": memory.map(|(p, _)| p.above_baseline()),
                "peak_since_process_start": memory.map(|(_, since)| since),
            });
            Output::stdout(&format!("{json}\n"));
        }
        SummaryFormat::Human => {
            let memory = memory.map_or_else(String::new, |(p, since)| {
                format!(
                    "  peak resident {} ({} above the {} baseline{})\n",
                    human_bytes(p.peak),
                    human_bytes(p.above_baseline()),
                    human_bytes(p.baseline),
                    if since {
                        ", peak since the process started"
                    } else {
                        ""
                    }
                )
            });
            Output::stdout(&format!(
                "{} ({mode}, batch {batch}, {threads} thread(s), median of {iterations}):\n  \
                 {:.1} samples/s\n  {:.3} ms per batch\n  {gflops:.2} GFLOP/s ({:.1} MFLOP per sample)\n{memory}",
                plan.model,
                m.samples_per_sec,
                m.ms_per_batch,
                flops_per_sample / 1e6
            ));
        }
    }
    0
}

fn bench_infer(
    plan: &ExecutionPlan,
    batch: usize,
    iterations: usize,
    max_activation_bytes: u64,
) -> Result<Measured, Diagnostic> {
    let weights = init_weights(plan, 1).map_err(|e| internal(&e.to_string()))?;
    let r = run_bench_with_budget(plan, weights, batch, iterations, max_activation_bytes)
        .map_err(|e| e.to_diagnostic())?;
    Ok(Measured {
        ms_per_batch: r.ms_per_batch,
        samples_per_sec: r.samples_per_sec,
    })
}

fn internal(message: &str) -> Diagnostic {
    Diagnostic::error(codes::RUN_KERNEL, message.to_string())
        .note("this is a bug in modelc; please report it with the spec")
}

/// A synthetic training input, owned.
enum TrainInput {
    F32(ArrayD<f32>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
}

/// The loss a synthetic benchmark trains with, and its random targets.
enum SyntheticTargets {
    Sparse(ArrayD<i64>),
    Dense(ArrayD<f32>),
}

/// Random targets fitting the plan's (single) output at `batch`.
fn synthetic_targets(
    plan: &ExecutionPlan,
    batch: usize,
) -> Result<(Loss, SyntheticTargets), Diagnostic> {
    let fact = plan
        .outputs
        .first()
        .and_then(|&v| plan.values.get(v as usize))
        .map(|v| &v.fact)
        .ok_or_else(|| internal("the plan has no output"))?;
    let shape: Vec<usize> = fact
        .dims
        .iter()
        .enumerate()
        .map(|(i, d)| match d {
            Dim::Known(n) => *n,
            Dim::Symbol(_) if i == 0 => batch,
            Dim::Symbol(_) => 1,
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(0x1abe1);
    let classes = shape.last().copied().unwrap_or(1);
    if classes > 1 {
        let softmax_last = plan.steps.last().is_some_and(|s| {
            matches!(s.op, Op::Activation(Activation::Softmax)) && plan.outputs.contains(&s.output)
        });
        let label_shape = shape.get(..shape.len() - 1).unwrap_or(&[]).to_vec();
        let count: usize = label_shape.iter().product();
        let labels = (0..count)
            .map(|_| (rng.next_u64() % classes as u64) as i64)
            .collect();
        let labels = ArrayD::from_shape_vec(IxDyn(&label_shape), labels)
            .map_err(|e| internal(&e.to_string()))?;
        Ok((
            Loss::SparseCategoricalCrossentropy {
                from_logits: !softmax_last,
            },
            SyntheticTargets::Sparse(labels),
        ))
    } else {
        let count: usize = shape.iter().product();
        let values = (0..count)
            .map(|_| (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32)
            .collect();
        let values =
            ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|e| internal(&e.to_string()))?;
        Ok((Loss::MeanSquaredError, SyntheticTargets::Dense(values)))
    }
}

fn bench_train(
    plan: &ExecutionPlan,
    batch: usize,
    iterations: usize,
) -> Result<Measured, Diagnostic> {
    let train_error = |e: crate::runtime::train::TrainError| {
        Diagnostic::error(codes::RUN_KERNEL, format!("training step failed: {e}"))
    };
    let params = ParamStore::init(plan, 1).map_err(train_error)?;
    let mut trainer = Trainer::new(plan.clone(), params, 1).map_err(train_error)?;
    let mut optimizer =
        Optimizer::Adam(Adam::new(AdamConfig::default()).map_err(|e| internal(&e.to_string()))?);
    // The trainer takes integer inputs in their declared dtype; random ids are small.
    let declared = |k: usize| {
        plan.inputs
            .get(k)
            .and_then(|&v| plan.values.get(v as usize))
            .map(|v| v.fact.dtype)
    };
    let owned: Vec<TrainInput> = random_inputs(plan, batch, 0x5eed)
        .into_iter()
        .enumerate()
        .map(|(k, o)| match o {
            OwnedInput::F32(a) => TrainInput::F32(a),
            OwnedInput::I64(a) if declared(k) == Some(DType::I32) => {
                TrainInput::I32(a.mapv(|x| i32::try_from(x).unwrap_or(0)))
            }
            OwnedInput::I64(a) => TrainInput::I64(a),
        })
        .collect();
    let inputs: Vec<Input<'_>> = owned
        .iter()
        .map(|o| match o {
            TrainInput::F32(a) => Input::F32(a.view()),
            TrainInput::I32(a) => Input::I32(a.view()),
            TrainInput::I64(a) => Input::I64(a.view()),
        })
        .collect();
    let (loss, targets) = synthetic_targets(plan, batch)?;
    let targets = match &targets {
        SyntheticTargets::Sparse(l) => Targets::Sparse(SparseLabels::I64(l.view())),
        SyntheticTargets::Dense(v) => Targets::Dense(v.view()),
    };
    let mut step = || {
        trainer
            .train_step(&inputs, &targets, loss, &mut optimizer, 1e-3, None)
            .map_err(train_error)
    };
    step()?;
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        step()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
    Ok(Measured {
        ms_per_batch: median * 1e3,
        samples_per_sec: if median > 0.0 {
            batch as f64 / median
        } else {
            0.0
        },
    })
}
