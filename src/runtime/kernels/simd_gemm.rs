//! Our own single-precision GEMM for AVX2 + FMA CPUs (and wider tiles where AVX-512F is
//! there): `C ← A·B (+ C)`, then an optional
//! bias and relu, with the left-hand matrix read where it lies: a strided matrix (a row-major
//! or transposed view) or the receptive fields of a convolution, straight from its NHWC input.
//!
//! Why our own: matrixmultiply copies ("packs") both operands into panels on every call. For
//! the shapes this interpreter runs that copy is a large share of the time: the im2col patch
//! matrix of a convolution is written once by im2col and then copied again by the packing, and
//! an LSTM's recurrent kernel is repacked at every timestep. Here nothing is copied: a 6 × 16
//! register tile of `C` (twelve 8-lane accumulators; 10 × 32 in twenty 16-lane ones with
//! AVX-512, see [`TileSet`]) is summed over `k` from broadcasts of six `A` elements and two
//! loads of a `B` row, and the convolution's `A` elements are read from the input through a
//! table of per-`k` offsets, so a convolution needs no patch matrix at all.
//!
//! Summation order, the same on every call: `C[i][j]` is the fused multiply-add chain over
//! `k = 0, 1, …` starting from zero (or from the old `C[i][j]` when accumulating), then
//! `+ bias[j]`, then `max(·, 0)` for relu. It does not depend on how rows are tiled or split
//! between threads, nor on the tile set, so results are bit-identical for every batch slicing,
//! thread count and vector width.
//! Results differ from matrixmultiply's in the last bits (different order of the adds), so a
//! CPU without AVX2 + FMA (where [`gemm`] returns `false` and callers keep matrixmultiply) may
//! give slightly different numbers than one with them; a given machine is deterministic.
//!
//! A call is a [`GemmCall`] (every operand but `C`, `Copy`) and the output slice. The x86-64
//! tile loop is the child module `kernel` (`simd_gemm/kernel.rs`).
//!
//! Like [`super::simd_train`], this module may use `unsafe`: calling a `target_feature`
//! function (behind run-time detection) and unchecked loads and stores inside the tile loop,
//! whose bounds [`gemm`] checks once for the whole call (`fits`).

#![allow(unsafe_code)]
// The tile loop's helpers must inline into the `target_feature` functions that call them.
#![allow(clippy::inline_always)]

use super::isa::Isa;
use crate::runtime::pool;

/// The register tiles [`gemm`] runs: those of the vector extension [`Isa::current`] chose.
/// Both sets give the same bits (see the module doc), the wider one in fewer instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TileSet {
    /// AVX2 + FMA: up to 6 × 16 (twelve 8-lane accumulators).
    Avx2,
    /// AVX-512F: up to 10 × 32 (twenty 16-lane accumulators).
    Avx512,
}

impl TileSet {
    /// Rows and columns of `C` per full register tile.
    pub(crate) const fn shape(self) -> (usize, usize) {
        match self {
            TileSet::Avx2 => (6, 16),
            TileSet::Avx512 => (10, 32),
        }
    }

    /// The set for the vector extension in force. Only meaningful where [`available`] holds.
    pub(crate) fn current() -> TileSet {
        match Isa::current() {
            Isa::Avx2 => TileSet::Avx2,
            Isa::Avx512 => TileSet::Avx512,
        }
    }

    /// Rows `row0..row0 + m` of `call`'s product into `out`.
    ///
    /// # Safety
    /// As `kernel::run`: the CPU runs this set, `fits` accepted `call`, and `out` holds rows
    /// `row0..row0 + m` of its `C`.
    unsafe fn run(self, call: &GemmCall<'_>, row0: usize, m: usize, out: &mut [f32]) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match self {
                TileSet::Avx2 => kernel::run::<kernel::Avx2>(call, row0, m, out),
                TileSet::Avx512 => kernel::run::<kernel::Avx512>(call, row0, m, out),
            }
        }
    }
}

