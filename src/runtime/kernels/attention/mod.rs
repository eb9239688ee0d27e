//! Multi-head attention (Keras 3's MultiHeadAttention) and position embedding kernels.
//!
//! Layout: sequences are `[N, T, d]` row-major; the projection kernels are Keras's
//! `[d, heads, key_dim]` (read as `d × heads·key_dim` matrices), the output kernel
//! `[heads, value_dim, dq]` (a `heads·value_dim × dq` matrix). Per sample: `q = (xq·Wq + bq)/√K`,
//! `k = xk·Wk + bk`, `v = xv·Wv + bv` (`[T, heads·K]`, head `h` in columns `h·K..`), for each
//! head `P = softmax(q_h·k_hᵀ)` over the value positions (positions `j > i` get probability 0
//! when causal: Keras's −1e9 logits underflow to exactly 0), `o_h = (P ⊙ mask)·v_h` with the
//! dropout mask in training, and `y = o·Wo + bo` with `o` the heads side by side.
//!
//! Threading: [`mha_forward`] splits the batch into one contiguous slice per thread (each
//! slice's products kept on its thread, `kernels::run_slices`), so a sample's output does not
//! depend on the slicing. Backward ([`backward`]) runs the output and input projections'
//! products whole (their rows split between the threads), and the per-head core per slice.
//! The dropout mask is drawn before the slices run, in row-major order of `[N, heads, Tq, Tv]`,
//! one `u32` of the step's ChaCha stream per probability (as `kernels::dropout`), so the bits
//! depend only on the seed and the thread count.

pub mod backward;
mod position;
mod softmax;
#[cfg(test)]
mod tests;

pub use position::{position_backward, position_forward};
pub(crate) use softmax::softmax_rows;

use rand_chacha::ChaCha8Rng;

use super::error::{checked_product, param_err, shape_err, KernelResult};
use super::linalg::{ensure_len, gemm, gemm_rows, mat, mat_mut};

const OP: &str = "multi_head_attention";

/// Below this many multiply-adds per call the work stays on one thread (a wake-up costs more).
const SLICE_MIN_MACS: usize = 1 << 20;

/// The sizes of one attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MhaShape {
    pub batch: usize,
    /// Query (and output) positions.
    pub tq: usize,
    /// Key and value positions.
    pub tv: usize,
    /// Widths of the query (and output), key and value inputs.
    pub dq: usize,
    pub dk: usize,
    pub dv: usize,
    pub heads: usize,
    pub key_dim: usize,
    pub value_dim: usize,
}

impl MhaShape {
    /// `heads · key_dim` and `heads · value_dim`, checked.
    fn head_widths(&self) -> KernelResult<(usize, usize)> {
        Ok((
            checked_product(OP, &[self.heads, self.key_dim])?,
            checked_product(OP, &[self.heads, self.value_dim])?,
        ))
    }

    /// Multiply-adds of the forward, saturating.
    pub fn macs(&self) -> usize {
        let (hk, hv) = (
            self.heads.saturating_mul(self.key_dim),
            self.heads.saturating_mul(self.value_dim),
        );
        let per_sample = [
            self.tq.saturating_mul(self.dq).saturating_mul(hk),
            self.tv.saturating_mul(self.dk).saturating_mul(hk),
            self.tv.saturating_mul(self.dv).saturating_mul(hv),
            self.tq.saturating_mul(self.tv).saturating_mul(hk + hv),
            self.tq.saturating_mul(hv).saturating_mul(self.dq),
        ]
        .iter()
        .fold(0usize, |a, &b| a.saturating_add(b));
        per_sample.saturating_mul(self.batch)
    }

    /// Every size the kernels index with, checked once: `(hk, hv, scores per head)`.
    fn validate(&self) -> KernelResult<Sizes> {
        let (hk, hv) = self.head_widths()?;
        let scores = checked_product(OP, &[self.tq, self.tv])?;
        for dims in [
            [self.batch, self.tq, self.dq],
            [self.batch, self.tq, hk],
            [self.batch, self.tq, hv],
            [self.batch, self.tv, hk],
            [self.batch, self.tv, hv],
            [self.batch, self.tv, self.dk.max(self.dv)],
            [self.batch, self.heads, scores],
        ] {
            checked_product(OP, &dims)?;
        }
        Ok(Sizes { hk, hv, scores })
    }

