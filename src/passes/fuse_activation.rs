//! `fuse-activation`: a conv or dense step whose output feeds only a fusable activation
//! (`Activation::is_fusable`: relu, leaky_relu, sigmoid, tanh, elu, selu, softplus,
//! hard_sigmoid, relu6) computes the activation itself, in one pass over its output.
//! Valid for training too: the fused step keeps its output, from which these activations'
//! derivatives are computed.

use super::{Mode, Pass, Rewrite};
use crate::ir::{Activation, Graph, Op};

pub struct FuseActivation;

impl Pass for FuseActivation {
    fn name(&self) -> &'static str {
        "fuse-activation"
    }

    fn applies_to(&self, _mode: Mode) -> bool {
        true
    }

    fn run(&self, graph: &mut Graph, log: &mut Vec<String>) -> bool {
        let mut edits = Rewrite::new(graph);
        for i in 0..graph.nodes.len() {
            let fusable = match (&graph.nodes[i].op, edits.single_input(graph, i)) {
                (Op::Activation(a), Some(x)) if a.is_fusable() && edits.uses(x) == 1 => {
                    edits.producer(x).filter(|&p| {
                        matches!(
                            graph.nodes[p].op,
                            Op::Conv2d {
                                activation: Activation::Linear,
                                ..
                            } | Op::Dense {
                                activation: Activation::Linear,
                                ..
                            } | Op::Conv1d {
                                activation: Activation::Linear,
                                ..
                            } | Op::DepthwiseConv2d {
                                activation: Activation::Linear,
                                ..
                            } | Op::SeparableConv2d {
                                activation: Activation::Linear,
                                ..
                            } | Op::Conv2dTranspose {
                                activation: Activation::Linear,
                                ..
                            }
                        )
                    })
                }
                _ => None,
            };
            let Some(p) = fusable else {
                continue;
            };
            let Op::Activation(act) = graph.nodes[i].op else {
                continue;
            };
            log.push(format!("{} + {} fused", graph.nodes[p].name, act.name()));
            if let Op::Conv2d { activation, .. }
            | Op::Dense { activation, .. }
            | Op::Conv1d { activation, .. }
            | Op::DepthwiseConv2d { activation, .. }
            | Op::SeparableConv2d { activation, .. }
            | Op::Conv2dTranspose { activation, .. } = &mut graph.nodes[p].op
            {
                *activation = act;
            }
            let out = graph.nodes[p].output;
            edits.bypass(graph, i, out);
        }
        edits.finish(graph)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::testing::{chain, run_pass};

    #[test]
    fn fuses_conv_and_dense_with_their_activation() {
        let mut g = chain(&[
            "in:8,8,3", "conv:4", "relu", "flatten", "dense:3", "tanh", "softmax",
        ]);
        let log = run_pass(&FuseActivation, &mut g);
        assert_eq!(log, ["conv + relu fused", "dense + tanh fused"]);
        assert_eq!(
            g.nodes.iter().map(|n| n.op.kind()).collect::<Vec<_>>(),
            ["conv2d", "flatten", "dense", "softmax"]
        );
        assert!(matches!(
            g.nodes[0].op,
            Op::Conv2d {
                activation: Activation::Relu,
                ..
            }
        ));
    }

    #[test]
    fn does_not_fuse_when_the_pre_activation_is_used_elsewhere_or_softmax() {
        let mut g = chain(&["dense:4", "softmax"]);
        assert!(run_pass(&FuseActivation, &mut g).is_empty());
        let mut g = chain(&["dense:4", "relu"]);
        let pre = g.nodes[0].output;
        g.outputs.push(pre);
        assert!(run_pass(&FuseActivation, &mut g).is_empty());
    }
}
