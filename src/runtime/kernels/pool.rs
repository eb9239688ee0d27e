//! Max and average pooling over the spatial axes of NHWC tensors, and their global forms.
//!
//! `x: [N, H, W, C]` → `[N, OH, OW, C]`. Keras `valid` gives `OH = (H - PH) / SH + 1`; `same`
//! gives `OH = ceil(H / SH)` with TensorFlow's padding split (extra after). Padded positions
//! never win a max and are excluded from an average's count (Keras/TF behaviour).
//! Backward: max routes each gradient to the first arg-max of its window (row-major order);
//! average spreads it evenly over the window's real positions. Gradients are overwritten.
//! Global pools reduce `[N, H, W, C]` to `[N, C]`.

use ndarray::{ArrayView2, ArrayView4, ArrayViewMut2, ArrayViewMut4, Axis};

use super::conv::same_padding;
use super::error::{expect_shape, param_err, KernelResult};
use super::linalg::{self, flat, flat_mut};

const OP: &str = "pool2d";

/// Which reduction a pool applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
}

/// Keras padding mode of a pooling layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolPadding {
    Valid,
    Same,
}

/// Window, stride and padding of a 2-D pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dParams {
    pub kind: PoolKind,
    pub pool: (usize, usize),
    pub stride: (usize, usize),
    pub padding: PoolPadding,
}

impl Pool2dParams {
    /// The leading input rows and columns of an `h × w` input that the pool reads: with
    /// `valid` padding the rows and columns past its last window are never read (floor mode),
    /// with `same` padding all of them are.
    pub fn reach(&self, h: usize, w: usize) -> KernelResult<(usize, usize)> {
        let axis = |input: usize, pool: usize, stride: usize| -> KernelResult<usize> {
            let (out, _) = axis_geometry(input, pool, stride, self.padding)?;
            Ok(match self.padding {
                PoolPadding::Valid => (out - 1) * stride + pool,
                PoolPadding::Same => input,
            })
        };
        Ok((
            axis(h, self.pool.0, self.stride.0)?,
            axis(w, self.pool.1, self.stride.1)?,
        ))
    }
}

/// Output length and leading pad of one axis.
fn axis_geometry(
    input: usize,
    pool: usize,
    stride: usize,
    padding: PoolPadding,
) -> KernelResult<(usize, usize)> {
    if pool == 0 || stride == 0 {
        return Err(param_err(OP, "pool size and stride must be positive"));
    }
    match padding {
        PoolPadding::Valid if input >= pool => Ok(((input - pool) / stride + 1, 0)),
        PoolPadding::Valid => Err(param_err(
            OP,
            format!("pool {pool} larger than input {input}"),
        )),
        PoolPadding::Same => Ok((
            input.div_ceil(stride),
            same_padding(input, pool, stride, 1)?.0,
        )),
    }
}

/// Resolved sizes of one pool call.
#[derive(Debug, Clone, Copy)]
struct PoolShape {
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    oh: usize,
    ow: usize,
    pad_top: usize,
    pad_left: usize,
}

impl PoolShape {
    fn new(x: (usize, usize, usize, usize), p: &Pool2dParams) -> KernelResult<Self> {
        let (n, h, w, c) = x;
        let (oh, pad_top) = axis_geometry(h, p.pool.0, p.stride.0, p.padding)?;
        let (ow, pad_left) = axis_geometry(w, p.pool.1, p.stride.1, p.padding)?;
        Ok(Self {
            n,
            h,
            w,
            c,
            oh,
            ow,
            pad_top,
            pad_left,
        })
    }

    /// A max pool of 2 × 2 windows at stride 2 that all lie inside the input (the usual pool
    /// of a CNN), which has a path of its own.
    fn is_max_2x2(&self, p: &Pool2dParams) -> bool {
        #[cfg(test)]
        if GENERAL_ONLY.with(std::cell::Cell::get) {
            return false;
        }
        p.kind == PoolKind::Max
            && p.pool == (2, 2)
            && p.stride == (2, 2)
            && (self.pad_top, self.pad_left) == (0, 0)
            && 2 * self.oh <= self.h
            && 2 * self.ow <= self.w
    }

