//! Branch-free `f32` exp, expm1, sigmoid and tanh that LLVM auto-vectorizes over slices.
//!
//! libm's `expf`/`tanhf`/`expm1f` are opaque calls, so a loop over a slice runs one element at a
//! time; these are plain arithmetic on `f32`/`u32` (no calls, no branches, no `mul_add`, which
//! is a libm call without the FMA target feature), so the same loop becomes SIMD code.
//!
//! Method: Cody–Waite range reduction `x = n·ln2 + r`, `|r| ≤ ln2/2`, with `n` rounded by the
//! `1.5·2²³` trick (its integer is read back from the float's bits); `eʳ − 1` by its degree-7
//! Taylor polynomial (truncation below 1.6e-8 relative on that interval); `2ⁿ` built from its
//! exponent bits. Then
//! - `exp(x) = 2ⁿ·(1 + p(r))`, inputs clamped to `[-87, 88]`; below −87 (true value under
//!   1.7e-38) the result is 0;
//! - `expm1(x) = 2ⁿ·p(r) + (2ⁿ − 1)`: exact cancellation-free for `n = 0`, i.e. near 0;
//! - `tanh(x) = −m / (2 + m)` with `m = expm1(−2|x|)`, sign restored; accurate near 0 because
//!   expm1 is;
//! - `sigmoid(x) = 1 / (1 + exp(−x))`, relatively accurate on both tails.
//!
//! Measured maximum errors against f64 references (see the tests, which sweep ±20 densely and
//! assert these bounds): exp and sigmoid below 3e-7 relative, tanh below 4e-7 relative (and
//! below 1e-7 absolute), expm1 below 4e-7 relative. All functions are pure, so results are
//! bit-identical for any thread count.

// Vectorization needs these small functions inlined into the callers' loops; `#[inline]` alone
// leaves that to a heuristic that can decline across crates.
#![allow(clippy::inline_always)]

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` split so that `n·LN2_HI` is exact for `|n| < 2¹²` (12 trailing zero bits).
const LN2_HI: f32 = 0.693_115_23;
const LN2_LO: f32 = 3.194_618_3e-5;
/// Adding then subtracting `1.5·2²³` rounds to the nearest integer (ties to even).
const ROUNDER: f32 = 12_582_912.0;
const EXP_MIN: f32 = -87.0;
const EXP_MAX: f32 = 88.0;

/// `n` (as a float and as its exponent-field power `2ⁿ`) and `p(r) = eʳ − 1` for `x = n·ln2 + r`.
/// `x` must lie in `[EXP_MIN, EXP_MAX]`, so that `2ⁿ` is a normal float.
#[inline(always)]
fn reduce(x: f32) -> (f32, f32) {
    let shifted = x * LOG2_E + ROUNDER;
    let n = shifted - ROUNDER;
    // The low mantissa bits of `shifted` hold n in two's complement.
    let n_int = shifted.to_bits().wrapping_sub(ROUNDER.to_bits());
    let pow2 = f32::from_bits(n_int.wrapping_add(127) << 23);
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // Horner on r·(1 + r/2·(1 + r/3·(1 + … ))): the Taylor series of eʳ − 1 to degree 7.
    let p = 1.0 + r * (1.0 / 7.0);
    let p = 1.0 + r * (1.0 / 6.0) * p;
    let p = 1.0 + r * (1.0 / 5.0) * p;
    let p = 1.0 + r * (1.0 / 4.0) * p;
    let p = 1.0 + r * (1.0 / 3.0) * p;
    let p = 1.0 + r * 0.5 * p;
    (pow2, r * p)
}

/// `eˣ` (see the module doc for range and accuracy).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let clamped = x.clamp(EXP_MIN, EXP_MAX);
    let (pow2, p) = reduce(clamped);
    let v = pow2 + pow2 * p;
    if x < EXP_MIN {
        0.0
    } else {
        v
    }
}

/// `eˣ − 1`, accurate near 0; inputs clamped to `[-87, 88]`.
#[inline(always)]
pub fn expm1(x: f32) -> f32 {
    let (pow2, p) = reduce(x.clamp(EXP_MIN, EXP_MAX));
    pow2 * p + (pow2 - 1.0)
}

/// `tanh x`, odd and accurate near 0.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let m = expm1(-2.0 * x.abs());
    let t = -m / (2.0 + m);
    t.copysign(x)
}

/// The logistic function `1 / (1 + e⁻ˣ)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `xs[i] ← sigmoid(xs[i])`, vectorized.
pub fn sigmoid_in_place(xs: &mut [f32]) {
    for v in xs {
        *v = sigmoid(*v);
    }
}

/// `xs[i] ← tanh(xs[i])`, vectorized.
pub fn tanh_in_place(xs: &mut [f32]) {
    for v in xs {
        *v = tanh(*v);
    }
}

#[cfg(test)]
// Exact values at special points are part of the contract.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    /// Points densely covering [-lim, lim], plus tiny magnitudes and the exact zero.
    fn sweep(lim: f32) -> Vec<f32> {
        crate::runtime::kernels::tests::sweep(lim, 400_000)
    }

    fn max_rel(f: fn(f32) -> f32, reference: fn(f64) -> f64, xs: &[f32]) -> f64 {
        xs.iter()
            .map(|&x| {
                let want = reference(f64::from(x));
                let got = f64::from(f(x));
                if want == 0.0 {
                    got.abs()
                } else {
                    ((got - want) / want).abs()
                }
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn exp_is_within_3e7_relative() {
        let err = max_rel(exp, f64::exp, &sweep(87.0));
        assert!(err < 3e-7, "exp max relative error {err}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn expm1_is_within_4e7_relative() {
        let err = max_rel(expm1, f64::exp_m1, &sweep(80.0));
        assert!(err < 4e-7, "expm1 max relative error {err}");
        assert_eq!(expm1(0.0), 0.0);
        assert_eq!(expm1(-100.0), -1.0);
    }

    #[test]
    fn tanh_is_within_4e7_relative_and_odd() {
        let xs = sweep(20.0);
        let err = max_rel(tanh, f64::tanh, &xs);
        assert!(err < 4e-7, "tanh max relative error {err}");
        for &x in &xs {
            assert_eq!(tanh(-x), -tanh(x));
        }
        assert_eq!(tanh(50.0), 1.0);
        assert_eq!(tanh(-1e30), -1.0);
        assert_eq!(tanh(0.0), 0.0);
    }

    #[test]
    fn sigmoid_is_within_3e7_relative() {
        let err = max_rel(sigmoid, |x| 1.0 / (1.0 + (-x).exp()), &sweep(80.0));
        assert!(err < 3e-7, "sigmoid max relative error {err}");
        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(sigmoid(100.0), 1.0);
        assert!(sigmoid(-100.0) < 1e-37);
    }

    #[test]
    fn slice_helpers_match_the_scalar_functions() {
        let xs: Vec<f32> = (0..37).map(|i| i as f32 * 0.37 - 6.0).collect();
        let mut s = xs.clone();
        sigmoid_in_place(&mut s);
        let mut t = xs.clone();
        tanh_in_place(&mut t);
        for (i, &x) in xs.iter().enumerate() {
            assert_eq!(s[i].to_bits(), sigmoid(x).to_bits());
            assert_eq!(t[i].to_bits(), tanh(x).to_bits());
        }
    }
}
