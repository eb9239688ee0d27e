//! Fresh weights: every stored parameter drawn from its initializer under a per-name seed, the
//! parameters' bytes checked against a limit before anything is allocated.

use super::{Weights, WeightsError};
use crate::ir::ParamSource;
use crate::plan::ExecutionPlan;
use crate::runtime::init::{initialize, Initializer};
use crate::util::limits::DEFAULT_MAX_PARAM_BYTES;

/// The seed of parameter `name` under the global `seed`: FNV-1a of the name mixed with the
/// seed by SplitMix64's finalizer.
pub fn param_seed(seed: u64, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = seed ^ h;
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fresh weights for `plan`: every stored parameter from its initializer, then the derived ones.
/// Refuses a plan whose parameters need more than the checker's default parameter limit (see
/// [`init_weights_within`]).
pub fn init_weights(plan: &ExecutionPlan, seed: u64) -> Result<Weights, WeightsError> {
    init_weights_within(plan, seed, DEFAULT_MAX_PARAM_BYTES)
}

/// [`init_weights`] with a limit on the parameters' bytes, checked (overflow included) before
/// anything is allocated. A loaded plan is untrusted and its parameter table alone sizes fresh
/// weights; a weights file is bounded by its own size instead.
pub fn init_weights_within(
    plan: &ExecutionPlan,
    seed: u64,
    max_param_bytes: u64,
) -> Result<Weights, WeightsError> {
    let bytes = plan.params.iter().try_fold(0u64, |total, p| {
        let count = p
            .shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d as u64))?;
        total.checked_add(count.checked_mul(4)?)
    });
    if bytes.is_none_or(|b| b > max_param_bytes) {
        return Err(WeightsError::TooLarge {
            bytes,
            limit: max_param_bytes,
        });
    }
    let mut slots = Vec::with_capacity(plan.params.len());
    for p in &plan.params {
        slots.push(if p.source == ParamSource::Stored {
            let v = initialize(
                Initializer::from(p.init),
                &p.shape,
                param_seed(seed, &p.name),
            )
            .map_err(|e| WeightsError::PlanMismatch(format!("{}: {e}", p.name)))?;
            Some(v)
        } else {
            None
        });
    }
    Weights::assemble(plan, slots, &[], Vec::new()).map_err(|mut e| {
        e.pop()
            .unwrap_or_else(|| WeightsError::PlanMismatch("no weights".into()))
    })
}
