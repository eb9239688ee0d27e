//! `fold-input-normalization` (inference): a per-channel `x * scale + shift` fitted by the data
//! pipeline (scale, standardize) in front of the first conv2d or dense is folded into that
//! layer's kernel and bias — only where exact. A conv with zero padding is not exact (padded
//! zeros would have to become `shift`), so it is left alone.

use super::{bypass, Mode, Pass};
use crate::ir::{Graph, Init, Op, Padding, Param, ParamSource, Recipe};

pub struct FoldInputNormalization;

impl Pass for FoldInputNormalization {
    fn name(&self) -> &'static str {
        "fold-input-normalization"
    }

    fn applies_to(&self, mode: Mode) -> bool {
        mode == Mode::Infer
    }

    fn run(&self, graph: &mut Graph, log: &mut Vec<String>) -> bool {
        let mut changed = false;
        let mut i = 0;
        while i < graph.nodes.len() {
            let uses = graph.use_counts();
            let node = &graph.nodes[i];
            let Op::Affine { scale, shift } = &node.op else {
                i += 1;
                continue;
            };
            let out = node.output;
            let consumer = graph.nodes.iter().position(|n| n.inputs.contains(&out));
            let exact = uses.get(out.index()) == Some(&1)
                && consumer.is_some_and(|c| match &graph.nodes[c].op {
                    Op::Dense { .. } => true,
                    Op::Conv2d { window, .. } => {
                        matches!(
                            window.padding,
                            Padding::Valid | Padding::Explicit([0, 0, 0, 0])
                        )
                    }
                    _ => false,
                });
            let (Some(c), true) = (consumer, exact) else {
                i += 1;
                continue;
            };
            let (scale, shift) = (scale.clone(), shift.clone());
            let affine_input = node.inputs.first().copied();
            let affine_name = node.name.clone();
            let (kernel, bias, units) = match &graph.nodes[c].op {
                Op::Conv2d {
                    kernel,
                    bias,
                    filters,
                    ..
                } => (*kernel, *bias, *filters),
                Op::Dense {
                    kernel,
                    bias,
                    units,
                    ..
                } => (*kernel, *bias, *units),
                _ => {
                    i += 1;
                    continue;
                }
            };
            let (Some(k), Some(x)) = (graph.param(kernel), affine_input) else {
                i += 1;
                continue;
            };
            let layer = graph.nodes[c].name.clone();
            let kshape = k.shape.clone();
            let new_kernel = graph.add_param(Param {
                name: format!("{layer}.kernel+{affine_name}"),
                shape: kshape,
                trainable: false,
                init: Init::Zeros,
                source: ParamSource::Derived(Recipe::AffineKernel { kernel, scale }),
            });
            let new_bias = graph.add_param(Param {
                name: format!("{layer}.bias+{affine_name}"),
                shape: vec![units],
                trainable: false,
                init: Init::Zeros,
                source: ParamSource::Derived(Recipe::AffineBias {
                    bias,
                    kernel,
                    shift,
                    units,
                }),
            });
            if let Op::Conv2d { kernel, bias, .. } | Op::Dense { kernel, bias, .. } =
                &mut graph.nodes[c].op
            {
                *kernel = new_kernel;
                *bias = Some(new_bias);
            }
            log.push(format!("{affine_name} folded into {layer}"));
            bypass(graph, i, x);
            changed = true;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::testing::{chain, run_pass};

    #[test]
    fn folds_into_dense_and_valid_conv() {
        let mut g = chain(&["affine", "dense:3"]);
        assert_eq!(
            run_pass(&FoldInputNormalization, &mut g),
            ["affine folded into dense"]
        );
        assert_eq!(g.nodes.len(), 1);
        assert_eq!(g.nodes[0].inputs[0], g.inputs[0]);
        let mut g = chain(&["in:8,8,3", "affine", "conv:4"]);
        assert_eq!(
            run_pass(&FoldInputNormalization, &mut g),
            ["affine folded into conv"]
        );
    }

    #[test]
    fn does_not_fold_across_zero_padding() {
        let mut g = chain(&["in:8,8,3", "affine", "conv_same:4"]);
        assert!(run_pass(&FoldInputNormalization, &mut g).is_empty());
        let mut g = chain(&["in:8,8,3", "affine", "maxpool:2"]);
        assert!(run_pass(&FoldInputNormalization, &mut g).is_empty());
    }
}
