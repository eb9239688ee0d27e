//! The LSTM cell with explicit AVX2 + FMA intrinsics: the four gate activations, the cell
//! update and `h = o⊙tanh(c)`, eight units at a time, for inference ([`lstm_cell`]) and for
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
//!   independent chains per vector), then `tanh(c)⊙o`, so each pass's chains overlap.
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

/// The LSTM cell step of one sample (Keras gate order i, f, c, o): with `a = z + addend`
/// (`4U` each), `c ← σ(a_f)⊙c + σ(a_i)⊙tanh(a_c)`, `h ← σ(a_o)⊙tanh(c)` (`U` each).
/// Returns `false`, touching nothing, when the CPU lacks AVX2 + FMA or the lengths disagree.
pub fn lstm_cell(z: &[f32], addend: &[f32], c: &mut [f32], h: &mut [f32]) -> bool {
    let u = c.len();
    if u == 0 || h.len() != u || z.len() != 4 * u || addend.len() != 4 * u || !available() {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let cell = c.as_mut_ptr();
        let p = x86::CellPtrs {
            pre_a: z.as_ptr(),
            pre_b: addend.as_ptr(),
            c_prev: cell,
            cell,
            c_next: std::ptr::null_mut(),
            gates: std::ptr::null_mut(),
            h: h.as_mut_ptr(),
        };
        // SAFETY: AVX2 and FMA are present (`available`); the lengths were checked above, and
        // `c` is both `c_prev` and `cell`, the one aliasing `CellPtrs` allows.
        unsafe { x86::lstm_cell(p, u) };
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
        let p = x86::CellPtrs {
            pre_a: step.xw.as_ptr(),
            pre_b: step.zrec.as_ptr(),
            c_prev: step.c_prev.as_ptr(),
            cell: step.tanh_c.as_mut_ptr(),
            c_next: step
                .c_next
                .map_or(std::ptr::null_mut(), <[f32]>::as_mut_ptr),
            gates: step.gates.as_mut_ptr(),
            h: step.h.as_mut_ptr(),
        };
        // SAFETY: AVX2 and FMA are present; the lengths were checked above; the slices are
        // separate borrows, so nothing aliases.
        unsafe { x86::lstm_cell(p, u) };
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
            unsafe { x86::activate(sigmoid, tanh) };
            return true;
        }
    }
    false
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m256, __m256i, _mm256_add_epi32, _mm256_add_ps, _mm256_and_ps, _mm256_andnot_ps,
        _mm256_castps_si256, _mm256_castsi256_ps, _mm256_div_ps, _mm256_fmadd_ps, _mm256_fnmadd_ps,
        _mm256_loadu_ps, _mm256_max_ps, _mm256_min_ps, _mm256_mul_ps, _mm256_or_ps,
        _mm256_set1_epi32, _mm256_set1_ps, _mm256_slli_epi32, _mm256_storeu_ps, _mm256_sub_ps,
        _mm256_xor_ps,
    };

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

    /// The constants, broadcast once per call.
    #[derive(Clone, Copy)]
    struct Consts {
        log2e: __m256,
        ln2_hi: __m256,
        ln2_lo: __m256,
        rounder: __m256,
        /// `127 − bits(ROUNDER)`: added to `bits(x·log2e + ROUNDER)` gives `n + 127`.
        exponent_bias: __m256i,
        q: [__m256; 5],
        one: __m256,
        minus_two: __m256,
        lowest: __m256,
        highest: __m256,
        sign: __m256,
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn consts() -> Consts {
        // The bit pattern of ROUNDER (0x4b40_0000) fits an i32.
        #[allow(clippy::cast_possible_wrap)]
        let rounder_bits = ROUNDER.to_bits() as i32;
        Consts {
            log2e: _mm256_set1_ps(LOG2_E),
            ln2_hi: _mm256_set1_ps(LN2_HI),
            ln2_lo: _mm256_set1_ps(LN2_LO),
            rounder: _mm256_set1_ps(ROUNDER),
            exponent_bias: _mm256_set1_epi32(127 - rounder_bits),
            q: Q.map(|v| _mm256_set1_ps(v)),
            one: _mm256_set1_ps(1.0),
            minus_two: _mm256_set1_ps(-2.0),
            lowest: _mm256_set1_ps(-87.0),
            highest: _mm256_set1_ps(88.0),
            sign: _mm256_set1_ps(-0.0),
        }
    }

    /// `(2ⁿ, eʳ − 1)` for `x = n·ln2 + r`, `x` in `[-87, 88]` (so `2ⁿ` is a normal float).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn reduce(k: &Consts, x: __m256) -> (__m256, __m256) {
        let shifted = _mm256_fmadd_ps(x, k.log2e, k.rounder);
        let n = _mm256_sub_ps(shifted, k.rounder);
        let r = _mm256_fnmadd_ps(n, k.ln2_hi, x);
        let r = _mm256_fnmadd_ps(n, k.ln2_lo, r);
        // The low mantissa bits of `shifted` hold n in two's complement.
        let biased = _mm256_add_epi32(_mm256_castps_si256(shifted), k.exponent_bias);
        let pow2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(biased));
        // Estrin: q = (1 + Q0·r) + r²·((Q1 + Q2·r) + r²·(Q3 + Q4·r)).
        let r2 = _mm256_mul_ps(r, r);
        let low = _mm256_fmadd_ps(k.q[0], r, k.one);
        let mid = _mm256_fmadd_ps(k.q[2], r, k.q[1]);
        let high = _mm256_fmadd_ps(k.q[4], r, k.q[3]);
        let upper = _mm256_fmadd_ps(high, r2, mid);
        let q = _mm256_fmadd_ps(upper, r2, low);
        (pow2, _mm256_mul_ps(q, r))
    }

    /// `1 / (1 + e⁻ˣ)`; `−x` is clamped to `[-87, 88]` (outside, σ is 1 or below 7e-39).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn sigmoid(k: &Consts, x: __m256) -> __m256 {
        // `max(lowest, ·)` and `min(highest, ·)` return their second operand for a NaN, so NaN
        // propagates.
        let minus_x = _mm256_min_ps(k.highest, _mm256_max_ps(k.lowest, _mm256_xor_ps(x, k.sign)));
        let (pow2, expm1_r) = reduce(k, minus_x);
        let denominator = _mm256_fmadd_ps(pow2, expm1_r, _mm256_add_ps(pow2, k.one));
        _mm256_div_ps(k.one, denominator)
    }

    /// `tanh x = −m / (2 + m)`, `m = expm1(−2|x|)` (clamped at −87, where tanh is ±1).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tanh(k: &Consts, x: __m256) -> __m256 {
        let magnitude = _mm256_andnot_ps(k.sign, x);
        let y = _mm256_max_ps(k.lowest, _mm256_mul_ps(magnitude, k.minus_two));
        let (pow2, expm1_r) = reduce(k, y);
        let m = _mm256_fmadd_ps(pow2, expm1_r, _mm256_sub_ps(pow2, k.one));
        // `m ≤ 0` over `−2 − m < 0`: nonnegative, but −0 for `m = 0`, so the sign is cleared
        // before `x`'s is set.
        let t = _mm256_div_ps(m, _mm256_sub_ps(k.minus_two, m));
        _mm256_or_ps(_mm256_andnot_ps(k.sign, t), _mm256_and_ps(x, k.sign))
    }

    /// Where one sample's cell reads and writes (gate blocks `u` apart): the pre-activations
    /// are `pre_a + pre_b`; `c_t` goes to `cell` (then, in training, `tanh(c_t)` over it) and
    /// to `c_next` when not null; the activated gates to `gates` when not null (training),
    /// else the output gate waits in `h` between the passes (inference).
    #[derive(Clone, Copy)]
    pub(super) struct CellPtrs {
        pub pre_a: *const f32,
        pub pre_b: *const f32,
        pub c_prev: *const f32,
        pub cell: *mut f32,
        pub c_next: *mut f32,
        pub gates: *mut f32,
        pub h: *mut f32,
    }

    /// One sample's cell step over `u` units, eight at a time; the last `u mod 8` run through
    /// eight-unit copies padded with zeros, so every unit gets the same arithmetic.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `pre_a`, `pre_b` (and `gates` when not null) valid
    /// for `4u` elements, the others (when not null) for `u`; reads may alias writes only as
    /// `c_prev == cell` (read before written, element by element).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn lstm_cell(p: CellPtrs, u: usize) {
        let k = consts();
        let whole = u - u % 8;
        cell_pass(&k, p, u, whole);
        if whole == u {
            return;
        }
        let rest = u - whole;
        let (mut a8, mut b8, mut g8) = ([0.0f32; 32], [0.0f32; 32], [0.0f32; 32]);
        let (mut prev8, mut cell8, mut next8, mut h8) =
            ([0.0f32; 8], [0.0f32; 8], [0.0f32; 8], [0.0f32; 8]);
        for gate in 0..4 {
            let from = gate * u + whole;
            std::ptr::copy_nonoverlapping(p.pre_a.add(from), a8.as_mut_ptr().add(gate * 8), rest);
            std::ptr::copy_nonoverlapping(p.pre_b.add(from), b8.as_mut_ptr().add(gate * 8), rest);
        }
        std::ptr::copy_nonoverlapping(p.c_prev.add(whole), prev8.as_mut_ptr(), rest);
        let padded = CellPtrs {
            pre_a: a8.as_ptr(),
            pre_b: b8.as_ptr(),
            c_prev: prev8.as_ptr(),
            cell: cell8.as_mut_ptr(),
            c_next: if p.c_next.is_null() {
                p.c_next
            } else {
                next8.as_mut_ptr()
            },
            gates: if p.gates.is_null() {
                p.gates
            } else {
                g8.as_mut_ptr()
            },
            h: h8.as_mut_ptr(),
        };
        cell_pass(&k, padded, 8, 8);
        std::ptr::copy_nonoverlapping(cell8.as_ptr(), p.cell.add(whole), rest);
        std::ptr::copy_nonoverlapping(h8.as_ptr(), p.h.add(whole), rest);
        if !p.c_next.is_null() {
            std::ptr::copy_nonoverlapping(next8.as_ptr(), p.c_next.add(whole), rest);
        }
        if !p.gates.is_null() {
            for gate in 0..4 {
                let to = gate * u + whole;
                std::ptr::copy_nonoverlapping(g8.as_ptr().add(gate * 8), p.gates.add(to), rest);
            }
        }
    }

    /// Units `0..count` (a multiple of 8) of a cell whose gate blocks are `u` apart.
    ///
    /// # Safety
    /// As [`lstm_cell`], with `count ≤ u`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn cell_pass(k: &Consts, p: CellPtrs, u: usize, count: usize) {
        let pre = |block: usize, j: usize| {
            _mm256_add_ps(
                _mm256_loadu_ps(p.pre_a.add(block * u + j)),
                _mm256_loadu_ps(p.pre_b.add(block * u + j)),
            )
        };
        let training = !p.gates.is_null();
        // Pass 1: the gates and the new cell state.
        for j in (0..count).step_by(8) {
            let i = sigmoid(k, pre(0, j));
            let f = sigmoid(k, pre(1, j));
            let g = tanh(k, pre(2, j));
            let o = sigmoid(k, pre(3, j));
            let cell = _mm256_fmadd_ps(f, _mm256_loadu_ps(p.c_prev.add(j)), _mm256_mul_ps(i, g));
            _mm256_storeu_ps(p.cell.add(j), cell);
            if !p.c_next.is_null() {
                _mm256_storeu_ps(p.c_next.add(j), cell);
            }
            if training {
                for (block, v) in [i, f, g, o].into_iter().enumerate() {
                    _mm256_storeu_ps(p.gates.add(block * u + j), v);
                }
            } else {
                _mm256_storeu_ps(p.h.add(j), o);
            }
        }
        // Pass 2: h = o⊙tanh(c) (training keeps tanh(c) in `cell`).
        for j in (0..count).step_by(8) {
            let tc = tanh(k, _mm256_loadu_ps(p.cell.add(j)));
            let o = if training {
                _mm256_storeu_ps(p.cell.add(j), tc);
                _mm256_loadu_ps(p.gates.add(3 * u + j))
            } else {
                _mm256_loadu_ps(p.h.add(j))
            };
            _mm256_storeu_ps(p.h.add(j), _mm256_mul_ps(o, tc));
        }
    }

    /// Sigmoid over `s` and tanh over `t` in place (the accuracy tests' entry).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(test)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn activate(s: &mut [f32], t: &mut [f32]) {
        let k = consts();
        lanes_in_place(s, |v| sigmoid(&k, v));
        lanes_in_place(t, |v| tanh(&k, v));
    }

    /// `f` over `xs` eight lanes at a time, the last chunk padded with zeros.
    ///
    /// # Safety
    /// The CPU must support AVX2 (the callers' `target_feature` functions require it).
    #[cfg(test)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn lanes_in_place(xs: &mut [f32], f: impl Fn(__m256) -> __m256) {
        for chunk in xs.chunks_mut(8) {
            let mut lanes = [0.0f32; 8];
            let n = chunk.len();
            lanes[..n].copy_from_slice(chunk);
            _mm256_storeu_ps(lanes.as_mut_ptr(), f(_mm256_loadu_ps(lanes.as_ptr())));
            chunk.copy_from_slice(&lanes[..n]);
        }
    }
}

#[cfg(test)]
mod tests;
