//! Run-time limits the command line enforces before allocating: the activation memory a run or
//! a training would need (`--max-activation-bytes`). The model limits are the checker's
//! (`check::limits`).
//!
//! Input: a plan's memory figures (bytes per sample, and the conv steps' patch matrices), a batch
//! size, the limit. Output: `Ok`, or an E0810 diagnostic naming the figure, the limit and the
//! flag that raises it. Invariant: every product is checked; an overflow is over any limit.

use crate::diag::{codes, human_bytes, Diagnostic};
use crate::ir::Dim;
use crate::plan::ExecutionPlan;
use crate::runtime::interp::{conv_scratch_len, ScratchUse};
use clap::Args;

/// 4 GiB of activations, the interpreter's own default budget: with the default 4 GiB parameter
/// limit (training holds about four copies of the parameters) this keeps a run on a 24 GiB
/// machine clear of the out-of-memory killer; the shipped specs need a few MiB.
pub const DEFAULT_MAX_ACTIVATION_BYTES: u64 = crate::runtime::interp::DEFAULT_MEMORY_BUDGET;

/// `--max-activation-bytes`, on the commands that run a plan (under `--help`'s "Limits"
/// heading, hidden from `-h`).
#[derive(Clone, Copy, Debug, Args)]
#[command(next_help_heading = "Limits")]
pub struct ActivationLimitArgs {
    /// Most bytes of activation memory a run may need (the plan's bytes per sample × batch;
    /// ×2 when training).
    #[arg(long, hide_short_help = true, value_name = "BYTES", default_value_t = DEFAULT_MAX_ACTIVATION_BYTES)]
    pub max_activation_bytes: u64,
}

/// What a plan is being used for; training keeps a gradient beside every value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    Running,
    Training,
}

/// The activation bytes `plan` needs for batches of `batch` samples, the conv steps' scratch
/// included (`None` on overflow).
pub fn activation_bytes(plan: &ExecutionPlan, batch: u64, what: Use) -> Option<u64> {
    let copies = match what {
        Use::Running => 1,
        Use::Training => 2,
    };
    plan.memory
        .peak_bytes_per_sample
        .checked_mul(batch)?
        .checked_mul(copies)?
        .checked_add(scratch_bytes(plan, batch, what)?)
}

/// The bytes of scratch the conv steps keep for batches of `batch`: patch matrices of the
/// unfused ones, and one tile per thread of the fused conv + pool steps (`None` on overflow).
fn scratch_bytes(plan: &ExecutionPlan, batch: u64, what: Use) -> Option<u64> {
    let threads = rayon::current_num_threads();
    let how = match what {
        Use::Running => ScratchUse::Inference { threads },
        Use::Training => ScratchUse::Training,
    };
    let tiles = plan
        .memory
        .scratch_bytes_per_thread
        .checked_mul(threads as u64)?;
    let batch = usize::try_from(batch).ok()?;
    conv_scratch_len(plan, |v| batch_shape(plan, v, batch), how)?
        .checked_mul(4)?
        .checked_add(tiles)
}

/// The shape of value `v` with its leading batch symbol bound to `batch`; `None` when another
/// symbol is in it (its size is known only when inputs arrive).
fn batch_shape(plan: &ExecutionPlan, v: u32, batch: usize) -> Option<Vec<usize>> {
    let fact = &plan.values.get(v as usize)?.fact;
    fact.dims
        .iter()
        .enumerate()
        .map(|(i, d)| match d {
            Dim::Known(n) => Some(*n),
            Dim::Symbol(_) if i == 0 => Some(batch),
            Dim::Symbol(_) => None,
        })
        .collect()
}

/// Refuses a batch whose activations would exceed `limit`, before anything is allocated.
pub fn check_activations(
    plan: &ExecutionPlan,
    batch: u64,
    what: Use,
    limit: u64,
) -> Result<(), Diagnostic> {
    let needed = activation_bytes(plan, batch, what);
    if needed.is_some_and(|n| n <= limit) {
        return Ok(());
    }
    let verb = match what {
        Use::Running => "running",
        Use::Training => "training",
    };
    let figure = needed.map_or_else(
        || "more than 2^64 bytes".to_string(),
        |n| format!("{n} bytes ({})", human_bytes(n)),
    );
    let d = Diagnostic::error(
        codes::RUN_ACTIVATION_LIMIT,
        format!(
            "{verb} `{}` on batches of {batch} needs {figure} of activation memory; the limit is {limit} bytes ({})",
            plan.model,
            human_bytes(limit)
        ),
    )
    .note(format!(
        "the plan needs {} bytes per sample{}{}",
        plan.memory.peak_bytes_per_sample,
        if what == Use::Training {
            ", twice over in training (a gradient beside every value)"
        } else {
            ""
        },
        match scratch_bytes(plan, batch, what) {
            Some(0) => String::new(),
            Some(n) => format!(", and its conv layers {n} bytes of scratch (patch matrices, fused tiles)"),
            None => ", and its conv layers more than 2^64 bytes of scratch".into(),
        }
    ));
    Err(match needed {
        Some(n) => d.help(format!(
            "use a smaller batch, or raise the limit with `--max-activation-bytes {n}`"
        )),
        None => d.help("use a smaller batch"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::{Mode, PassOptions};

    #[test]
    fn activation_bytes_count_buffers_per_sample_and_scratch_per_thread() {
        let graph = crate::runtime::interp::zoo::seed_cnn().unwrap_or_default();
        let plan = crate::plan::compile(graph, Mode::Infer, &PassOptions::default(), "t".into());
        let Ok(plan) = plan else {
            panic!("the seed CNN compiles");
        };
        let m = &plan.memory;
        assert!(m.scratch_bytes_per_thread > 0, "the seed CNN's convs fuse");
        let threads = rayon::current_num_threads() as u64;
        let expected = 64 * m.peak_bytes_per_sample + threads * m.scratch_bytes_per_thread;
        assert_eq!(activation_bytes(&plan, 64, Use::Running), Some(expected));
        assert!(check_activations(&plan, 64, Use::Running, expected).is_ok());
        assert!(check_activations(&plan, 64, Use::Running, expected - 1).is_err());
        assert_eq!(activation_bytes(&plan, u64::MAX, Use::Running), None);
    }
}