    /// The slices of the batch a call runs side by side.
    pub(crate) fn slices(&self) -> Vec<(usize, usize)> {
        let threads = if self.macs() < SLICE_MIN_MACS {
            1
        } else {
            rayon::current_num_threads()
        };
        super::batch_ranges(self.batch, threads)
    }
}

impl MhaShape {
    /// The values of scratch [`mha_forward`] keeps for inference on `threads` threads (every
    /// slice's projections, one head's scores and head buffers), or `None` on overflow: what
    /// the interpreter counts against its memory budget before running.
    pub fn inference_scratch_len(&self, threads: usize) -> Option<usize> {
        let sizes = self.validate().ok()?;
        let slices = threads.clamp(1, self.batch.max(1));
        let per_sample = [
            self.tq.checked_mul(sizes.hk)?,
            self.tv.checked_mul(sizes.hk)?,
            self.tv.checked_mul(sizes.hv)?,
            self.tq.checked_mul(sizes.hv)?,
        ]
        .into_iter()
        .try_fold(0usize, usize::checked_add)?;
        let samples = self.batch.div_ceil(slices);
        let per_slice = samples
            .checked_mul(per_sample)?
            .checked_add(sizes.scores)?
            .checked_add(head_scratch_len(self, sizes))?;
        per_slice.checked_mul(slices)
    }
}

/// Checked sizes derived from an [`MhaShape`].
#[derive(Clone, Copy, Debug)]
struct Sizes {
    hk: usize,
    hv: usize,
    scores: usize,
}

/// One projection's weights: a `[d_in, width]` kernel and a `[width]` bias, flat.
#[derive(Clone, Copy, Debug)]
pub struct Projection<'a> {
    pub kernel: &'a [f32],
    pub bias: &'a [f32],
}

/// The four projections of a layer.
#[derive(Clone, Copy, Debug)]
pub struct MhaWeights<'a> {
    pub query: Projection<'a>,
    pub key: Projection<'a>,
    pub value: Projection<'a>,
    pub output: Projection<'a>,
}

/// The three inputs, flat `[N, T, d]` (key and value may be the same slice).
#[derive(Clone, Copy, Debug)]
pub struct MhaInputs<'a> {
    pub query: &'a [f32],
    pub key: &'a [f32],
    pub value: &'a [f32],
}

/// What training keeps for backward (and reuses from step to step): the projections, the
/// probabilities before dropout, the dropout mask and the heads' outputs side by side, plus
/// the backward's own buffers.
#[derive(Debug, Default, Clone)]
pub struct MhaCache {
    /// `[N·Tq, heads·K]`, already scaled by `1/√K`.
    pub(crate) q: Vec<f32>,
    /// `[N·Tv, heads·K]`.
    pub(crate) k: Vec<f32>,
    /// `[N·Tv, heads·V]`.
    pub(crate) v: Vec<f32>,
    /// `[N, heads, Tq, Tv]`, before dropout.
    pub(crate) probs: Vec<f32>,
    /// `[N, heads, Tq, Tv]` (0 or `1/(1 − rate)`), when dropout was active.
    pub(crate) mask: Option<Vec<f32>>,
    /// `[N·Tq, heads·V]`.
    pub(crate) heads_out: Vec<f32>,
    /// Backward: gradients of `heads_out` and of the three projections (unscaled).
    pub(crate) d_heads_out: Vec<f32>,
    pub(crate) dq: Vec<f32>,
    pub(crate) dk: Vec<f32>,
    pub(crate) dv: Vec<f32>,
    /// Per-slice scratch of the backward's per-head products.
    pub(crate) slices: Vec<Vec<f32>>,
    /// The shape of the last training forward.
    pub(crate) shape: Option<MhaShape>,
}

/// The interpreter's per-slice scratch, kept between calls.
#[derive(Debug, Default, Clone)]
pub struct MhaScratch {
    slices: Vec<Vec<f32>>,
}

