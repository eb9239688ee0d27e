//! A linear dense layer trained on the mean squared error, forward, loss and weight gradients
//! in one pass over the input.
//!
//! Input: `x: [rows, F]`, kernel `[F, U]` (Keras layout), optional bias `[U]`, targets
//! `[rows, U]`. Output: the predictions `p = x·kernel + bias` (`[rows, U]`), the gradients of
//! the mean loss `dkernel = xᵀ·g` and `dbias = Σ g` with `g = 2(p − t)/n` (`n = rows·U`), all
//! overwritten, and the mean loss `Σ (p − t)² / n`. The per-element loss and gradient are
//! [`crate::runtime::loss::mean_squared_error`]'s, in f64, rounded to f32 the same way.
//!
//! Why: a regression step is memory-bound. The unfused step reads `x` twice from memory (the
//! forward row dots, then `xᵀ·g` for the kernel gradient), plus passes over the predictions
//! for the loss and the bias gradient. Here `x` is read from memory once, a chunk of
//! `CHUNK` rows at a time: the chunk's row dots ([`row_dots`]), then its loss and gradients,
//! and its contribution to `dkernel`/`dbias` while the rows are still in L1/L2. (Chunks, not
//! single blocks of rows: long sequential runs keep the hardware prefetcher streaming.) With
//! one unit and 8, 16, 24 or 32 features the kernel gradient stays in registers.
//!
//! Summation order (fixed, so the result is deterministic bit for bit; it differs from the
//! unfused kernels' order, not from one SIMD path to the other): a one-unit prediction is
//! [`row_dots`]'s, then `+ bias`; with several units each prediction sums over `F` in order,
//! then `+ bias`. The loss goes into eight f64 lane sums (element `i` to lane `i mod 8`),
//! combined by a pairwise tree, plus the elements after the last full block of `BLOCK` rows
//! in order. Each full block adds its rows' contributions to `dkernel` and `dbias` as one
//! pairwise tree per element; the rows after the last full block are added one by one.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use super::error::{expect_shape, shape_err, KernelResult};
use super::linalg::{flat, flat_mut};
use super::simd_train::{row_dots, vectorized};

const OP: &str = "dense+mse";

/// Rows per block (and lanes of the loss sum): one AVX register of f32.
const BLOCK: usize = 8;

/// Rows per chunk of the one-unit pass: their predictions first, then their loss and
/// gradients while the rows are still cached (512 rows of 16 features are 32 KiB). Measured
/// on the regression benchmark: chunks of 8 or 16 rows are slower than the unfused step
/// (the prefetcher loses the stream), 256 to 2048 rows about equally fast.
const CHUNK: usize = 512;

/// What the fused step reads.
pub struct DenseMse<'a> {
    /// The layer input, `[rows, F]`.
    pub x: ArrayView2<'a, f32>,
    /// The kernel, `[F, U]`.
    pub kernel: ArrayView2<'a, f32>,
    /// The bias, `[U]`.
    pub bias: Option<ArrayView1<'a, f32>>,
    /// The regression targets, `[rows, U]`.
    pub targets: ArrayView2<'a, f32>,
}

/// What the fused step writes (each overwritten).
pub struct DenseMseOut<'a> {
    /// The predictions, `[rows, U]`.
    pub pred: ArrayViewMut2<'a, f32>,
    /// The kernel's gradient, `[F, U]`.
    pub dkernel: ArrayViewMut2<'a, f32>,
    /// The bias's gradient, `[U]`.
    pub dbias: Option<ArrayViewMut1<'a, f32>>,
}

