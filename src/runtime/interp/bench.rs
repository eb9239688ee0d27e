//! Throughput of a plan: time repeated runs of random inputs at one batch size.
//!
//! Input: a plan and weights, a batch size, a number of timed iterations. Output: a
//! [`BenchReport`] (median over iterations, after one warm-up run that sizes the buffers).
//! Inputs are drawn from a fixed seed: f32 inputs uniform in `[0, 1)`, integer inputs uniform
//! over `0..ids` where `ids` is the first embedding table's vocabulary (or 2; a folded
//! embedding's projection table has a row per token too).

use std::time::Instant;

use ndarray::{ArrayD, IxDyn};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use super::{Interpreter, RunError, TensorRef};
use crate::ir::{DType, Dim, Op};
use crate::plan::ExecutionPlan;
use crate::runtime::weights::Weights;

/// What a benchmark measured.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchReport {
    pub batch: usize,
    pub iterations: usize,
    /// Median wall time of one batch, in milliseconds.
    pub ms_per_batch: f64,
    pub samples_per_sec: f64,
}

/// Owned random inputs for `plan` at `batch` (symbolic dims other than the batch become 1).
pub enum OwnedInput {
    F32(ArrayD<f32>),
    I64(ArrayD<i64>),
}

impl OwnedInput {
    pub fn as_ref(&self) -> TensorRef<'_> {
        match self {
            OwnedInput::F32(a) => TensorRef::F32(a.view()),
            OwnedInput::I64(a) => TensorRef::I64(a.view()),
        }
    }
}

/// Random inputs for `plan` with batch `batch`, from `seed`.
pub fn random_inputs(plan: &ExecutionPlan, batch: usize, seed: u64) -> Vec<OwnedInput> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let vocab = plan
        .steps
        .iter()
        .find_map(|s| match s.op {
            Op::Embedding { table: rows }
            | Op::EmbeddedRnn {
                projection: rows, ..
            } => plan
                .params
                .get(rows.index())
                .and_then(|p| p.shape.first().copied()),
            _ => None,
        })
        .unwrap_or(2)
        .max(1) as u64;
    plan.inputs
        .iter()
        .filter_map(|&v| plan.values.get(v as usize))
        .map(|v| {
            let shape: Vec<usize> = v
                .fact
                .dims
                .iter()
                .enumerate()
                .map(|(i, d)| match d {
                    Dim::Known(n) => *n,
                    Dim::Symbol(_) if i == 0 => batch,
                    Dim::Symbol(_) => 1,
                })
                .collect();
            let len: usize = shape.iter().product();
            match v.fact.dtype {
                DType::F32 => {
                    let data = (0..len)
                        .map(|_| (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32)
                        .collect();
                    OwnedInput::F32(ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap_or_default())
                }
                DType::I32 | DType::I64 => {
                    let data = (0..len).map(|_| (rng.next_u64() % vocab) as i64).collect();
                    OwnedInput::I64(ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap_or_default())
                }
            }
        })
        .collect()
}

/// Times `iterations` runs of `plan` at `batch` (after a warm-up run), within the interpreter's
/// default activation budget.
pub fn run_bench(
    plan: &ExecutionPlan,
    weights: Weights,
    batch: usize,
    iterations: usize,
) -> Result<BenchReport, RunError> {
    run_bench_with_budget(
        plan,
        weights,
        batch,
        iterations,
        super::DEFAULT_MEMORY_BUDGET,
    )
}

/// [`run_bench`] with an activation budget of `budget` bytes (`modelc bench
/// --max-activation-bytes`).
pub fn run_bench_with_budget(
    plan: &ExecutionPlan,
    weights: Weights,
    batch: usize,
    iterations: usize,
    budget: u64,
) -> Result<BenchReport, RunError> {
    let mut interp = Interpreter::new(plan, weights)?;
    interp.set_memory_budget(budget);
    let owned = random_inputs(plan, batch.max(1), 0x5eed);
    let inputs: Vec<TensorRef<'_>> = owned.iter().map(OwnedInput::as_ref).collect();
    interp.forward(&inputs)?;
    let mut times = Vec::with_capacity(iterations.max(1));
    for _ in 0..iterations.max(1) {
        let t = Instant::now();
        interp.forward(&inputs)?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
    Ok(BenchReport {
        batch,
        iterations: times.len(),
        ms_per_batch: median * 1e3,
        samples_per_sec: if median > 0.0 {
            batch as f64 / median
        } else {
            0.0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::{Mode, PassOptions};
    use crate::runtime::weights::init_weights;

    #[test]
    fn the_budget_given_is_the_one_enforced() {
        let graph = crate::runtime::interp::zoo::seed_cnn().unwrap_or_default();
        let Ok(plan) =
            crate::plan::compile(graph, Mode::Infer, &PassOptions::default(), "t".into())
        else {
            panic!("the seed CNN compiles");
        };
        let Ok(weights) = init_weights(&plan, 1) else {
            panic!("fresh weights");
        };
        let weights = || weights.clone();
        // Batch 4 needs about 4 × 27 KiB of buffers plus the fused steps' scratch.
        let small = run_bench_with_budget(&plan, weights(), 4, 1, 1 << 10);
        assert!(matches!(
            small,
            Err(RunError::MemoryBudget { batch: 4, .. })
        ));
        let Ok(report) = run_bench_with_budget(&plan, weights(), 4, 2, 1 << 30) else {
            panic!("1 GiB is enough for batch 4");
        };
        assert_eq!((report.batch, report.iterations), (4, 2));
        assert!(report.samples_per_sec > 0.0);
    }
}
