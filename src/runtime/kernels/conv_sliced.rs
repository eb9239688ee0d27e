//! A convolution over a batch split between threads, for training: each rayon thread runs
//! [`conv2d_forward_with`] and [`conv2d_backward`] on its own contiguous slice of samples, with
//! its own [`ConvWorkspace`] and its products kept on that thread (`kernels::run_slices`). A
//! call that is one slice (a single sample, or little work) runs whole, its products free to
//! split their rows between the threads.
//!
//! Why: splitting each product's rows between threads makes every thread read all of the
//! batch's input and output gradient, and leaves the scatter of `dx` (col2im) and the bias sums
//! on one thread. A slice per thread reads only its own samples and runs everything of its
//! slice side by side, with one synchronisation per call.
//!
//! Samples are independent, so the forward output and `dx` are exactly those of one call over
//! the whole batch (every output element is one multiply-add chain in a fixed order however the
//! rows are cut). `dkernel` and `dbias` are sums over samples: each slice computes its own, and
//! they are added in slice order into the first slice's, so a given thread count always gives
//! the same bits (a different count sums in a different order, as in [`super::rnn`]'s sliced
//! layers).
//!
//! The `_reached` forms take the reach of the pool that alone reads the output (see
//! [`conv2d_forward_reached`]) and pass it to every slice's call.
//!
//! A fast path of the conv family (`runtime::ops::conv`): the trainer always takes it. Proved
//! against one whole-batch call by `kernels::tests::conv_sliced` (forward and `dx` bit for bit,
//! weight and bias gradients to f32 rounding and the same bits on every run).

use ndarray::{ArrayView1, ArrayView4, ArrayViewMut1, ArrayViewMut4, Axis};

use super::conv::{
    conv2d_backward, conv2d_backward_reached, conv2d_forward_reached, conv2d_forward_with,
    Conv2dGeometry, Conv2dGrads, ConvForward, ConvWorkspace,
};
use super::error::{shape_err, KernelResult};
use super::linalg::ensure_len;

const OP: &str = "conv2d";

/// Below this many multiply-adds per call the work stays on one thread (a wake-up costs more).
const SLICE_MIN_MACS: usize = 1 << 20;

/// Per-slice workspaces and the weight-gradient buffers of every slice after the first.
#[derive(Debug, Clone, Default)]
pub struct SlicedConv {
    workspaces: Vec<ConvWorkspace>,
    /// `[dkernel, dbias]` of slices `1..`.
    partial_grads: Vec<[Vec<f32>; 2]>,
}

impl SlicedConv {
    /// Empty; grows on first use and then stays.
    pub fn new() -> Self {
        Self::default()
    }

    /// The slices for a call over `n` samples of `macs` multiply-adds in all.
    fn slices(&mut self, n: usize, macs: usize) -> Vec<(usize, usize)> {
        let threads = if macs < SLICE_MIN_MACS {
            1
        } else {
            rayon::current_num_threads()
        };
        let slices = super::batch_ranges(n, threads);
        self.workspaces
            .resize_with(slices.len(), ConvWorkspace::default);
        slices
    }
}

fn no_workspace() -> super::KernelError {
    shape_err(OP, "no workspace for the slice")
}

/// Multiply-adds of one product of the convolution (forward, or one of the backward's).
fn macs(x: &ArrayView4<'_, f32>, kernel: &ArrayView4<'_, f32>) -> usize {
    let (n, h, w, _) = x.dim();
    let (kh, kw, c, o) = kernel.dim();
    [n, h, w, kh, kw, c, o]
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .unwrap_or(usize::MAX)
}

/// [`conv2d_forward_with`] with the batch split between the pool's threads (`opts.parallel`
/// is ignored: each slice runs on one thread).
pub fn conv2d_forward_sliced(
    x: ArrayView4<'_, f32>,
    kernel: ArrayView4<'_, f32>,
    bias: Option<ArrayView1<'_, f32>>,
    geom: &Conv2dGeometry,
    state: &mut SlicedConv,
    out: ArrayViewMut4<'_, f32>,
    opts: ConvForward,
) -> KernelResult<()> {
    conv2d_forward_sliced_reached(x, kernel, bias, geom, None, state, out, opts)
}

/// [`conv2d_forward_sliced`] computing only the top-left `reach` (rows, columns) of each
/// sample's output when given, the rest zeroed ([`conv2d_forward_reached`]).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward_sliced_reached(
    x: ArrayView4<'_, f32>,
    kernel: ArrayView4<'_, f32>,
    bias: Option<ArrayView1<'_, f32>>,
    geom: &Conv2dGeometry,
    reach: Option<(usize, usize)>,
    state: &mut SlicedConv,
    out: ArrayViewMut4<'_, f32>,
    opts: ConvForward,
) -> KernelResult<()> {
    let n = x.dim().0;
    if out.dim().0 != n {
        return Err(shape_err(OP, "output batch differs from the input's"));
    }
    let one = |xs, ws: &mut ConvWorkspace, os, opts| match reach {
        Some(r) => conv2d_forward_reached(xs, kernel, bias, geom, r, ws, os, opts),
        None => conv2d_forward_with(xs, kernel, bias, geom, ws, os, opts),
    };
    let slices = state.slices(n, macs(&x, &kernel));
    if slices.len() == 1 {
        // One slice (a single sample, or little work): the products split their rows instead.
        let ws = state.workspaces.first_mut().ok_or_else(no_workspace)?;
        return one(x, ws, out, opts);
    }
    let opts = ConvForward {
        parallel: false,
        ..opts
    };
    let mut jobs = Vec::with_capacity(slices.len());
    let (mut x_rest, mut out_rest) = (x, out);
    for (&(start, end), ws) in slices.iter().zip(state.workspaces.iter_mut()) {
        let (xs, x_later) = x_rest.split_at(Axis(0), end - start);
        let (os, o_later) = out_rest.split_at(Axis(0), end - start);
        (x_rest, out_rest) = (x_later, o_later);
        jobs.push((xs, os, ws));
    }
    super::run_slices(jobs, |(xs, os, ws)| one(xs, ws, os, opts))
}