/// Runs the fused step (see the module doc); returns the mean loss.
pub fn dense_mse_step(input: &DenseMse<'_>, out: DenseMseOut<'_>) -> KernelResult<f32> {
    let DenseMseOut {
        mut pred,
        mut dkernel,
        dbias,
    } = out;
    let (rows, features) = input.x.dim();
    let units = input.kernel.dim().1;
    expect_shape(OP, "kernel", input.kernel.shape(), &[features, units])?;
    expect_shape(OP, "targets", input.targets.shape(), &[rows, units])?;
    expect_shape(OP, "pred", pred.shape(), &[rows, units])?;
    expect_shape(OP, "dkernel", dkernel.shape(), &[features, units])?;
    let n = rows * units;
    if n == 0 || features == 0 {
        return Err(shape_err(
            OP,
            format!("nothing to fit: {rows}x{features} -> {units}"),
        ));
    }
    let bias = match &input.bias {
        Some(b) => {
            expect_shape(OP, "bias", b.shape(), &[units])?;
            Some(flat(OP, "bias", b)?)
        }
        None => None,
    };
    let mut dbias = dbias;
    let db = match dbias.as_mut() {
        Some(d) => {
            expect_shape(OP, "dbias", d.shape(), &[units])?;
            Some(flat_mut(OP, "dbias", d)?)
        }
        None => None,
    };
    let slices = Slices {
        x: flat(OP, "x", &input.x)?,
        w: flat(OP, "kernel", &input.kernel)?,
        bias,
        t: flat(OP, "targets", &input.targets)?,
        features,
        units,
    };
    let pred = flat_mut(OP, "pred", &mut pred)?;
    let dw = flat_mut(OP, "dkernel", &mut dkernel)?;
    let total = if units == 1 {
        // Up to 32 features in whole AVX registers: the kernel gradient stays in registers.
        vectorized(
            #[inline(always)]
            || match features {
                8 => one_unit_fixed::<1>(&slices, pred, dw, db),
                16 => one_unit_fixed::<2>(&slices, pred, dw, db),
                24 => one_unit_fixed::<3>(&slices, pred, dw, db),
                32 => one_unit_fixed::<4>(&slices, pred, dw, db),
                _ => one_unit(&slices, pred, dw, db),
            },
        )
    } else {
        let mut g = vec![0.0f32; BLOCK * units];
        vectorized(
            #[inline(always)]
            || several_units(&slices, pred, dw, db, &mut g),
        )
    };
    Ok((total / n as f64) as f32)
}

/// The validated flat inputs.
struct Slices<'a> {
    x: &'a [f32],
    w: &'a [f32],
    bias: Option<&'a [f32]>,
    t: &'a [f32],
    features: usize,
    units: usize,
}

/// Eight predictions and targets to the eight f64 loss lanes and the eight gradients
/// `2(p − t)/n`, one operation at a time over the lanes (so that each is vectorized).
#[allow(clippy::inline_always)]
#[inline(always)]
fn loss_lanes(
    p: &[f32; BLOCK],
    t: &[f32; BLOCK],
    scale: f64,
    lanes: &mut [f64; BLOCK],
) -> [f32; BLOCK] {
    let (mut pd, mut td) = ([0.0f64; BLOCK], [0.0f64; BLOCK]);
    for l in 0..BLOCK {
        (pd[l], td[l]) = (f64::from(p[l]), f64::from(t[l]));
    }
    let mut d = [0.0f64; BLOCK];
    for l in 0..BLOCK {
        d[l] = pd[l] - td[l];
    }
    for l in 0..BLOCK {
        lanes[l] += d[l] * d[l];
    }
    let mut g = [0.0f32; BLOCK];
    for l in 0..BLOCK {
        g[l] = (2.0 * d[l] * scale) as f32;
    }
    g
}

/// The loss lanes' sum, by a pairwise tree.
fn lane_total(mut lanes: [f64; BLOCK]) -> f64 {
    let mut width = BLOCK;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            lanes[l] += lanes[l + width];
        }
    }
    lanes[0]
}

