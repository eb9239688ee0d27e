//! Export of an inference plan to ONNX (`modelc export --to onnx`).
//!
//! Input: an optimized inference [`ExecutionPlan`] (folded batch norm, fused activations), its
//! [`Weights`] (derived parameters computed), and [`ExportOptions`] (opset, the spec's text,
//! whether to include the plan's fitted preprocessing). Output: the bytes of an ONNX
//! `ModelProto`, or its readable text form ([`text`], for golden tests and bug reports).
//!
//! The walk: the plan's steps in order, each op emitting its own nodes through its family's
//! `to_onnx` (`ops::onnx` is the vocabulary); this module adds the graph's inputs and outputs
//! (the spec's names and dtypes, channels-last, the batch as the symbol `N`), the fitted
//! preprocessing ([`preprocess`]), and metadata (the spec, the modelc version, the pass log).
//!
//! Invariants: the same plan, weights and options give the same bytes; an op that ONNX cannot
//! express is an [`ExportError::Unsupported`] naming the step, never a wrong graph; a graph's
//! channels-first values exist only inside runs of convolutions and pools.

mod encode;
pub(crate) mod preprocess;
mod proto;
pub mod pytorch;
pub mod text;

use crate::diag::{codes, Diagnostic};
use crate::ops::onnx::{Forms, Layout, NodeCx, OnnxGraph, ParamData};
use crate::ops::types::{Dim, Fact};
use crate::plan::ExecutionPlan;
use crate::runtime::weights::Weights;
use thiserror::Error;

/// The opset written when none is asked for.
pub const DEFAULT_OPSET: i64 = 17;
/// The opsets an export can target.
pub const OPSETS: std::ops::RangeInclusive<i64> = 13..=21;

/// What to export, besides the plan.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    pub opset: i64,
    /// Put the plan's fitted preprocessing in front of the model, so the graph takes the raw
    /// rows `modelc run` takes.
    pub preprocessing: bool,
    /// The spec's text, for the metadata (a plan file carries only its hash).
    pub spec_text: Option<String>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            opset: DEFAULT_OPSET,
            preprocessing: true,
            spec_text: None,
        }
    }
}

/// Why a plan cannot be exported.
#[derive(Debug, Error)]
pub enum ExportError {
    /// A step whose op has no ONNX form.
    #[error("{layer} cannot be exported to ONNX: {reason}")]
    Unsupported {
        /// `layer `NAME`` or `preprocessing step `NAME``.
        layer: String,
        reason: String,
    },
    #[error("opset {0} is not supported (modelc exports opsets 13 to 21)")]
    Opset(i64),
    /// The plan and weights disagree, or a broken invariant (a bug).
    #[error("internal error while exporting: {0}")]
    Internal(String),
}

impl ExportError {
    /// The diagnostic: E1001 for a layer (the CLI adds its line), E0902 for the opset.
    pub fn to_diagnostic(&self) -> Diagnostic {
        match self {
            ExportError::Unsupported { layer, reason } => Diagnostic::error(
                codes::EXPORT_UNSUPPORTED,
                format!("{layer} has no ONNX form"),
            )
            .note(format!("why: {reason}"))
            .help("change it to a form modelc runs and ONNX expresses, then export again"),
            ExportError::Opset(_) => Diagnostic::error(codes::IO_USAGE, self.to_string()).help(
                format!("pass `--opset N` with N from 13 to 21 (default {DEFAULT_OPSET})"),
            ),
            ExportError::Internal(_) => {
                Diagnostic::error(codes::EXPORT_UNSUPPORTED, self.to_string())
                    .note("this is a bug in modelc; please report it with the plan or spec")
            }
        }
    }
}

/// A built ONNX graph with its signature, before encoding.
pub struct OnnxModel {
    pub graph: OnnxGraph,
    /// Graph inputs: name, fact (channels-last, batch symbolic).
    pub inputs: Vec<(String, Fact)>,
    pub outputs: Vec<(String, Fact)>,
    pub opset: i64,
    pub name: String,
    /// Metadata entries, sorted by key.
    pub metadata: Vec<(String, String)>,
}

