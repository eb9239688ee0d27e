//! The LSTM cell with explicit AVX2 + FMA intrinsics: the four gate activations, the cell
//! update and `h = o⊙tanh(c)`, eight units at a time (sixteen with AVX-512, the same bits:
//! the arithmetic is written once over a lane type, `simd_act/cell.rs` over
//! `simd_act/lanes.rs`), for inference ([`lstm_cell`]) and for
//! the training forward, which also keeps the gates and `tanh(c)` for backward
//! ([`lstm_cell_train`]).
//!
//! Why not [`super::fastmath`] under [`super::simd_train::vectorized`]: that path must give
//! the baseline build's bits, so it has no fused multiply-adds, and its loop (five
//! transcendental functions, each a chain of about fifty cycles, feeding one another through
//! `c`) keeps so many constants and partial results alive that LLVM reloads constants from
//! memory and the out-of-order window holds barely two iterations. Here:
//! - `eʳ − 1` on `|r| ≤ ln2/2` is `r·q(r)`, `q` a degree-5 polynomial fitted for minimax
//!   relative error (1.7e-8 in exact arithmetic, so the f32 rounding dominates), evaluated by
//!   Estrin's scheme (three fused multiply-adds deep instead of five);
//! - `σ(x) = 1 / (1 + 2ⁿ + 2ⁿ·r·q(r))` for `−x = n·ln2 + r` (one division);
//! - `tanh x = −m / (2 + m)` with `m = expm1(−2|x|)`, sign restored, accurate near 0;
//! - a sample's step runs in two passes over its units: the gates and the new `c` (four
//!   independent chains per vector), then `tanh(c)⊙o`, so each pass's chains overlap;
//! - inference keeps no gate, so each product of two activations is one quotient
//!   (`σ(a)·tanh(b) = ±|m_b| / ((1 + e⁻ᵃ)(2 + m_b))`, `σ(a_f)·c = c / (1 + e^−a_f)`): three
//!   divisions per unit instead of five (training keeps the gates, so it divides for each).
//!
//! Accuracy (tests below, against f64 over dense sweeps): sigmoid within 4e-7 relative,
//! tanh within 5e-7 relative. The cell computes the same function as the fastmath path to
//! these bounds; the bits differ (fused multiply-adds, another polynomial), so — as with
//! [`super::simd_gemm`] — a CPU without AVX2 + FMA, where the cells return `false` and the
//! callers run the fastmath cell, gives slightly different numbers. A given machine is
//! deterministic: the functions are pure and per sample, so no thread count changes a bit.
//!
//! Like [`super::simd_gemm`], this module may use `unsafe`: calling the `target_feature`
//! function behind run-time detection, and unaligned vector loads and stores through pointers
//! into slices whose lengths [`lstm_cell`] checks once per call.

#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
use super::isa::Isa;

/// The LSTM cell step of one sample (Keras gate order i, f, c, o): with `a = z + addend`
/// (`4U` each), `c ← σ(a_f)⊙c + σ(a_i)⊙tanh(a_c)`, `h ← σ(a_o)⊙tanh(c)` (`U` each).
/// Returns `false`, touching nothing, when the CPU lacks AVX2 + FMA or the lengths disagree.
pub fn lstm_cell(z: &[f32], addend: &[f32], c: &mut [f32], h: &mut [f32]) -> bool {
    let u = c.len();
    lstm_cells(StepCells {
        units: u,
        z,
        addend: Addend::Shared(addend),
        c,
        h: Rows::packed(h, u),
        out: None,
    })
}

/// Rows of a buffer at a fixed distance: row `s` is `data[offset + s·stride..][..len]`.
pub struct Rows<'a> {
    pub data: &'a mut [f32],
    pub offset: usize,
    pub stride: usize,
}

impl<'a> Rows<'a> {
    /// Rows of `len` one after another from the start of `data`.
    pub fn packed(data: &'a mut [f32], len: usize) -> Rows<'a> {
        Rows {
            data,
            offset: 0,
            stride: len,
        }
    }

    /// Whether `rows` rows of `len` lie inside `data` without overlapping (checked
    /// arithmetic).
    fn fit(&self, rows: usize, len: usize) -> bool {
        rows == 0
            || (self.stride >= len
                && (rows - 1)
                    .checked_mul(self.stride)
                    .and_then(|last| last.checked_add(self.offset))
                    .and_then(|last| last.checked_add(len))
                    .is_some_and(|end| end <= self.data.len()))
    }
}

/// What a step's cells add to their `z`: one vector for every row (the bias), or per row a
/// row of a table (a token's projection row, bias inside): row `s` takes row
/// `index[first + s·stride]` of `table`.
pub enum Addend<'a> {
    Shared(&'a [f32]),
    Table {
        table: &'a [f32],
        index: &'a [usize],
        first: usize,
        stride: usize,
    },
}

/// One timestep of inference cells over a batch's rows: `z` holds each row's `4U` gate sums
/// one after another, `c` each row's `U` cell state (updated in place), `h` receives `h_t`,
/// and so does `out` when given (the layer's output rows).
pub struct StepCells<'a> {
    pub units: usize,
    pub z: &'a [f32],
    pub addend: Addend<'a>,
    pub c: &'a mut [f32],
    pub h: Rows<'a>,
    pub out: Option<Rows<'a>>,
}