/// The pass for one unit (linear regression); returns the loss sum.
#[allow(clippy::inline_always)]
#[inline(always)]
fn one_unit(s: &Slices<'_>, pred: &mut [f32], dw: &mut [f32], db: Option<&mut [f32]>) -> f64 {
    let f = s.features;
    let scale = 1.0 / pred.len() as f64;
    dw.fill(0.0);
    let mut dbias = 0.0f32;
    let mut lanes = [0.0f64; BLOCK];
    let mut total = 0.0f64;
    for ((xc, tc), pc) in
        s.x.chunks(CHUNK * f)
            .zip(s.t.chunks(CHUNK))
            .zip(pred.chunks_mut(CHUNK))
    {
        predict_one(xc, f, s.w, s.bias, pc);
        let mut x_blocks = xc.chunks_exact(BLOCK * f);
        let mut t_blocks = tc.chunks_exact(BLOCK);
        let mut p_blocks = pc.chunks_exact(BLOCK);
        for ((xb, tb), pb) in (&mut x_blocks).zip(&mut t_blocks).zip(&mut p_blocks) {
            let (Ok(tb), Ok(pb)) = (<&[f32; BLOCK]>::try_from(tb), <&[f32; BLOCK]>::try_from(pb))
            else {
                continue;
            };
            let g = loss_lanes(pb, tb, scale, &mut lanes);
            dbias += tree(&g);
            // Zipped slices, so that the loop is vectorized along the features.
            let [g0, g1, g2, g3, g4, g5, g6, g7] = g;
            let mut rows = xb.chunks_exact(f);
            let mut row = || rows.next().unwrap_or(&[]);
            let [r0, r1, r2, r3, r4, r5, r6, r7] = [(); BLOCK].map(|()| row());
            let zipped = dw.iter_mut().zip(r0).zip(r1).zip(r2).zip(r3);
            for ((((((((d, &a0), &a1), &a2), &a3), &a4), &a5), &a6), &a7) in
                zipped.zip(r4).zip(r5).zip(r6).zip(r7)
            {
                *d += ((a0 * g0 + a1 * g1) + (a2 * g2 + a3 * g3))
                    + ((a4 * g4 + a5 * g5) + (a6 * g6 + a7 * g7));
            }
        }
        // The rows after the last full block (only in the last chunk).
        let tails = (
            x_blocks.remainder(),
            t_blocks.remainder(),
            p_blocks.remainder(),
        );
        for ((row, &t), &p) in tails.0.chunks_exact(f).zip(tails.1).zip(tails.2) {
            let d = f64::from(p) - f64::from(t);
            total += d * d;
            let g = (2.0 * d * scale) as f32;
            dbias += g;
            for (dv, &xv) in dw.iter_mut().zip(row) {
                *dv += xv * g;
            }
        }
    }
    if let Some([d]) = db {
        *d = dbias;
    }
    lane_total(lanes) + total
}

