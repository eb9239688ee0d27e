//! `fold-batch-norm` (inference): a batch norm right after a conv2d or dense (with or without
//! bias, no activation in between) is folded into that layer's kernel and bias:
//! `kernel' = kernel * gamma / sqrt(var + eps)` along the output axis and
//! `bias' = (bias - mean) * gamma / sqrt(var + eps) + beta`. The folded tensors are derived
//! parameters, computed from the stored weights when they are loaded.

use super::{Mode, Pass, Rewrite};
use crate::ir::{Activation, Graph, Init, Op, Param, ParamSource, Recipe};

pub struct FoldBatchNorm;

impl Pass for FoldBatchNorm {
    fn name(&self) -> &'static str {
        "fold-batch-norm"
    }

    fn applies_to(&self, mode: Mode) -> bool {
        mode == Mode::Infer
    }

    fn run(&self, graph: &mut Graph, log: &mut Vec<String>) -> bool {
        let mut edits = Rewrite::new(graph);
        for i in 0..graph.nodes.len() {
            let target = match (&graph.nodes[i].op, edits.single_input(graph, i)) {
                (Op::BatchNorm { .. }, Some(x)) if edits.uses(x) == 1 => {
                    edits.producer(x).and_then(|p| match &graph.nodes[p].op {
                        Op::Conv2d {
                            activation: Activation::Linear,
                            kernel,
                            bias,
                            ..
                        }
                        | Op::Dense {
                            activation: Activation::Linear,
                            kernel,
                            bias,
                            ..
                        } => Some((p, *kernel, *bias)),
                        _ => None,
                    })
                }
                _ => None,
            };
            let (
                Some((p, kernel, bias)),
                Op::BatchNorm {
                    gamma,
                    beta,
                    mean,
                    variance,
                    epsilon,
                    ..
                },
            ) = (target, graph.nodes[i].op.clone())
            else {
                continue;
            };
            let layer = graph.nodes[p].name.clone();
            let bn = graph.nodes[i].name.clone();
            let (Some(k), Some(g)) = (graph.param(kernel), graph.param(gamma)) else {
                continue;
            };
            let (kernel_shape, out_shape) = (k.shape.clone(), g.shape.clone());
            let new_kernel = graph.add_param(Param {
                name: format!("{layer}.kernel+{bn}"),
                shape: kernel_shape,
                trainable: false,
                init: Init::Zeros,
                source: ParamSource::Derived(Recipe::BatchNormKernel {
                    kernel,
                    gamma,
                    variance,
                    epsilon,
                }),
            });
            let new_bias = graph.add_param(Param {
                name: format!("{layer}.bias+{bn}"),
                shape: out_shape,
                trainable: false,
                init: Init::Zeros,
                source: ParamSource::Derived(Recipe::BatchNormBias {
                    bias,
                    gamma,
                    beta,
                    mean,
                    variance,
                    epsilon,
                }),
            });
            if let Op::Conv2d { kernel, bias, .. } | Op::Dense { kernel, bias, .. } =
                &mut graph.nodes[p].op
            {
                *kernel = new_kernel;
                *bias = Some(new_bias);
            }
            log.push(format!("{bn} folded into {layer}"));
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
    fn folds_into_conv_and_dense_with_or_without_bias() {
        let mut g = chain(&[
            "in:8,8,3",
            "conv_nobias:4",
            "bn",
            "relu",
            "flatten",
            "dense:2",
            "bn",
        ]);
        let log = run_pass(&FoldBatchNorm, &mut g);
        assert_eq!(
            log,
            ["bn folded into conv_nobias", "bn_1 folded into dense"]
        );
        assert_eq!(
            g.nodes.iter().map(|n| n.op.kind()).collect::<Vec<_>>(),
            ["conv2d", "relu", "flatten", "dense"]
        );
        let Op::Conv2d {
            kernel,
            bias: Some(bias),
            ..
        } = g.nodes[0].op
        else {
            panic!()
        };
        let k = g.param(kernel).unwrap();
        assert_eq!(k.name, "conv_nobias.kernel+bn");
        assert!(matches!(
            k.source,
            ParamSource::Derived(Recipe::BatchNormKernel { .. })
        ));
        let b = g.param(bias).unwrap();
        assert!(matches!(
            b.source,
            ParamSource::Derived(Recipe::BatchNormBias { bias: None, .. })
        ));
    }

    #[test]
    fn leaves_batch_norm_after_an_activation_or_a_shared_value() {
        let mut g = chain(&["dense:4", "relu", "bn"]);
        assert!(run_pass(&FoldBatchNorm, &mut g).is_empty());
        let mut g = chain(&["dense:4", "bn"]);
        let pre = g.nodes[0].output;
        g.outputs.push(pre);
        assert!(run_pass(&FoldBatchNorm, &mut g).is_empty());
        assert!(!FoldBatchNorm.applies_to(Mode::Train));
    }
}