/// [`lstm_cell`] for every row of a step in one call (the constants are set up once, and one
/// row's work overlaps the next's). `false`, touching nothing, without AVX2 + FMA or when
/// the lengths disagree, a table row lies outside its table, or `h` and `out` rows overlap.
pub fn lstm_cells(step: StepCells<'_>) -> bool {
    let u = step.units;
    let gu = 4 * u;
    let n = step.c.len() / u.max(1);
    let addend_fits = match &step.addend {
        Addend::Shared(bias) => bias.len() == gu,
        Addend::Table {
            table,
            index,
            first,
            stride,
        } => (0..n).all(|s| {
            s.checked_mul(*stride)
                .and_then(|at| at.checked_add(*first))
                .and_then(|at| index.get(at))
                .and_then(|&row| row.checked_add(1)?.checked_mul(gu))
                .is_some_and(|end| end <= table.len())
        }),
    };
    if u == 0
        || step.c.len() != n * u
        || step.z.len() != n * gu
        || !addend_fits
        || !step.h.fit(n, u)
        || !step.out.as_ref().is_none_or(|o| o.fit(n, u))
        || !available()
    {
        return false;
    }
    if n == 0 {
        // Nothing to run (and no row offset to take a pointer at).
        return true;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let (addend, addend_index, index_stride) = match step.addend {
            Addend::Shared(bias) => (bias.as_ptr(), std::ptr::null(), 0),
            Addend::Table {
                table,
                index,
                first,
                stride,
            } => (table.as_ptr(), index[first..].as_ptr(), stride),
        };
        let (out, out_stride) = match step.out {
            Some(o) => (o.data[o.offset..].as_mut_ptr(), o.stride),
            None => (std::ptr::null_mut(), 0),
        };
        let p = cell::RowPtrs {
            rows: n,
            z: step.z.as_ptr(),
            addend,
            addend_index,
            index_stride,
            c: step.c.as_mut_ptr(),
            h: step.h.data[step.h.offset..].as_mut_ptr(),
            h_stride: step.h.stride,
            out,
            out_stride,
        };
        // SAFETY: AVX2 and FMA are present (`available`); every row's range was checked
        // above (`fit`, the table rows, the lengths); `h`, `out`, `c` and `z` are separate
        // borrows, and `fit` keeps rows within each apart (stride ≥ u).
        unsafe { run_cells(p, u) };
        return true;
    }
    #[allow(unreachable_code)]
    false
}

/// One sample's step of the training forward, the buffers [`super::rnn`]'s cache keeps for
/// backward: `U` units, gate blocks `4U`.
pub struct TrainCell<'a> {
    /// The input side `x_t·W + b` and the recurrent side `h_{t−1}·U`.
    pub xw: &'a [f32],
    pub zrec: &'a [f32],
    pub c_prev: &'a [f32],
    /// Out: the activated gates `i, f, g, o`.
    pub gates: &'a mut [f32],
    /// Out: `c_t`, when a next step reads it.
    pub c_next: Option<&'a mut [f32]>,
    /// Out: `tanh(c_t)`.
    pub tanh_c: &'a mut [f32],
    /// Out: `h_t = o⊙tanh(c_t)`.
    pub h: &'a mut [f32],
}

/// [`lstm_cell`] for the training forward, keeping what backward reads; `false`, touching
/// nothing, without AVX2 + FMA or on mismatched lengths (then the fastmath cell runs).
pub fn lstm_cell_train(step: TrainCell<'_>) -> bool {
    let u = step.c_prev.len();
    let next_fits = step.c_next.as_ref().is_none_or(|c| c.len() == u);
    if u == 0
        || !next_fits
        || step.tanh_c.len() != u
        || step.h.len() != u
        || step.xw.len() != 4 * u
        || step.zrec.len() != 4 * u
        || step.gates.len() != 4 * u
        || !available()
    {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let p = cell::CellPtrs {
            pre_a: step.xw.as_ptr(),
            pre_b: step.zrec.as_ptr(),
            c_prev: step.c_prev.as_ptr(),
            cell: step.tanh_c.as_mut_ptr(),
            c_next: step
                .c_next
                .map_or(std::ptr::null_mut(), <[f32]>::as_mut_ptr),
            gates: step.gates.as_mut_ptr(),
            h: step.h.as_mut_ptr(),
            h_copy: std::ptr::null_mut(),
        };
        // SAFETY: AVX2 and FMA are present; the lengths were checked above; the slices are
        // separate borrows, so nothing aliases.
        unsafe { run_cell(p, u) };
        return true;
    }
    #[allow(unreachable_code)]
    false
}

