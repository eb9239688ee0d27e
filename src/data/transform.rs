//! Preprocessing (`map` steps), applied to whole data sets in order, fitted on the training
//! rows of the split (`split.rs`).
//!
//! Input: [`Samples`] and the `map` steps. Output: transformed samples; `standardize` and
//! `normalize` steps without fitted statistics are fitted on the training rows (as the split
//! chooses them) and the numbers are written into the step, so the same fitted steps applied at
//! inference give the same results. Invariant: fitted steps are never refitted; a step that
//! makes a new array asks the data budget first (`budget`: E0621 past it, E0904 when the system
//! refuses memory the budget allowed), so no step aborts on an allocation.

use super::budget;
use super::image::{resize_bilinear, Dims};
use super::samples::{with_count, Features, Labels, Samples};
use super::spec::{Fitted, Step, Transform};
use crate::diag::codes::{
    DATA_LABEL_RANGE, DATA_SHAPE_MISMATCH, DATA_STEP_MISMATCH, DATA_TOO_SMALL,
};
use crate::diag::Diagnostic;
use ndarray::{ArrayD, Axis};

fn mismatch(step: &str, found: &str) -> Diagnostic {
    Diagnostic::error(
        DATA_STEP_MISMATCH,
        format!("{step} cannot be applied to {found}"),
    )
}

fn floats<'a>(f: &'a mut Features, step: &str) -> Result<&'a mut ArrayD<f32>, Diagnostic> {
    match f {
        Features::F32(a) => Ok(a),
        Features::I64(_) => Err(mismatch(step, "token ids")),
        Features::Groups(_) => Err(mismatch(step, "several input groups")),
    }
}

/// Per-last-axis statistics over the rows `rows` (mean/std or min/range); zero spreads become 1.
fn fit(a: &ArrayD<f32>, rows: &[usize], standardize: bool) -> Fitted {
    let f = a.shape().last().copied().unwrap_or(1).max(1);
    let per = a.len() / a.shape().first().copied().unwrap_or(1).max(1);
    let flat = a.as_slice_memory_order().unwrap_or(&[]);
    let mut shift = vec![0f64; f];
    let mut scale = vec![0f64; f];
    if standardize {
        let mut count = 0f64;
        for &r in rows {
            for (j, v) in flat
                .get(r * per..(r + 1) * per)
                .unwrap_or(&[])
                .iter()
                .enumerate()
            {
                shift[j % f] += f64::from(*v);
            }
            count += (per / f) as f64;
        }
        let count = count.max(1.0);
        for m in &mut shift {
            *m /= count;
        }
        for &r in rows {
            for (j, v) in flat
                .get(r * per..(r + 1) * per)
                .unwrap_or(&[])
                .iter()
                .enumerate()
            {
                scale[j % f] += (f64::from(*v) - shift[j % f]).powi(2);
            }
        }
        for s in &mut scale {
            *s = (*s / count).sqrt();
        }
    } else {
        let mut lo = vec![f64::INFINITY; f];
        let mut hi = vec![f64::NEG_INFINITY; f];
        for &r in rows {
            for (j, v) in flat
                .get(r * per..(r + 1) * per)
                .unwrap_or(&[])
                .iter()
                .enumerate()
            {
                lo[j % f] = lo[j % f].min(f64::from(*v));
                hi[j % f] = hi[j % f].max(f64::from(*v));
            }
        }
        for j in 0..f {
            shift[j] = if lo[j].is_finite() { lo[j] } else { 0.0 };
            scale[j] = if hi[j].is_finite() {
                hi[j] - shift[j]
            } else {
                1.0
            };
        }
    }
    Fitted {
        shift: shift.iter().map(|&v| v as f32).collect(),
        scale: scale
            .iter()
            .map(|&v| if v > 0.0 { v as f32 } else { 1.0 })
            .collect(),
    }
}

fn apply_fitted(a: &mut ArrayD<f32>, fitted: &Fitted) {
    let f = fitted.shift.len().max(1);
    if let Some(flat) = a.as_slice_memory_order_mut() {
        for (i, v) in flat.iter_mut().enumerate() {
            let j = i % f;
            let shift = fitted.shift.get(j).copied().unwrap_or(0.0);
            let scale = fitted.scale.get(j).copied().unwrap_or(1.0);
            *v = (*v - shift) / scale;
        }
    }
}

/// Applies every step in order. Unfitted statistics are fitted on the rows `train_rows(n)`
/// chooses for the `n` samples present at that step, and stored into the step.
pub fn apply_all(
    steps: &mut [Step<Transform>],
    mut samples: Samples,
    train_rows: &dyn Fn(usize) -> Vec<usize>,
) -> Result<Samples, Diagnostic> {
    for step in steps.iter_mut() {
        samples = apply(&mut step.op, samples, train_rows)?;
    }
    Ok(samples)
}

/// Applies already-fitted steps (from a compiled plan) to new data, as at inference.
/// Fails if a `standardize`/`normalize` step was never fitted.
pub fn apply_fitted_steps(
    steps: &[Step<Transform>],
    samples: Samples,
) -> Result<Samples, Diagnostic> {
    let mut steps = steps.to_vec();
    for step in &steps {
        if let Transform::Standardize { fitted: None } | Transform::Normalize { fitted: None } =
            step.op
        {
            return Err(
                mismatch("an unfitted standardize/normalize step", "inference data").help(
                    "load the training data set first; its fitted statistics go into the plan",
                ),
            );
        }
    }
    apply_all(&mut steps, samples, &|_| Vec::new())
}

