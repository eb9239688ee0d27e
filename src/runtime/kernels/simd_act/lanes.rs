//! The vector operations the LSTM cell ([`super::cell`]) is written in, for 8-lane AVX2 + FMA
//! vectors (`__m256`) and 16-lane AVX-512F vectors (`__m512`). Each operation is one
//! instruction with the same IEEE semantics at either width (fused multiply-adds rounded once,
//! `min`/`max` returning their second operand for a NaN), so the cell computes the same bits
//! per lane at both.
//!
//! Every method is `#[inline(always)]` and has no `target_feature` of its own: it is inlined
//! into the cell's `target_feature` entry points, where its intrinsic compiles to the one
//! instruction.
//!
//! # Safety (every method)
//! The CPU supports the width's instructions (AVX2 + FMA, or AVX-512F), which holds inside
//! the entry points; `load` and `store` also need `WIDTH` valid floats at the pointer.

#![allow(clippy::inline_always, clippy::missing_safety_doc)]

use std::arch::x86_64::{
    __m256, __m512, _mm256_add_epi32, _mm256_add_ps, _mm256_and_ps, _mm256_andnot_ps,
    _mm256_castps_si256, _mm256_castsi256_ps, _mm256_div_ps, _mm256_fmadd_ps, _mm256_fnmadd_ps,
    _mm256_loadu_ps, _mm256_max_ps, _mm256_min_ps, _mm256_mul_ps, _mm256_or_ps, _mm256_set1_epi32,
    _mm256_set1_ps, _mm256_slli_epi32, _mm256_storeu_ps, _mm256_sub_ps, _mm256_xor_ps,
    _mm512_add_epi32, _mm512_add_ps, _mm512_and_si512, _mm512_andnot_si512, _mm512_castps_si512,
    _mm512_castsi512_ps, _mm512_div_ps, _mm512_fmadd_ps, _mm512_fnmadd_ps, _mm512_loadu_ps,
    _mm512_max_ps, _mm512_min_ps, _mm512_mul_ps, _mm512_or_si512, _mm512_set1_epi32,
    _mm512_set1_ps, _mm512_slli_epi32, _mm512_storeu_ps, _mm512_sub_ps, _mm512_xor_si512,
};

/// A vector of `WIDTH` f32 lanes.
pub(super) trait Lanes: Copy {
    const WIDTH: usize;
    unsafe fn splat(v: f32) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(self, p: *mut f32);
    unsafe fn add(self, o: Self) -> Self;
    unsafe fn sub(self, o: Self) -> Self;
    unsafe fn mul(self, o: Self) -> Self;
    unsafe fn div(self, o: Self) -> Self;
    /// `self·b + c`, rounded once.
    unsafe fn mul_add(self, b: Self, c: Self) -> Self;
    /// `c − self·b`, rounded once.
    unsafe fn neg_mul_add(self, b: Self, c: Self) -> Self;
    /// Lane-wise minimum; `o` where either is NaN.
    unsafe fn min(self, o: Self) -> Self;
    /// Lane-wise maximum; `o` where either is NaN.
    unsafe fn max(self, o: Self) -> Self;
    /// Bitwise `self ^ o`, `self & o`, `!self & o`, `self | o`.
    unsafe fn xor(self, o: Self) -> Self;
    unsafe fn and(self, o: Self) -> Self;
    unsafe fn and_not(self, o: Self) -> Self;
    unsafe fn or(self, o: Self) -> Self;
    /// The float whose bits are `(bits(self) + bias) << 23` (an exponent field built from
    /// the integer held in the low bits of `self`).
    unsafe fn exponent(self, bias: i32) -> Self;
}

impl Lanes for __m256 {
    const WIDTH: usize = 8;
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        _mm256_set1_ps(v)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        _mm256_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        _mm256_storeu_ps(p, self);
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        _mm256_add_ps(self, o)
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        _mm256_sub_ps(self, o)
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        _mm256_mul_ps(self, o)
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        _mm256_div_ps(self, o)
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        _mm256_fmadd_ps(self, b, c)
    }
    #[inline(always)]
    unsafe fn neg_mul_add(self, b: Self, c: Self) -> Self {
        _mm256_fnmadd_ps(self, b, c)
    }
    #[inline(always)]
    unsafe fn min(self, o: Self) -> Self {
        _mm256_min_ps(self, o)
    }
    #[inline(always)]
    unsafe fn max(self, o: Self) -> Self {
        _mm256_max_ps(self, o)
    }
    #[inline(always)]
    unsafe fn xor(self, o: Self) -> Self {
        _mm256_xor_ps(self, o)
    }
    #[inline(always)]
    unsafe fn and(self, o: Self) -> Self {
        _mm256_and_ps(self, o)
    }
    #[inline(always)]
    unsafe fn and_not(self, o: Self) -> Self {
        _mm256_andnot_ps(self, o)
    }
    #[inline(always)]
    unsafe fn or(self, o: Self) -> Self {
        _mm256_or_ps(self, o)
    }
    #[inline(always)]
    unsafe fn exponent(self, bias: i32) -> Self {
        let biased = _mm256_add_epi32(_mm256_castps_si256(self), _mm256_set1_epi32(bias));
        _mm256_castsi256_ps(_mm256_slli_epi32::<23>(biased))
    }
}

impl Lanes for __m512 {
    const WIDTH: usize = 16;
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        _mm512_set1_ps(v)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        _mm512_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        _mm512_storeu_ps(p, self);
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        _mm512_add_ps(self, o)
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        _mm512_sub_ps(self, o)
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        _mm512_mul_ps(self, o)
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        _mm512_div_ps(self, o)
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        _mm512_fmadd_ps(self, b, c)
    }
    #[inline(always)]
    unsafe fn neg_mul_add(self, b: Self, c: Self) -> Self {
        _mm512_fnmadd_ps(self, b, c)
    }
    #[inline(always)]
    unsafe fn min(self, o: Self) -> Self {
        _mm512_min_ps(self, o)
    }
    #[inline(always)]
    unsafe fn max(self, o: Self) -> Self {
        _mm512_max_ps(self, o)
    }
    // The float bitwise operations are AVX-512DQ; the integer ones (F) do the same on the bits.
    #[inline(always)]
    unsafe fn xor(self, o: Self) -> Self {
        _mm512_castsi512_ps(_mm512_xor_si512(
            _mm512_castps_si512(self),
            _mm512_castps_si512(o),
        ))
    }
    #[inline(always)]
    unsafe fn and(self, o: Self) -> Self {
        _mm512_castsi512_ps(_mm512_and_si512(
            _mm512_castps_si512(self),
            _mm512_castps_si512(o),
        ))
    }
    #[inline(always)]
    unsafe fn and_not(self, o: Self) -> Self {
        _mm512_castsi512_ps(_mm512_andnot_si512(
            _mm512_castps_si512(self),
            _mm512_castps_si512(o),
        ))
    }
    #[inline(always)]
    unsafe fn or(self, o: Self) -> Self {
        _mm512_castsi512_ps(_mm512_or_si512(
            _mm512_castps_si512(self),
            _mm512_castps_si512(o),
        ))
    }
    #[inline(always)]
    unsafe fn exponent(self, bias: i32) -> Self {
        let biased = _mm512_add_epi32(_mm512_castps_si512(self), _mm512_set1_epi32(bias));
        _mm512_castsi512_ps(_mm512_slli_epi32::<23>(biased))
    }
}