/// [`one_unit`] for `8·C` features, with the kernel gradient in `C` registers: the same
/// operations in the same order, so the same bits.
#[allow(clippy::inline_always)]
#[inline(always)]
fn one_unit_fixed<const C: usize>(
    s: &Slices<'_>,
    pred: &mut [f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
) -> f64 {
    let f = s.features;
    let scale = 1.0 / pred.len() as f64;
    let mut acc = [[0.0f32; BLOCK]; C];
    let mut dbias = 0.0f32;
    let mut lanes = [0.0f64; BLOCK];
    let mut total = 0.0f64;
    let mut g_chunk = [0.0f32; CHUNK];
    for ((xc, tc), pc) in
        s.x.chunks(CHUNK * f)
            .zip(s.t.chunks(CHUNK))
            .zip(pred.chunks_mut(CHUNK))
    {
        predict_one(xc, f, s.w, s.bias, pc);
        // The chunk's gradients, in one loop of its own (so that it vectorizes well).
        let Some(gc) = g_chunk.get_mut(..pc.len()) else {
            continue; // not reached: a chunk has at most `CHUNK` rows
        };
        let mut g_blocks = gc.chunks_exact_mut(BLOCK);
        let (mut p_blocks, mut t_blocks) = (pc.chunks_exact(BLOCK), tc.chunks_exact(BLOCK));
        for ((g8, p8), t8) in (&mut g_blocks).zip(&mut p_blocks).zip(&mut t_blocks) {
            if let (Ok(g8), Ok(p8), Ok(t8)) = (
                <&mut [f32; BLOCK]>::try_from(g8),
                <&[f32; BLOCK]>::try_from(p8),
                <&[f32; BLOCK]>::try_from(t8),
            ) {
                *g8 = loss_lanes(p8, t8, scale, &mut lanes);
            }
        }
        let tails = (p_blocks.remainder(), t_blocks.remainder());
        for ((g, &p), &t) in g_blocks
            .into_remainder()
            .iter_mut()
            .zip(tails.0)
            .zip(tails.1)
        {
            let d = f64::from(p) - f64::from(t);
            total += d * d;
            *g = (2.0 * d * scale) as f32;
        }
        // Blocks of `BLOCK` rows of `C` groups of `BLOCK` features: constant lengths, so the
        // indexing below needs no bounds checks.
        let mut x_blocks = xc.chunks_exact(BLOCK * BLOCK * C);
        let mut g_blocks = gc.chunks_exact(BLOCK);
        for (xb, g) in (&mut x_blocks).zip(&mut g_blocks) {
            let Ok(g) = <&[f32; BLOCK]>::try_from(g) else {
                continue;
            };
            dbias += tree(g);
            for (c, a) in acc.iter_mut().enumerate() {
                for l in 0..BLOCK {
                    a[l] += tree(&std::array::from_fn(|r| xb[(r * C + c) * BLOCK + l] * g[r]));
                }
            }
        }
        let tail_rows = x_blocks.remainder().chunks_exact(BLOCK * C);
        for (row, &g) in tail_rows.zip(g_blocks.remainder()) {
            dbias += g;
            for (a, x8) in acc.iter_mut().zip(row.chunks_exact(BLOCK)) {
                for l in 0..BLOCK {
                    a[l] += x8[l] * g;
                }
            }
        }
    }
    for (d, &a) in dw.iter_mut().zip(acc.as_flattened()) {
        *d = a;
    }
    if let Some([d]) = db {
        *d = dbias;
    }
    lane_total(lanes) + total
}

/// A chunk's one-unit predictions: the row dots ([`row_dots`]), plus the bias.
#[allow(clippy::inline_always)]
#[inline(always)]
fn predict_one(xc: &[f32], f: usize, w: &[f32], bias: Option<&[f32]>, pc: &mut [f32]) {
    if !row_dots(xc, f, w, pc) {
        // Not reached: the lengths were checked.
        pc.fill(f32::NAN);
    }
    if let Some(&[b]) = bias {
        for p in pc.iter_mut() {
            *p += b;
        }
    }
}

/// The pass for several units; returns the loss sum. `g` holds one block's gradients
/// (`BLOCK·units`).
#[allow(clippy::inline_always)]
#[inline(always)]
fn several_units(
    s: &Slices<'_>,
    pred: &mut [f32],
    dw: &mut [f32],
    mut db: Option<&mut [f32]>,
    g: &mut [f32],
) -> f64 {
    let (f, u) = (s.features, s.units);
    let scale = 1.0 / pred.len() as f64;
    dw.fill(0.0);
    if let Some(d) = db.as_deref_mut() {
        d.fill(0.0);
    }
    let mut lanes = [0.0f64; BLOCK];
    let mut x_blocks = s.x.chunks_exact(BLOCK * f);
    let mut t_blocks = s.t.chunks_exact(BLOCK * u);
    let mut p_blocks = pred.chunks_exact_mut(BLOCK * u);
    for ((xb, tb), pb) in (&mut x_blocks).zip(&mut t_blocks).zip(&mut p_blocks) {
        for (row, p) in xb.chunks_exact(f).zip(pb.chunks_exact_mut(u)) {
            predict_units(row, s.w, s.bias, p);
        }
        for ((p8, t8), g8) in pb
            .chunks_exact(BLOCK)
            .zip(tb.chunks_exact(BLOCK))
            .zip(g.chunks_exact_mut(BLOCK))
        {
            if let (Ok(p8), Ok(t8), Ok(g8)) = (
                <&[f32; BLOCK]>::try_from(p8),
                <&[f32; BLOCK]>::try_from(t8),
                <&mut [f32; BLOCK]>::try_from(g8),
            ) {
                *g8 = loss_lanes(p8, t8, scale, &mut lanes);
            }
        }
        // `dw[i, k] += Σ_r x[r, i]·g[r, k]` and `db[k] += Σ_r g[r, k]`, a tree over the rows.
        let at = |r: usize, k: usize| g.get(r * u + k).copied().unwrap_or(0.0);
        for (i, dr) in dw.chunks_exact_mut(u).enumerate() {
            let xs: [f32; BLOCK] =
                std::array::from_fn(|r| xb.get(r * f + i).copied().unwrap_or(0.0));
            for (k, d) in dr.iter_mut().enumerate() {
                *d += tree(&std::array::from_fn(|r| xs[r] * at(r, k)));
            }
        }
        if let Some(d) = db.as_deref_mut() {
            for (k, dk) in d.iter_mut().enumerate() {
                *dk += tree(&std::array::from_fn(|r| at(r, k)));
            }
        }
    }
    let mut total = lane_total(lanes);
    let tails = (
        x_blocks.remainder(),
        t_blocks.remainder(),
        p_blocks.into_remainder(),
    );
    for ((row, tr), pr) in tails
        .0
        .chunks_exact(f)
        .zip(tails.1.chunks_exact(u))
        .zip(tails.2.chunks_exact_mut(u))
    {
        predict_units(row, s.w, s.bias, pr);
        for (k, (&p, &t)) in pr.iter().zip(tr).enumerate() {
            let d = f64::from(p) - f64::from(t);
            total += d * d;
            let gk = (2.0 * d * scale) as f32;
            if let Some(dbk) = db.as_deref_mut().and_then(|d| d.get_mut(k)) {
                *dbk += gk;
            }
            for (dwk, &xv) in dw.iter_mut().skip(k).step_by(u).zip(row) {
                *dwk += xv * gk;
            }
        }
    }
    total
}

/// One row's predictions for several units: `p = x·w` summed over the features in order,
/// then `+ bias`.
#[allow(clippy::inline_always)]
#[inline(always)]
fn predict_units(x: &[f32], w: &[f32], bias: Option<&[f32]>, p: &mut [f32]) {
    p.fill(0.0);
    for (&xv, wr) in x.iter().zip(w.chunks_exact(p.len())) {
        for (o, &wv) in p.iter_mut().zip(wr) {
            *o += xv * wv;
        }
    }
    if let Some(b) = bias {
        for (o, &bv) in p.iter_mut().zip(b) {
            *o += bv;
        }
    }
}

/// `((v0+v1)+(v2+v3))+((v4+v5)+(v6+v7))`.
#[allow(clippy::inline_always)]
#[inline(always)]
fn tree(v: &[f32; BLOCK]) -> f32 {
    ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]))
}