/// Builds the ONNX graph of `plan`.
pub fn build(
    plan: &ExecutionPlan,
    weights: &Weights,
    options: &ExportOptions,
) -> Result<OnnxModel, ExportError> {
    if !OPSETS.contains(&options.opset) {
        return Err(ExportError::Opset(options.opset));
    }
    let value = |v: u32| {
        plan.values
            .get(v as usize)
            .ok_or_else(|| ExportError::Internal(format!("the plan has no value {v}")))
    };
    let inputs: Vec<(String, Fact)> = plan
        .inputs
        .iter()
        .map(|&v| value(v).map(|p| (p.name.clone(), p.fact.clone())))
        .collect::<Result<_, _>>()?;
    // Several outputs are named as the spec's signature names them (`digit`, `parity`).
    let outputs: Vec<(String, Fact)> = plan
        .outputs
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            value(v).map(|p| {
                let name = plan.output_names.get(k).unwrap_or(&p.name);
                (name.clone(), p.fact.clone())
            })
        })
        .collect::<Result<_, _>>()?;
    let reserved = inputs.iter().chain(&outputs).map(|(n, _)| n.as_str());
    let mut graph = OnnxGraph::new(reserved);
    graph.values = plan
        .values
        .iter()
        .map(|v| Forms {
            rank: v.fact.rank(),
            sizes: v.fact.dims.iter().skip(1).map(Dim::known).collect(),
            ..Forms::default()
        })
        .collect();
    let steps = match (&plan.preprocessing, options.preprocessing) {
        (Some(steps), true) => steps.as_slice(),
        _ => &[],
    };
    let mut graph_inputs = Vec::with_capacity(inputs.len());
    for (i, (&v, (name, fact))) in plan.inputs.iter().zip(&inputs).enumerate() {
        // `modelc run` applies the preprocessing to a model's only input.
        let (raw, model_input) = if i == 0 && inputs.len() == 1 && !steps.is_empty() {
            preprocess::emit(&mut graph, steps, name, fact)?
        } else {
            (fact.clone(), name.clone())
        };
        graph_inputs.push((name.clone(), raw));
        if let Some(f) = graph.values.get_mut(v as usize) {
            f.nhwc = Some(model_input);
        }
    }
    for step in &plan.steps {
        emit_step(&mut graph, plan, weights, step, options.opset)?;
    }
    for (&v, (name, _)) in plan.outputs.iter().zip(&outputs) {
        let form = graph
            .value_in(v as usize, Layout::Nhwc)
            .map_err(ExportError::Internal)?;
        // An output that is an input as it is (a model the passes reduced to nothing) is
        // named by the graph's input already.
        if form != *name {
            graph.node_with_outputs("Identity", vec![form], vec![name.clone()], vec![]);
        }
    }
    Ok(OnnxModel {
        graph,
        inputs: graph_inputs,
        outputs,
        opset: options.opset,
        name: plan.model.clone(),
        metadata: metadata(plan, options),
    })
}

/// One plan step: its inputs, facts and parameters handed to its op's `to_onnx`.
fn emit_step(
    graph: &mut OnnxGraph,
    plan: &ExecutionPlan,
    weights: &Weights,
    step: &crate::plan::Step,
    opset: i64,
) -> Result<(), ExportError> {
    let internal = |m: String| ExportError::Internal(format!("{}: {m}", step.name));
    let fact = |v: u32| {
        plan.values
            .get(v as usize)
            .map(|p| &p.fact)
            .ok_or_else(|| internal(format!("no value {v}")))
    };
    let input_facts: Vec<&Fact> = step
        .inputs
        .iter()
        .map(|&v| fact(v))
        .collect::<Result<_, _>>()?;
    let output_fact = fact(step.output)?;
    let ids = step.op.params();
    let mut params = Vec::with_capacity(ids.len());
    for id in ids {
        let (p, w) = plan
            .params
            .get(id.index())
            .zip(weights.get(id))
            .ok_or_else(|| internal(format!("no weights for parameter {}", id.0)))?;
        let data = w
            .as_slice()
            .ok_or_else(|| internal(format!("parameter {} is not contiguous", p.name)))?;
        if data.len() != p.elements() {
            return Err(internal(format!(
                "parameter {} has {} numbers",
                p.name,
                data.len()
            )));
        }
        params.push(ParamData {
            shape: &p.shape,
            data,
        });
    }
    let inputs: Vec<usize> = step.inputs.iter().map(|&v| v as usize).collect();
    let mut cx = NodeCx {
        graph: &mut *graph,
        opset,
        step: &step.name,
        inputs: &inputs,
        input_facts: &input_facts,
        output_fact,
        params: &params,
        output: None,
    };
    step.op
        .to_onnx(&mut cx)
        .map_err(|reason| unsupported_or_internal(&step.name, reason))?;
    let (name, layout) = cx
        .output
        .take()
        .ok_or_else(|| internal("the op emitted no output".into()))?;
    let forms = graph
        .values
        .get_mut(step.output as usize)
        .ok_or_else(|| internal("no output value".into()))?;
    match layout {
        Layout::Nhwc => forms.nhwc = Some(name),
        Layout::Nchw => forms.nchw = Some(name),
    }
    Ok(())
}

/// An op's refusal is the user's (unsupported); an `internal:` message is a bug.
fn unsupported_or_internal(layer: &str, reason: String) -> ExportError {
    if let Some(bug) = reason.strip_prefix("internal: ") {
        ExportError::Internal(format!("{layer}: {bug}"))
    } else {
        ExportError::Unsupported {
            layer: format!("layer `{layer}`"),
            reason,
        }
    }
}

fn metadata(plan: &ExecutionPlan, options: &ExportOptions) -> Vec<(String, String)> {
    let mut m = vec![
        ("modelc.model".to_string(), plan.model.clone()),
        ("modelc.pass_log".to_string(), plan.pass_log.join("\n")),
        ("modelc.spec_sha256".to_string(), plan.spec_hash.clone()),
        (
            "modelc.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        (
            "modelc.preprocessing".to_string(),
            if options.preprocessing && plan.preprocessing.is_some() {
                "included"
            } else {
                "none"
            }
            .to_string(),
        ),
    ];
    if let Some(spec) = &options.spec_text {
        m.push(("modelc.spec".to_string(), spec.clone()));
    }
    m.sort();
    m
}

/// The ONNX file of `plan`: [`build`] then protobuf encoding.
pub fn export(
    plan: &ExecutionPlan,
    weights: &Weights,
    options: &ExportOptions,
) -> Result<Vec<u8>, ExportError> {
    let model = build(plan, weights, options)?;
    Ok(encode_model(&model))
}

/// The ONNX bytes of a built model.
pub fn encode_model(model: &OnnxModel) -> Vec<u8> {
    encode::encode(model)
}
