//! Each op's shape rule: the output fact from the input facts and the parameter table.
//!
//! These rules are the IR's own and are used by the verifier; they follow Keras (channels-last).
//! All arithmetic is checked: a rule that would overflow or produce an empty size is an error.

use super::{DType, Dim, Fact, Op, Param, ParamId, RnnCell, Window};
use crate::ops::window;

type Rule = Result<Fact, String>;

/// Output size of a window (conv or pool) over one axis (0 = height, 1 = width), any padding.
pub fn pool_output_size(window: &Window, axis: usize, input: usize) -> Option<usize> {
    window::output_size(
        input,
        *window.size.get(axis)?,
        *window.strides.get(axis)?,
        *window.dilation.get(axis)?,
        &window.padding,
        axis,
    )
    .ok()
}

fn param(params: &[Param], id: ParamId) -> Result<&Param, String> {
    params
        .get(id.index())
        .ok_or_else(|| format!("parameter {} does not exist", id.0))
}

fn expect_param(params: &[Param], id: ParamId, shape: &[usize]) -> Result<(), String> {
    let p = param(params, id)?;
    if p.shape == shape {
        Ok(())
    } else {
        Err(format!(
            "parameter {} has shape {:?}, expected {:?}",
            p.name, p.shape, shape
        ))
    }
}

fn one<'f>(inputs: &[&'f Fact]) -> Result<&'f Fact, String> {
    match inputs {
        [x] => Ok(x),
        _ => Err(format!("expected one input, got {}", inputs.len())),
    }
}

fn float(x: &Fact) -> Result<(), String> {
    if x.dtype == DType::F32 {
        Ok(())
    } else {
        Err(format!("expected f32 input, got {}", x.dtype))
    }
}

fn spatial(x: &Fact) -> Result<(usize, usize, usize), String> {
    if x.rank() != 4 {
        return Err(format!("expected a rank-4 [N, H, W, C] input, got {x}"));
    }
    match (x.dim(1), x.dim(2), x.dim(3)) {
        (Some(h), Some(w), Some(c)) => Ok((h, w, c)),
        _ => Err(format!("spatial and channel sizes must be known, got {x}")),
    }
}

fn window_out(window: &Window, h: usize, w: usize) -> Result<(usize, usize), String> {
    match (
        pool_output_size(window, 0, h),
        pool_output_size(window, 1, w),
    ) {
        (Some(oh), Some(ow)) if oh > 0 && ow > 0 => Ok((oh, ow)),
        _ => Err(format!(
            "a {}x{} window does not fit a {h}x{w} input",
            window.size[0], window.size[1]
        )),
    }
}

/// Checks a recurrent layer's recurrent kernel `[U, G·U]` and bias (`[G·U]`, a GRU's
/// `[2, G·U]`); returns `G·U`.
fn recurrent_params(
    params: &[Param],
    cell: RnnCell,
    units: usize,
    recurrent: ParamId,
    bias: ParamId,
) -> Result<usize, String> {
    let g = cell.gates().checked_mul(units).ok_or("units overflow")?;
    expect_param(params, recurrent, &[units, g])?;
    match cell {
        RnnCell::Gru => expect_param(params, bias, &[2, g])?,
        _ => expect_param(params, bias, &[g])?,
    }
    Ok(g)
}

/// A recurrent layer's output over `x` (`[N, T, ...]`): `[N, T, U]` with `return_sequences`,
/// else `[N, U]`.
fn recurrent_output(x: &Fact, units: usize, return_sequences: bool) -> Fact {
    let mut dims = vec![x.dims[0].clone()];
    if return_sequences {
        dims.push(x.dims[1].clone());
    }
    dims.push(Dim::Known(units));
    Fact::new(DType::F32, dims)
}

