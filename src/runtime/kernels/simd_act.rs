//! The LSTM cell of recurrent inference with explicit AVX2 + FMA intrinsics: the four gate
//! activations, the cell update and `h = o⊙tanh(c)`, eight units at a time.
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
//! [`super::simd_gemm`] — a CPU without AVX2 + FMA, where [`lstm_cell`] returns `false` and
//! the caller runs the fastmath cell, gives slightly different numbers. A given machine is
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
    if u == 0 || h.len() != u || z.len() != 4 * u || addend.len() != 4 * u {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if available() {
            // SAFETY: AVX2 and FMA are present (checked just above); the lengths were checked
            // above as `x86::lstm_cell` requires.
            unsafe { x86::lstm_cell(z, addend, c, h) };
            return true;
        }
    }
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

    /// One sample's cell step over `c.len()` units, eight at a time; the last `U mod 8` run
    /// through an eight-unit copy padded with zeros, so every unit gets the same arithmetic.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `h.len() == c.len()`, `z.len() == addend.len() ==
    /// 4·c.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn lstm_cell(z: &[f32], addend: &[f32], c: &mut [f32], h: &mut [f32]) {
        let k = consts();
        let u = c.len();
        let whole = u - u % 8;
        cell_pass(
            &k,
            u,
            whole,
            z.as_ptr(),
            addend.as_ptr(),
            c.as_mut_ptr(),
            h.as_mut_ptr(),
        );
        if whole == u {
            return;
        }
        let rest = u - whole;
        let (mut z8, mut a8, mut c8, mut h8) =
            ([0.0f32; 32], [0.0f32; 32], [0.0f32; 8], [0.0f32; 8]);
        for gate in 0..4 {
            let from = gate * u + whole;
            z8[gate * 8..gate * 8 + rest].copy_from_slice(&z[from..from + rest]);
            a8[gate * 8..gate * 8 + rest].copy_from_slice(&addend[from..from + rest]);
        }
        c8[..rest].copy_from_slice(&c[whole..]);
        cell_pass(
            &k,
            8,
            8,
            z8.as_ptr(),
            a8.as_ptr(),
            c8.as_mut_ptr(),
            h8.as_mut_ptr(),
        );
        c[whole..].copy_from_slice(&c8[..rest]);
        h[whole..].copy_from_slice(&h8[..rest]);
    }

    /// Units `0..count` (a multiple of 8) of a cell whose gate blocks are `u` apart.
    ///
    /// # Safety
    /// AVX2 and FMA; `z` and `addend` valid for `4u` reads, `c` and `h` for `u` reads and
    /// writes, `count ≤ u`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn cell_pass(
        k: &Consts,
        u: usize,
        count: usize,
        z: *const f32,
        addend: *const f32,
        c: *mut f32,
        h: *mut f32,
    ) {
        let gate = |block: usize, j: usize| {
            _mm256_add_ps(
                _mm256_loadu_ps(z.add(block * u + j)),
                _mm256_loadu_ps(addend.add(block * u + j)),
            )
        };
        // Pass 1: the gates and the new cell state; `h` holds the output gate meanwhile.
        for j in (0..count).step_by(8) {
            let i = sigmoid(k, gate(0, j));
            let f = sigmoid(k, gate(1, j));
            let g = tanh(k, gate(2, j));
            let o = sigmoid(k, gate(3, j));
            let cell = _mm256_fmadd_ps(f, _mm256_loadu_ps(c.add(j)), _mm256_mul_ps(i, g));
            _mm256_storeu_ps(c.add(j), cell);
            _mm256_storeu_ps(h.add(j), o);
        }
        // Pass 2: h = o⊙tanh(c).
        for j in (0..count).step_by(8) {
            let o = _mm256_loadu_ps(h.add(j));
            _mm256_storeu_ps(
                h.add(j),
                _mm256_mul_ps(o, tanh(k, _mm256_loadu_ps(c.add(j)))),
            );
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
        for chunk in s.chunks_mut(8) {
            let mut lanes = [0.0f32; 8];
            lanes[..chunk.len()].copy_from_slice(chunk);
            let v = sigmoid(&k, _mm256_loadu_ps(lanes.as_ptr()));
            _mm256_storeu_ps(lanes.as_mut_ptr(), v);
            let n = chunk.len();
            chunk.copy_from_slice(&lanes[..n]);
        }
        for chunk in t.chunks_mut(8) {
            let mut lanes = [0.0f32; 8];
            lanes[..chunk.len()].copy_from_slice(chunk);
            let v = tanh(&k, _mm256_loadu_ps(lanes.as_ptr()));
            _mm256_storeu_ps(lanes.as_mut_ptr(), v);
            let n = chunk.len();
            chunk.copy_from_slice(&lanes[..n]);
        }
    }
}

#[cfg(test)]
mod tests;