    /// The clipped input rows (or columns) covered by output index `o` along one axis.
    fn window(o: usize, stride: usize, pool: usize, pad: usize, len: usize) -> (usize, usize) {
        let start = (o * stride).saturating_sub(pad);
        let end = (o * stride + pool).saturating_sub(pad).min(len);
        (start, end)
    }
}

/// The output shape `[N, OH, OW, C]` of a pool over `x_shape`.
pub fn pool2d_output_shape(x_shape: [usize; 4], p: &Pool2dParams) -> KernelResult<[usize; 4]> {
    let s = PoolShape::new((x_shape[0], x_shape[1], x_shape[2], x_shape[3]), p)?;
    Ok([s.n, s.oh, s.ow, s.c])
}

/// Visits every output cell with its clipped window: `(n, oy, ox, y0..y1, x0..x1)`.
fn for_each_window(
    s: &PoolShape,
    p: &Pool2dParams,
    mut f: impl FnMut(usize, usize, (usize, usize), (usize, usize)),
) {
    for n in 0..s.n {
        for oy in 0..s.oh {
            let ys = PoolShape::window(oy, p.stride.0, p.pool.0, s.pad_top, s.h);
            for ox in 0..s.ow {
                let xs = PoolShape::window(ox, p.stride.1, p.pool.1, s.pad_left, s.w);
                f(n, (n * s.oh + oy) * s.ow + ox, ys, xs);
            }
        }
    }
}

/// Pooling forward into `out: [N, OH, OW, C]`.
pub fn pool2d_forward(
    x: ArrayView4<'_, f32>,
    p: &Pool2dParams,
    mut out: ArrayViewMut4<'_, f32>,
) -> KernelResult<()> {
    let s = PoolShape::new(x.dim(), p)?;
    expect_shape(OP, "out", out.shape(), &[s.n, s.oh, s.ow, s.c])?;
    let xs = flat(OP, "x", &x)?;
    let os = flat_mut(OP, "out", &mut out)?;
    if s.is_max_2x2(p) {
        max_pool_2x2(xs, &s, os);
        return Ok(());
    }
    for_each_window(&s, p, |n, cell, (y0, y1), (x0, x1)| {
        let dst = &mut os[cell * s.c..(cell + 1) * s.c];
        let init = if p.kind == PoolKind::Max {
            f32::NEG_INFINITY
        } else {
            0.0
        };
        dst.fill(init);
        for iy in y0..y1 {
            for ix in x0..x1 {
                let at = ((n * s.h + iy) * s.w + ix) * s.c;
                let src = &xs[at..at + s.c];
                match p.kind {
                    PoolKind::Max => dst.iter_mut().zip(src).for_each(|(d, &v)| *d = d.max(v)),
                    PoolKind::Avg => dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v),
                }
            }
        }
        if p.kind == PoolKind::Avg {
            let count = ((y1 - y0) * (x1 - x0)).max(1) as f32;
            for d in dst.iter_mut() {
                *d /= count;
            }
        }
    });
    Ok(())
}

/// Options of [`pool2d_backward_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolBackward {
    /// `x` is a relu's output and `dx` should already include that relu's derivative (the
    /// trainer then skips it): a position whose input is not positive receives nothing. The
    /// bits are those of the plain backward followed by the relu derivative `y > 0 ? d : 0`.
    pub relu_input: bool,
}

