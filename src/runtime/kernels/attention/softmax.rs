//! The attention probabilities: a row softmax over the value positions, causal rows cut at the
//! diagonal.

use crate::runtime::kernels::{fastmath, simd_train};

/// Softmax of each of the `tq` rows of `s` (`tv` wide) in place; causal rows keep only
/// positions `j ≤ i` (the rest get 0). Compiled for the widest SIMD the CPU has
/// (`simd_train::vectorized`, the same bits on every path), with `fastmath::exp`.
pub(crate) fn softmax_rows(s: &mut [f32], tq: usize, tv: usize, causal: bool) {
    simd_train::vectorized(
        #[inline(always)]
        || {
            for (i, row) in s.chunks_exact_mut(tv.max(1)).take(tq).enumerate() {
                let allowed = if causal { (i + 1).min(tv) } else { tv };
                let (live, masked) = row.split_at_mut(allowed);
                softmax_row(live);
                masked.fill(0.0);
            }
        },
    );
}

/// Lanes of the partial maxima and sums in [`softmax_row`].
const LANES: usize = 8;

/// Softmax of one row in place: eight-lane maximum and sum (lanes combined pairwise, then the
/// tail in order), `exp(x − max)` by `fastmath::exp`.
#[allow(clippy::inline_always)]
#[inline(always)]
fn softmax_row(row: &mut [f32]) {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let mut max = chunks
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    for c in chunks {
        for l in 0..LANES {
            lanes[l] = lanes[l].max(c[l]);
        }
    }
    max = lanes.iter().copied().fold(max, f32::max);
    for v in row.iter_mut() {
        *v = fastmath::exp(*v - max);
    }
    let mut sums = [0.0f32; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for l in 0..LANES {
            sums[l] += c[l];
        }
    }
    let sum = ((sums[0] + sums[1]) + (sums[2] + sums[3]))
        + ((sums[4] + sums[5]) + (sums[6] + sums[7]))
        + tail;
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}
