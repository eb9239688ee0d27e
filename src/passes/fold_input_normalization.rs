//! `fold-input-normalization` (inference): a per-channel `x * scale + shift` fitted by the data
//! pipeline (scale, standardize) in front of the first conv2d or dense is folded into that
//! layer's kernel and bias — only where exact. A conv with zero padding is not exact (padded
//! zeros would have to become `shift`), so it is left alone.

use super::{Mode, Pass, Rewrite};
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
        let mut edits = Rewrite::new(graph);
        for c in 0..graph.nodes.len() {
            // Anchored on the layer, so that finding the affine in front of it is one lookup.
            let (kernel, bias, units) = match &graph.nodes[c].op {
                Op::Dense {
                    kernel,
                    bias,
                    units,
                    ..
                } => (*kernel, *bias, *units),
                Op::Conv2d {
                    kernel,
                    bias,
                    filters,
                    window,
                    ..
                } if matches!(
                    window.padding,
                    Padding::Valid | Padding::Explicit([0, 0, 0, 0])
                ) =>
                {
                    (*kernel, *bias, *filters)
                }
                _ => continue,
            };
            let Some(out) = edits.single_input(graph, c) else {
                continue;
            };
            let Some(a) = edits.producer(out).filter(|_| edits.uses(out) == 1) else {
                continue;
            };
            let Op::Affine { scale, shift } = &graph.nodes[a].op else {
                continue;
            };
            let (Some(k), Some(x)) = (graph.param(kernel), edits.input(graph, a, 0)) else {
                continue;
            };
            let (scale, shift) = (scale.clone(), shift.clone());
            let affine_name = graph.nodes[a].name.clone();
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
            edits.bypass(graph, a, x);
        }
        edits.finish(graph)
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
