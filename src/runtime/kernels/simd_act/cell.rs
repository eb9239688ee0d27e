//! The LSTM cell's arithmetic, written once over [`Lanes`] and compiled at two widths by the
//! entry points at the bottom: [`lstm_cell_avx2`] (8 lanes) and [`lstm_cell_avx512`]
//! (16 lanes); `cell/rows.rs` runs a step's rows through it in one call. Lane by lane both run the same operations in the same order (the parent
//! module's doc gives the algorithm), so they give the same bits.
//!
//! Everything here but the entry points is `#[inline(always)]`, so it compiles inside the
//! entry point's `target_feature` and each [`Lanes`] method becomes one instruction.

#![allow(clippy::inline_always)]

use std::arch::x86_64::{__m256, __m512};

use super::lanes::Lanes;

mod rows;
pub(super) use rows::{lstm_cells_avx2, lstm_cells_avx512, RowPtrs, RowSource, TrainRowPtrs};

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` split so that `n·LN2_HI` is exact for `|n| < 2¹²`.
const LN2_HI: f32 = 0.693_115_23;
const LN2_LO: f32 = 3.194_618_3e-5;
/// Adding then subtracting `1.5·2²³` rounds to the nearest integer.
const ROUNDER: f32 = 12_582_912.0;
/// `q(r) = 1 + Q[0]·r + … + Q[4]·r⁵ ≈ (eʳ − 1)/r` on `|r| ≤ ln2/2`: fitted by iteratively
/// reweighted least squares to the minimax relative error (1.7e-8 with these f32 values).
const Q: [f32; 5] = [
    0.499_999_97,
    0.166_665_43,
    0.041_667_2,
    0.008_366_508,
    0.001_388_25,
];
/// Most lanes of any width (the tail's padded buffers).
const MAX_WIDTH: usize = 16;

/// The constants, broadcast once per call.
#[derive(Clone, Copy)]
struct Consts<V> {
    log2e: V,
    ln2_hi: V,
    ln2_lo: V,
    rounder: V,
    /// `127 − bits(ROUNDER)`: added to `bits(x·log2e + ROUNDER)` gives `n + 127`.
    exponent_bias: i32,
    q: [V; 5],
    one: V,
    minus_two: V,
    lowest: V,
    highest: V,
    sign: V,
}

#[inline(always)]
unsafe fn consts<V: Lanes>() -> Consts<V> {
    // SAFETY: the caller's CPU has `V`'s instructions.
    unsafe {
        Consts {
            log2e: V::splat(LOG2_E),
            ln2_hi: V::splat(LN2_HI),
            ln2_lo: V::splat(LN2_LO),
            rounder: V::splat(ROUNDER),
            // The bit pattern of ROUNDER (0x4b40_0000) fits an i32.
            exponent_bias: 127 - ROUNDER.to_bits() as i32,
            q: Q.map(|v| V::splat(v)),
            one: V::splat(1.0),
            minus_two: V::splat(-2.0),
            lowest: V::splat(-87.0),
            highest: V::splat(88.0),
            sign: V::splat(-0.0),
        }
    }
}

/// `(2ⁿ, eʳ − 1)` for `x = n·ln2 + r`, `x` in `[-87, 88]` (so `2ⁿ` is a normal float).
#[inline(always)]
unsafe fn reduce<V: Lanes>(k: &Consts<V>, x: V) -> (V, V) {
    // SAFETY: the caller's CPU has `V`'s instructions.
    unsafe {
        let shifted = x.mul_add(k.log2e, k.rounder);
        let n = shifted.sub(k.rounder);
        let r = n.neg_mul_add(k.ln2_hi, x);
        let r = n.neg_mul_add(k.ln2_lo, r);
        // The low mantissa bits of `shifted` hold n in two's complement.
        let pow2 = shifted.exponent(k.exponent_bias);
        // Estrin: q = (1 + Q0·r) + r²·((Q1 + Q2·r) + r²·(Q3 + Q4·r)).
        let r2 = r.mul(r);
        let low = k.q[0].mul_add(r, k.one);
        let mid = k.q[2].mul_add(r, k.q[1]);
        let high = k.q[4].mul_add(r, k.q[3]);
        let upper = high.mul_add(r2, mid);
        let q = upper.mul_add(r2, low);
        (pow2, q.mul(r))
    }
}

/// `1 / (1 + e⁻ˣ)`; `−x` is clamped to `[-87, 88]` (outside, σ is 1 or below 7e-39).
#[inline(always)]
unsafe fn sigmoid<V: Lanes>(k: &Consts<V>, x: V) -> V {
    // SAFETY: the caller's CPU has `V`'s instructions.
    unsafe { k.one.div(sigmoid_denominator(k, x)) }
}

/// `1 + e⁻ˣ`, in `[1, 1.7e38]` (`−x` clamped as in [`sigmoid`]), or NaN for NaN.
#[inline(always)]
unsafe fn sigmoid_denominator<V: Lanes>(k: &Consts<V>, x: V) -> V {
    // SAFETY: the caller's CPU has `V`'s instructions.
    unsafe {
        // `max(lowest, ·)` and `min(highest, ·)` return their second operand for a NaN, so
        // NaN propagates.
        let minus_x = k.highest.min(k.lowest.max(x.xor(k.sign)));
        let (pow2, expm1_r) = reduce(k, minus_x);
        pow2.mul_add(expm1_r, pow2.add(k.one))
    }
}

/// `tanh x = −m / (2 + m)`, `m = expm1(−2|x|)` (clamped at −87, where tanh is ±1).
#[inline(always)]
unsafe fn tanh<V: Lanes>(k: &Consts<V>, x: V) -> V {
    // SAFETY: the caller's CPU has `V`'s instructions.
    unsafe {
        let m = tanh_m(k, x);
        // `m ≤ 0` over `−2 − m < 0`: nonnegative, but −0 for `m = 0`, so the sign is cleared
        // before `x`'s is set.
        let t = m.div(k.minus_two.sub(m));
        k.sign.and_not(t).or(x.and(k.sign))
    }
}

/// `tanh x` as a fraction `(n, d)`: `n = ±|m|` with `x`'s sign, `d = 2 + m` in `[1, 2]`, for
/// `m = expm1(−2|x|)`; so a product with another quotient takes one division.
#[inline(always)]
unsafe fn tanh_fraction<V: Lanes>(k: &Consts<V>, x: V) -> (V, V) {
    // SAFETY: the caller's CPU has `V`'s instructions.
    unsafe {
        let m = tanh_m(k, x);
        let numerator = k.sign.and_not(m).or(x.and(k.sign));
        (numerator, m.sub(k.minus_two))
    }
}

/// `m = expm1(−2|x|)` (in `[−1, 0]`; the argument clamped at −87).
#[inline(always)]
unsafe fn tanh_m<V: Lanes>(k: &Consts<V>, x: V) -> V {
    // SAFETY: the caller's CPU has `V`'s instructions.
    unsafe {
        let magnitude = k.sign.and_not(x);
        let y = k.lowest.max(magnitude.mul(k.minus_two));
        let (pow2, expm1_r) = reduce(k, y);
        pow2.mul_add(expm1_r, pow2.sub(k.one))
    }
}

/// Where one sample's cell reads and writes (gate blocks `u` apart): the pre-activations
/// are `pre_a + pre_b`; `c_t` goes to `cell` (then, in training, `tanh(c_t)` over it) and
/// to `c_next` when not null; the activated gates to `gates` when not null (training),
/// else the output gate waits in `h` between the passes (inference), and `h_t` also goes
/// to `h_copy` when not null (inference only).
#[derive(Clone, Copy)]
pub(super) struct CellPtrs {
    pub pre_a: *const f32,
    pub pre_b: *const f32,
    pub c_prev: *const f32,
    pub cell: *mut f32,
    pub c_next: *mut f32,
    pub gates: *mut f32,
    pub h: *mut f32,
    pub h_copy: *mut f32,
}

/// One sample's cell step over `u` units, `V::WIDTH` at a time; the last `u mod WIDTH` run
/// through copies padded with zeros, so every unit gets the same arithmetic.
///
/// # Safety
/// The CPU supports `V`'s instructions; `pre_a`, `pre_b` (and `gates` when not null) valid
/// for `4u` elements, the others (when not null) for `u`; reads may alias writes only as
/// `c_prev == cell` (read before written, element by element).
#[inline(always)]
unsafe fn lstm_cell<V: Lanes>(p: CellPtrs, u: usize) {
    let w = V::WIDTH;
    // SAFETY: the caller's guarantees; the padded copies hold `w ≤ MAX_WIDTH` lanes per
    // block, and at most `rest < w` elements move between them and the caller's buffers.
    unsafe {
        let k = consts::<V>();
        let whole = u - u % w;
        cell_pass(&k, p, u, whole);
        if whole == u {
            return;
        }
        let rest = u - whole;
        let mut a = [0.0f32; 4 * MAX_WIDTH];
        let mut b = [0.0f32; 4 * MAX_WIDTH];
        let mut g = [0.0f32; 4 * MAX_WIDTH];
        let (mut prev, mut cell, mut next, mut h) = (
            [0.0f32; MAX_WIDTH],
            [0.0f32; MAX_WIDTH],
            [0.0f32; MAX_WIDTH],
            [0.0f32; MAX_WIDTH],
        );
        for gate in 0..4 {
            let from = gate * u + whole;
            std::ptr::copy_nonoverlapping(p.pre_a.add(from), a.as_mut_ptr().add(gate * w), rest);
            std::ptr::copy_nonoverlapping(p.pre_b.add(from), b.as_mut_ptr().add(gate * w), rest);
        }
        std::ptr::copy_nonoverlapping(p.c_prev.add(whole), prev.as_mut_ptr(), rest);
        let padded = CellPtrs {
            pre_a: a.as_ptr(),
            pre_b: b.as_ptr(),
            c_prev: prev.as_ptr(),
            cell: cell.as_mut_ptr(),
            c_next: if p.c_next.is_null() {
                p.c_next
            } else {
                next.as_mut_ptr()
            },
            gates: if p.gates.is_null() {
                p.gates
            } else {
                g.as_mut_ptr()
            },
            h: h.as_mut_ptr(),
            h_copy: std::ptr::null_mut(),
        };
        cell_pass(&k, padded, w, w);
        std::ptr::copy_nonoverlapping(cell.as_ptr(), p.cell.add(whole), rest);
        std::ptr::copy_nonoverlapping(h.as_ptr(), p.h.add(whole), rest);
        if !p.h_copy.is_null() {
            std::ptr::copy_nonoverlapping(h.as_ptr(), p.h_copy.add(whole), rest);
        }
        if !p.c_next.is_null() {
            std::ptr::copy_nonoverlapping(next.as_ptr(), p.c_next.add(whole), rest);
        }
        if !p.gates.is_null() {
            for gate in 0..4 {
                let to = gate * u + whole;
                std::ptr::copy_nonoverlapping(g.as_ptr().add(gate * w), p.gates.add(to), rest);
            }
        }
    }
}

/// Units `0..count` (a multiple of `V::WIDTH`) of a cell whose gate blocks are `u` apart.
///
/// # Safety
/// As [`lstm_cell`], with `count ≤ u`.
#[inline(always)]
unsafe fn cell_pass<V: Lanes>(k: &Consts<V>, p: CellPtrs, u: usize, count: usize) {
    // SAFETY: the caller's guarantees: every offset below is under `4u` (gate blocks) or
    // `count ≤ u` (the rest), a whole vector from a multiple of the width.
    unsafe {
        let pre = |block: usize, j: usize| {
            V::load(p.pre_a.add(block * u + j)).add(V::load(p.pre_b.add(block * u + j)))
        };
        if p.gates.is_null() {
            infer_passes(k, p, count, pre);
            return;
        }
        // Pass 1: the gates and the new cell state.
        for j in (0..count).step_by(V::WIDTH) {
            let i = sigmoid(k, pre(0, j));
            let f = sigmoid(k, pre(1, j));
            let g = tanh(k, pre(2, j));
            let o = sigmoid(k, pre(3, j));
            let cell = f.mul_add(V::load(p.c_prev.add(j)), i.mul(g));
            cell.store(p.cell.add(j));
            if !p.c_next.is_null() {
                cell.store(p.c_next.add(j));
            }
            for (block, v) in [i, f, g, o].into_iter().enumerate() {
                v.store(p.gates.add(block * u + j));
            }
        }
        // Pass 2: h = o⊙tanh(c), keeping tanh(c) in `cell` for backward.
        for j in (0..count).step_by(V::WIDTH) {
            let tc = tanh(k, V::load(p.cell.add(j)));
            tc.store(p.cell.add(j));
            let o = V::load(p.gates.add(3 * u + j));
            o.mul(tc).store(p.h.add(j));
        }
    }
}

/// [`cell_pass`] for inference, where no gate is kept: each product of two activations is
/// one quotient, `σ(a)·tanh(b) = n_b / ((1 + e⁻ᵃ)·d_b)` (see [`tanh_fraction`]; the
/// denominator is at most 1.7e38 · 2, so it stays finite), and `σ(a_f)⊙c = c / (1 + e^−a_f)`:
/// three divisions per unit instead of five, the divisions being the cell's slowest
/// instructions. Between the passes `h` holds the output gate's denominator.
///
/// # Safety
/// As [`cell_pass`].
#[inline(always)]
unsafe fn infer_passes<V: Lanes>(
    k: &Consts<V>,
    p: CellPtrs,
    count: usize,
    pre: impl Fn(usize, usize) -> V,
) {
    // SAFETY: as in `cell_pass`.
    unsafe {
        for j in (0..count).step_by(V::WIDTH) {
            let input = sigmoid_denominator(k, pre(0, j));
            let forget = sigmoid_denominator(k, pre(1, j));
            let (gn, gd) = tanh_fraction(k, pre(2, j));
            let output = sigmoid_denominator(k, pre(3, j));
            let kept = V::load(p.c_prev.add(j)).div(forget);
            let cell = kept.add(gn.div(input.mul(gd)));
            cell.store(p.cell.add(j));
            if !p.c_next.is_null() {
                cell.store(p.c_next.add(j));
            }
            output.store(p.h.add(j));
        }
        for j in (0..count).step_by(V::WIDTH) {
            let (cn, cd) = tanh_fraction(k, V::load(p.cell.add(j)));
            let output = V::load(p.h.add(j));
            let h = cn.div(output.mul(cd));
            h.store(p.h.add(j));
            if !p.h_copy.is_null() {
                h.store(p.h_copy.add(j));
            }
        }
    }
}

/// [`lstm_cell`] on 8-lane vectors.
///
/// # Safety
/// The CPU supports AVX2 and FMA; the rest as [`lstm_cell`].
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn lstm_cell_avx2(p: CellPtrs, u: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { lstm_cell::<__m256>(p, u) }
}

/// [`lstm_cell`] on 16-lane vectors.
///
/// # Safety
/// The CPU supports AVX-512F; the rest as [`lstm_cell`].
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn lstm_cell_avx512(p: CellPtrs, u: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { lstm_cell::<__m512>(p, u) }
}

/// Sigmoid over `s` and tanh over `t` in place, 8 lanes at a time, the last chunk padded
/// with zeros (the accuracy tests' entry).
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[cfg(test)]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn activate(s: &mut [f32], t: &mut [f32]) {
    // SAFETY: the CPU has AVX2 + FMA; each chunk is copied into an 8-float buffer.
    unsafe {
        let k = consts::<__m256>();
        for (xs, tanh_it) in [(s, false), (t, true)] {
            for chunk in xs.chunks_mut(8) {
                let mut lanes = [0.0f32; 8];
                let n = chunk.len();
                lanes[..n].copy_from_slice(chunk);
                let v = __m256::load(lanes.as_ptr());
                let r = if tanh_it { tanh(&k, v) } else { sigmoid(&k, v) };
                r.store(lanes.as_mut_ptr());
                chunk.copy_from_slice(&lanes[..n]);
            }
        }
    }
}
