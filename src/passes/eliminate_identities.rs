//! `eliminate-identities`: ops that return their input unchanged (a `linear` activation, a cast
//! to the same dtype, a reshape to the same shape) are bypassed.

use super::{Mode, Pass, Rewrite};
use crate::ir::{Activation, Graph, Op};

pub struct EliminateIdentities;

impl Pass for EliminateIdentities {
    fn name(&self) -> &'static str {
        "eliminate-identities"
    }

    fn applies_to(&self, _mode: Mode) -> bool {
        true
    }

    fn run(&self, graph: &mut Graph, log: &mut Vec<String>) -> bool {
        let mut edits = Rewrite::new(graph);
        for (i, node) in graph.nodes.iter().enumerate() {
            let identity = match (&node.op, edits.single_input(graph, i)) {
                (Op::Activation(Activation::Linear), Some(x)) => Some(x),
                (Op::Cast { .. } | Op::Reshape { .. } | Op::Flatten, Some(x)) => {
                    let same = graph
                        .value(x)
                        .zip(graph.value(node.output))
                        .is_some_and(|(a, b)| a.fact == b.fact);
                    same.then_some(x)
                }
                _ => None,
            };
            if let Some(x) = identity {
                log.push(format!("{} removed (identity)", node.name));
                edits.bypass(graph, i, x);
            }
        }
        edits.finish(graph)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::testing::{chain, run_pass};

    #[test]
    fn removes_linear_and_same_shape_reshape_but_not_real_ones() {
        let mut g = chain(&["dense:4", "linear", "reshape:4", "reshape:2,2", "relu"]);
        let log = run_pass(&EliminateIdentities, &mut g);
        assert_eq!(
            log,
            ["linear removed (identity)", "reshape removed (identity)"]
        );
        assert_eq!(
            g.nodes.iter().map(|n| n.op.kind()).collect::<Vec<_>>(),
            ["dense", "reshape", "relu"]
        );
    }
}
