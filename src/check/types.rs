//! The typed program the checker produces and the IR lowering consumes.
//!
//! Input: nothing (plain data). Output: `CheckedModel` / `CheckedLayer` / `CheckedInput`; the
//! shared vocabulary (`Fact`, `DType`, `Dim`, ...) and the closed `LayerOp` enum are `ops`'s,
//! re-exported here for the checker's users.
//! Invariants: in a `CheckedModel`, value ids `0..inputs.len()` are the inputs and value id
//! `inputs.len() + i` is the output of `layers[i]`; every layer only uses values defined before
//! it, so `layers` is a valid execution order; every `Dim::Known` is at least 1.

use crate::diag::Span;
use serde::Serialize;

pub use crate::ops::layer::LayerOp;
pub use crate::ops::param::ParamInfo;
pub use crate::ops::types::{Activation, DType, Dim, Fact, Padding, PoolKind, RnnCell};

/// The index of a value in a [`CheckedModel`] (see the module invariants).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ValueId(pub usize);

/// One layer of a checked model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckedLayer {
    /// The stable layer name: the `let` name, or generated per kind (`conv2d`, `conv2d_1`).
    pub name: String,
    pub op: LayerOp,
    pub inputs: Vec<ValueId>,
    /// The integer ids whose padding mask the layer reads (`ops::mask`: a step is kept when
    /// one of them is non-zero); lowering adds them as inputs after `inputs`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mask_inputs: Vec<ValueId>,
    /// The ids the output's padding mask comes from (empty: no mask), for `summary`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output_mask: Vec<ValueId>,
    pub output: Fact,
    pub params: Vec<ParamInfo>,
    /// Floating-point operations for one sample (a multiply-add counts as 2).
    pub flops_per_sample: u64,
    pub span: Span,
}

/// One input of a checked model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckedInput {
    pub name: String,
    pub fact: Fact,
    pub span: Span,
}

/// A model whose names, dtypes and shapes all check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckedModel {
    pub name: String,
    pub inputs: Vec<CheckedInput>,
    pub layers: Vec<CheckedLayer>,
    /// The model's (first) result (declared or inferred type in `output_fact`).
    pub output: ValueId,
    pub output_fact: Fact,
    /// Every output in the signature's order (one for a model with a single result, whose
    /// `output` and `output_fact` it repeats).
    pub outputs: Vec<CheckedOutput>,
    pub span: Span,
}

/// One output of a model: `digit: f32[N, 10]` and the value that computes it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckedOutput {
    /// The signature's name, else the name of the layer computing it (as Keras names outputs).
    pub name: String,
    pub value: ValueId,
    pub fact: Fact,
    /// Where it is declared (the signature's entry) or, undeclared, computed.
    pub span: Span,
}

impl CheckedModel {
    /// The model seen through its output `k` alone (as if it had one output): what the
    /// single-output checks of a loss, its activation and its metrics read.
    pub fn for_output(&self, k: usize) -> Option<CheckedModel> {
        let o = self.outputs.get(k)?;
        Some(CheckedModel {
            name: self.name.clone(),
            inputs: self.inputs.clone(),
            layers: self.layers.clone(),
            output: o.value,
            output_fact: o.fact.clone(),
            outputs: vec![o.clone()],
            span: self.span,
        })
    }

    /// The outputs' names when the model has several (what a plan records), else none.
    pub fn output_names(&self) -> Vec<String> {
        if self.outputs.len() > 1 {
            self.outputs.iter().map(|o| o.name.clone()).collect()
        } else {
            Vec::new()
        }
    }

    /// The name of a value: the input's, or the layer's that computes it.
    pub fn value_name(&self, id: ValueId) -> String {
        if id.0 < self.inputs.len() {
            self.inputs.get(id.0).map(|i| i.name.clone())
        } else {
            self.layers
                .get(id.0 - self.inputs.len())
                .map(|l| l.name.clone())
        }
        .unwrap_or_default()
    }

    /// The fact of a value.
    pub fn fact(&self, id: ValueId) -> Option<&Fact> {
        if id.0 < self.inputs.len() {
            self.inputs.get(id.0).map(|i| &i.fact)
        } else {
            self.layers.get(id.0 - self.inputs.len()).map(|l| &l.output)
        }
    }
}
