//! Synthetic generators for tests and demos, reproducible from their seed:
//! regression `y = Xw + b + noise`, token sequences whose class follows a counting rule, and a
//! noisy sine series.

use crate::data::budget;
use crate::data::rng::{Purpose, Stream};
use crate::data::samples::{with_count, Features, Labels, Samples};
use crate::data::spec::{RegressionSource, SineSource, TokenSource};
use crate::diag::codes::DATA_ARGUMENT_RANGE;
use crate::diag::Diagnostic;
use ndarray::ArrayD;

fn shape_error(e: &ndarray::ShapeError) -> Diagnostic {
    Diagnostic::error(DATA_ARGUMENT_RANGE, format!("generator shape: {e}"))
}

/// `X ~ N(0, 1)` of shape `[n, features]`, `w, b ~ N(0, 1)` drawn first from the same seed,
/// `y = Xw + b + noise · N(0, 1)` of shape `[n, 1]`.
pub(super) fn regression(spec: &RegressionSource) -> Result<Samples, Diagnostic> {
    let mut x = budget::with_capacity(spec.n, &[spec.features], 4, "regression(...)")?;
    let mut y = budget::with_capacity(spec.n, &[1], 4, "regression(...)")?;
    let mut params = Stream::new(spec.seed, Purpose::Generate, 0, 0);
    let w: Vec<f64> = (0..spec.features).map(|_| params.normal()).collect();
    let b = params.normal();
    for i in 0..spec.n {
        let mut s = Stream::new(spec.seed, Purpose::Generate, 1, i as u64);
        let mut acc = b;
        for wj in &w {
            let xj = s.normal();
            acc += xj * wj;
            x.push(xj as f32);
        }
        y.push((acc + spec.noise * s.normal()) as f32);
    }
    Ok(Samples {
        features: Features::F32(
            ArrayD::from_shape_vec(with_count(spec.n, &[spec.features]), x)
                .map_err(|e| shape_error(&e))?,
        ),
        labels: Labels::Values(
            ArrayD::from_shape_vec(with_count(spec.n, &[1]), y).map_err(|e| shape_error(&e))?,
        ),
    })
}

/// The class a token sequence belongs to: the vocabulary (ids `1..vocab`, 0 is padding) is
/// cut into `classes` equal bands; the class is the band holding most tokens (padding skipped),
/// ties to the lower band.
pub fn token_class(tokens: &[i64], vocab: u32, classes: u32) -> i64 {
    let mut counts = vec![0usize; classes as usize];
    for &t in tokens.iter().filter(|&&t| t != 0) {
        let band = band_of(t, vocab, classes);
        if let Some(c) = counts.get_mut(band) {
            *c += 1;
        }
    }
    let mut best = 0;
    for (i, &c) in counts.iter().enumerate() {
        if c > counts[best] {
            best = i;
        }
    }
    best as i64
}

fn band_of(token: i64, vocab: u32, classes: u32) -> usize {
    let usable = i64::from(vocab.saturating_sub(1)).max(1);
    ((token - 1).max(0) * i64::from(classes) / usable) as usize
}

/// Sequences of `length` token ids in `1..vocab`: a class is drawn, then each token comes from
/// that class's band with probability 0.6 or from the whole vocabulary otherwise; the label is
/// [`token_class`] of the sequence (so it is a function of the content). With `min_length`,
/// a sequence holds a drawn number of tokens in `min_length..=length`, then zeros (padding,
/// which [`token_class`] skips).
pub(super) fn tokens(spec: &TokenSource) -> Result<Samples, Diagnostic> {
    if spec.vocab <= spec.classes {
        return Err(Diagnostic::error(
            DATA_ARGUMENT_RANGE,
            format!(
                "tokens(...) needs a vocabulary larger than its {} classes, found vocab {}",
                spec.classes, spec.vocab
            ),
        ));
    }
    let mut ids = budget::with_capacity(spec.n, &[spec.length], 8, "tokens(...)")?;
    let mut labels = budget::with_capacity(spec.n, &[], 8, "tokens(...)")?;
    let usable = u64::from(spec.vocab - 1);
    let classes = u64::from(spec.classes);
    for i in 0..spec.n {
        let mut s = Stream::new(spec.seed, Purpose::Generate, 2, i as u64);
        let class = s.below(classes);
        // the band of class c is ids 1 + [c·usable/classes, (c+1)·usable/classes)
        let lo = class * usable / classes;
        let hi = ((class + 1) * usable / classes).max(lo + 1);
        let start = ids.len();
        let kept = match spec.min_length {
            // A length in `min..=length`, drawn after the class (no draw without padding).
            Some(min) => min + s.below((spec.length - min.min(spec.length)) as u64 + 1) as usize,
            None => spec.length,
        };
        for _ in 0..kept.min(spec.length) {
            let t = if s.uniform() < 0.6 {
                lo + s.below(hi - lo)
            } else {
                s.below(usable)
            };
            ids.push(1 + t as i64);
        }
        ids.resize(start + spec.length, 0);
        labels.push(token_class(&ids[start..], spec.vocab, spec.classes));
    }
    Ok(Samples {
        features: Features::I64(
            ArrayD::from_shape_vec(with_count(spec.n, &[spec.length]), ids)
                .map_err(|e| shape_error(&e))?,
        ),
        labels: Labels::Class(labels),
    })
}

/// `x_t = sin(2π t / period) + noise · N(0, 1)` for `t = 0..n`, one value per sample.
pub(super) fn sine(spec: &SineSource) -> Result<Samples, Diagnostic> {
    let mut values = budget::with_capacity(spec.n, &[1], 4, "sine(...)")?;
    let mut s = Stream::new(spec.seed, Purpose::Generate, 3, 0);
    values.extend((0..spec.n).map(|t| {
        let clean = (std::f64::consts::TAU * t as f64 / spec.period).sin();
        (clean + spec.noise * s.normal()) as f32
    }));
    Ok(Samples {
        features: Features::F32(
            ArrayD::from_shape_vec(with_count(spec.n, &[1]), values)
                .map_err(|e| shape_error(&e))?,
        ),
        labels: Labels::None,
    })
}
