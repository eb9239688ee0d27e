//! Our own single-precision GEMM for AVX2 + FMA CPUs: `C ← A·B (+ C)`, then an optional
//! bias and relu, with the left-hand matrix read where it lies: a strided matrix (a row-major
//! or transposed view) or the receptive fields of a convolution, straight from its NHWC input.
//!
//! Why our own: matrixmultiply copies ("packs") both operands into panels on every call. For
//! the shapes this interpreter runs that copy is a large share of the time: the im2col patch
//! matrix of a convolution is written once by im2col and then copied again by the packing, and
//! an LSTM's recurrent kernel is repacked at every timestep. Here nothing is copied: a 6 × 16
//! register tile of `C` (twelve 8-lane accumulators) is summed over `k` from broadcasts of six
//! `A` elements and two loads of a `B` row, and the convolution's `A` elements are read from the
//! input through a table of per-`k` offsets, so a convolution needs no patch matrix at all.
//!
//! Summation order, the same on every call: `C[i][j]` is the fused multiply-add chain over
//! `k = 0, 1, …` starting from zero (or from the old `C[i][j]` when accumulating), then
//! `+ bias[j]`, then `max(·, 0)` for relu. It does not depend on how rows are tiled or split
//! between threads, so results are bit-identical for every batch slicing and thread count.
//! Results differ from matrixmultiply's in the last bits (different order of the adds), so a
//! CPU without AVX2 + FMA (where [`gemm`] returns `false` and callers keep matrixmultiply) may
//! give slightly different numbers than one with them; a given machine is deterministic.
//!
//! Like [`super::simd_train`], this module may use `unsafe`: calling a `target_feature`
//! function (behind run-time detection) and unchecked loads and stores inside the tile loop,
//! whose bounds [`gemm`] checks once for the whole call.

#![allow(unsafe_code)]
// The tile loop's helpers must inline into the `target_feature` functions that call them.
#![allow(clippy::inline_always)]