/// Largest block of `k` summed per pass over the row tiles.
const KC: usize = 256;
/// `A` elements of one `k` block (`m·k`, at most 128 KiB) up to which the columns are walked
/// outside the rows: the block stays in L2 (or L1) while each 16-column panel of `B` is read
/// once and reused from L1 by every row tile, so `A` is re-read once per panel instead of `B`
/// once per 6-row tile. Past it (convolutions, large batches) `A` would come from memory on
/// every panel, so the rows go outside. (At 4096, the recurrent layers' weight gradients
/// `Xᵀ·dZ`, `m` = 64 and `k` = 256 per block, re-read a 256 KiB `B` block from L2 for each
/// of 11 row tiles: 14.7% of single-thread seed RNN training in `perf`, 10.2% at this size,
/// same bits, since the order of the sums over `k` does not depend on the walk.)
const SMALL_LHS: usize = 1 << 15;
/// Multiply-adds (`m·n·k`) below which a call is not split between threads. Half the
/// seed CNN's cropped second convolution at batch 1 (100 pixels × 288 taps × 64 channels,
/// 1.8M, about 25 µs on one core; the pool's workers are spinning, so a split costs a few
/// µs): at `1 << 21` that product ran on one thread and batch 1 used one core.
pub(crate) const PARALLEL_MIN_WORK: usize = 1 << 20;
/// Multiply-adds below which a product of too few rows to split by rows (under two tiles) is
/// not split by columns either. Lower than [`PARALLEL_MIN_WORK`]: such products come from
/// convolutions at batch 1 and weight gradients of a first layer, run while the intra-op
/// pool's workers are still spinning from the previous step's split.
const COLUMN_SPLIT_MIN_WORK: usize = 1 << 18;

/// Where the left-hand matrix `A` (`m × k`) lies in its buffer.
#[derive(Clone, Copy, Debug)]
pub enum Lhs<'a> {
    /// `A[i][k] = data[i·row_stride + k·col_stride]`: a row-major matrix (`col_stride = 1`)
    /// or the transpose of one (`row_stride = 1`).
    Strided {
        data: &'a [f32],
        row_stride: usize,
        col_stride: usize,
    },
    /// The receptive fields of a stride/dilation convolution over an NHWC input that already
    /// holds its padding: row `i` is output pixel `i` (sample-major), and
    /// `A[i][k] = data[origin(i) + k_offsets[k]]`.
    Conv {
        data: &'a [f32],
        geometry: ConvRows,
        k_offsets: &'a [usize],
    },
    /// `A[i][k] = data[row_offsets[i] + k_offsets[k]]`: e.g. the transposed receptive fields
    /// of a convolution (a row per kernel tap, a column per output pixel) for its weight
    /// gradient.
    Gather {
        data: &'a [f32],
        row_offsets: &'a [usize],
        k_offsets: &'a [usize],
    },
}

/// How output pixels map to input positions for [`Lhs::Conv`].
#[derive(Clone, Copy, Debug)]
pub struct ConvRows {
    /// Output pixels per sample (`oh · ow`) and per output row (`ow`).
    pub pixels: usize,
    pub ow: usize,
    /// Input elements per sample, per `stride_h` input rows, per `stride_w` input pixels.
    pub sample_len: usize,
    pub row_step: usize,
    pub col_step: usize,
}

impl ConvRows {
    /// The largest origin (`n·sample_len + oy·row_step + ox·col_step` for output pixel `i` =
    /// sample `n`, position `oy, ox`; the kernel walks them in `kernel::conv_origins`) of rows
    /// `0..m` (`m > 0`), with checked arithmetic, or
    /// `None` on overflow or an inconsistent geometry. A row before `m − 1` is in the same
    /// sample and output row (further left), in an earlier output row of that sample, or in an
    /// earlier sample, so one of three candidates bounds every row, and every product inside
    /// an origin of these rows is bounded by one computed here.
    fn max_origin(&self, m: usize) -> Option<usize> {
        if self.ow == 0 || self.pixels == 0 || !self.pixels.is_multiple_of(self.ow) {
            return None;
        }
        let oh = self.pixels / self.ow;
        let at = |s: usize, oy: usize, ox: usize| {
            s.checked_mul(self.sample_len)?
                .checked_add(oy.checked_mul(self.row_step)?)?
                .checked_add(ox.checked_mul(self.col_step)?)
        };
        let i = m.checked_sub(1)?;
        let (s, p) = (i / self.pixels, i % self.pixels);
        let (oy, ox) = (p / self.ow, p % self.ow);
        let mut far = at(s, oy, ox)?;
        if oy > 0 {
            far = far.max(at(s, oy - 1, self.ow - 1)?);
        }
        if s > 0 {
            far = far.max(at(s - 1, oh - 1, self.ow - 1)?);
        }
        Some(far)
    }
}

/// What is applied to each finished element of `C`.
#[derive(Clone, Copy, Debug)]
pub struct Epilogue<'a> {
    /// Added per column (`bias.len() >= n`).
    pub bias: Option<&'a [f32]>,
    /// `max(·, 0)` after the bias.
    pub relu: bool,
}

impl Epilogue<'_> {
    /// Nothing: `C` is the product.
    pub const NONE: Epilogue<'static> = Epilogue {
        bias: None,
        relu: false,
    };
}