/// The max pool of 2 × 2 windows at stride 2 that all lie inside the input (CNNs' usual pool),
/// without the general window walk: the same maxima in the same order (`−∞`, then the four
/// positions row by row, with `f32::max`), so the same bits. A fast path of the pool family
/// (`runtime::ops::pool`), taken whenever [`PoolShape::is_max_2x2`] holds; proved by
/// `kernels::tests::pool_paths::max_pool_2x2_path_gives_the_general_paths_bits`.
fn max_pool_2x2(xs: &[f32], s: &PoolShape, os: &mut [f32]) {
    let (c, row) = (s.c, s.w * s.c);
    if c == 0 || row == 0 {
        return;
    }
    let out_row = s.ow * c;
    for (n, out_sample) in os.chunks_exact_mut(s.oh * out_row).enumerate() {
        for (oy, dst_row) in out_sample.chunks_exact_mut(out_row).enumerate() {
            let top = (n * s.h + 2 * oy) * row;
            let (upper, lower) = (&xs[top..top + row], &xs[top + row..top + 2 * row]);
            for (ox, dst) in dst_row.chunks_exact_mut(c).enumerate() {
                let at = 2 * ox * c;
                let (a, b) = (&upper[at..at + c], &upper[at + c..at + 2 * c]);
                let (d, e) = (&lower[at..at + c], &lower[at + c..at + 2 * c]);
                for ((((o, &a), &b), &d), &e) in dst.iter_mut().zip(a).zip(b).zip(d).zip(e) {
                    *o = f32::NEG_INFINITY.max(a).max(b).max(d).max(e);
                }
            }
        }
    }
}

/// [`pool2d_backward_with`] for [`max_pool_2x2`]'s windows into a zeroed `dx`: the same
/// choice of position (the maximum by `>` from the first position on, the gradient to the
/// first position equal to it, or to the first position when the maximum is NaN) and the same
/// `0 + gradient` sums, so the same bits.
fn max_pool_2x2_backward(
    xs: &[f32],
    dys: &[f32],
    s: &PoolShape,
    opts: PoolBackward,
    dx: &mut [f32],
) {
    let (c, row) = (s.c, s.w * s.c);
    if c == 0 || row == 0 {
        return;
    }
    let out_row = s.ow * c;
    for (n, dy_sample) in dys.chunks_exact(s.oh * out_row).enumerate() {
        for (oy, dy_row) in dy_sample.chunks_exact(out_row).enumerate() {
            let top = (n * s.h + 2 * oy) * row;
            let (upper, lower) = (&xs[top..top + row], &xs[top + row..top + 2 * row]);
            let (dx_upper, dx_lower) = dx[top..top + 2 * row].split_at_mut(row);
            for (ox, g) in dy_row.chunks_exact(c).enumerate() {
                let at = 2 * ox * c;
                let (a, b) = (&upper[at..at + c], &upper[at + c..at + 2 * c]);
                let (d, e) = (&lower[at..at + c], &lower[at + c..at + 2 * c]);
                let (da, db) = dx_upper[at..at + 2 * c].split_at_mut(c);
                let (dd, de) = dx_lower[at..at + 2 * c].split_at_mut(c);
                let (a, b, d, e, g) = (&a[..c], &b[..c], &d[..c], &e[..c], &g[..c]);
                let (da, db, dd, de) = (&mut da[..c], &mut db[..c], &mut dd[..c], &mut de[..c]);
                // Branch-free, so that the loop runs a vector of channels at a time: each
                // position's share is `0 + g` under an all-ones mask, or +0.
                let gate = u32::from(!opts.relu_input);
                for k in 0..c {
                    let (va, vb, vd, ve) = (a[k], b[k], d[k], e[k]);
                    let mut m = va;
                    m = if vb > m { vb } else { m };
                    m = if vd > m { vd } else { m };
                    m = if ve > m { ve } else { m };
                    // Exact equality is the point: `m` is one of the window's values.
                    #[allow(clippy::float_cmp)]
                    let (ea, eb, ed) = (u32::from(va == m), u32::from(vb == m), u32::from(vd == m));
                    let ha = ea | u32::from(m.is_nan());
                    let hb = eb & !ha & 1;
                    let hd = ed & !ha & !hb & 1;
                    let he = !(ha | hb | hd) & 1;
                    let open = gate | u32::from(m > 0.0);
                    let share = (0.0 + g[k]).to_bits();
                    let give = |hit: u32| f32::from_bits(share & (hit & open).wrapping_neg());
                    da[k] = give(ha);
                    db[k] = give(hb);
                    dd[k] = give(hd);
                    de[k] = give(he);
                }
            }
        }
    }
}