fn apply(
    op: &mut Transform,
    mut s: Samples,
    train_rows: &dyn Fn(usize) -> Vec<usize>,
) -> Result<Samples, Diagnostic> {
    let n = s.features.len();
    let is_standardize = matches!(op, Transform::Standardize { .. });
    match op {
        Transform::Standardize { fitted } | Transform::Normalize { fitted } => {
            let a = floats(&mut s.features, "standardize/normalize")?;
            let stats = match fitted {
                Some(f) => f.clone(),
                None => fit(a, &train_rows(n), is_standardize),
            };
            apply_fitted(a, &stats);
            *fitted = Some(stats);
        }
        Transform::Scale { factor, offset } => {
            let (m, b) = (*factor as f32, *offset as f32);
            floats(&mut s.features, "scale")?.mapv_inplace(|v| v * m + b);
        }
        Transform::OneHot { classes } => {
            let Labels::Class(ids) = &s.labels else {
                return Err(mismatch("one_hot", "data without class labels"));
            };
            let c = match classes {
                Some(c) => *c as usize,
                None => ids.iter().max().map_or(1, |&m| m as usize + 1),
            };
            let mut out = budget::zeros(ids.len(), &[c], "one_hot")?;
            for (row, &id) in ids.iter().enumerate() {
                let cell = usize::try_from(id).ok().filter(|&i| i < c).ok_or_else(|| {
                    Diagnostic::error(
                        DATA_LABEL_RANGE,
                        format!("label {id} of sample {row} is outside the {c} classes of one_hot"),
                    )
                })?;
                out[[row, cell]] = 1.0;
            }
            *classes = Some(c as u32);
            s.labels = Labels::Values(out);
        }
        Transform::Reshape { shape } => {
            let to = with_count(n, shape);
            let reshape_err = |e: ndarray::ShapeError, from: &[usize]| {
                Diagnostic::error(
                    DATA_SHAPE_MISMATCH,
                    format!("cannot reshape samples of shape {from:?} to {shape:?}: {e}"),
                )
            };
            s.features = match s.features {
                Features::F32(a) => {
                    let from = a.shape()[1..].to_vec();
                    Features::F32(a.into_shape_clone(to).map_err(|e| reshape_err(e, &from))?)
                }
                Features::I64(a) => {
                    let from = a.shape()[1..].to_vec();
                    Features::I64(a.into_shape_clone(to).map_err(|e| reshape_err(e, &from))?)
                }
                Features::Groups(_) => return Err(mismatch("reshape", "several input groups")),
            };
        }
        Transform::Resize { height, width } => {
            let a = floats(&mut s.features, "resize")?;
            let &[_, h, w, c] = a.shape() else {
                return Err(mismatch("resize", "samples that are not [h, w, c] images"));
            };
            let from = Dims { h, w, c };
            let to = Dims {
                h: *height,
                w: *width,
                c,
            };
            let mut out = budget::zeros(n, &[to.h, to.w, c], "resize")?;
            for (src, mut dst) in a.outer_iter().zip(out.outer_iter_mut()) {
                if let (Some(src), Some(dst)) = (src.as_slice(), dst.as_slice_mut()) {
                    resize_bilinear(src, from, to, dst);
                }
            }
            *a = out;
        }
        Transform::MovingAverage { window } => {
            let a = floats(&mut s.features, "moving_average")?;
            let before = (*window - 1) / 2;
            let after = *window / 2;
            let orig = a.clone();
            for t in 0..n {
                let lo = t.saturating_sub(before);
                let hi = (t + after).min(n.saturating_sub(1));
                let count = (hi - lo + 1) as f32;
                let mean = orig.slice_axis(Axis(0), (lo..=hi).into()).sum_axis(Axis(0)) / count;
                a.index_axis_mut(Axis(0), t).assign(&mean);
            }
        }
        Transform::Window { size, horizon } => {
            let (size, horizon) = (*size, *horizon);
            let a = floats(&mut s.features, "window")?;
            let f = a.len() / n.max(1);
            let span = size.saturating_add(horizon);
            let Some(m) = (n + 1).checked_sub(span).filter(|&m| m > 0) else {
                return Err(Diagnostic::error(
                    DATA_TOO_SMALL,
                    format!("window({size}) with horizon {horizon} needs at least {span} time steps, the series has {n}"),
                ));
            };
            let mut x = budget::with_capacity(m, &[size, f], 4, "window")?;
            let mut y = budget::with_capacity(m, &[f], 4, "window")?;
            let flat: Vec<f32> = a.iter().copied().collect();
            for t in 0..m {
                x.extend_from_slice(&flat[t * f..(t + size) * f]);
                let target = t + size + horizon - 1;
                y.extend_from_slice(&flat[target * f..(target + 1) * f]);
            }
            let shape_err =
                |e: ndarray::ShapeError| Diagnostic::error(DATA_SHAPE_MISMATCH, e.to_string());
            *a = ArrayD::from_shape_vec(with_count(m, &[size, f]), x).map_err(shape_err)?;
            s.labels =
                Labels::Values(ArrayD::from_shape_vec(with_count(m, &[f]), y).map_err(shape_err)?);
        }
        Transform::Pad { length, value } => {
            let Features::I64(a) = &s.features else {
                return Err(mismatch("pad", "f32 features"));
            };
            let mut out = budget::filled(n, &[*length], 8, *value, "pad")?;
            for (src, mut dst) in a.outer_iter().zip(out.outer_iter_mut()) {
                for (d, v) in dst.iter_mut().zip(src.iter()) {
                    *d = *v;
                }
            }
            s.features = Features::I64(out);
        }
    }
    Ok(s)
}

#[cfg(test)]
#[path = "transform_tests.rs"]
mod tests;