/// Where [`mha_forward`] keeps its intermediates: per-slice scratch (inference), or the
/// training cache with the dropout to apply (`rate`, stream) if any.
pub enum MhaStore<'a> {
    Infer(&'a mut MhaScratch),
    Train {
        cache: &'a mut MhaCache,
        dropout: Option<(f32, &'a mut ChaCha8Rng)>,
    },
}

fn expect_len(what: &'static str, buf: &[f32], len: usize) -> KernelResult<()> {
    if buf.len() == len {
        Ok(())
    } else {
        Err(shape_err(
            OP,
            format!("`{what}` has {} values, expected {len}", buf.len()),
        ))
    }
}

/// Checks inputs, weights and output against `shape`.
fn check_call(
    shape: &MhaShape,
    sizes: Sizes,
    w: &MhaWeights<'_>,
    x: &MhaInputs<'_>,
    out_len: usize,
) -> KernelResult<()> {
    let MhaShape {
        batch: n,
        tq,
        tv,
        dq,
        dk,
        dv,
        ..
    } = *shape;
    let Sizes { hk, hv, .. } = sizes;
    expect_len("query", x.query, n * tq * dq)?;
    expect_len("key", x.key, n * tv * dk)?;
    expect_len("value", x.value, n * tv * dv)?;
    if out_len != n * tq * dq {
        return Err(shape_err(OP, format!("output of {out_len} values")));
    }
    for (name, p, rows, cols) in [
        ("query.kernel", &w.query, dq, hk),
        ("key.kernel", &w.key, dk, hk),
        ("value.kernel", &w.value, dv, hv),
        ("attention_output.kernel", &w.output, hv, dq),
    ] {
        expect_len(name, p.kernel, checked_product(OP, &[rows, cols])?)?;
        expect_len(name, p.bias, cols)?;
    }
    Ok(())
}

/// `out ← x·kernel + bias` for `rows` rows of `d_in`.
pub(crate) fn project(
    x: &[f32],
    rows: usize,
    d_in: usize,
    p: Projection<'_>,
    out: &mut [f32],
) -> KernelResult<()> {
    let width = p.bias.len();
    let xm = mat(OP, x, rows, d_in)?;
    let wm = mat(OP, p.kernel, d_in, width)?;
    let mut om = mat_mut(OP, out, rows, width)?;
    gemm(OP, 1.0, &xm, &wm, 0.0, &mut om)?;
    if width > 0 {
        for row in out.chunks_exact_mut(width).take(rows) {
            row.iter_mut().zip(p.bias).for_each(|(o, &b)| *o += b);
        }
    }
    Ok(())
}

/// Copies head `h`'s columns (`width` wide, `stride` apart) of `rows` rows out of `src`, as a
/// `rows × width` matrix, or transposed (`width × rows`).
pub(crate) fn gather_head(
    src: &[f32],
    (rows, stride, width, h): (usize, usize, usize, usize),
    transpose: bool,
    dst: &mut [f32],
) {
    for (r, row) in src.chunks(stride.max(1)).take(rows).enumerate() {
        let part = &row[h * width..(h + 1) * width];
        if transpose {
            for (c, &v) in part.iter().enumerate() {
                dst[c * rows + r] = v;
            }
        } else {
            dst[r * width..(r + 1) * width].copy_from_slice(part);
        }
    }
}

/// Writes a `rows × width` matrix into head `h`'s columns of `dst` (rows `stride` apart),
/// times `scale`.
pub(crate) fn scatter_head(
    src: &[f32],
    (rows, stride, width, h): (usize, usize, usize, usize),
    scale: f32,
    dst: &mut [f32],
) {
    for (row, part) in dst
        .chunks_mut(stride.max(1))
        .take(rows)
        .zip(src.chunks_exact(width.max(1)))
    {
        row[h * width..(h + 1) * width]
            .iter_mut()
            .zip(part)
            .for_each(|(d, &s)| *d = s * scale);
    }
}

/// One slice's buffers for [`forward_slice`].
struct SliceJob<'a> {
    /// Index of the slice's first sample in the batch.
    start: usize,
    len: usize,
    xq: &'a [f32],
    xk: &'a [f32],
    xv: &'a [f32],
    q: &'a mut [f32],
    k: &'a mut [f32],
    v: &'a mut [f32],
    heads_out: &'a mut [f32],
    /// `[len, heads, Tq, Tv]` when kept for backward, else one head's `[Tq, Tv]`.
    probs: &'a mut [f32],
    keep_probs: bool,
    /// Head scratch: `kᵀ [K, Tv]`, `v_h [Tv, V]`, `o_h [Tq, V]`, `P ⊙ mask [Tq, Tv]`.
    head: &'a mut [f32],
    out: &'a mut [f32],
}

