//! `remove-dropout` (inference): dropout is the identity at inference, so it goes.

use super::{Mode, Pass, Rewrite};
use crate::ir::{Graph, Op};

pub struct RemoveDropout;

impl Pass for RemoveDropout {
    fn name(&self) -> &'static str {
        "remove-dropout"
    }

    fn applies_to(&self, mode: Mode) -> bool {
        mode == Mode::Infer
    }

    fn run(&self, graph: &mut Graph, log: &mut Vec<String>) -> bool {
        let mut edits = Rewrite::new(graph);
        for (i, node) in graph.nodes.iter().enumerate() {
            if let (Op::Dropout { .. }, Some(input)) = (&node.op, edits.single_input(graph, i)) {
                log.push(format!("{} removed (inference)", node.name));
                edits.bypass(graph, i, input);
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
    fn removes_dropout_and_rewires() {
        let mut g = chain(&["dense:4", "dropout", "relu"]);
        let log = run_pass(&RemoveDropout, &mut g);
        assert_eq!(log, ["dropout removed (inference)"]);
        assert_eq!(g.nodes.len(), 2);
        assert_eq!(g.nodes[1].inputs[0], g.nodes[0].output);
        assert!(!RemoveDropout.applies_to(Mode::Train));
    }
}
