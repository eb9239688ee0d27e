//! Gradient hygiene between the backward pass and the optimizer step: clipping by global norm
//! (PyTorch `clip_grad_norm_`, Keras `global_clipnorm`), clipping by value (Keras `clipvalue`),
//! and locating the first NaN/Inf.
//!
//! Input: the gradients of all parameters, in parameter order. Output: the gradients scaled or
//! clamped in place. The global norm is accumulated in f64 in a fixed order (parameter, then
//! logical element order), so it is deterministic and cannot overflow for f32 inputs.

use ndarray::{ArrayViewD, ArrayViewMutD};
use thiserror::Error;

use crate::runtime::optim::{check_positive, InvalidHyperparameter};

/// Why clipping was refused; the gradients are left untouched.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ClipError {
    /// The clipping threshold is not a finite number `> 0`.
    #[error(transparent)]
    Hyperparameter(#[from] InvalidHyperparameter),
    /// The gradients hold a NaN or an infinity, so their norm is not finite; scaling would turn
    /// every gradient into NaN. [`first_non_finite`] says where.
    #[error("the global gradient norm is not finite ({norm})")]
    NonFiniteNorm {
        /// The norm found (NaN or +inf).
        norm: f64,
    },
}

/// The L2 norm of all gradients taken together, in f64.
pub fn global_norm(grads: &[ArrayViewD<f32>]) -> f64 {
    grads
        .iter()
        .flat_map(|g| g.iter())
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

/// Scales every gradient by `max_norm / norm` when their global norm exceeds `max_norm`, so
/// the clipped norm is `max_norm` (Keras `clip_by_global_norm`; PyTorch divides by
/// `norm + 1e-6`, a difference of about `1e-6 / norm` relative). Returns the norm before
/// clipping, for logging.
pub fn clip_by_global_norm(
    grads: &mut [ArrayViewMutD<f32>],
    max_norm: f32,
) -> Result<f64, ClipError> {
    check_positive("clipnorm", f64::from(max_norm))?;
    let views: Vec<ArrayViewD<f32>> = grads.iter().map(|a| a.view()).collect();
    let norm = global_norm(&views);
    if !norm.is_finite() {
        return Err(ClipError::NonFiniteNorm { norm });
    }
    if norm > f64::from(max_norm) {
        let scale = (f64::from(max_norm) / norm) as f32;
        for g in grads.iter_mut() {
            g.mapv_inplace(|x| x * scale);
        }
    }
    Ok(norm)
}

/// Clamps every gradient element into `[-limit, limit]`; NaN stays NaN.
pub fn clip_by_value(grads: &mut [ArrayViewMutD<f32>], limit: f32) -> Result<(), ClipError> {
    check_positive("clipvalue", f64::from(limit))?;
    for g in grads.iter_mut() {
        g.mapv_inplace(|x| x.clamp(-limit, limit));
    }
    Ok(())
}

/// The first NaN or infinity: `(parameter index, flat index in logical row-major order)`.
pub fn first_non_finite(grads: &[ArrayViewD<f32>]) -> Option<(usize, usize)> {
    grads.iter().enumerate().find_map(|(param, g)| {
        g.iter()
            .position(|x| !x.is_finite())
            .map(|flat| (param, flat))
    })
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // exact results are the point of these tests
mod tests {
    use super::*;
    use ndarray::{array, ArrayD, IxDyn};

    fn grads() -> Vec<ArrayD<f32>> {
        vec![
            array![3.0_f32, 0.0].into_dyn(),
            array![[0.0_f32, 4.0], [0.0, 0.0]].into_dyn(),
        ]
    }

    fn views_mut(g: &mut [ArrayD<f32>]) -> Vec<ArrayViewMutD<'_, f32>> {
        g.iter_mut().map(|a| a.view_mut()).collect()
    }

    #[test]
    fn global_norm_clips_to_max_norm() {
        let mut g = grads();
        let norm = clip_by_global_norm(&mut views_mut(&mut g), 2.5).unwrap();
        assert_eq!(norm, 5.0);
        // scale 0.5: (3,4) → (1.5, 2)
        assert_eq!(g[0], array![1.5_f32, 0.0].into_dyn());
        assert_eq!(g[1], array![[0.0_f32, 2.0], [0.0, 0.0]].into_dyn());
        let views: Vec<_> = g.iter().map(|a| a.view()).collect();
        assert!((global_norm(&views) - 2.5).abs() < 1e-6);
    }

    #[test]
    fn global_norm_below_threshold_is_untouched() {
        let mut g = grads();
        let norm = clip_by_global_norm(&mut views_mut(&mut g), 5.0).unwrap();
        assert_eq!(norm, 5.0);
        assert_eq!(g, grads());
    }

    #[test]
    fn global_norm_refuses_non_finite_and_bad_threshold() {
        let mut g = grads();
        g[1][[1, 0]] = f32::NAN;
        let err = clip_by_global_norm(&mut views_mut(&mut g), 1.0).unwrap_err();
        assert!(matches!(err, ClipError::NonFiniteNorm { .. }));
        assert_eq!(g[0], grads()[0]);
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let mut g = grads();
            assert!(matches!(
                clip_by_global_norm(&mut views_mut(&mut g), bad),
                Err(ClipError::Hyperparameter(_))
            ));
            assert!(clip_by_value(&mut views_mut(&mut g), bad).is_err());
            assert_eq!(g, grads());
        }
    }

    #[test]
    fn global_norm_does_not_overflow() {
        let mut g = vec![ArrayD::from_elem(IxDyn(&[4]), f32::MAX)];
        let norm = clip_by_global_norm(&mut views_mut(&mut g), 1.0).unwrap();
        assert!((norm / (2.0 * f64::from(f32::MAX)) - 1.0).abs() < 1e-12);
        assert!((g[0][0] - 0.5).abs() < 1e-6);
    }

    #[test]
    fn clip_by_value_clamps_and_keeps_nan() {
        let mut g = vec![array![-3.0_f32, -0.5, 0.5, 7.0, f32::NAN].into_dyn()];
        clip_by_value(&mut views_mut(&mut g), 1.0).unwrap();
        let first: Vec<f32> = g[0].iter().take(4).copied().collect();
        assert_eq!(first, [-1.0, -0.5, 0.5, 1.0]);
        assert!(g[0][4].is_nan());
    }

    #[test]
    fn first_non_finite_reports_param_and_logical_index() {
        let mut g = grads();
        let views: Vec<_> = g.iter().map(|a| a.view()).collect();
        assert_eq!(first_non_finite(&views), None);
        g[1][[1, 0]] = f32::NEG_INFINITY;
        g[1][[1, 1]] = f32::NAN;
        let views: Vec<_> = g.iter().map(|a| a.view()).collect();
        assert_eq!(first_non_finite(&views), Some((1, 2)));
        // a transposed (non-standard layout) view still reports the logical index
        let t = g[1].t().to_owned().into_dyn();
        let t_view = g[1].view().reversed_axes();
        assert_eq!(first_non_finite(&[t_view]), Some((0, 1)));
        assert_eq!(first_non_finite(&[t.view()]), Some((0, 1)));
    }
}
