//! Fuzz entries for untrusted plans and weights: `modelc run --random-weights` on a plan file,
//! and `modelc run --weights` reading a safetensors file for a fixed, valid plan.

use super::Outcome;
use crate::ir::{DType, Dim, Graph};
use crate::passes::{Mode, PassOptions};
use crate::plan::ExecutionPlan;
use crate::runtime::interp::{plan_error_diagnostic, zoo, Interpreter, TensorRef};
use crate::runtime::weights::{init_weights_within, to_diagnostics, weights_from_bytes};
use ndarray::{ArrayD, IxDyn};
use std::path::Path;
use std::sync::OnceLock;

/// The activation budget the plan target runs with (the CLI's default is larger; a fuzzer's
/// process limit is not).
const RUN_BUDGET_BYTES: u64 = 256 << 20;

/// The most parameter bytes the plan target initializes (the CLI allows the checker's 4 GiB).
const PARAM_BUDGET_BYTES: u64 = 256 << 20;

/// The most input elements the plan target builds for one run.
const MAX_INPUT_ELEMENTS: usize = 1 << 16;

/// Size given to symbolic dimensions (the batch, a sequence length) when running a plan.
const SYMBOL_SIZE: usize = 2;

/// Reads a plan as `modelc run PLAN --random-weights 0` does (UTF-8, RON, validation), then
/// initializes its weights and runs it once on zeros when its inputs are small.
pub fn load_plan(bytes: &[u8]) -> Outcome {
    let shown = "fuzz.plan.ron";
    let Ok(text) = std::str::from_utf8(bytes) else {
        let e = crate::plan::PlanError::Syntax("the file is not UTF-8 text".into());
        return Outcome::of(&[plan_error_diagnostic(&e, shown)]);
    };
    let plan = match ExecutionPlan::from_ron(text) {
        Ok(p) => p,
        Err(e) => return Outcome::of(&[plan_error_diagnostic(&e, shown)]),
    };
    let weights = match init_weights_within(&plan, 0, PARAM_BUDGET_BYTES) {
        Ok(w) => w,
        Err(e) => return Outcome::of(&to_diagnostics(&[e], Path::new(shown))),
    };
    let mut interp = match Interpreter::new(&plan, weights) {
        Ok(i) => i,
        Err(e) => return Outcome::of(&[e.to_diagnostic()]),
    };
    interp.set_memory_budget(RUN_BUDGET_BYTES);
    let Some(inputs) = zero_inputs(&plan) else {
        return Outcome::default();
    };
    let views: Vec<TensorRef<'_>> = inputs.iter().map(ZeroInput::view).collect();
    match interp.run(&views) {
        Ok(_) => Outcome::default(),
        Err(e) => Outcome::of(&[e.to_diagnostic()]),
    }
}

/// A zero tensor for one plan input, in the input's dtype.
enum ZeroInput {
    F32(ArrayD<f32>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
}

impl ZeroInput {
    fn view(&self) -> TensorRef<'_> {
        match self {
            ZeroInput::F32(a) => TensorRef::F32(a.view()),
            ZeroInput::I32(a) => TensorRef::I32(a.view()),
            ZeroInput::I64(a) => TensorRef::I64(a.view()),
        }
    }
}

/// Zeros for every input of `plan` (symbolic dims get [`SYMBOL_SIZE`]); `None` when the
/// inputs together would exceed [`MAX_INPUT_ELEMENTS`].
fn zero_inputs(plan: &ExecutionPlan) -> Option<Vec<ZeroInput>> {
    let mut total = 0usize;
    let mut out = Vec::new();
    for &v in &plan.inputs {
        let fact = &plan.values.get(v as usize)?.fact;
        let shape: Vec<usize> = fact
            .dims
            .iter()
            .map(|d| match d {
                Dim::Known(n) => *n,
                Dim::Symbol(_) => SYMBOL_SIZE,
            })
            .collect();
        let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
        total = total.checked_add(count)?;
        if total > MAX_INPUT_ELEMENTS {
            return None;
        }
        let shape = IxDyn(&shape);
        out.push(match fact.dtype {
            DType::F32 => ZeroInput::F32(ArrayD::zeros(shape)),
            DType::I32 => ZeroInput::I32(ArrayD::zeros(shape)),
            DType::I64 => ZeroInput::I64(ArrayD::zeros(shape)),
        });
    }
    Some(out)
}

/// A conv + batch norm spec whose inference plan has derived (folded) parameters.
const FOLDED_SPEC: &str = "model Block(x: f32[N, 8, 8, 3]) -> f32[N, 4] {
    conv2d(8, kernel: 3, padding: same, use_bias: false)
    batch_norm()
    relu()
    global_avg_pool2d()
    dense(4, activation: softmax)
}
";

/// The fixed plans the weights target loads against: the seed CNN, the Embedding + LSTM
/// classifier of the interpreter's fixtures, and a plan with a folded batch norm.
fn weight_plans() -> &'static [ExecutionPlan] {
    static PLANS: OnceLock<Vec<ExecutionPlan>> = OnceLock::new();
    PLANS.get_or_init(|| {
        let graphs = [
            zoo::seed_cnn().ok(),
            zoo::lstm_classifier(zoo::TextSizes {
                vocab: 50,
                embed: 8,
                units: &[6, 5],
                seq: 7,
                classes: 4,
            })
            .ok(),
            folded_graph(),
        ];
        graphs
            .into_iter()
            .flatten()
            .filter_map(|g| {
                crate::plan::compile(g, Mode::Infer, &PassOptions::default(), "fuzz".into()).ok()
            })
            .collect()
    })
}

fn folded_graph() -> Option<Graph> {
    let file = crate::diag::FileId::default();
    let parsed = crate::syntax::parse(file, FOLDED_SPEC, &crate::syntax::Limits::default());
    let checked = crate::check::check_file(file, &parsed.file);
    crate::ir::lower(checked.models.first()?).ok()
}

/// Reads safetensors bytes as `modelc run --weights` does, for one of three fixed plans: the
/// first byte picks the plan (seed CNN, Embedding + LSTM, folded batch norm), the rest is the
/// file. Loaded weights are then handed to the interpreter (which checks them again).
pub fn load_weights(bytes: &[u8]) -> Outcome {
    let Some((&selector, file)) = bytes.split_first() else {
        return Outcome::default();
    };
    let plans = weight_plans();
    let Some(plan) = plans.get(usize::from(selector) % plans.len().max(1)) else {
        return Outcome::default();
    };
    match weights_from_bytes(file, plan) {
        Ok(w) => match Interpreter::new(plan, w) {
            Ok(_) => Outcome::default(),
            Err(e) => Outcome::of(&[e.to_diagnostic()]),
        },
        Err(errors) => Outcome::of(&to_diagnostics(&errors, Path::new("fuzz.safetensors"))),
    }
}

/// How many fixed plans [`load_weights`] chooses from (tests check that all three compiled).
pub fn weight_plan_count() -> usize {
    weight_plans().len()
}
