//! Receptive-field addressing of a convolution: im2col (the patch matrix), col2im (its
//! gradient scattered back), zero-padded copies of a chunk of samples and per-tap offsets.
//!
//! Input: NHWC samples and a validated [`Conv2dShape`] with its geometry. Output: the patch
//! matrix rows, the scatter-added `dx`, a padded chunk, or the offset table [`simd_gemm`]
//! reads through. Invariants: every function writes only the samples it is given; col2im adds
//! into `dx` in a fixed order, so results do not depend on the chunking.

use super::{Conv2dGeometry, Conv2dShape, Padding2d};
use crate::runtime::kernels::linalg::ensure_len;

/// The span of one kernel row that lands inside the input: kernel columns `kx_lo..kx_hi`
/// read input columns `ix_lo..ix_lo + (kx_hi - kx_lo)`. Only valid for column dilation 1, where
/// in-bounds kernel columns read consecutive input pixels (one contiguous run in NHWC).
#[derive(Clone, Copy)]
pub(super) struct RowSpan {
    pub kx_lo: usize,
    pub kx_hi: usize,
    pub ix_lo: usize,
}

pub(super) fn row_span(s: &Conv2dShape, geom: &Conv2dGeometry, ox: usize) -> RowSpan {
    let start = ox * geom.stride.1;
    let pad = geom.padding.left;
    let kx_lo = pad.saturating_sub(start).min(s.kw);
    let kx_hi = (s.w + pad).saturating_sub(start).min(s.kw).max(kx_lo);
    RowSpan {
        kx_lo,
        kx_hi,
        ix_lo: (start + kx_lo).saturating_sub(pad),
    }
}

/// The input row read by kernel row `ky` at output row `oy`, if inside the input.
pub(super) fn input_row(
    s: &Conv2dShape,
    geom: &Conv2dGeometry,
    oy: usize,
    ky: usize,
) -> Option<usize> {
    (oy * geom.stride.0 + ky * geom.dilation.0)
        .checked_sub(geom.padding.top)
        .filter(|&iy| iy < s.h)
}

/// Copies the receptive fields of samples `n0..n0+count` into `cols` (one row per output pixel).
pub(super) fn im2col(
    x: &[f32],
    s: &Conv2dShape,
    geom: &Conv2dGeometry,
    n0: usize,
    count: usize,
    cols: &mut [f32],
) {
    if geom.dilation.1 != 1 {
        im2col_dilated(x, s, geom, n0, count, cols);
        return;
    }
    let patch = s.patch_len();
    let kernel_row = s.kw * s.c;
    let mut rows = cols.chunks_exact_mut(patch);
    for n in n0..n0 + count {
        let sample = &x[n * s.h * s.w * s.c..(n + 1) * s.h * s.w * s.c];
        for oy in 0..s.oh {
            for ox in 0..s.ow {
                let Some(row) = rows.next() else { return };
                let span = row_span(s, geom, ox);
                for (ky, seg) in row.chunks_exact_mut(kernel_row).enumerate() {
                    let Some(iy) = input_row(s, geom, oy, ky) else {
                        seg.fill(0.0);
                        continue;
                    };
                    let (lo, hi) = (span.kx_lo * s.c, span.kx_hi * s.c);
                    if lo == hi {
                        // The whole kernel row lies in the padding (wider than its reach).
                        seg.fill(0.0);
                        continue;
                    }
                    let at = (iy * s.w + span.ix_lo) * s.c;
                    seg[..lo].fill(0.0);
                    seg[lo..hi].copy_from_slice(&sample[at..at + hi - lo]);
                    seg[hi..].fill(0.0);
                }
            }
        }
    }
}

/// [`im2col`] for column dilation above 1: one channel vector per kernel tap.
pub(super) fn im2col_dilated(
    x: &[f32],
    s: &Conv2dShape,
    geom: &Conv2dGeometry,
    n0: usize,
    count: usize,
    cols: &mut [f32],
) {
    let patch = s.patch_len();
    let mut rows = cols.chunks_exact_mut(patch);
    for n in n0..n0 + count {
        let sample = &x[n * s.h * s.w * s.c..(n + 1) * s.h * s.w * s.c];
        for oy in 0..s.oh {
            for ox in 0..s.ow {
                let Some(row) = rows.next() else { return };
                let mut segments = row.chunks_exact_mut(s.c);
                for ky in 0..s.kh {
                    let iy = input_row(s, geom, oy, ky);
                    for kx in 0..s.kw {
                        let ix = (ox * geom.stride.1 + kx * geom.dilation.1)
                            .checked_sub(geom.padding.left);
                        let Some(seg) = segments.next() else { return };
                        match (iy, ix) {
                            (Some(iy), Some(ix)) if ix < s.w => {
                                let at = (iy * s.w + ix) * s.c;
                                seg.copy_from_slice(&sample[at..at + s.c]);
                            }
                            _ => seg.fill(0.0),
                        }
                    }
                }
            }
        }
    }
}