/// One timestep `t` of the training forward over a batch's rows, in the RNN cache's layout:
/// `xw`, `gates` `[N, T, 4U]`; `c`, `tanh_c` `[N, T, U]` (`c` holds `c_{t−1}` at step `t`,
/// and receives `c_t` at step `t + 1` when that exists); `zrec` `[N, 4U]`; `h` `[N, U]`.
pub struct TrainStep<'a> {
    pub units: usize,
    pub steps: usize,
    pub t: usize,
    pub xw: &'a [f32],
    pub zrec: &'a [f32],
    pub c: &'a mut [f32],
    pub gates: &'a mut [f32],
    pub tanh_c: &'a mut [f32],
    pub h: &'a mut [f32],
}

/// [`lstm_cell_train`] for every row of a step in one call; `false`, touching nothing,
/// without AVX2 + FMA or when a length disagrees with the layout.
pub fn lstm_cells_train(step: TrainStep<'_>) -> bool {
    let (u, steps) = (step.units, step.steps);
    let n = step.h.len() / u.max(1);
    let per_step = |len: usize| n.checked_mul(steps).and_then(|r| r.checked_mul(len));
    let fits = |buf: usize, len: usize| per_step(len) == Some(buf);
    if u == 0
        || step.t >= steps
        || step.h.len() != n * u
        || step.zrec.len() != n * 4 * u
        || !fits(step.xw.len(), 4 * u)
        || !fits(step.gates.len(), 4 * u)
        || !fits(step.c.len(), u)
        || !fits(step.tanh_c.len(), u)
        || !available()
    {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let p = cell::TrainRowPtrs {
            rows: n,
            steps,
            t: step.t,
            xw: step.xw.as_ptr(),
            zrec: step.zrec.as_ptr(),
            c: step.c.as_mut_ptr(),
            gates: step.gates.as_mut_ptr(),
            tanh_c: step.tanh_c.as_mut_ptr(),
            h: step.h.as_mut_ptr(),
        };
        // SAFETY: AVX2 and FMA are present; every buffer's length is the layout's (checked
        // above), so each row's ranges lie inside; the buffers are separate borrows, and
        // within `c` row `s` reads `c_{t−1}` and writes `c_t` of its own sequence only.
        unsafe { run_cells(p, u) };
        return true;
    }
    #[allow(unreachable_code)]
    false
}

/// Whether [`lstm_cell`] runs here (AVX2 + FMA detected at run time).
pub fn available() -> bool {
    #[cfg(test)]
    if super::simd_train::forced_baseline() {
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

/// `xs[i] ← σ(xs[i])` and `ys[i] ← tanh(ys[i])` with the cell's vector functions; `false`
/// (nothing written) without AVX2 + FMA. For the accuracy tests.
#[cfg(test)]
fn activate(sigmoid: &mut [f32], tanh: &mut [f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if available() {
            // SAFETY: AVX2 and FMA are present.
            unsafe { cell::activate(sigmoid, tanh) };
            return true;
        }
    }
    false
}

/// Runs a step's rows at the width [`Isa::current`] chose.
///
/// # Safety
/// As `cell::lstm_cells_avx2` (AVX2 + FMA present, every row's pointers valid and apart).
#[cfg(target_arch = "x86_64")]
unsafe fn run_cells<R: cell::RowSource>(p: R, u: usize) {
    // SAFETY: forwarded from the caller; `Isa::current` says AVX-512 only where detected.
    unsafe {
        match Isa::current() {
            Isa::Avx512 => cell::lstm_cells_avx512(p, u),
            Isa::Avx2 => cell::lstm_cells_avx2(p, u),
        }
    }
}

/// Runs the cell at the width [`Isa::current`] chose.
///
/// # Safety
/// As `cell::lstm_cell_avx2` (AVX2 + FMA present, pointers valid for the lengths).
#[cfg(target_arch = "x86_64")]
unsafe fn run_cell(p: cell::CellPtrs, u: usize) {
    // SAFETY: forwarded from the caller; `Isa::current` says AVX-512 only where detected.
    unsafe {
        match Isa::current() {
            Isa::Avx512 => cell::lstm_cell_avx512(p, u),
            Isa::Avx2 => cell::lstm_cell_avx2(p, u),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod cell;
#[cfg(target_arch = "x86_64")]
mod lanes;

#[cfg(test)]
mod step_tests;
#[cfg(test)]
mod tests;