/// Rows of `C` per register tile.
const MR: usize = 6;
/// Columns of `C` per register tile (two 8-lane vectors).
const NR: usize = 16;
/// Largest block of `k` summed per pass over the row tiles.
const KC: usize = 256;
/// `A` elements (`m·k`) up to which the columns are walked outside the rows (A stays in L1).
const SMALL_LHS: usize = 4096;
/// Multiply-adds (`m·n·k`) below which a call is not split between threads.
pub(crate) const PARALLEL_MIN_WORK: usize = 1 << 21;

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
    /// The largest [`ConvRows::origin`] of rows `0..m` (`m > 0`), with checked arithmetic, or
    /// `None` on overflow or an inconsistent geometry. A row before `m − 1` is in the same
    /// sample and output row (further left), in an earlier output row of that sample, or in an
    /// earlier sample, so one of three candidates bounds every row, and every product inside
    /// `origin` for these rows is bounded by one computed here.
    fn max_origin(&self, m: usize) -> Option<usize> {
        if self.ow == 0 || self.pixels == 0 || self.pixels % self.ow != 0 {
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

    /// The input offset of output pixel `i`'s receptive field (its top-left tap, channel 0).
    #[inline]
    fn origin(&self, i: usize) -> usize {
        let (n, p) = (i / self.pixels, i % self.pixels);
        let (oy, ox) = (p / self.ow, p % self.ow);
        n * self.sample_len + oy * self.row_step + ox * self.col_step
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

/// `C ← A·B` (or `C ← C + A·B` when `accumulate`), then the epilogue, for `A: m × k` (see
/// [`Lhs`]), row-major `B: k × n` with row stride `ldb` and row-major `C: m × n` with row stride
/// `ldc`. Splits the rows between the current rayon pool's threads when `parallel` and the
/// product is large.
///
/// Returns `false`, touching nothing, when the CPU lacks AVX2 or FMA, or when a buffer is too
/// short for the shapes given; callers then use matrixmultiply.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    lhs: Lhs<'_>,
    m: usize,
    k: usize,
    rhs: &[f32],
    ldb: usize,
    n: usize,
    out: &mut [f32],
    ldc: usize,
    accumulate: bool,
    epilogue: Epilogue<'_>,
    parallel: bool,
) -> bool {
    if !available() || !fits(&lhs, m, k, rhs, ldb, n, out, ldc, epilogue) {
        return false;
    }
    if m == 0 || n == 0 {
        return true;
    }
    let threads = if parallel {
        rayon::current_num_threads()
    } else {
        1
    };
    let work = m.saturating_mul(n).saturating_mul(k);
    if threads <= 1 || work < PARALLEL_MIN_WORK || m < 2 * MR {
        // SAFETY: `available` checked AVX2 and FMA; `fits` checked every index the call makes.
        unsafe { kernel::run(lhs, 0, m, k, rhs, ldb, n, out, ldc, accumulate, epilogue) };
        return true;
    }
    // Row ranges of whole tiles, one per thread; each owns the rows of `C` it writes.
    let tiles = m.div_ceil(MR);
    let parts = threads.min(tiles);
    let mut jobs = Vec::with_capacity(parts);
    let mut rest: &mut [f32] = out;
    let mut start = 0;
    for p in 0..parts {
        let end = (tiles * (p + 1) / parts * MR).min(m);
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
    rayon::scope(|scope| {
        let mut jobs = jobs.into_iter();
        let first = jobs.next();
        for (row0, rows, c) in jobs {
            scope.spawn(move |_| {
                // SAFETY: as above; `c` holds rows `row0..row0 + rows` of `C`, which `fits`
                // checked as part of the whole.
                unsafe {
                    kernel::run(
                        lhs, row0, rows, k, rhs, ldb, n, c, ldc, accumulate, epilogue,
                    );
                };
            });
        }
        if let Some((row0, rows, c)) = first {
            // SAFETY: as above.
            unsafe {
                kernel::run(
                    lhs, row0, rows, k, rhs, ldb, n, c, ldc, accumulate, epilogue,
                );
            };
        }
    });
    true
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

/// Whether every element the call reads or writes is inside its buffer (checked arithmetic).
#[allow(clippy::too_many_arguments)]
fn fits(
    lhs: &Lhs<'_>,
    m: usize,
    k: usize,
    rhs: &[f32],
    ldb: usize,
    n: usize,
    out: &[f32],
    ldc: usize,
    epilogue: Epilogue<'_>,
) -> bool {
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
    let lhs_ok = match *lhs {
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
mod kernel {
    use std::arch::x86_64::{
        __m256, __m256i, _mm256_add_ps, _mm256_broadcast_ss, _mm256_cmpgt_epi32, _mm256_fmadd_ps,
        _mm256_loadu_ps, _mm256_maskload_ps, _mm256_maskstore_ps, _mm256_max_ps, _mm256_set1_epi32,
        _mm256_setr_epi32, _mm256_setzero_ps, _mm256_storeu_ps,
    };

    use super::{ConvRows, Epilogue, Lhs, KC, MR, NR, SMALL_LHS};

    /// Rows `row0..row0 + m` of the product into `out` (which starts at row `row0` of `C`).
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA, and `super::fits` accepted the whole call this is part of.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn run(
        lhs: Lhs<'_>,
        row0: usize,
        m: usize,
        k: usize,
        rhs: &[f32],
        ldb: usize,
        n: usize,
        out: &mut [f32],
        ldc: usize,
        accumulate: bool,
        epilogue: Epilogue<'_>,
    ) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match lhs {
                Lhs::Strided {
                    data,
                    row_stride,
                    col_stride,
                } => drive(
                    data.as_ptr(),
                    |i| i * row_stride,
                    Strided(col_stride),
                    (row0, m, k, n),
                    rhs.as_ptr(),
                    ldb,
                    out.as_mut_ptr(),
                    ldc,
                    accumulate,
                    epilogue,
                ),
                Lhs::Gather {
                    data,
                    row_offsets,
                    k_offsets,
                } => drive(
                    data.as_ptr(),
                    // `fits` checked the table's length when anything is loaded (k > 0).
                    |i| row_offsets.get(i).copied().unwrap_or(0),
                    Table(k_offsets.as_ptr()),
                    (row0, m, k, n),
                    rhs.as_ptr(),
                    ldb,
                    out.as_mut_ptr(),
                    ldc,
                    accumulate,
                    epilogue,
                ),
                Lhs::Conv {
                    data,
                    geometry,
                    k_offsets,
                } => drive(
                    data.as_ptr(),
                    |i| ConvRows::origin(&geometry, i),
                    Table(k_offsets.as_ptr()),
                    (row0, m, k, n),
                    rhs.as_ptr(),
                    ldb,
                    out.as_mut_ptr(),
                    ldc,
                    accumulate,
                    epilogue,
                ),
            }
        }
    }

    /// The offset of column `k` of `A` from a row's origin.
    trait KOffset: Copy {
        /// # Safety
        /// `k` is below the `k` of the call.
        unsafe fn at(self, k: usize) -> usize;
    }

    #[derive(Clone, Copy)]
    struct Strided(usize);

    impl KOffset for Strided {
        #[inline(always)]
        unsafe fn at(self, k: usize) -> usize {
            k * self.0
        }
    }

    #[derive(Clone, Copy)]
    struct Table(*const usize);

    impl KOffset for Table {
        #[inline(always)]
        unsafe fn at(self, k: usize) -> usize {
            // SAFETY: the table has `k` entries (checked by `fits`), and `k` is below that.
            unsafe { *self.0.add(k) }
        }
    }

    /// Tiles the rows and columns and runs each register tile.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn drive<K: KOffset>(
        a: *const f32,
        origin: impl Fn(usize) -> usize,
        koff: K,
        (row0, m, k, n): (usize, usize, usize, usize),
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
        epilogue: Epilogue<'_>,
    ) {
        // `k` in blocks of at most `KC`: a block of `B` (`KC × n`) stays in L2 while every row
        // tile passes over it. Between blocks the partial sums wait in `C` (exactly as they
        // were in registers), so the blocking does not change any result.
        let blocks = k.div_ceil(KC).max(1);
        let per_block = k.div_ceil(blocks);
        for block in 0..blocks {
            let k0 = block * per_block;
            let len = per_block.min(k - k0.min(k));
            let last = block + 1 == blocks;
            let finish = if last { epilogue } else { Epilogue::NONE };
            drive_block(
                a,
                &origin,
                koff,
                (row0, m, k0, len, n),
                b,
                ldb,
                c,
                ldc,
                accumulate || block > 0,
                finish,
            );
        }
    }

    /// One block `k0..k0 + len` of `k` for every row and column tile.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn drive_block<K: KOffset>(
        a: *const f32,
        origin: &impl Fn(usize) -> usize,
        koff: K,
        (row0, m, k0, k, n): (usize, usize, usize, usize, usize),
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
        epilogue: Epilogue<'_>,
    ) {
        let bias = epilogue.bias.map_or(std::ptr::null(), <[f32]>::as_ptr);
        // Row tiles of nearly equal height (5 or 6 rows for `m ≥ 5`): a short last tile would
        // have too few accumulators to hide the multiply-add latency.
        let tiles = m.div_ceil(MR);
        let (base, extra) = (m / tiles.max(1), m % tiles.max(1));
        let tile_rows = |t: usize| base + usize::from(t < extra);
        let row_tile = |i: usize, rows: usize| {
            let mut origins = [0usize; MR];
            for (r, o) in origins.iter_mut().enumerate() {
                // Rows past the end repeat the last row: computed, never stored.
                *o = origin(row0 + i + r.min(rows - 1));
            }
            (rows, origins)
        };
        let tile_at = |i: usize, rows: usize, origins: &[usize; MR], j: usize| TileArgs {
            a,
            origins: *origins,
            rows,
            cols: NR.min(n - j),
            k0,
            k,
            b: b.add(j),
            ldb,
            c: c.add(i * ldc + j),
            ldc,
            accumulate,
            bias: if bias.is_null() { bias } else { bias.add(j) },
            relu: epilogue.relu,
        };
        if m.saturating_mul(k) <= SMALL_LHS {
            // A small `A` stays in L1 whole: walk the columns outside, so each panel of `B`
            // is read from memory once and then reused from L1 by every row tile.
            let mut j = 0;
            while j < n {
                let mut i = 0;
                for t in 0..tiles {
                    let rows = tile_rows(t);
                    let (rows, origins) = row_tile(i, rows);
                    dispatch(&tile_at(i, rows, &origins, j), koff);
                    i += rows;
                }
                j += NR;
            }
        } else {
            // Rows outside: a row tile's `A` stays in L1 across every panel of `B` (in L2).
            let mut i = 0;
            for t in 0..tiles {
                let (rows, origins) = row_tile(i, tile_rows(t));
                let mut j = 0;
                while j < n {
                    dispatch(&tile_at(i, rows, &origins, j), koff);
                    j += NR;
                }
                i += rows;
            }
        }
    }

    /// Runs one tile with the register shape its rows and columns need.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn dispatch<K: KOffset>(t: &TileArgs, koff: K) {
        // SAFETY (for every arm): the tile's rows, columns and `k` lie inside the call that
        // `fits` checked.
        unsafe {
            match (t.rows, t.cols == NR) {
                (6, true) => tile::<6, true, K>(t, koff),
                (6, false) => tile::<6, false, K>(t, koff),
                (5, true) => tile::<5, true, K>(t, koff),
                (5, false) => tile::<5, false, K>(t, koff),
                (4, true) => tile::<4, true, K>(t, koff),
                (4, false) => tile::<4, false, K>(t, koff),
                (3, true) => tile::<3, true, K>(t, koff),
                (3, false) => tile::<3, false, K>(t, koff),
                (2, true) => tile::<2, true, K>(t, koff),
                (2, false) => tile::<2, false, K>(t, koff),
                (_, true) => tile::<1, true, K>(t, koff),
                (_, false) => tile::<1, false, K>(t, koff),
            }
        }
    }

    /// One register tile's operands: `a` and its row origins, the tile's first `B` column and
    /// `C` element, and the epilogue's bias (null for none) from the tile's first column.
    struct TileArgs {
        a: *const f32,
        origins: [usize; MR],
        rows: usize,
        cols: usize,
        k0: usize,
        k: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
        bias: *const f32,
        relu: bool,
    }

    /// Lane masks for the first `cols` of sixteen columns (two 8-lane halves).
    #[inline(always)]
    unsafe fn masks(cols: usize) -> [__m256i; 2] {
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let c = cols as i32;
        [
            _mm256_cmpgt_epi32(_mm256_set1_epi32(c), lanes),
            _mm256_cmpgt_epi32(_mm256_set1_epi32(c - 8), lanes),
        ]
    }

    /// `ROWS × cols` elements of `C`; `FULL` means `cols == 16` (no masking).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile<const ROWS: usize, const FULL: bool, K: KOffset>(t: &TileArgs, koff: K) {
        // SAFETY: every pointer below stays inside the buffers `fits` checked: rows and
        // columns of the tile, `k` below the call's `k`, masked lanes past `cols` untouched.
        unsafe {
            let mask = masks(t.cols);
            let load = |p: *const f32, h: usize| {
                if FULL {
                    _mm256_loadu_ps(p.add(8 * h))
                } else {
                    _mm256_maskload_ps(p.add(8 * h), mask[h])
                }
            };
            let mut acc = [[_mm256_setzero_ps(); 2]; ROWS];
            if t.accumulate {
                for (r, row) in acc.iter_mut().enumerate() {
                    let p = t.c.add(r * t.ldc);
                    row[0] = load(p, 0);
                    row[1] = load(p, 1);
                }
            }
            let mut rowp = [std::ptr::null::<f32>(); ROWS];
            for (r, p) in rowp.iter_mut().enumerate() {
                *p = t.a.add(t.origins[r]);
            }
            for kk in t.k0..t.k0 + t.k {
                let bp = t.b.add(kk * t.ldb);
                let b0 = load(bp, 0);
                let b1 = load(bp, 1);
                let off = koff.at(kk);
                for r in 0..ROWS {
                    let av = _mm256_broadcast_ss(&*rowp[r].add(off));
                    acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
                    acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
                }
            }
            let bias: [__m256; 2] = if t.bias.is_null() {
                [_mm256_setzero_ps(); 2]
            } else {
                [load(t.bias, 0), load(t.bias, 1)]
            };
            let zero = _mm256_setzero_ps();
            for (r, row) in acc.iter().enumerate() {
                let p = t.c.add(r * t.ldc);
                for h in 0..2 {
                    let mut v = row[h];
                    if !t.bias.is_null() {
                        v = _mm256_add_ps(v, bias[h]);
                    }
                    if t.relu {
                        // `max(v, 0)` gives 0 for NaN, like `f32::max(v, 0.0)`.
                        v = _mm256_max_ps(v, zero);
                    }
                    if FULL {
                        _mm256_storeu_ps(p.add(8 * h), v);
                    } else {
                        _mm256_maskstore_ps(p.add(8 * h), mask[h], v);
                    }
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod kernel {
    use super::{Epilogue, Lhs};

    /// Never called: `available` is false off x86-64.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn run(
        _: Lhs<'_>,
        _: usize,
        _: usize,
        _: usize,
        _: &[f32],
        _: usize,
        _: usize,
        _: &mut [f32],
        _: usize,
        _: bool,
        _: Epilogue<'_>,
    ) {
    }
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
mod tests;