/// Scatter-adds patch-matrix gradients of samples `n0..n0+count` back into `dx`.
pub(super) fn col2im(
    dcols: &[f32],
    s: &Conv2dShape,
    geom: &Conv2dGeometry,
    n0: usize,
    count: usize,
    dx: &mut [f32],
) {
    if geom.dilation.1 != 1 {
        col2im_dilated(dcols, s, geom, n0, count, dx);
        return;
    }
    let patch = s.patch_len();
    let kernel_row = s.kw * s.c;
    let mut rows = dcols.chunks_exact(patch);
    for n in n0..n0 + count {
        let sample = &mut dx[n * s.h * s.w * s.c..(n + 1) * s.h * s.w * s.c];
        for oy in 0..s.oh {
            for ox in 0..s.ow {
                let Some(row) = rows.next() else { return };
                let span = row_span(s, geom, ox);
                for (ky, seg) in row.chunks_exact(kernel_row).enumerate() {
                    let Some(iy) = input_row(s, geom, oy, ky) else {
                        continue;
                    };
                    let (lo, hi) = (span.kx_lo * s.c, span.kx_hi * s.c);
                    if lo == hi {
                        continue;
                    }
                    let at = (iy * s.w + span.ix_lo) * s.c;
                    for (d, &g) in sample[at..at + hi - lo].iter_mut().zip(&seg[lo..hi]) {
                        *d += g;
                    }
                }
            }
        }
    }
}

/// [`col2im`] for column dilation above 1: one channel vector per kernel tap.
pub(super) fn col2im_dilated(
    dcols: &[f32],
    s: &Conv2dShape,
    geom: &Conv2dGeometry,
    n0: usize,
    count: usize,
    dx: &mut [f32],
) {
    let patch = s.patch_len();
    let mut rows = dcols.chunks_exact(patch);
    for n in n0..n0 + count {
        let sample = &mut dx[n * s.h * s.w * s.c..(n + 1) * s.h * s.w * s.c];
        for oy in 0..s.oh {
            for ox in 0..s.ow {
                let Some(row) = rows.next() else { return };
                let mut segments = row.chunks_exact(s.c);
                for ky in 0..s.kh {
                    let iy = input_row(s, geom, oy, ky);
                    for kx in 0..s.kw {
                        let ix = (ox * geom.stride.1 + kx * geom.dilation.1)
                            .checked_sub(geom.padding.left);
                        let Some(seg) = segments.next() else { return };
                        if let (Some(iy), Some(ix)) = (iy, ix) {
                            if ix < s.w {
                                let at = (iy * s.w + ix) * s.c;
                                for (d, &g) in sample[at..at + s.c].iter_mut().zip(seg) {
                                    *d += g;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The zero-padded copy of samples `n0..n0 + count` of the NHWC `xs` (`h × w × c` each) into
/// `dst`, `pad` around each sample (`hp × wp` pixels padded).
#[allow(clippy::too_many_arguments)]
pub(super) fn pad_chunk(
    xs: &[f32],
    [h, w, c]: [usize; 3],
    p: Padding2d,
    wp: usize,
    sample_len: usize,
    n0: usize,
    count: usize,
    dst: &mut Vec<f32>,
) {
    let in_sample = h * w * c;
    ensure_len(dst, count * sample_len);
    let dst = &mut dst[..count * sample_len];
    dst.fill(0.0);
    for (i, sample) in dst.chunks_exact_mut(sample_len).enumerate() {
        let src = &xs[(n0 + i) * in_sample..(n0 + i + 1) * in_sample];
        for (y, row) in src.chunks_exact(w * c).enumerate() {
            let at = ((y + p.top) * wp + p.left) * c;
            sample[at..at + row.len()].copy_from_slice(row);
        }
    }
}

/// The offset of every kernel tap (`ky, kx, ci` in kernel order) from a receptive field's
/// origin, in an input `wp` pixels wide with `c` channels.
pub(super) fn tap_offsets(
    (kh, kw, c): (usize, usize, usize),
    dilation: (usize, usize),
    wp: usize,
    out: &mut Vec<usize>,
) {
    out.clear();
    for ky in 0..kh {
        for kx in 0..kw {
            let tap = (ky * dilation.0 * wp + kx * dilation.1) * c;
            out.extend((0..c).map(|ci| tap + ci));
        }
    }
}