/// One product `C ← A·B` (or `C ← C + A·B` when `accumulate`), then the epilogue: every
/// operand of a [`gemm`] call but the output `C`, which is borrowed mutably and so passed
/// beside it. `A: m × k` (see [`Lhs`]), row-major `B: k × n` with row stride `ldb`, row-major
/// `C: m × n` with row stride `ldc`. `Copy`, so a call is passed down the tile loop by value
/// or reference at no cost.
#[derive(Clone, Copy, Debug)]
pub struct GemmCall<'a> {
    pub lhs: Lhs<'a>,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub rhs: &'a [f32],
    pub ldb: usize,
    pub ldc: usize,
    pub accumulate: bool,
    pub epilogue: Epilogue<'a>,
    /// Whether the rows may be split between the intra-op pool's threads
    /// ([`crate::runtime::pool`], done only when the product is large).
    pub parallel: bool,
}

/// Runs `call` into `out` (`C`). Splits the rows (or, for fewer than two tiles of rows, the
/// columns) between the intra-op pool's threads when `call.parallel` and the product is large.
///
/// Returns `false`, touching nothing, when the CPU lacks AVX2 or FMA, or when a buffer is too
/// short for the shapes given; callers then use matrixmultiply.
#[inline]
pub fn gemm(call: &GemmCall<'_>, out: &mut [f32]) -> bool {
    if !available() || !fits(call, out) {
        return false;
    }
    let (m, n, k) = (call.m, call.n, call.k);
    if m == 0 || n == 0 {
        return true;
    }
    let threads = if call.parallel { pool::threads() } else { 1 };
    let work = m.saturating_mul(n).saturating_mul(k);
    let tiles = TileSet::current();
    let (mr, nr) = tiles.shape();
    if threads > 1 && m >= 2 * mr && work >= PARALLEL_MIN_WORK {
        split_rows(call, tiles, threads, out);
    } else if threads > 1 && m < 2 * mr && n >= 2 * nr && work >= COLUMN_SPLIT_MIN_WORK {
        split_columns(call, tiles, threads, out);
    } else {
        // SAFETY: `available` checked AVX2 and FMA (and `current` AVX-512F for that set);
        // `fits` checked every index the call makes.
        unsafe { tiles.run(call, 0, m, out) };
    }
    true
}

/// Runs `call` (checked by [`fits`] on a CPU with AVX2 and FMA) as row ranges of whole tiles,
/// one per thread; each owns the rows of `C` it writes.
fn split_rows(call: &GemmCall<'_>, set: TileSet, threads: usize, out: &mut [f32]) {
    let (m, ldc) = (call.m, call.ldc);
    let mr = set.shape().0;
    let tiles = m.div_ceil(mr);
    let parts = threads.min(tiles);
    let mut jobs = Vec::with_capacity(parts);
    let mut rest: &mut [f32] = out;
    let mut start = 0;
    for p in 0..parts {
        let end = (tiles * (p + 1) / parts * mr).min(m);
        let rows_here = end - start;
        let take = if end == m {
            rest.len()
        } else {
            rows_here * ldc
        };
        let (mine, later) = std::mem::take(&mut rest).split_at_mut(take);
        rest = later;
        jobs.push((start, rows_here, mine));
        start = end;
    }
    let call = *call;
    pool::run_each(jobs, |(row0, rows, c)| {
        // SAFETY: the caller checked AVX2, FMA and `fits`; `c` holds rows `row0..row0 + rows`
        // of `C`, which `fits` checked as part of the whole.
        unsafe { set.run(&call, row0, rows, c) };
    });
}

