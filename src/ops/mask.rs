//! Keras's masking: `embedding(..., mask_zero: true)` marks the steps whose token id is 0 as
//! padding, and that mask follows the sequence through the layers Keras propagates it through,
//! to the layers that read it.
//!
//! A mask here is always "some id of these integer values is non-zero" (Keras's mask of an
//! embedding is `ids != 0`, and Keras 3 merges masked values by ORing their masks), so the
//! checker carries, for each value, the list of integer values its mask comes from
//! ([`MaskSource`]), and in the IR a layer that reads a mask takes those id values as extra
//! inputs after its data input (`[N, T]` integers each, a step kept when any is non-zero). No
//! op of its own: the plan format gains only extra inputs.
//!
//! What each layer does with a mask ([`effect`]), as Keras 3 does: element-wise layers, dense
//! and the normalizations pass it on; `simple_rnn`, `lstm`, `gru` and `bidirectional` read it
//! (a masked step keeps the previous state, and its output with `return_sequences` is the
//! previous output) and pass it on only with `return_sequences`; `global_avg_pool1d` reads it
//! (the mean of the kept steps) and ends it; `add` and `concat` over the last axis OR their
//! inputs' masks when every input has one (else their output has none); every other layer
//! (`flatten`, `reshape`, convolutions, window pools, `global_max_pool1d`, which Keras 3 runs
//! over the masked steps too) ends it silently, as Keras 3 does. `multi_head_attention` over
//! masked values, and `concat` of masked values along another axis, are refused by the
//! checker (E0499): Keras would mask the attention's keys or join the masks, which modelc does
//! not do yet, rather than computing other numbers than Keras's.

use super::layer::LayerOp;
use super::types::Fact;

/// The integer values (the checker's value indices, sorted, no repeats) whose non-zero ids
/// are the kept steps (a step is kept when one of them is non-zero there). Empty: no mask.
pub type MaskSource = Vec<usize>;

/// What a layer does with a mask on its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskEffect {
    /// Passes its (first) input's mask on unchanged; does not read it.
    Propagate,
    /// Reads the mask; its output carries the same mask.
    ReadAndPropagate,
    /// Reads the mask; its output has none.
    Read,
    /// ORs its inputs' masks when all have one (merge layers; `concat` only over the last
    /// axis, which the checker sees).
    Combine,
    /// Its output has no mask (the mask is dropped, as in Keras).
    Drop,
    /// Keras would use the mask, modelc does not yet: the checker refuses a masked input.
    Unsupported,
}

/// What `op` does with a mask on its inputs (see the module doc).
pub fn effect(op: &LayerOp) -> MaskEffect {
    match op {
        LayerOp::Dense { .. }
        | LayerOp::Dropout { .. }
        | LayerOp::Activation(_)
        | LayerOp::LayerNorm { .. }
        | LayerOp::BatchNorm { .. }
        | LayerOp::Cast { .. }
        | LayerOp::PositionEmbedding { .. } => MaskEffect::Propagate,
        LayerOp::Rnn {
            return_sequences: true,
            ..
        }
        | LayerOp::Bidirectional {
            return_sequences: true,
            ..
        } => MaskEffect::ReadAndPropagate,
        LayerOp::Rnn { .. }
        | LayerOp::Bidirectional { .. }
        | LayerOp::GlobalPool1d {
            kind: super::types::PoolKind::Avg,
        } => MaskEffect::Read,
        LayerOp::Add | LayerOp::Concat { .. } => MaskEffect::Combine,
        LayerOp::MultiHeadAttention { .. } => MaskEffect::Unsupported,
        _ => MaskEffect::Drop,
    }
}

/// The IR verifier's view of a mask-reading op's inputs: the data input, once every further
/// input is integer ids `[N, T]` over the data's first two axes.
pub fn data_input<'f>(inputs: &[&'f Fact]) -> Result<&'f Fact, String> {
    let Some((x, masks)) = inputs.split_first() else {
        return Err("no input".to_string());
    };
    for m in masks {
        let fits = m.dtype.is_integer()
            && m.rank() == 2
            && x.rank() >= 2
            && m.dims.get(..2) == x.dims.get(..2);
        if !fits {
            return Err(format!(
                "a mask input must be integer ids [N, T] over the input {x}, got {m}"
            ));
        }
    }
    Ok(x)
}

/// The mask of a merge: none when an input has none, else the union of the inputs' sources
/// (the OR of their masks, as Keras 3).
pub fn combine<'a>(sources: impl IntoIterator<Item = &'a MaskSource>) -> MaskSource {
    let sources: Vec<&MaskSource> = sources.into_iter().collect();
    if sources.iter().any(|s| s.is_empty()) {
        return Vec::new();
    }
    let mut all: MaskSource = sources.into_iter().flatten().copied().collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// ONNX export's refusal of a step that reads a padding mask: ONNX's recurrent ops skip only
/// trailing padding (`sequence_lens`), and which steps are padding is known only at run time.
pub fn refuse_onnx(cx: &super::onnx::NodeCx<'_>) -> Result<(), String> {
    if cx.inputs.len() > 1 {
        return Err(
            "it reads the padding mask of an `embedding(..., mask_zero: true)`, which \
                    modelc does not export: ONNX's recurrent ops skip only trailing padding \
                    (`sequence_lens`), and where the zeros are is known only at run time"
                .to_string(),
        );
    }
    Ok(())
}
