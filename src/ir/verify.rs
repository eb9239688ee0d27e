//! The IR verifier: handles in range, definitions before uses, single definitions, and every
//! node's fact equal to its op's shape rule. Runs after lowering and after every pass in tests
//! and debug builds, and on every plan loaded from a file.

use super::{infer, Graph};
use std::fmt;

/// What is wrong with a graph (a bug in modelc when the graph came from lowering or a pass).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError {
    /// The node (layer name) or part of the graph at fault.
    pub at: String,
    pub message: String,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

impl std::error::Error for VerifyError {}

fn err(at: impl Into<String>, message: impl Into<String>) -> VerifyError {
    VerifyError {
        at: at.into(),
        message: message.into(),
    }
}

/// Checks every invariant of the IR (see the module doc of `ir`).
pub fn verify(graph: &Graph) -> Result<(), VerifyError> {
    let mut defined = vec![false; graph.values.len()];
    for &v in &graph.inputs {
        let slot = defined
            .get_mut(v.index())
            .ok_or_else(|| err("inputs", format!("value {} out of range", v.0)))?;
        if *slot {
            return Err(err("inputs", format!("value {} is an input twice", v.0)));
        }
        *slot = true;
    }
    for node in &graph.nodes {
        let mut facts = Vec::with_capacity(node.inputs.len());
        for &v in &node.inputs {
            match defined.get(v.index()) {
                None => return Err(err(&node.name, format!("input value {} out of range", v.0))),
                Some(false) => {
                    return Err(err(
                        &node.name,
                        format!("uses value {} before it is defined", v.0),
                    ))
                }
                Some(true) => facts.push(&graph.values[v.index()].fact),
            }
        }
        for p in node.op.params() {
            if graph.param(p).is_none() {
                return Err(err(&node.name, format!("parameter {} out of range", p.0)));
            }
        }
        let expected = infer(&node.op, &facts, &graph.params).map_err(|m| err(&node.name, m))?;
        let slot = defined
            .get_mut(node.output.index())
            .ok_or_else(|| err(&node.name, "output value out of range"))?;
        if *slot {
            return Err(err(
                &node.name,
                format!("value {} is defined twice", node.output.0),
            ));
        }
        *slot = true;
        let actual = &graph.values[node.output.index()].fact;
        if *actual != expected {
            return Err(err(
                &node.name,
                format!(
                    "output is recorded as {actual} but {} computes {expected}",
                    node.op.kind()
                ),
            ));
        }
    }
    for &v in &graph.outputs {
        if !defined.get(v.index()).copied().unwrap_or(false) {
            return Err(err(
                "outputs",
                format!("output value {} is never defined", v.0),
            ));
        }
    }
    Ok(())
}
