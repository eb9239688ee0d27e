//! `fuse-conv-pool`: a conv2d step whose only reader is the max/avg pool step right after it
//! runs together with that pool, a few samples at a time.
//!
//! Input: a graph (or a plan's steps, when validating). Output: one flag per step, set on the
//! conv2d of each fused pair. Invariants of a fused pair (checked again on every loaded plan):
//! inference mode; step `i` is a conv2d, step `i + 1` a 2-D max or average pool whose only input
//! is step `i`'s output; no other step reads that output and it is not a model output. The conv
//! output then never exists whole: per thread, a tile of [`tile_samples`] samples of it is
//! computed in scratch memory (bias and activation included) and pooled at once, so the plan
//! gives it no buffer; of it only the pixels the pool reads are computed (a valid-padding pool
//! skips the rows and columns past its last window). The arithmetic is the unfused steps' own,
//! so results are bit-identical.

use crate::ir::{Fact, Graph, Op, Window};
use crate::passes::Mode;

/// Output pixels per tile the fused step aims for: a few hundred GEMM rows keep the matrix
/// kernel efficient while the tile (and its im2col patches) stays in the core's cache.
const TILE_ROWS_TARGET: usize = 256;

/// Samples per tile of a fused conv whose output has `pixels` pixels per sample: at least one.
pub fn tile_samples(pixels: usize) -> usize {
    (TILE_ROWS_TARGET / pixels.max(1)).max(1)
}

/// Scratch bytes one thread needs, at most, for a fused conv from `input` to `output` with a
/// `window`-sized kernel: one tile of the output plus the tile's im2col patch matrix (one row of
/// `kh·kw·C` inputs per output pixel). `None` when a size is not known or overflows.
pub fn scratch_bytes(input: &Fact, output: &Fact, window: &Window) -> Option<u64> {
    let pixels = output.dim(1)?.checked_mul(output.dim(2)?)?;
    let patch = window.size[0]
        .checked_mul(window.size[1])?
        .checked_mul(input.dim(-1)?)?;
    let per_pixel = output.dim(-1)?.checked_add(patch)?;
    let elements = pixels
        .checked_mul(tile_samples(pixels))?
        .checked_mul(per_pixel)?;
    u64::try_from(elements.checked_mul(output.dtype.size())?).ok()
}

/// [`scratch_bytes`] of the conv2d node `i` of `graph`.
pub fn node_scratch_bytes(graph: &Graph, i: usize) -> Option<u64> {
    let node = graph.nodes.get(i)?;
    let Op::Conv2d { window, .. } = &node.op else {
        return None;
    };
    let input = graph.value(*node.inputs.first()?)?;
    let output = graph.value(node.output)?;
    scratch_bytes(&input.fact, &output.fact, window)
}

/// Whether `op` is a pool the fused step can apply.
pub fn is_fusable_pool(op: &Op) -> bool {
    matches!(op, Op::MaxPool2d { .. } | Op::AvgPool2d { .. })
}

/// The conv2d steps to fuse with the pool after them.
pub fn conv_pool_pairs(graph: &Graph, mode: Mode) -> Vec<bool> {
    let mut fused = vec![false; graph.nodes.len()];
    if mode != Mode::Infer {
        return fused;
    }
    let uses = graph.use_counts();
    for (i, pair) in graph.nodes.windows(2).enumerate() {
        let [conv, pool] = pair else { continue };
        let out = conv.output;
        let single_reader = uses.get(out.index()) == Some(&1) && !graph.outputs.contains(&out);
        let sized = node_scratch_bytes(graph, i).is_some();
        if matches!(conv.op, Op::Conv2d { .. })
            && is_fusable_pool(&pool.op)
            && pool.inputs.as_slice() == [out]
            && single_reader
            && sized
        {
            if let Some(flag) = fused.get_mut(i) {
                *flag = true;
            }
        }
    }
    fused
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::testing::chain;

    #[test]
    fn tiles_hold_about_256_pixels_and_at_least_one_sample() {
        assert_eq!(tile_samples(676), 1);
        assert_eq!(tile_samples(121), 2);
        assert_eq!(tile_samples(9), 28);
        assert_eq!(tile_samples(0), 256);
    }

    #[test]
    fn scratch_counts_a_tile_of_output_and_its_patch_matrix() {
        // conv 3x3 32 → 64 over 13x13: 121 pixels, 2 samples a tile, 64 + 288 floats a pixel.
        let g = chain(&["in:13,13,32", "conv:64", "maxpool:2"]);
        assert_eq!(node_scratch_bytes(&g, 0), Some(121 * 2 * (64 + 288) * 4));
        assert_eq!(node_scratch_bytes(&g, 1), None);
    }

    #[test]
    fn fuses_conv_then_pool_only_when_the_pool_is_the_only_reader() {
        let g = chain(&["in:8,8,3", "conv:4", "maxpool:2", "conv:4", "relu"]);
        assert_eq!(
            conv_pool_pairs(&g, Mode::Infer),
            [true, false, false, false]
        );
        assert_eq!(conv_pool_pairs(&g, Mode::Train), [false; 4]);
        let mut g = chain(&["in:8,8,3", "conv:4", "maxpool:2"]);
        let conv_out = g.nodes[0].output;
        g.outputs.push(conv_out);
        assert_eq!(conv_pool_pairs(&g, Mode::Infer), [false, false]);
    }
}
