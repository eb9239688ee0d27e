//! The x86-64 tile loop of [`super::gemm`]: AVX2 + FMA register tiles of `C` (up to 6 × 16,
//! twelve 8-lane accumulators) summed over blocks of `k` from broadcasts of `A` and loads of
//! `B` rows, with the epilogue (bias, relu) applied as each tile is stored.
//!
//! Input: a [`GemmCall`] that `super::fits` accepted and a slice of rows of `C`. Output: those
//! rows of `C`. Invariants: the summation order of every element is fixed (see the parent
//! module), independent of tiling; every pointer this module forms stays inside a buffer that
//! `super::fits` checked, which is what each `# Safety` section asks of its caller.

use std::arch::x86_64::{
    __m256, __m256i, _mm256_add_ps, _mm256_broadcast_ss, _mm256_cmpgt_epi32, _mm256_fmadd_ps,
    _mm256_loadu_ps, _mm256_maskload_ps, _mm256_maskstore_ps, _mm256_max_ps, _mm256_set1_epi32,
    _mm256_setr_epi32, _mm256_setzero_ps, _mm256_storeu_ps,
};

use super::{ConvRows, Epilogue, GemmCall, Lhs, KC, MR, NR, SMALL_LHS};

/// Rows `row0..row0 + m` of `call`'s product into `out` (which starts at row `row0` of
/// `C`).
///
/// # Safety
/// The CPU supports AVX2 and FMA; `super::fits` accepted `call` with the whole of `C`; and
/// `out` holds rows `row0..row0 + m` of that `C` (so `row0 + m <= call.m`).
#[inline]
pub(super) unsafe fn run(call: &GemmCall<'_>, row0: usize, m: usize, out: &mut [f32]) {
    let panel = Panel {
        row0,
        m,
        k: call.k,
        n: call.n,
        b: call.rhs.as_ptr(),
        ldb: call.ldb,
        c: out.as_mut_ptr(),
        ldc: call.ldc,
        accumulate: call.accumulate,
        epilogue: call.epilogue,
    };
    // SAFETY: forwarded from the caller.
    unsafe {
        match call.lhs {
            Lhs::Strided {
                data,
                row_stride,
                col_stride,
            } => drive(
                data.as_ptr(),
                |i, rows| tile_origins(i, rows, |i| i * row_stride),
                Strided(col_stride),
                panel,
            ),
            Lhs::Gather {
                data,
                row_offsets,
                k_offsets,
            } => drive(
                data.as_ptr(),
                // `fits` checked the table's length when anything is loaded (k > 0).
                |i, rows| tile_origins(i, rows, |i| row_offsets.get(i).copied().unwrap_or(0)),
                Table(k_offsets.as_ptr()),
                panel,
            ),
            Lhs::Conv {
                data,
                geometry,
                k_offsets,
            } => {
                let walk = std::cell::Cell::new(ConvWalk::default());
                drive(
                    data.as_ptr(),
                    |i, rows| conv_origins(&geometry, &walk, i, rows),
                    Table(k_offsets.as_ptr()),
                    panel,
                );
            }
        }
    }
}

/// The origins of rows `i..i + rows` (`rows` in `1..=MR`) by `origin`; the entries past
/// `rows` repeat the last row (computed, never stored).
#[inline(always)]
fn tile_origins(i: usize, rows: usize, origin: impl Fn(usize) -> usize) -> [usize; MR] {
    let mut origins = [0usize; MR];
    for (r, o) in origins.iter_mut().enumerate() {
        *o = origin(i + r.min(rows - 1));
    }
    origins
}

/// Where a walk over a convolution's output pixels stands: the row it reaches next and that
/// row's sample and output position.
#[derive(Clone, Copy, Default)]
struct ConvWalk {
    next: usize,
    sample: usize,
    oy: usize,
    ox: usize,
}

/// [`tile_origins`] for [`Lhs::Conv`] rows: row tiles come in order, so the walk steps from
/// pixel to pixel with additions and divides only when a tile does not start where the last
/// one ended (a new block of `k`, a new column pass, another thread's rows).
#[inline(always)]
fn conv_origins(
    g: &ConvRows,
    walk: &std::cell::Cell<ConvWalk>,
    i: usize,
    rows: usize,
) -> [usize; MR] {
    let mut w = walk.get();
    if w.next != i || g.ow == 0 || g.pixels == 0 {
        // `fits` checked the geometry (`ow` and `pixels` non-zero) when anything is loaded.
        let p = i % g.pixels.max(1);
        w = ConvWalk {
            next: i,
            sample: i / g.pixels.max(1),
            oy: p / g.ow.max(1),
            ox: p % g.ow.max(1),
        };
    }
    let oh = g.pixels / g.ow.max(1);
    let mut origins = [0usize; MR];
    for (r, o) in origins.iter_mut().enumerate() {
        *o = w.sample * g.sample_len + w.oy * g.row_step + w.ox * g.col_step;
        if r + 1 < rows {
            w.step(g.ow, oh);
        }
    }
    // Step past the tile's last row for the next tile.
    w.next = i + rows;
    w.step(g.ow, oh);
    walk.set(w);
    origins
}