/// The scratch one head of [`forward_slice`] needs.
fn head_scratch_len(shape: &MhaShape, sizes: Sizes) -> usize {
    shape.key_dim * shape.tv
        + shape.tv * shape.value_dim
        + shape.tq * shape.value_dim
        + sizes.scores
}

/// The forward of one slice of samples (see the module doc).
fn forward_slice(
    shape: &MhaShape,
    sizes: Sizes,
    w: &MhaWeights<'_>,
    mask: Option<&[f32]>,
    causal: bool,
    job: SliceJob<'_>,
) -> KernelResult<()> {
    let MhaShape {
        tq,
        tv,
        dq,
        dk,
        dv,
        heads,
        key_dim,
        value_dim,
        ..
    } = *shape;
    let Sizes { hk, hv, scores } = sizes;
    let SliceJob {
        start,
        len,
        xq,
        xk,
        xv,
        q,
        k,
        v,
        heads_out,
        probs,
        keep_probs,
        head,
        out,
    } = job;
    project(xq, len * tq, dq, w.query, q)?;
    let scale = 1.0 / (key_dim as f32).sqrt();
    for e in q.iter_mut() {
        *e *= scale;
    }
    project(xk, len * tv, dk, w.key, k)?;
    project(xv, len * tv, dv, w.value, v)?;
    let (kt, rest) = head.split_at_mut(key_dim * tv);
    let (vh, rest) = rest.split_at_mut(tv * value_dim);
    let (oh, pd) = rest.split_at_mut(tq * value_dim);
    for s in 0..len {
        let (qs, ks, vs) = (
            &q[s * tq * hk..(s + 1) * tq * hk],
            &k[s * tv * hk..(s + 1) * tv * hk],
            &v[s * tv * hv..(s + 1) * tv * hv],
        );
        let os = &mut heads_out[s * tq * hv..(s + 1) * tq * hv];
        for h in 0..heads {
            let at = if keep_probs {
                (s * heads + h) * scores
            } else {
                0
            };
            let p = &mut probs[at..at + scores];
            gather_head(ks, (tv, hk, key_dim, h), true, kt);
            let ktm = mat(OP, kt, key_dim, tv)?;
            let mut pm = mat_mut(OP, p, tq, tv)?;
            gemm_rows(
                OP,
                &qs[h * key_dim..],
                (tq, key_dim, hk),
                &ktm,
                0.0,
                &mut pm,
            )?;
            softmax_rows(p, tq, tv, causal);
            let weights: &[f32] = match mask {
                Some(m) => {
                    let at = ((start + s) * heads + h) * scores;
                    let m = &m[at..at + scores];
                    pd.iter_mut()
                        .zip(p.iter().zip(m))
                        .for_each(|(d, (&a, &b))| *d = a * b);
                    pd
                }
                None => p,
            };
            gather_head(vs, (tv, hv, value_dim, h), false, vh);
            let mut om = mat_mut(OP, oh, tq, value_dim)?;
            gemm(
                OP,
                1.0,
                &mat(OP, weights, tq, tv)?,
                &mat(OP, vh, tv, value_dim)?,
                0.0,
                &mut om,
            )?;
            scatter_head(oh, (tq, hv, value_dim, h), 1.0, os);
        }
    }
    project(heads_out, len * tq, hv, w.output, out)
}

/// Splits `buf` into consecutive parts of `lens` values (the caller checked the total).
fn split_parts<'a>(mut buf: &'a mut [f32], lens: &[usize]) -> KernelResult<Vec<&'a mut [f32]>> {
    let mut parts = Vec::with_capacity(lens.len());
    for &len in lens {
        if buf.len() < len {
            return Err(shape_err(OP, "a buffer is too small for its slices"));
        }
        let (part, rest) = std::mem::take(&mut buf).split_at_mut(len);
        parts.push(part);
        buf = rest;
    }
    Ok(parts)
}

/// Fills `mask` with inverted-dropout factors drawn from `rng` (see `kernels::dropout`).
fn draw_mask(rate: f32, rng: &mut ChaCha8Rng, mask: &mut [f32]) -> KernelResult<()> {
    if !(0.0..1.0).contains(&rate) {
        return Err(param_err(OP, format!("dropout rate {rate} outside [0, 1)")));
    }
    super::dropout::draw_mask(rate, rng, mask);
    Ok(())
}

