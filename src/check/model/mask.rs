//! The padding mask each value of a model body carries (`ops::mask`): made by
//! `embedding(..., mask_zero: true)`, passed on, read or dropped by each layer as Keras 3 does.
//!
//! Input: a layer about to be applied and its inputs' masks. Output: the ids the layer reads
//! its mask from (extra IR inputs after its data input) and the ids its output's mask comes
//! from; E0499 for a masked input to a layer that Keras would run with the mask and modelc
//! cannot (attention; a concat joining masks along time).

use super::Walker;
use crate::diag::{codes, Diagnostic};
use crate::ops::layer::LayerOp;
use crate::ops::mask::{self, MaskEffect, MaskSource};
use crate::syntax::ast::Call;

/// The masks of one layer: what it reads, what its output carries (value indices of ids).
pub struct LayerMasks {
    pub reads: MaskSource,
    pub carries: MaskSource,
}

impl Walker<'_> {
    /// The masks of `op` applied to `inputs` (all known), or E0499.
    pub(super) fn layer_masks(
        &mut self,
        op: &LayerOp,
        inputs: &[usize],
        rank: usize,
        call: &Call,
    ) -> Option<LayerMasks> {
        let none = MaskSource::new();
        let masks: Vec<MaskSource> = inputs
            .iter()
            .map(|&i| {
                self.values
                    .get(i)
                    .map(|v| v.mask.clone())
                    .unwrap_or_default()
            })
            .collect();
        let first = masks.first().cloned().unwrap_or_default();
        if let LayerOp::Embedding {
            mask_zero: true, ..
        } = op
        {
            return Some(LayerMasks {
                reads: none,
                carries: inputs.first().map(|&i| vec![i]).unwrap_or_default(),
            });
        }
        let (reads, carries) = match mask::effect(op) {
            MaskEffect::Propagate => (none, first),
            MaskEffect::ReadAndPropagate => (first.clone(), first),
            MaskEffect::Read => (first, none),
            MaskEffect::Combine => {
                let joins_time = matches!(op, LayerOp::Concat { axis } if *axis + 1 != rank);
                if joins_time && masks.iter().any(|m| !m.is_empty()) {
                    return self.mask_unsupported(op, &masks, call);
                }
                (none, mask::combine(&masks))
            }
            MaskEffect::Drop => (none.clone(), none),
            MaskEffect::Unsupported => {
                if masks.iter().any(|m| !m.is_empty()) {
                    return self.mask_unsupported(op, &masks, call);
                }
                (none.clone(), none)
            }
        };
        Some(LayerMasks { reads, carries })
    }

    /// The name of value `v` (an input's or the layer's that makes it).
    pub(super) fn value_name(&self, v: usize) -> String {
        if let Some(input) = self.inputs.get(v) {
            return input.name.clone();
        }
        self.values
            .get(v)
            .and_then(|x| x.layer)
            .and_then(|l| self.layers.get(l))
            .map_or_else(|| format!("value {v}"), |l| l.name.clone())
    }

    /// E0499 for `op` over masked inputs.
    fn mask_unsupported(
        &mut self,
        op: &LayerOp,
        masks: &[MaskSource],
        call: &Call,
    ) -> Option<LayerMasks> {
        let ids: Vec<String> = mask::combine(masks.iter().filter(|m| !m.is_empty()))
            .into_iter()
            .map(|v| format!("`{}`", self.value_name(v)))
            .collect();
        let (title, what) = if matches!(op, LayerOp::Concat { .. }) {
            (
                "`concat` of masked sequences along the time axis is not supported",
                "Keras would join the inputs' padding masks along time",
            )
        } else {
            (
                "`multi_head_attention` over a masked sequence is not supported",
                "Keras would keep the masked steps out of the attention",
            )
        };
        self.diags.push(
            Diagnostic::error(codes::CHECK_MASK_UNSUPPORTED, title)
                .primary(
                    self.file,
                    call.span,
                    format!(
                        "reads the padding mask of {} (`embedding(..., mask_zero: true)`)",
                        ids.join(" and ")
                    ),
                )
                .note(format!(
                    "{what}, which modelc does not do yet: it refuses rather than compute other numbers than Keras's"
                ))
                .help("drop `mask_zero: true` from the embedding, or end the mask first (e.g. with a recurrent layer or `global_avg_pool1d`)"),
        );
        None
    }
}
