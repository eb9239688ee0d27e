//! `remove-dropout` (inference): dropout is the identity at inference, so it goes.

use super::{bypass, Mode, Pass};
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
        let mut changed = false;
        let mut i = 0;
        while i < graph.nodes.len() {
            let node = &graph.nodes[i];
            if let (Op::Dropout { .. }, [input]) = (&node.op, node.inputs.as_slice()) {
                log.push(format!("{} removed (inference)", node.name));
                let input = *input;
                bypass(graph, i, input);
                changed = true;
            } else {
                i += 1;
            }
        }
        changed
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