/// Multi-head attention forward into `out` (`[N, Tq, dq]`), keeping in `store` what backward
/// needs (training) or reusing its scratch (inference).
pub fn mha_forward(
    shape: &MhaShape,
    w: &MhaWeights<'_>,
    x: &MhaInputs<'_>,
    causal: bool,
    store: MhaStore<'_>,
    out: &mut [f32],
) -> KernelResult<()> {
    let sizes = shape.validate()?;
    check_call(shape, sizes, w, x, out.len())?;
    let MhaShape {
        batch: n,
        tq,
        tv,
        dq,
        dk,
        dv,
        heads,
        ..
    } = *shape;
    let Sizes { hk, hv, scores } = sizes;
    let slices = shape.slices();
    let head_len = head_scratch_len(shape, sizes);
    let lens_of = |per_sample: usize| -> Vec<usize> {
        slices.iter().map(|(a, b)| (b - a) * per_sample).collect()
    };
    // Per slice: [q, k, v, heads_out, probs, head], from the cache or the scratch.
    let mut parts: Vec<Vec<&mut [f32]>> = Vec::with_capacity(slices.len());
    let keep_probs;
    let mut mask_store = None;
    match store {
        MhaStore::Train { cache, dropout } => {
            keep_probs = true;
            let total = n * heads * scores;
            for (buf, len) in [
                (&mut cache.q, n * tq * hk),
                (&mut cache.k, n * tv * hk),
                (&mut cache.v, n * tv * hv),
                (&mut cache.heads_out, n * tq * hv),
                (&mut cache.probs, total),
            ] {
                ensure_len(buf, len);
                buf.truncate(len);
            }
            cache.mask = match dropout {
                Some((rate, rng)) if rate > 0.0 => {
                    let mut m = cache.mask.take().unwrap_or_default();
                    ensure_len(&mut m, total);
                    m.truncate(total);
                    draw_mask(rate, rng, &mut m)?;
                    Some(m)
                }
                _ => None,
            };
            cache.shape = Some(*shape);
            cache.slices.resize_with(slices.len(), Vec::new);
            for s in &mut cache.slices {
                ensure_len(s, head_len);
            }
            let MhaCache {
                q,
                k,
                v,
                heads_out,
                probs,
                mask: m,
                slices: scratch,
                ..
            } = cache;
            mask_store = m.as_deref();
            let mut columns = [
                split_parts(q, &lens_of(tq * hk))?,
                split_parts(k, &lens_of(tv * hk))?,
                split_parts(v, &lens_of(tv * hv))?,
                split_parts(heads_out, &lens_of(tq * hv))?,
                split_parts(probs, &lens_of(heads * scores))?,
            ]
            .map(Vec::into_iter);
            for s in scratch.iter_mut().take(slices.len()) {
                let mut p: Vec<&mut [f32]> =
                    columns.iter_mut().filter_map(Iterator::next).collect();
                p.push(&mut s[..head_len]);
                parts.push(p);
            }
        }
        MhaStore::Infer(scratch) => {
            keep_probs = false;
            scratch.slices.resize_with(slices.len(), Vec::new);
            for (s, &(a, b)) in scratch.slices.iter_mut().zip(&slices) {
                let m = b - a;
                let lens = [
                    m * tq * hk,
                    m * tv * hk,
                    m * tv * hv,
                    m * tq * hv,
                    scores,
                    head_len,
                ];
                ensure_len(s, lens.iter().sum());
                parts.push(split_parts(s, &lens)?);
            }
        }
    }
    let mask = mask_store;
    let out_parts = split_parts(out, &lens_of(tq * dq))?;
    let mut jobs = Vec::with_capacity(slices.len());
    for ((&(a, b), p), o) in slices.iter().zip(parts).zip(out_parts) {
        let [q, k, v, heads_out, probs, head] =
            <[&mut [f32]; 6]>::try_from(p).map_err(|_| shape_err(OP, "slice buffers missing"))?;
        jobs.push(SliceJob {
            start: a,
            len: b - a,
            xq: &x.query[a * tq * dq..b * tq * dq],
            xk: &x.key[a * tv * dk..b * tv * dk],
            xv: &x.value[a * tv * dv..b * tv * dv],
            q,
            k,
            v,
            heads_out,
            probs,
            keep_probs,
            head,
            out: o,
        });
    }
    super::run_slices(jobs, |job| {
        forward_slice(shape, sizes, w, mask, causal, job)
    })
}
