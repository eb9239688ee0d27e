//! The IR: an arena graph of typed values and ops, built only from a checked model.
//!
//! Input: a checked model (see `lower`). Output: a [`Graph`] that passes rewrite and `plan`
//! serializes. Invariants (checked by [`verify`]): every handle is in range; graph inputs are
//! produced by no node; a value is produced by at most one node, and nodes are in a valid
//! execution order (a value is defined before every node that uses it, and every graph output
//! is defined); each node's output fact is what its op family's shape rule (`ops`) computes from
//! its inputs and parameters. A value no node produces and nothing reads may stay in the arena
//! after a pass removed its node. The IR carries no spans: passes never report user
//! diagnostics.

mod fact;
mod lower;
mod print;
mod shape;
mod verify;

pub use crate::ops::op::{Activation, Op, Padding, RnnCell, Window};
pub use crate::ops::param::{Init, ParamId};
pub use fact::{DType, Dim, Fact};
pub use lower::{lower, LowerError};
pub use print::print;
pub use shape::infer;
pub use verify::{verify, VerifyError};

use serde::{Deserialize, Serialize};

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub u32);

        impl $name {
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}

handle!(
    /// A value in [`Graph::values`].
    ValueId
);

/// A value: what it is and what it is called (the layer that makes it, or the input's name).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Value {
    pub name: String,
    pub fact: Fact,
}

/// One operation applied to values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The layer's stable name (`conv2d_1`), used in logs and weight names.
    pub name: String,
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub output: ValueId,
}

/// Where a parameter's values come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamSource {
    /// Read from the weights file under the parameter's name.
    Stored,
    /// Computed from other parameters when weights are loaded (an inference rewrite).
    Derived(Recipe),
}

/// How a derived parameter is computed from stored ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipe {
    /// `kernel * gamma / sqrt(variance + epsilon)` along the output (last) axis.
    BatchNormKernel {
        kernel: ParamId,
        gamma: ParamId,
        variance: ParamId,
        epsilon: f32,
    },
    /// `(bias - mean) * gamma / sqrt(variance + epsilon) + beta`; `bias` absent means zero.
    BatchNormBias {
        bias: Option<ParamId>,
        gamma: ParamId,
        beta: ParamId,
        mean: ParamId,
        variance: ParamId,
        epsilon: f32,
    },
    /// A dense kernel `[in, out]` or conv kernel `[kh, kw, in, out]` with input channel `c`
    /// scaled by `scale[c]`.
    AffineKernel { kernel: ParamId, scale: Vec<f32> },
    /// `bias + sum over inputs of shift[c] * kernel[.., c, o]`; `bias` absent means zero.
    AffineBias {
        bias: Option<ParamId>,
        kernel: ParamId,
        shift: Vec<f32>,
        units: usize,
    },
    /// `table · kernel + b_in`, `[vocab, G·U]`: a recurrent layer's input projection of every
    /// row of the embedding table before it (`fold-embedding-projection`). `b_in` is the first
    /// `G·U` values of `bias`: all of a simple RNN's or LSTM's `[G·U]` bias, row 0 of a GRU's
    /// `[2, G·U]` one.
    EmbeddingProjection {
        table: ParamId,
        kernel: ParamId,
        bias: ParamId,
    },
}

/// A parameter tensor of the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// `LAYER.PARAM`, e.g. `conv2d_1.kernel`: the name in weight files.
    pub name: String,
    pub shape: Vec<usize>,
    /// False for batch norm's moving statistics (as in Keras) and for derived parameters.
    pub trainable: bool,
    pub init: Init,
    pub source: ParamSource,
}

impl Param {
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A model as a graph.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// The model's name.
    pub name: String,
    pub values: Vec<Value>,
    pub nodes: Vec<Node>,
    pub params: Vec<Param>,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

impl Graph {
    pub fn value(&self, id: ValueId) -> Option<&Value> {
        self.values.get(id.index())
    }

    pub fn param(&self, id: ParamId) -> Option<&Param> {
        self.params.get(id.index())
    }

    /// Adds a value and returns its handle.
    pub fn add_value(&mut self, name: impl Into<String>, fact: Fact) -> ValueId {
        self.values.push(Value {
            name: name.into(),
            fact,
        });
        ValueId((self.values.len() - 1) as u32)
    }

    /// Adds a parameter and returns its handle.
    pub fn add_param(&mut self, param: Param) -> ParamId {
        self.params.push(param);
        ParamId((self.params.len() - 1) as u32)
    }

    /// Adds a graph input.
    pub fn add_input(&mut self, name: impl Into<String>, fact: Fact) -> ValueId {
        let v = self.add_value(name, fact);
        self.inputs.push(v);
        v
    }

    /// Appends a node computing `op` over `inputs`; its output fact comes from the op's shape
    /// rule. On a shape error nothing is added.
    pub fn add_node(
        &mut self,
        name: impl Into<String>,
        op: Op,
        inputs: Vec<ValueId>,
    ) -> Result<ValueId, String> {
        let facts: Vec<&Fact> = inputs
            .iter()
            .map(|&v| {
                self.value(v)
                    .map(|v| &v.fact)
                    .ok_or_else(|| format!("value {} does not exist", v.0))
            })
            .collect::<Result<_, _>>()?;
        let fact = infer(&op, &facts, &self.params)?;
        let name = name.into();
        let output = self.add_value(name.clone(), fact);
        self.nodes.push(Node {
            name,
            op,
            inputs,
            output,
        });
        Ok(output)
    }

    /// How many nodes read each value (graph outputs count as a use).
    pub fn use_counts(&self) -> Vec<usize> {
        let mut uses = vec![0usize; self.values.len()];
        for n in &self.nodes {
            for v in &n.inputs {
                if let Some(u) = uses.get_mut(v.index()) {
                    *u += 1;
                }
            }
        }
        for v in &self.outputs {
            if let Some(u) = uses.get_mut(v.index()) {
                *u += 1;
            }
        }
        uses
    }

    /// The index of the node producing each value, if any.
    pub fn producers(&self) -> Vec<Option<usize>> {
        let mut prod = vec![None; self.values.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(p) = prod.get_mut(n.output.index()) {
                *p = Some(i);
            }
        }
        prod
    }
}