/// Runs `call` (checked by [`fits`] on a CPU with AVX2 and FMA) as column ranges of whole
/// tiles, one per thread, for a product with too few rows to split by rows. The first range is
/// computed in place; each other one into a block of its own (`m × width`, holding `C`'s old
/// values when accumulating), copied into `C` after. A column range is the same call on the
/// columns `j0..j1` of `B`, the bias and `C`, so every element is the same chain as unsplit.
fn split_columns(call: &GemmCall<'_>, set: TileSet, threads: usize, out: &mut [f32]) {
    let (m, n, ldc) = (call.m, call.n, call.ldc);
    let nr = set.shape().1;
    let tiles = n.div_ceil(nr);
    let parts = threads.min(tiles);
    let bounds: Vec<usize> = (0..=parts)
        .map(|p| (tiles * p / parts * nr).min(n))
        .collect();
    let part = |j0: usize, j1: usize, ldc: usize| GemmCall {
        n: j1 - j0,
        rhs: &call.rhs[j0..],
        ldc,
        epilogue: Epilogue {
            bias: call.epilogue.bias.map(|b| &b[j0..]),
            relu: call.epilogue.relu,
        },
        ..*call
    };
    let mut blocks: Vec<(usize, usize, Vec<f32>)> = bounds
        .windows(2)
        .skip(1)
        .map(|w| {
            let (j0, j1) = (w[0], w[1]);
            let width = j1 - j0;
            let mut block = vec![0.0f32; m * width];
            if call.accumulate {
                for (i, row) in block.chunks_exact_mut(width).enumerate() {
                    row.copy_from_slice(&out[i * ldc + j0..i * ldc + j1]);
                }
            }
            (j0, j1, block)
        })
        .collect();
    // The first range is computed in place (row stride `ldc`), the others into their blocks.
    let mut jobs = Vec::with_capacity(parts);
    jobs.push((part(bounds[0], bounds[1], ldc), &mut *out));
    for (j0, j1, block) in &mut blocks {
        jobs.push((part(*j0, *j1, *j1 - *j0), block.as_mut_slice()));
    }
    pool::run_each(jobs, |(call, c)| {
        // SAFETY: the caller checked AVX2, FMA and `fits` for the whole call; each part reads
        // columns `j0..j1` of `B` and the bias (inside the checked whole) and writes either
        // columns `0..j1` of `C`'s rows (the first, in place) or a block of exactly
        // `m × (j1 − j0)` elements with that row stride.
        unsafe { set.run(&call, 0, m, c) };
    });
    for (j0, j1, block) in &blocks {
        for (i, row) in block.chunks_exact(j1 - j0).enumerate() {
            out[i * ldc + j0..i * ldc + j1].copy_from_slice(row);
        }
    }
}

/// Whether this CPU runs the kernel (AVX2 and FMA), detected once.
pub fn available() -> bool {
    #[cfg(test)]
    if BASELINE.with(std::cell::Cell::get) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether every element `call` reads or writes is inside its buffer, `C` being `out`
/// (checked arithmetic).
#[inline]
fn fits(call: &GemmCall<'_>, out: &[f32]) -> bool {
    let GemmCall {
        lhs,
        m,
        k,
        n,
        rhs,
        ldb,
        ldc,
        epilogue,
        ..
    } = *call;
    if m == 0 || n == 0 {
        return true;
    }
    // Last element index of a `rows × cols` row-major block with the given row stride.
    let last = |rows: usize, cols: usize, stride: usize| {
        (rows - 1).checked_mul(stride)?.checked_add(cols - 1)
    };
    let out_ok = n <= ldc && last(m, n, ldc).is_some_and(|l| l < out.len());
    let bias_ok = epilogue.bias.is_none_or(|b| b.len() >= n);
    if !out_ok || !bias_ok {
        return false;
    }
    if k == 0 {
        return true;
    }
    let rhs_ok = n <= ldb && last(k, n, ldb).is_some_and(|l| l < rhs.len());
    let lhs_ok = match lhs {
        Lhs::Strided {
            data,
            row_stride,
            col_stride,
        } => (m - 1)
            .checked_mul(row_stride)
            .and_then(|r| r.checked_add((k - 1).checked_mul(col_stride)?))
            .is_some_and(|l| l < data.len()),
        Lhs::Conv {
            data,
            geometry,
            k_offsets,
        } => {
            let far = geometry
                .max_origin(m)
                .and_then(|o| o.checked_add(*k_offsets.iter().max()?));
            k_offsets.len() == k && far.is_some_and(|l| l < data.len())
        }
        Lhs::Gather {
            data,
            row_offsets,
            k_offsets,
        } => {
            let far = row_offsets
                .iter()
                .max()
                .and_then(|r| r.checked_add(*k_offsets.iter().max()?));
            row_offsets.len() == m && k_offsets.len() == k && far.is_some_and(|l| l < data.len())
        }
    };
    rhs_ok && lhs_ok
}

#[cfg(target_arch = "x86_64")]
mod kernel;

#[cfg(not(target_arch = "x86_64"))]
mod kernel {
    use super::GemmCall;

    /// Stand-ins for the x86-64 tile sets.
    pub(super) struct Avx2;
    pub(super) struct Avx512;

    /// Never called: `available` is false off x86-64.
    ///
    /// # Safety
    /// None needed (it does nothing); the signature matches the x86-64 kernel's.
    pub(super) unsafe fn run<T>(_: &GemmCall<'_>, _: usize, _: usize, _: &mut [f32]) {}
}

#[cfg(test)]
thread_local! {
    static BASELINE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` as on a CPU without AVX2/FMA: [`gemm`] declines every call (for tests of the
/// callers' fallback paths).
#[cfg(test)]
pub(crate) fn baseline<R>(f: impl FnOnce() -> R) -> R {
    BASELINE.with(|b| b.set(true));
    let r = f();
    BASELINE.with(|b| b.set(false));
    r
}

#[cfg(test)]
mod conv_walk_tests;
#[cfg(test)]
mod split_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tile_set_tests;