/// Values of `dx` below which [`max_pool_2x2_sliced`] stays on the calling thread.
const SLICE_MIN_VALUES: usize = 1 << 16;

/// [`max_pool_2x2_backward`] into `dx` (overwritten), one contiguous slice of the batch per
/// thread of the current pool when large (each sample's values are computed as unsliced).
fn max_pool_2x2_sliced(
    xs: &[f32],
    dys: &[f32],
    s: &PoolShape,
    opts: PoolBackward,
    dx: &mut [f32],
) -> KernelResult<()> {
    let (in_sample, out_sample) = (s.h * s.w * s.c, s.oh * s.ow * s.c);
    let threads = if linalg::may_split() && dx.len() >= SLICE_MIN_VALUES {
        rayon::current_num_threads()
    } else {
        1
    };
    let mut jobs = Vec::new();
    let mut rest: &mut [f32] = dx;
    for (a, b) in super::batch_ranges(s.n, threads) {
        let (part, later) = std::mem::take(&mut rest).split_at_mut((b - a) * in_sample);
        rest = later;
        jobs.push((
            &xs[a * in_sample..b * in_sample],
            &dys[a * out_sample..b * out_sample],
            part,
        ));
    }
    super::run_slices(jobs, |(x, dy, d)| {
        zero_outside_windows(d, s);
        max_pool_2x2_backward(x, dy, s, opts, d);
        Ok(())
    })
}

/// Zeroes the positions of `dx` (whole samples) that no 2 × 2 window covers, the last row
/// and column of an odd height or width: [`max_pool_2x2_backward`] writes every other one (a
/// share or +0), so `dx` needs no zeroing pass of its own (8% of single-thread seed CNN
/// training went to the fill and the writes over it).
fn zero_outside_windows(dx: &mut [f32], s: &PoolShape) {
    let row = s.w * s.c;
    if row == 0 {
        return;
    }
    let covered = 2 * s.ow * s.c;
    for sample in dx.chunks_exact_mut(s.h * row) {
        for (y, r) in sample.chunks_exact_mut(row).enumerate() {
            let from = if y < 2 * s.oh { covered } else { 0 };
            r[from..].fill(0.0);
        }
    }
}

/// Pooling backward: `dy: [N, OH, OW, C]` → `dx: [N, H, W, C]` (overwritten).
pub fn pool2d_backward(
    x: ArrayView4<'_, f32>,
    dy: ArrayView4<'_, f32>,
    p: &Pool2dParams,
    dx: ArrayViewMut4<'_, f32>,
) -> KernelResult<()> {
    pool2d_backward_with(x, dy, p, dx, PoolBackward::default())
}

