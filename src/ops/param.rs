//! A layer's parameters as its op family declares them: Keras's name, shape, trainability and
//! initializer, and the handle by which IR ops refer to the graph's parameter table.
//!
//! Input: nothing (plain data). Output: [`ParamInfo`] (what a shape rule says a layer holds),
//! [`ParamRef`] (what a graph actually holds, for the IR verifier) and [`expect_params`], the
//! one comparison of the two. Invariant: a family lists its parameters in the order its IR op's
//! `params()` returns them.

use serde::{Deserialize, Serialize};

/// A parameter in the graph's parameter table (`ir::Graph::params`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ParamId(pub u32);

impl ParamId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// How a fresh parameter is initialized (Keras defaults).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    GlorotUniform,
    Zeros,
    Ones,
    Orthogonal,
    /// Uniform in `[-limit, limit]` (Keras's embedding default is 0.05).
    Uniform {
        limit: f32,
    },
    /// LSTM bias: zeros with the forget gate's slice set to one.
    UnitForgetBias,
}

/// One weight tensor of a layer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParamInfo {
    /// Keras's name for it: `kernel`, `bias`, `gamma`, `moving_mean`, `embeddings`, ...
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub trainable: bool,
    /// Keras's default initializer for it.
    #[serde(skip)]
    pub init: Init,
}

impl ParamInfo {
    /// A trainable parameter.
    pub fn new(name: &'static str, shape: Vec<usize>, init: Init) -> Self {
        Self {
            name,
            shape,
            trainable: true,
            init,
        }
    }

    /// A non-trainable parameter (batch norm's moving statistics).
    pub fn state(name: &'static str, shape: Vec<usize>, init: Init) -> Self {
        Self {
            trainable: false,
            ..Self::new(name, shape, init)
        }
    }

    /// The number of scalars (`None` on overflow, which the checker reports before).
    pub fn count(&self) -> Option<u64> {
        self.shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
    }
}

/// A parameter a graph holds: its full name (`LAYER.PARAM`) and shape.
#[derive(Clone, Copy, Debug)]
pub struct ParamRef<'a> {
    pub name: &'a str,
    pub shape: &'a [usize],
}

/// Checks that a node's parameters are the ones its family's rule declares, in order.
pub fn expect_params(expected: &[ParamInfo], actual: &[ParamRef<'_>]) -> Result<(), String> {
    if expected.len() != actual.len() {
        return Err(format!(
            "has {} parameters, expected {}",
            actual.len(),
            expected.len()
        ));
    }
    for (e, a) in expected.iter().zip(actual) {
        if e.shape != a.shape {
            return Err(format!(
                "parameter {} has shape {:?}, expected {:?}",
                a.name, a.shape, e.shape
            ));
        }
    }
    Ok(())
}
