//! Derived parameters: what an inference rewrite computes from stored tensors (a batch norm
//! folded into a kernel, an embedding projected through a recurrent kernel), by the recipe the
//! plan records (formulas in `crate::ir`), every operand checked first.

use ndarray::{ArrayD, Axis, IxDyn};

use super::{operands, WeightEntry};
use crate::ir::{ParamId, Recipe};
use crate::passes::MAX_PROJECTION_BYTES;
use crate::runtime::kernels::rnn;

/// Computes one derived parameter (index `at`) from earlier entries.
pub(super) fn materialize(
    recipe: &Recipe,
    at: usize,
    entries: &[WeightEntry],
) -> Result<ArrayD<f32>, String> {
    match recipe {
        Recipe::BatchNormKernel {
            kernel,
            gamma,
            variance,
            epsilon,
        } => {
            let k = operands::source(entries, *kernel, at)?;
            let out = *k.shape().last().ok_or("rank-0 kernel")?;
            let scale = operands::bn_scale(
                operands::vector(entries, *gamma, at, out)?,
                operands::vector(entries, *variance, at, out)?,
                *epsilon,
            );
            let mut k = k.clone();
            let last = Axis(k.ndim() - 1);
            for row in k.lanes_mut(last) {
                for (v, s) in row.into_iter().zip(&scale) {
                    *v *= s;
                }
            }
            Ok(k)
        }
        Recipe::BatchNormBias {
            bias,
            gamma,
            beta,
            mean,
            variance,
            epsilon,
        } => {
            let out = operands::source(entries, *gamma, at)?.len();
            let scale = operands::bn_scale(
                operands::vector(entries, *gamma, at, out)?,
                operands::vector(entries, *variance, at, out)?,
                *epsilon,
            );
            let beta = operands::vector(entries, *beta, at, out)?;
            let mean = operands::vector(entries, *mean, at, out)?;
            let bias = match bias {
                Some(b) => Some(operands::vector(entries, *b, at, out)?),
                None => None,
            };
            let v: Vec<f32> = (0..out)
                .map(|o| (bias.map_or(0.0, |b| b[o]) - mean[o]) * scale[o] + beta[o])
                .collect();
            Ok(ArrayD::from_shape_vec(IxDyn(&[out]), v).map_err(|e| e.to_string())?)
        }
        Recipe::AffineKernel { kernel, scale } => {
            let k = operands::source(entries, *kernel, at)?;
            let axis = k.ndim().checked_sub(2).ok_or("kernel of rank < 2")?;
            if k.shape()[axis] != scale.len() {
                return Err("scale does not match the kernel's input channels".into());
            }
            let mut k = k.clone();
            for (c, mut sub) in k.axis_iter_mut(Axis(axis)).enumerate() {
                sub.mapv_inplace(|v| v * scale[c]);
            }
            Ok(k)
        }
        Recipe::AffineBias {
            bias,
            kernel,
            shift,
            units,
        } => {
            let k = operands::source(entries, *kernel, at)?;
            let axis = k.ndim().checked_sub(2).ok_or("kernel of rank < 2")?;
            if k.shape()[axis] != shift.len() || k.shape().last() != Some(units) {
                return Err("shift does not match the kernel".into());
            }
            let mut v = match bias {
                Some(b) => operands::vector(entries, *b, at, *units)?.to_vec(),
                None => vec![0.0; *units],
            };
            for (c, sub) in k.axis_iter(Axis(axis)).enumerate() {
                for row in sub.lanes(Axis(sub.ndim() - 1)) {
                    for (o, &kv) in v.iter_mut().zip(row) {
                        *o += shift[c] * kv;
                    }
                }
            }
            Ok(ArrayD::from_shape_vec(IxDyn(&[*units]), v).map_err(|e| e.to_string())?)
        }
        Recipe::EmbeddingProjection {
            table,
            kernel,
            bias,
        } => {
            let matrix = |id: ParamId| {
                operands::source(entries, id, at)?
                    .view()
                    .into_dimensionality::<ndarray::Ix2>()
                    .map_err(|_| format!("parameter {} is not a matrix", id.0))
            };
            let (t, k) = (matrix(*table)?, matrix(*kernel)?);
            let b = operands::source(entries, *bias, at)?;
            let gu = k.ncols();
            // The input bias: a simple RNN's or LSTM's `[G·U]`, row 0 of a GRU's `[2, G·U]`.
            let in_bias = match (b.shape(), b.as_slice()) {
                ([n], Some(s)) if *n == gu => s,
                ([2, n], Some(s)) if *n == gu => &s[..gu],
                _ => {
                    return Err(format!(
                        "bias of shape {:?} does not fit a kernel of {gu} columns",
                        b.shape()
                    ))
                }
            };
            // The table can be far larger than the tensors it is computed from; the pass never
            // asks for more than its limit, so a (tampered) plan that does is refused before
            // anything is allocated.
            let bytes = (t.nrows() as u64)
                .checked_mul(gu as u64)
                .and_then(|n| n.checked_mul(4));
            if bytes.is_none_or(|b| b > MAX_PROJECTION_BYTES) {
                return Err(format!(
                    "a [{}, {gu}] projection table is larger than {MAX_PROJECTION_BYTES} bytes",
                    t.nrows()
                ));
            }
            let p = rnn::embedding_projection(t, k, in_bias).map_err(|e| e.to_string())?;
            Ok(p.into_dyn())
        }
    }
}