impl ConvWalk {
    /// To the next output pixel of an `oh × ow` output: along the row, then down, then to the
    /// next sample.
    #[inline(always)]
    fn step(&mut self, ow: usize, oh: usize) {
        self.ox += 1;
        if self.ox == ow {
            self.ox = 0;
            self.oy += 1;
            if self.oy == oh {
                self.oy = 0;
                self.sample += 1;
            }
        }
    }
}

/// The part of a call one [`drive`] runs, as raw pointers: rows `row0..row0 + m` of `C`
/// (`c` points at row `row0`), all `k` and `n`, `B` at `b`.
#[derive(Clone, Copy)]
struct Panel<'e> {
    row0: usize,
    m: usize,
    k: usize,
    n: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    epilogue: Epilogue<'e>,
}

/// The offset of column `k` of `A` from a row's origin.
trait KOffset: Copy {
    /// # Safety
    /// `k` is below the `k` of the call.
    unsafe fn at(self, k: usize) -> usize;
}

/// Columns of `A` a fixed stride apart (a row-major matrix or its transpose).
#[derive(Clone, Copy)]
struct Strided(usize);

impl KOffset for Strided {
    /// `k · stride`.
    ///
    /// # Safety
    /// None beyond [`KOffset::at`]'s (this one reads no memory).
    #[inline(always)]
    unsafe fn at(self, k: usize) -> usize {
        k * self.0
    }
}

/// Columns of `A` at the offsets of a table (a convolution's taps).
#[derive(Clone, Copy)]
struct Table(*const usize);

impl KOffset for Table {
    /// Entry `k` of the table.
    ///
    /// # Safety
    /// As [`KOffset::at`]: `k` is below the call's `k`, which `super::fits` checked is the
    /// table's length.
    #[inline(always)]
    unsafe fn at(self, k: usize) -> usize {
        // SAFETY: the table has `k` entries (checked by `fits`), and `k` is below that.
        unsafe { *self.0.add(k) }
    }
}

/// Tiles the rows and columns and runs each register tile.
///
/// # Safety
/// The CPU supports AVX2 and FMA, and every element of `A` (at `a`, rows `i..i + rows` at
/// `origins(i, rows)`, column `k` at `koff.at(k)`), `B` and `C` that the panel covers lies inside
/// a buffer that `super::fits` checked.
#[target_feature(enable = "avx2,fma")]
unsafe fn drive<K: KOffset>(
    a: *const f32,
    origins: impl Fn(usize, usize) -> [usize; MR],
    koff: K,
    panel: Panel<'_>,
) {
    let k = panel.k;
    // `k` in blocks of at most `KC`: a block of `B` (`KC × n`) stays in L2 while every row
    // tile passes over it. Between blocks the partial sums wait in `C` (exactly as they
    // were in registers), so the blocking does not change any result.
    let blocks = k.div_ceil(KC).max(1);
    let per_block = k.div_ceil(blocks);
    for block in 0..blocks {
        let k0 = block * per_block;
        let len = per_block.min(k - k0.min(k));
        let last = block + 1 == blocks;
        let finish = if last { panel.epilogue } else { Epilogue::NONE };
        let part = Panel {
            accumulate: panel.accumulate || block > 0,
            epilogue: finish,
            ..panel
        };
        drive_block(a, &origins, koff, part, (k0, len));
    }
}

/// One block `k0..k0 + k` of the panel's `k` for every row and column tile.
///
/// # Safety
/// As [`drive`], with `k0 + k` at most the panel's `k`.
#[target_feature(enable = "avx2,fma")]
unsafe fn drive_block<K: KOffset>(
    a: *const f32,
    origins: &impl Fn(usize, usize) -> [usize; MR],
    koff: K,
    panel: Panel<'_>,
    (k0, k): (usize, usize),
) {
    let Panel {
        row0,
        m,
        n,
        b,
        ldb,
        c,
        ldc,
        accumulate,
        epilogue,
        ..
    } = panel;
    let bias = epilogue.bias.map_or(std::ptr::null(), <[f32]>::as_ptr);
    // Row tiles of nearly equal height (5 or 6 rows for `m ≥ 5`): a short last tile would
    // have too few accumulators to hide the multiply-add latency.
    let tiles = m.div_ceil(MR);
    let (base, extra) = (m / tiles.max(1), m % tiles.max(1));
    let tile_rows = |t: usize| base + usize::from(t < extra);
    // Rows past the end of a tile repeat its last row: computed, never stored.
    let row_tile = |i: usize, rows: usize| (rows, origins(row0 + i, rows));
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
        // A small `A` block stays in L1 or L2: walk the columns outside, so each panel of
        // `B` is read from memory once and then reused from L1 by every row tile.
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
///
/// # Safety
/// The CPU supports AVX2 and FMA, and the tile's rows, columns and `k` lie inside a call
/// that `super::fits` accepted (`t.rows` in `1..=MR`, `t.cols` in `1..=NR`).
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
///
/// # Safety
/// The CPU supports AVX2 (the caller is a `target_feature` function that requires it).
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
///
/// # Safety
/// As [`dispatch`], with `ROWS == t.rows` and `FULL` only when `t.cols == NR`.
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