/// [`pool2d_backward`] with options.
pub fn pool2d_backward_with(
    x: ArrayView4<'_, f32>,
    dy: ArrayView4<'_, f32>,
    p: &Pool2dParams,
    mut dx: ArrayViewMut4<'_, f32>,
    opts: PoolBackward,
) -> KernelResult<()> {
    let s = PoolShape::new(x.dim(), p)?;
    expect_shape(OP, "dy", dy.shape(), &[s.n, s.oh, s.ow, s.c])?;
    expect_shape(OP, "dx", dx.shape(), x.shape())?;
    let xs = flat(OP, "x", &x)?;
    let dys = flat(OP, "dy", &dy)?;
    let dxs = flat_mut(OP, "dx", &mut dx)?;
    if s.is_max_2x2(p) {
        max_pool_2x2_sliced(xs, dys, &s, opts, dxs)?;
        return Ok(());
    }
    dxs.fill(0.0);
    let (mut best, mut left) = if p.kind == PoolKind::Max {
        (vec![0.0f32; s.c], vec![0.0f32; s.c])
    } else {
        (Vec::new(), Vec::new())
    };
    for_each_window(&s, p, |n, cell, (y0, y1), (x0, x1)| {
        let g = &dys[cell * s.c..(cell + 1) * s.c];
        let at = |iy: usize, ix: usize| ((n * s.h + iy) * s.w + ix) * s.c;
        match p.kind {
            PoolKind::Avg => {
                let count = ((y1 - y0) * (x1 - x0)).max(1) as f32;
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        let base = at(iy, ix);
                        let d = &mut dxs[base..base + s.c];
                        if opts.relu_input {
                            let v = &xs[base..base + s.c];
                            for ((d, &gv), &v) in d.iter_mut().zip(g).zip(v) {
                                *d += if v > 0.0 { gv / count } else { 0.0 };
                            }
                        } else {
                            for (d, &gv) in d.iter_mut().zip(g) {
                                *d += gv / count;
                            }
                        }
                    }
                }
            }
            PoolKind::Max => {
                if y0 >= y1 || x0 >= x1 {
                    return;
                }
                // All channels of the window at once, in two vectorizable passes: the max
                // (first position, then strictly greater wins, as the forward), then a walk in
                // the same row-major order handing each channel's gradient to the first
                // position equal to its max (NaN: the first position, which the max kept).
                // Adding the zeroed remainder elsewhere leaves `dx` unchanged (it is never −0).
                let first = at(y0, x0);
                best.copy_from_slice(&xs[first..first + s.c]);
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        let base = at(iy, ix);
                        for (b, &v) in best.iter_mut().zip(&xs[base..base + s.c]) {
                            *b = if v > *b { v } else { *b };
                        }
                    }
                }
                left.copy_from_slice(g);
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        let base = at(iy, ix);
                        let d = &mut dxs[base..base + s.c];
                        let v = &xs[base..base + s.c];
                        let (r, b) = (&mut left[..s.c], &best[..s.c]);
                        for k in 0..s.c {
                            // Branch-free select: the mask is all ones where this position
                            // takes the channel's gradient.
                            // Exact equality is the point: `b` is one of the window's values.
                            #[allow(clippy::float_cmp)]
                            let hit = (v[k] == b[k]) | b[k].is_nan();
                            // Through the relu: nothing where its output (the max) is not
                            // positive; the position still takes (and drops) the gradient.
                            let open = !opts.relu_input || b[k] > 0.0;
                            let mask = (u32::from(hit) & u32::from(open)).wrapping_neg();
                            let take = f32::from_bits(r[k].to_bits() & mask);
                            d[k] += take;
                            let taken = u32::from(hit).wrapping_neg();
                            r[k] = f32::from_bits(r[k].to_bits() & !taken);
                        }
                    }
                }
            }
        }
    });
    Ok(())
}

/// Global pooling forward: `[N, H, W, C]` → `out: [N, C]`.
pub fn global_pool_forward(
    x: ArrayView4<'_, f32>,
    kind: PoolKind,
    mut out: ArrayViewMut2<'_, f32>,
) -> KernelResult<()> {
    let (n, h, w, c) = x.dim();
    expect_shape("global_pool", "out", out.shape(), &[n, c])?;
    if h * w == 0 {
        return Err(param_err("global_pool", "empty spatial extent"));
    }
    let xs = flat("global_pool", "x", &x)?;
    let os = flat_mut("global_pool", "out", &mut out)?;
    for i in 0..n {
        let dst = &mut os[i * c..(i + 1) * c];
        let sample = &xs[i * h * w * c..(i + 1) * h * w * c];
        dst.copy_from_slice(&sample[..c]);
        for px in sample.chunks_exact(c.max(1)).skip(1) {
            for (d, &v) in dst.iter_mut().zip(px) {
                match kind {
                    PoolKind::Max if v > *d => *d = v,
                    PoolKind::Max => {}
                    PoolKind::Avg => *d += v,
                }
            }
        }
        if kind == PoolKind::Avg {
            let area = (h * w) as f32;
            for d in dst.iter_mut() {
                *d /= area;
            }
        }
    }
    Ok(())
}