/// The output fact of `op` applied to `inputs`.
pub fn infer(op: &Op, inputs: &[&Fact], params: &[Param]) -> Rule {
    match op {
        Op::Conv2d {
            filters,
            window,
            kernel,
            bias,
            ..
        } => {
            let x = one(inputs)?;
            float(x)?;
            let (h, w, c) = spatial(x)?;
            expect_param(
                params,
                *kernel,
                &[window.size[0], window.size[1], c, *filters],
            )?;
            if let Some(b) = bias {
                expect_param(params, *b, &[*filters])?;
            }
            let (oh, ow) = window_out(window, h, w)?;
            Ok(Fact::new(
                DType::F32,
                vec![
                    x.dims[0].clone(),
                    Dim::Known(oh),
                    Dim::Known(ow),
                    Dim::Known(*filters),
                ],
            ))
        }
        Op::Dense {
            units,
            kernel,
            bias,
            ..
        } => {
            let x = one(inputs)?;
            float(x)?;
            let last = x
                .dim(-1)
                .ok_or_else(|| format!("the last axis of {x} must be known"))?;
            expect_param(params, *kernel, &[last, *units])?;
            if let Some(b) = bias {
                expect_param(params, *b, &[*units])?;
            }
            let mut dims = x.dims.clone();
            if let Some(d) = dims.last_mut() {
                *d = Dim::Known(*units);
            }
            Ok(Fact::new(DType::F32, dims))
        }
        Op::MaxPool2d { window } | Op::AvgPool2d { window } => {
            let x = one(inputs)?;
            float(x)?;
            let (h, w, c) = spatial(x)?;
            let (oh, ow) = window_out(window, h, w)?;
            Ok(Fact::new(
                DType::F32,
                vec![
                    x.dims[0].clone(),
                    Dim::Known(oh),
                    Dim::Known(ow),
                    Dim::Known(c),
                ],
            ))
        }
        Op::GlobalAvgPool2d | Op::GlobalMaxPool2d => {
            let x = one(inputs)?;
            float(x)?;
            let (_, _, c) = spatial(x)?;
            Ok(Fact::new(
                DType::F32,
                vec![x.dims[0].clone(), Dim::Known(c)],
            ))
        }
        Op::Flatten => {
            let x = one(inputs)?;
            let n = x
                .elements_per_sample()
                .ok_or_else(|| format!("cannot flatten {x}: sizes must be known"))?;
            Ok(Fact::new(
                x.dtype,
                vec![
                    x.dims.first().cloned().unwrap_or(Dim::Known(1)),
                    Dim::Known(n),
                ],
            ))
        }
        Op::Reshape { shape } => {
            let x = one(inputs)?;
            let total = x
                .elements_per_sample()
                .ok_or_else(|| format!("cannot reshape {x}: sizes must be known"))?;
            let mut known = 1usize;
            let mut free = None;
            for (i, &d) in shape.iter().enumerate() {
                match d {
                    -1 if free.is_none() => free = Some(i),
                    d if d > 0 => {
                        known = known
                            .checked_mul(d as usize)
                            .ok_or("reshape size overflows")?;
                    }
                    _ => return Err(format!("invalid reshape target {shape:?}")),
                }
            }
            let mut dims = vec![x.dims.first().cloned().unwrap_or(Dim::Known(1))];
            for (i, &d) in shape.iter().enumerate() {
                if Some(i) == free {
                    if known == 0 || total % known != 0 {
                        return Err(format!("cannot reshape {total} elements into {shape:?}"));
                    }
                    dims.push(Dim::Known(total / known));
                } else {
                    dims.push(Dim::Known(d as usize));
                }
            }
            if free.is_none() && known != total {
                return Err(format!("cannot reshape {total} elements into {shape:?}"));
            }
            Ok(Fact::new(x.dtype, dims))
        }
        Op::BatchNorm {
            gamma,
            beta,
            mean,
            variance,
            ..
        } => {
            let x = one(inputs)?;
            float(x)?;
            let c = x
                .dim(-1)
                .ok_or_else(|| format!("the channel axis of {x} must be known"))?;
            for p in [gamma, beta, mean, variance] {
                expect_param(params, *p, &[c])?;
            }
            Ok(x.clone())
        }
        Op::LayerNorm { gamma, beta, .. } => {
            let x = one(inputs)?;
            float(x)?;
            let c = x
                .dim(-1)
                .ok_or_else(|| format!("the last axis of {x} must be known"))?;
            expect_param(params, *gamma, &[c])?;
            expect_param(params, *beta, &[c])?;
            Ok(x.clone())
        }
        Op::Dropout { rate } => {
            let x = one(inputs)?;
            float(x)?;
            if !(0.0..1.0).contains(rate) {
                return Err(format!("dropout rate {rate} is not in [0, 1)"));
            }
            Ok(x.clone())
        }
        Op::Embedding { table } => {
            let x = one(inputs)?;
            if !x.dtype.is_integer() {
                return Err(format!("embedding needs integer ids, got {}", x.dtype));
            }
            let t = param(params, *table)?;
            let [_, dim] = t.shape[..] else {
                return Err(format!("embedding table {} is not 2-D", t.name));
            };
            let mut dims = x.dims.clone();
            dims.push(Dim::Known(dim));
            Ok(Fact::new(DType::F32, dims))
        }
        Op::Rnn {
            cell,
            units,
            return_sequences,
            kernel,
            recurrent,
            bias,
        } => {
            let x = one(inputs)?;
            float(x)?;
            if x.rank() != 3 {
                return Err(format!("recurrent layers need [N, T, F] input, got {x}"));
            }
            let f = x
                .dim(2)
                .ok_or_else(|| format!("the feature axis of {x} must be known"))?;
            let g = recurrent_params(params, *cell, *units, *recurrent, *bias)?;
            expect_param(params, *kernel, &[f, g])?;
            Ok(recurrent_output(x, *units, *return_sequences))
        }
        Op::EmbeddedRnn {
            cell,
            units,
            return_sequences,
            projection,
            recurrent,
            bias,
        } => {
            let ids = one(inputs)?;
            if !ids.dtype.is_integer() {
                return Err(format!(
                    "a recurrent layer over token ids needs integer ids, got {}",
                    ids.dtype
                ));
            }
            if ids.rank() != 2 {
                return Err(format!(
                    "a recurrent layer over token ids needs [N, T] ids, got {ids}"
                ));
            }
            let g = recurrent_params(params, *cell, *units, *recurrent, *bias)?;
            let p = param(params, *projection)?;
            match p.shape[..] {
                [vocab, cols] if vocab > 0 && cols == g => {}
                _ => {
                    return Err(format!(
                        "projection {} has shape {:?}, expected [vocab, {g}]",
                        p.name, p.shape
                    ))
                }
            }
            Ok(recurrent_output(ids, *units, *return_sequences))
        }
        Op::Activation(_) | Op::Affine { .. } => {
            let x = one(inputs)?;
            float(x)?;
            if let Op::Affine { scale, shift } = op {
                let c = x.dim(-1).ok_or("affine needs a known last axis")?;
                if scale.len() != c || shift.len() != c {
                    return Err(format!(
                        "affine has {} scales and {} shifts for {c} channels",
                        scale.len(),
                        shift.len()
                    ));
                }
            }
            Ok(x.clone())
        }
        Op::Add => {
            let first = inputs.first().ok_or("add needs inputs")?;
            if inputs.len() < 2 || inputs.iter().any(|f| f != first) {
                return Err("add needs two or more inputs of the same type".to_string());
            }
            Ok((*first).clone())
        }
        Op::Concat { axis } => {
            let first = inputs.first().ok_or("concat needs inputs")?;
            let rank = first.rank() as i64;
            let ax = if *axis < 0 { rank + axis } else { *axis };
            if ax <= 0 || ax >= rank {
                return Err(format!(
                    "concat axis {axis} is not a non-batch axis of rank {rank}"
                ));
            }
            let ax = ax as usize;
            let mut total = 0usize;
            for f in inputs {
                if f.rank() != first.rank() || f.dtype != first.dtype {
                    return Err("concat inputs differ in rank or dtype".to_string());
                }
                for (i, (a, b)) in f.dims.iter().zip(&first.dims).enumerate() {
                    if i != ax && a != b {
                        return Err(format!("concat inputs differ on axis {i}"));
                    }
                }
                total = total
                    .checked_add(f.dims[ax].known().ok_or("concat axis must be known")?)
                    .ok_or("overflow")?;
            }
            let mut dims = first.dims.clone();
            dims[ax] = Dim::Known(total);
            Ok(Fact::new(first.dtype, dims))
        }
        Op::Cast { to } => {
            let x = one(inputs)?;
            Ok(Fact::new(*to, x.dims.clone()))
        }
    }
}
