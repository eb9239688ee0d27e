//! The x86-64 tile loop of [`super::gemm`]: the walk over rows, columns and blocks of `k`
//! that hands each register tile of `C` to a tile set ([`Tiles`]): AVX2 + FMA tiles of up to
//! 6 × 16 (`avx2.rs`) or AVX-512 tiles of up to 10 × 32 (`avx512.rs`), each summed over a
//! block of `k` from broadcasts of `A` and loads of `B` rows, with the epilogue (bias, relu)
//! applied as the tile is stored.
//!
//! Input: a [`GemmCall`] that `super::fits` accepted and a slice of rows of `C`. Output: those
//! rows of `C`. Invariants: the summation order of every element is fixed (see the parent
//! module), independent of tiling and of the tile set, so both sets give the same bits; every
//! pointer this module forms stays inside a buffer that `super::fits` checked, which is what
//! each `# Safety` section asks of its caller.

use super::{ConvRows, Epilogue, GemmCall, Lhs, KC, SMALL_LHS};

mod avx2;
mod avx512;

pub(super) use avx2::Avx2;
pub(super) use avx512::Avx512;

/// Most rows of a register tile in any tile set (the length of a tile's origin table).
const MAX_ROWS: usize = 10;

/// A set of register tiles for one instruction set: their largest shape and the function
/// that runs one tile of any smaller shape.
pub(super) trait Tiles {
    /// Rows of `C` per full tile (at most [`MAX_ROWS`]).
    const ROWS: usize;
    /// Columns of `C` per full tile.
    const COLS: usize;
    /// Runs one tile.
    ///
    /// # Safety
    /// The CPU has the set's instructions, and the tile's rows, columns and `k` lie inside a
    /// call that `super::fits` accepted (`t.rows` in `1..=ROWS`, `t.cols` in `1..=COLS`).
    unsafe fn tile<K: KOffset>(t: &TileArgs, koff: K);
}

/// Rows `row0..row0 + m` of `call`'s product into `out` (which starts at row `row0` of
/// `C`).
///
/// # Safety
/// The CPU has `T`'s instructions; `super::fits` accepted `call` with the whole of `C`; and
/// `out` holds rows `row0..row0 + m` of that `C` (so `row0 + m <= call.m`).
#[inline]
pub(super) unsafe fn run<T: Tiles>(call: &GemmCall<'_>, row0: usize, m: usize, out: &mut [f32]) {
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
            } => drive::<T, _>(
                data.as_ptr(),
                |i, rows| tile_origins(i, rows, |i| i * row_stride),
                Strided(col_stride),
                panel,
            ),
            Lhs::Gather {
                data,
                row_offsets,
                k_offsets,
            } => drive::<T, _>(
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
                drive::<T, _>(
                    data.as_ptr(),
                    |i, rows| conv_origins(&geometry, &walk, i, rows),
                    Table(k_offsets.as_ptr()),
                    panel,
                );
            }
        }
    }
}

/// The origins of rows `i..i + rows` (`rows` in `1..=MAX_ROWS`) by `origin`; the entries
/// past `rows` repeat the last row (computed, never stored).
#[inline(always)]
fn tile_origins(i: usize, rows: usize, origin: impl Fn(usize) -> usize) -> [usize; MAX_ROWS] {
    let mut origins = [0usize; MAX_ROWS];
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
) -> [usize; MAX_ROWS] {
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
    let mut origins = [0usize; MAX_ROWS];
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
pub(super) trait KOffset: Copy {
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

/// Tiles the rows and columns and runs each register tile with `T`'s tiles.
///
/// # Safety
/// The CPU has `T`'s instructions, and every element of `A` (at `a`, rows `i..i + rows` at
/// `origins(i, rows)`, column `k` at `koff.at(k)`), `B` and `C` that the panel covers lies inside
/// a buffer that `super::fits` checked.
unsafe fn drive<T: Tiles, K: KOffset>(
    a: *const f32,
    origins: impl Fn(usize, usize) -> [usize; MAX_ROWS],
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
        // SAFETY: forwarded from the caller; the block lies inside the panel's `k`.
        unsafe { drive_block::<T, K>(a, &origins, koff, part, (k0, len)) };
    }
}

/// One block `k0..k0 + k` of the panel's `k` for every row and column tile.
///
/// # Safety
/// As [`drive`], with `k0 + k` at most the panel's `k`.
unsafe fn drive_block<T: Tiles, K: KOffset>(
    a: *const f32,
    origins: &impl Fn(usize, usize) -> [usize; MAX_ROWS],
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
    // Row tiles of nearly equal height (for AVX2, 5 or 6 rows for `m ≥ 5`): a short last
    // tile would have too few accumulators to hide the multiply-add latency.
    let tiles = m.div_ceil(T::ROWS);
    let (base, extra) = (m / tiles.max(1), m % tiles.max(1));
    let tile_rows = |t: usize| base + usize::from(t < extra);
    // Rows past the end of a tile repeat its last row: computed, never stored.
    let row_tile = |i: usize, rows: usize| (rows, origins(row0 + i, rows));
    let tile_at = |i: usize, rows: usize, origins: &[usize; MAX_ROWS], j: usize| TileArgs {
        a,
        origins: *origins,
        rows,
        cols: T::COLS.min(n - j),
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
                T::tile(&tile_at(i, rows, &origins, j), koff);
                i += rows;
            }
            j += T::COLS;
        }
    } else {
        // Rows outside: a row tile's `A` stays in L1 across every panel of `B` (in L2).
        let mut i = 0;
        for t in 0..tiles {
            let (rows, origins) = row_tile(i, tile_rows(t));
            let mut j = 0;
            while j < n {
                T::tile(&tile_at(i, rows, &origins, j), koff);
                j += T::COLS;
            }
            i += rows;
        }
    }
}

/// One register tile's operands: `a` and its row origins, the tile's first `B` column and
/// `C` element, and the epilogue's bias (null for none) from the tile's first column.
pub(super) struct TileArgs {
    pub(super) a: *const f32,
    pub(super) origins: [usize; MAX_ROWS],
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) k0: usize,
    pub(super) k: usize,
    pub(super) b: *const f32,
    pub(super) ldb: usize,
    pub(super) c: *mut f32,
    pub(super) ldc: usize,
    pub(super) accumulate: bool,
    pub(super) bias: *const f32,
    pub(super) relu: bool,
}