/// Global pooling backward: `dy: [N, C]` → `dx: [N, H, W, C]` (overwritten).
pub fn global_pool_backward(
    x: ArrayView4<'_, f32>,
    dy: ArrayView2<'_, f32>,
    kind: PoolKind,
    mut dx: ArrayViewMut4<'_, f32>,
) -> KernelResult<()> {
    let (n, h, w, c) = x.dim();
    expect_shape("global_pool", "dy", dy.shape(), &[n, c])?;
    let params = Pool2dParams {
        kind,
        pool: (h, w),
        stride: (h.max(1), w.max(1)),
        padding: PoolPadding::Valid,
    };
    let dy4 = dy
        .into_shape_with_order((n, 1, 1, c))
        .map_err(|e| super::error::shape_err("global_pool", e.to_string()))?;
    expect_shape("global_pool", "dx", dx.shape(), x.shape())?;
    pool2d_backward(x, dy4, &params, dx.view_mut())
}

/// [`pool2d_forward`] with the batch split between the pool's threads. Samples are pooled
/// independently, so the result is the same for any split.
pub fn pool2d_forward_par(
    x: ArrayView4<'_, f32>,
    p: &Pool2dParams,
    out: ArrayViewMut4<'_, f32>,
) -> KernelResult<()> {
    let n = x.dim().0;
    if out.dim().0 != n {
        return pool2d_forward(x, p, out);
    }
    let mut jobs = Vec::new();
    let (mut x_rest, mut out_rest) = (x, out);
    for (start, end) in super::batch_ranges(n, rayon::current_num_threads()) {
        let len = end - start;
        let (xs, x_later) = x_rest.split_at(Axis(0), len);
        let (os, o_later) = out_rest.split_at(Axis(0), len);
        (x_rest, out_rest) = (x_later, o_later);
        jobs.push((xs, os));
    }
    super::run_slices(jobs, |(xs, os)| pool2d_forward(xs, p, os))
}

/// [`pool2d_backward`] with the batch split between the pool's threads (each sample's
/// gradient depends on that sample alone, so the result is the same for any split).
pub fn pool2d_backward_par(
    x: ArrayView4<'_, f32>,
    dy: ArrayView4<'_, f32>,
    p: &Pool2dParams,
    dx: ArrayViewMut4<'_, f32>,
    opts: PoolBackward,
) -> KernelResult<()> {
    let n = x.dim().0;
    if dy.dim().0 != n || dx.dim().0 != n {
        return pool2d_backward_with(x, dy, p, dx, opts);
    }
    let mut jobs = Vec::new();
    let (mut x_rest, mut dy_rest, mut dx_rest) = (x, dy, dx);
    for (start, end) in super::batch_ranges(n, rayon::current_num_threads()) {
        let len = end - start;
        let (xs, x_later) = x_rest.split_at(Axis(0), len);
        let (dys, dy_later) = dy_rest.split_at(Axis(0), len);
        let (dxs, dx_later) = dx_rest.split_at(Axis(0), len);
        (x_rest, dy_rest, dx_rest) = (x_later, dy_later, dx_later);
        jobs.push((xs, dys, dxs));
    }
    super::run_slices(jobs, |(xs, dys, dxs)| {
        pool2d_backward_with(xs, dys, p, dxs, opts)
    })
}

#[cfg(test)]
thread_local! {
    static GENERAL_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the 2 × 2 max pool's own path off, so every pool on this thread takes the
/// general window loop (tests compare the two paths bit for bit).
#[cfg(test)]
pub(crate) fn general_only<R>(f: impl FnOnce() -> R) -> R {
    GENERAL_ONLY.with(|g| g.set(true));
    let r = f();
    GENERAL_ONLY.with(|g| g.set(false));
    r
}
