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
                for (i, &m) in rows.clone().zip(&maxima) {
                    exp_in_place(&mut s[i * tv..i * tv + live(i)], m);
                }
                let sums = block_sums(s, rows.clone(), tv, live);
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

/// Lanes of the partial maxima.
const LANES: usize = 8;

/// A row's maximum: eight-lane maxima over the whole chunks, folded into the maximum of the
/// tail. `bigger` keeps the current value unless the new one compares greater (a NaN is never
/// taken, as with `f32::max`, and the vector code needs no NaN fix-ups); the two can differ
/// only in the sign of a zero maximum, which `exp(x − max)` does not see.
#[allow(clippy::inline_always)]
#[inline(always)]
fn row_max(row: &[f32]) -> f32 {
    let bigger = |m: f32, v: f32| if v > m { v } else { m };
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let max = chunks
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, bigger);
    for c in chunks {
        for l in 0..LANES {
            lanes[l] = bigger(lanes[l], c[l]);
        }
    }
    lanes.iter().copied().fold(max, bigger)
}

/// `exp(x − max)` over the row in place (by `fastmath::exp`).
#[allow(clippy::inline_always)]
#[inline(always)]
fn exp_in_place(row: &mut [f32], max: f32) {
    for v in row.iter_mut() {
        *v = fastmath::exp(*v - max);
    }
}

/// The sums of a block's live rows: eight-lane partial sums combined pairwise
/// (`simd_train::lane_sums`), then each row's tail added in order.
#[allow(clippy::inline_always)]
#[inline(always)]
fn block_sums(
    s: &[f32],
    rows: std::ops::Range<usize>,
    tv: usize,
    live: impl Fn(usize) -> usize,
) -> [f32; BLOCK] {
    let mut parts: [&[f32]; BLOCK] = [&[]; BLOCK];
    let mut sums = [0f32; BLOCK];
    let n = rows.len().min(BLOCK);
    for (part, i) in parts.iter_mut().zip(rows) {
        *part = &s[i * tv..i * tv + live(i)];
    }
    simd_train::lane_sums(&parts[..n], &mut sums[..n]);
    for (sum, part) in sums.iter_mut().zip(&parts[..n]) {
        let tail: f32 = part
            .chunks_exact(simd_train::LANE_SUMS_WIDTH)
            .remainder()
            .iter()
            .sum();
        *sum += tail;
    }
    sums
}