#[cfg(test)]
mod tests {
    use super::{one_unit, one_unit_fixed, Slices};

    /// The register path for 16 features performs the general one-unit path's arithmetic.
    #[test]
    fn the_fixed_width_path_gives_the_general_paths_bits() {
        let (rows, f) = (1037, 16);
        let vals = |n: usize, k: u64| -> Vec<f32> {
            (0..n as u64)
                .map(|i| ((i * 2_654_435_761 + k) % 1000) as f32 / 500.0 - 1.0)
                .collect()
        };
        let (x, w, t) = (vals(rows * f, 1), vals(f, 2), vals(rows, 3));
        let bias = [0.25f32];
        for b in [Some(&bias[..]), None] {
            let s = Slices {
                x: &x,
                w: &w,
                bias: b,
                t: &t,
                features: f,
                units: 1,
            };
            let run = |fixed: bool| {
                let (mut p, mut dw, mut db) = (vec![0.0; rows], vec![0.0; f], [0.0f32]);
                let total = if fixed {
                    one_unit_fixed::<2>(&s, &mut p, &mut dw, Some(&mut db))
                } else {
                    one_unit(&s, &mut p, &mut dw, Some(&mut db))
                };
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                (total.to_bits(), bits(&p), bits(&dw), db[0].to_bits())
            };
            assert_eq!(run(true), run(false));
        }
    }
}
