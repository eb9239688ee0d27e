//! The attention probabilities: a row softmax over the value positions, causal rows cut at the
//! diagonal.

use crate::runtime::kernels::{fastmath, simd_train};

/// Softmax of each of the `tq` rows of `s` (`tv` wide) in place; causal rows keep only
/// positions `j ≤ i` (the rest get 0). Compiled for the widest SIMD the CPU has
/// (`simd_train::vectorized`, the same bits on every path), with `fastmath::exp`.
///
/// Rows go in blocks of [`BLOCK`], each step for every row of the block before the next
/// (maxima, then exponentials and sums, then the scaling): a single row is one long chain
/// (maximum, exponentials, sum, reciprocal, scale) that leaves the vector units idle while it
/// waits, and a block's rows are independent chains side by side. Each row's arithmetic is the
/// same as row by row.
pub(crate) fn softmax_rows(s: &mut [f32], tq: usize, tv: usize, causal: bool) {
    let tv = tv.max(1);
    let tq = tq.min(s.len() / tv);
    let live = |i: usize| if causal { (i + 1).min(tv) } else { tv };
    simd_train::vectorized(
        #[inline(always)]
        || {
            for first in (0..tq).step_by(BLOCK) {
                let rows = first..(first + BLOCK).min(tq);
                let mut maxima = [0f32; BLOCK];
                for (i, m) in rows.clone().zip(&mut maxima) {
                    *m = row_max(&s[i * tv..i * tv + live(i)]);
                }
                let mut sums = [0f32; BLOCK];
                for ((i, sum), &m) in rows.clone().zip(&mut sums).zip(&maxima) {
                    *sum = exp_and_sum(&mut s[i * tv..i * tv + live(i)], m);
                }
                for (i, &sum) in rows.zip(&sums) {
                    let (row, masked) = s[i * tv..(i + 1) * tv].split_at_mut(live(i));
                    let inv = 1.0 / sum;
                    for v in row.iter_mut() {
                        *v *= inv;
                    }
                    masked.fill(0.0);
                }
            }
        },
    );
}

/// Rows per block of [`softmax_rows`].
const BLOCK: usize = 8;

/// Lanes of the partial maxima and sums.
const LANES: usize = 8;

/// A row's maximum: eight-lane maxima over the whole chunks, folded into the maximum of the
/// tail.
#[allow(clippy::inline_always)]
#[inline(always)]
fn row_max(row: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let max = chunks
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    for c in chunks {
        for l in 0..LANES {
            lanes[l] = lanes[l].max(c[l]);
        }
    }
    lanes.iter().copied().fold(max, f32::max)
}

/// `exp(x − max)` over the row in place (by `fastmath::exp`), and the row's sum: eight-lane
/// partial sums combined pairwise, then the tail's sum added.
#[allow(clippy::inline_always)]
#[inline(always)]
fn exp_and_sum(row: &mut [f32], max: f32) -> f32 {
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
    ((sums[0] + sums[1]) + (sums[2] + sums[3])) + ((sums[4] + sums[5]) + (sums[6] + sums[7])) + tail
}