/// [`conv2d_backward`] with the batch split between the pool's threads; the weight and bias
/// gradients of the slices are summed in slice order.
pub fn conv2d_backward_sliced(
    x: ArrayView4<'_, f32>,
    kernel: ArrayView4<'_, f32>,
    dy: ArrayView4<'_, f32>,
    geom: &Conv2dGeometry,
    state: &mut SlicedConv,
    grads: Conv2dGrads<'_>,
) -> KernelResult<()> {
    conv2d_backward_sliced_reached(x, kernel, dy, geom, None, state, grads)
}

/// [`conv2d_backward_sliced`] of a [`conv2d_forward_sliced_reached`] step: with a `reach`,
/// each slice runs [`conv2d_backward_reached`] (`dy` zero outside it).
pub fn conv2d_backward_sliced_reached(
    x: ArrayView4<'_, f32>,
    kernel: ArrayView4<'_, f32>,
    dy: ArrayView4<'_, f32>,
    geom: &Conv2dGeometry,
    reach: Option<(usize, usize)>,
    state: &mut SlicedConv,
    grads: Conv2dGrads<'_>,
) -> KernelResult<()> {
    let one = |xs, dys, ws: &mut ConvWorkspace, g| match reach {
        Some(r) => conv2d_backward_reached(xs, kernel, dys, geom, r, ws, g),
        None => conv2d_backward(xs, kernel, dys, geom, ws, g),
    };
    let Conv2dGrads {
        dx,
        mut dkernel,
        mut dbias,
    } = grads;
    let n = x.dim().0;
    if dy.dim().0 != n || dx.as_ref().is_some_and(|d| d.dim().0 != n) {
        return Err(shape_err(OP, "gradient batch differs from the input's"));
    }
    // Backward does two products (one when `dx` is not wanted) of the forward's size.
    let slices = state.slices(n, macs(&x, &kernel).saturating_mul(2));
    if slices.len() == 1 {
        // As in the forward: one slice lets the products split their rows.
        let ws = state.workspaces.first_mut().ok_or_else(no_workspace)?;
        let g = Conv2dGrads { dx, dkernel, dbias };
        return one(x, dy, ws, g);
    }
    let extra = slices.len().saturating_sub(1);
    state.partial_grads.resize_with(extra, Default::default);
    let (k_len, b_len) = (
        dkernel.len(),
        dbias.as_ref().map_or(0, ndarray::ArrayBase::len),
    );
    for [k, b] in &mut state.partial_grads {
        ensure_len(k, k_len);
        ensure_len(b, b_len);
    }
    let (k_dim, has_bias) = (dkernel.raw_dim(), dbias.is_some());
    {
        let mut jobs = Vec::with_capacity(slices.len());
        let (mut x_rest, mut dy_rest, mut dx_rest) = (x, dy, dx);
        // The first slice writes the caller's buffers; the others their own, added below.
        let mut first = Some((dkernel.view_mut(), dbias.as_mut().map(|b| b.view_mut())));
        let mut partials = state.partial_grads.iter_mut();
        for (&(start, end), ws) in slices.iter().zip(state.workspaces.iter_mut()) {
            let len = end - start;
            let (xs, x_later) = x_rest.split_at(Axis(0), len);
            let (dys, dy_later) = dy_rest.split_at(Axis(0), len);
            (x_rest, dy_rest) = (x_later, dy_later);
            let dxs = match dx_rest.take() {
                Some(d) => {
                    let (mine, later) = d.split_at(Axis(0), len);
                    dx_rest = Some(later);
                    Some(mine)
                }
                None => None,
            };
            let (dk, db) = if let Some(g) = first.take() {
                g
            } else {
                let [k, b] = partials
                    .next()
                    .ok_or_else(|| shape_err(OP, "missing partial gradients"))?;
                let dk = ArrayViewMut4::from_shape(k_dim, &mut k[..k_len])
                    .map_err(|e| shape_err(OP, e.to_string()))?;
                let db = if has_bias {
                    Some(ArrayViewMut1::from(&mut b[..b_len]))
                } else {
                    None
                };
                (dk, db)
            };
            let g = Conv2dGrads {
                dx: dxs,
                dkernel: dk,
                dbias: db,
            };
            jobs.push((xs, dys, g, ws));
        }
        super::run_slices(jobs, |(xs, dys, g, ws)| one(xs, dys, ws, g))?;
    }
    for [k, b] in &state.partial_grads {
        dkernel.iter_mut().zip(k).for_each(|(d, &v)| *d += v);
        if let Some(db) = dbias.as_mut() {
            db.iter_mut().zip(b).for_each(|(d, &v)| *d += v);
        }
    }
    Ok(())
}
