//! Each layer op's rule: input facts → output fact, weights (Keras names and shapes) and FLOPs
//! per sample.
//!
//! Input: a resolved [`LayerOp`] and the facts of its inputs (dims already resolved through the
//! model's [`Symbols`]). Output: an [`Inferred`] or a [`RuleError`] the model walker turns into a
//! diagnostic. Invariants: Keras channels-last semantics; all size arithmetic is checked; FLOPs
//! count a multiply-add as 2, an elementwise op as 1 per element, and treat symbolic non-batch
//! dims (such as a sequence length `T`) as 1.

use super::shape::{Conflict, Symbols};
use super::types::{Activation, DType, Dim, Fact, LayerOp, ParamInfo, PoolKind};
use crate::diag::Span;
use crate::ops::window::WindowError;

/// What a layer produces.
#[derive(Clone, Debug, PartialEq)]
pub struct Inferred {
    pub output: Fact,
    pub params: Vec<ParamInfo>,
    pub flops: u64,
}

/// Why a layer's rule rejected its inputs.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleError {
    /// `expected` describes the rank wanted, e.g. "4 ([batch, height, width, channels])".
    Rank {
        expected: &'static str,
        found: usize,
    },
    NeedsFloat {
        found: DType,
    },
    NeedsInteger {
        found: DType,
    },
    DTypeMismatch {
        first: DType,
        other: DType,
        input: usize,
    },
    ShapeMismatch {
        axis: usize,
        first: Dim,
        other: Dim,
        input: usize,
    },
    Conflict(Conflict),
    /// The window (`needed` wide) does not fit `input` along `axis` (1 = height, 2 = width).
    Window {
        axis: usize,
        input: usize,
        needed: usize,
    },
    /// A size that must be known is a symbol.
    Unknown {
        axis: usize,
        symbol: String,
    },
    /// A size overflowed or is zero.
    Size(String),
    InputCount {
        found: usize,
    },
    Axis {
        axis: i64,
        rank: usize,
    },
    Reshape(String),
}

type Rule = Result<Inferred, RuleError>;

fn known(dims: &[Dim], axis: usize) -> Result<usize, RuleError> {
    match dims.get(axis) {
        Some(Dim::Known(n)) => Ok(*n),
        Some(Dim::Symbol(s)) => Err(RuleError::Unknown {
            axis,
            symbol: s.clone(),
        }),
        None => Err(RuleError::Size(format!("axis {axis} does not exist"))),
    }
}

fn mul(a: usize, b: usize) -> Result<usize, RuleError> {
    a.checked_mul(b)
        .ok_or_else(|| RuleError::Size(format!("{a} × {b} overflows")))
}

/// Elements of one sample (symbolic dims count as 1).
fn per_sample(dims: &[Dim]) -> Result<usize, RuleError> {
    dims.iter()
        .skip(1)
        .try_fold(1usize, |acc, d| mul(acc, d.known().unwrap_or(1)))
}

fn flops(n: usize) -> u64 {
    n as u64
}

fn weight(name: &'static str, shape: Vec<usize>, trainable: bool) -> ParamInfo {
    ParamInfo {
        name,
        shape,
        trainable,
    }
}

fn need_float(x: &Fact) -> Result<(), RuleError> {
    if x.dtype.is_integer() {
        Err(RuleError::NeedsFloat { found: x.dtype })
    } else {
        Ok(())
    }
}

fn need_rank(x: &Fact, rank: usize, expected: &'static str) -> Result<(), RuleError> {
    if x.rank() == rank {
        Ok(())
    } else {
        Err(RuleError::Rank {
            expected,
            found: x.rank(),
        })
    }
}

const RANK4: &str = "4 ([batch, height, width, channels])";
const RANK3: &str = "3 ([batch, time, features])";

/// Applies `op` to `inputs`. `symbols` and `at` are used to unify dims of multi-input layers.
pub fn infer(op: &LayerOp, inputs: &[Fact], symbols: &mut Symbols, at: Span) -> Rule {
    let Some(x) = inputs.first() else {
        return Err(RuleError::InputCount { found: 0 });
    };
    match op {
        LayerOp::Dense {
            units, use_bias, ..
        } => dense(x, *units, *use_bias),
        LayerOp::Conv2d { .. } | LayerOp::Pool2d { .. } => window(op, x),
        LayerOp::GlobalPool2d { .. } => {
            need_float(x)?;
            need_rank(x, 4, RANK4)?;
            let c = known(&x.dims, 3)?;
            let out = vec![x.dims[0].clone(), Dim::Known(c)];
            Ok(Inferred {
                output: Fact {
                    dtype: x.dtype,
                    dims: out,
                },
                params: vec![],
                flops: flops(per_sample(&x.dims)?),
            })
        }
        LayerOp::Flatten => {
            if x.rank() < 2 {
                return Err(RuleError::Rank {
                    expected: "at least 2 ([batch, ...])",
                    found: x.rank(),
                });
            }
            let mut n = 1usize;
            for axis in 1..x.rank() {
                n = mul(n, known(&x.dims, axis)?)?;
            }
            Ok(Inferred {
                output: Fact {
                    dtype: x.dtype,
                    dims: vec![x.dims[0].clone(), Dim::Known(n)],
                },
                params: vec![],
                flops: 0,
            })
        }
        LayerOp::Reshape { shape } => {
            let mut dims = vec![x.dims.first().cloned().unwrap_or(Dim::Known(1))];
            dims.extend(shape.iter().map(|&d| Dim::Known(d)));
            Ok(Inferred {
                output: Fact {
                    dtype: x.dtype,
                    dims,
                },
                params: vec![],
                flops: 0,
            })
        }
        LayerOp::BatchNorm { .. } | LayerOp::LayerNorm { .. } => {
            need_float(x)?;
            if x.rank() < 2 {
                return Err(RuleError::Rank {
                    expected: "at least 2 ([batch, ..., features])",
                    found: x.rank(),
                });
            }
            let c = known(&x.dims, x.rank() - 1)?;
            let mut params = vec![
                weight("gamma", vec![c], true),
                weight("beta", vec![c], true),
            ];
            let per_element = if matches!(op, LayerOp::BatchNorm { .. }) {
                params.push(weight("moving_mean", vec![c], false));
                params.push(weight("moving_variance", vec![c], false));
                2
            } else {
                5
            };
            Ok(Inferred {
                output: x.clone(),
                params,
                flops: flops(mul(per_sample(&x.dims)?, per_element)?),
            })
        }
        LayerOp::Dropout { .. } => {
            need_float(x)?;
            Ok(Inferred {
                output: x.clone(),
                params: vec![],
                flops: 0,
            })
        }
        LayerOp::Embedding {
            input_dim,
            output_dim,
        } => {
            if !x.dtype.is_integer() {
                return Err(RuleError::NeedsInteger { found: x.dtype });
            }
            if x.rank() < 1 {
                return Err(RuleError::Rank {
                    expected: "at least 1 ([batch, ...])",
                    found: 0,
                });
            }
            let mut dims = x.dims.clone();
            dims.push(Dim::Known(*output_dim));
            let _ = mul(*input_dim, *output_dim)?;
            Ok(Inferred {
                output: Fact {
                    dtype: DType::F32,
                    dims,
                },
                params: vec![weight("embeddings", vec![*input_dim, *output_dim], true)],
                flops: 0,
            })
        }
        LayerOp::Rnn {
            cell,
            units,
            return_sequences,
        } => {
            need_float(x)?;
            need_rank(x, 3, RANK3)?;
            let f = known(&x.dims, 2)?;
            let g = mul(cell.gates(), *units)?;
            let bias = if matches!(cell, super::types::RnnCell::Gru) {
                vec![2, g]
            } else {
                vec![g]
            };
            let params = vec![
                weight("kernel", vec![f, g], true),
                weight("recurrent_kernel", vec![*units, g], true),
                weight("bias", bias, true),
            ];
            let steps = x.dims[1].known().unwrap_or(1);
            let per_step = mul(2, mul(f.saturating_add(*units), g)?)?;
            let mut dims = vec![x.dims[0].clone()];
            if *return_sequences {
                dims.push(x.dims[1].clone());
            }
            dims.push(Dim::Known(*units));
            Ok(Inferred {
                output: Fact {
                    dtype: x.dtype,
                    dims,
                },
                params,
                flops: flops(mul(steps, per_step)?),
            })
        }
        LayerOp::Add => {
            need_float(x)?;
            if inputs.len() < 2 {
                return Err(RuleError::InputCount {
                    found: inputs.len(),
                });
            }
            let mut dims = x.dims.clone();
            for (i, y) in inputs.iter().enumerate().skip(1) {
                same_dtype(x, y, i)?;
                if y.rank() != x.rank() {
                    return Err(RuleError::ShapeMismatch {
                        axis: usize::MAX,
                        first: Dim::Known(x.rank()),
                        other: Dim::Known(y.rank()),
                        input: i,
                    });
                }
                for axis in 0..x.rank() {
                    unify(symbols, &x.dims[axis], &y.dims[axis], axis, i, at)?;
                }
            }
            dims = symbols.resolve_all(&dims);
            let n = per_sample(&dims)?;
            Ok(Inferred {
                output: Fact {
                    dtype: x.dtype,
                    dims,
                },
                params: vec![],
                flops: flops(mul(n, inputs.len() - 1)?),
            })
        }
        LayerOp::Concat { axis } => {
            if inputs.len() < 2 {
                return Err(RuleError::InputCount {
                    found: inputs.len(),
                });
            }
            let mut total = known(&symbols.resolve_all(&x.dims), *axis)?;
            for (i, y) in inputs.iter().enumerate().skip(1) {
                same_dtype(x, y, i)?;
                if y.rank() != x.rank() {
                    return Err(RuleError::ShapeMismatch {
                        axis: usize::MAX,
                        first: Dim::Known(x.rank()),
                        other: Dim::Known(y.rank()),
                        input: i,
                    });
                }
                for a in 0..x.rank() {
                    if a == *axis {
                        total = total
                            .checked_add(known(&symbols.resolve_all(&y.dims), a)?)
                            .ok_or_else(|| {
                                RuleError::Size("the concatenated size overflows".into())
                            })?;
                    } else {
                        unify(symbols, &x.dims[a], &y.dims[a], a, i, at)?;
                    }
                }
            }
            let mut dims = symbols.resolve_all(&x.dims);
            if let Some(d) = dims.get_mut(*axis) {
                *d = Dim::Known(total);
            }
            Ok(Inferred {
                output: Fact {
                    dtype: x.dtype,
                    dims,
                },
                params: vec![],
                flops: 0,
            })
        }
        LayerOp::Activation(a) => {
            need_float(x)?;
            if let Activation::Softmax { axis } = a {
                normalize_axis(*axis, x.rank())?;
            }
            let per = if matches!(a, Activation::Softmax { .. }) {
                3
            } else {
                1
            };
            let cost = if matches!(a, Activation::Linear) {
                0
            } else {
                mul(per_sample(&x.dims)?, per)?
            };
            Ok(Inferred {
                output: x.clone(),
                params: vec![],
                flops: flops(cost),
            })
        }
        LayerOp::Cast { to } => Ok(Inferred {
            output: Fact {
                dtype: *to,
                dims: x.dims.clone(),
            },
            params: vec![],
            flops: 0,
        }),
    }
}

/// A possibly negative axis as an index into `rank` dims.
pub fn normalize_axis(axis: i64, rank: usize) -> Result<usize, RuleError> {
    let r = i64::try_from(rank).unwrap_or(i64::MAX);
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(RuleError::Axis { axis, rank });
    }
    usize::try_from(a).map_err(|_| RuleError::Axis { axis, rank })
}

fn same_dtype(x: &Fact, y: &Fact, input: usize) -> Result<(), RuleError> {
    if x.dtype == y.dtype {
        Ok(())
    } else {
        Err(RuleError::DTypeMismatch {
            first: x.dtype,
            other: y.dtype,
            input,
        })
    }
}

fn unify(
    symbols: &mut Symbols,
    a: &Dim,
    b: &Dim,
    axis: usize,
    input: usize,
    at: Span,
) -> Result<(), RuleError> {
    match symbols.unify(a, b, at) {
        Ok(true) => Ok(()),
        Ok(false) => Err(RuleError::ShapeMismatch {
            axis,
            first: a.clone(),
            other: b.clone(),
            input,
        }),
        Err(c) => Err(RuleError::Conflict(c)),
    }
}

fn dense(x: &Fact, units: usize, use_bias: bool) -> Rule {
    need_float(x)?;
    if x.rank() < 2 {
        return Err(RuleError::Rank {
            expected: "at least 2 ([batch, ..., features])",
            found: x.rank(),
        });
    }
    let last = x.rank() - 1;
    let inputs = known(&x.dims, last)?;
    let mut params = vec![weight("kernel", vec![inputs, units], true)];
    if use_bias {
        params.push(weight("bias", vec![units], true));
    }
    let positions = per_sample(&x.dims[..last])?;
    let per_position = mul(mul(2, inputs)?, units)?
        .checked_add(if use_bias { units } else { 0 })
        .ok_or_else(|| RuleError::Size("dense flops overflow".into()))?;
    let mut dims = x.dims.clone();
    dims[last] = Dim::Known(units);
    Ok(Inferred {
        output: Fact {
            dtype: x.dtype,
            dims,
        },
        params,
        flops: flops(mul(positions, per_position)?),
    })
}

fn window(op: &LayerOp, x: &Fact) -> Rule {
    need_float(x)?;
    need_rank(x, 4, RANK4)?;
    let (h, w, c) = (known(&x.dims, 1)?, known(&x.dims, 2)?, known(&x.dims, 3)?);
    let (kernel, strides, dilation, padding) = match op {
        LayerOp::Conv2d {
            kernel,
            strides,
            dilation,
            padding,
            ..
        } => (*kernel, *strides, *dilation, padding),
        LayerOp::Pool2d {
            pool,
            strides,
            padding,
            ..
        } => (*pool, *strides, (1, 1), padding),
        _ => return Err(RuleError::Size("not a window op".into())),
    };
    let out = |axis: usize, input: usize, k: usize, s: usize, d: usize| {
        crate::ops::window::output_size(input, k, s, d, padding, axis - 1).map_err(|e| match e {
            WindowError::TooLarge(t) => RuleError::Window {
                axis,
                input: t.input,
                needed: t.needed,
            },
            WindowError::Overflow => RuleError::Size("the window size overflows".into()),
        })
    };
    let oh = out(1, h, kernel.0, strides.0, dilation.0)?;
    let ow = out(2, w, kernel.1, strides.1, dilation.1)?;
    let positions = mul(oh, ow)?;
    let (channels, params, per_position) = match op {
        LayerOp::Conv2d {
            filters, use_bias, ..
        } => {
            let k = mul(mul(kernel.0, kernel.1)?, c)?;
            let mut params = vec![weight(
                "kernel",
                vec![kernel.0, kernel.1, c, *filters],
                true,
            )];
            if *use_bias {
                params.push(weight("bias", vec![*filters], true));
            }
            let per = mul(mul(2, k)?, *filters)?
                .checked_add(if *use_bias { *filters } else { 0 })
                .ok_or_else(|| RuleError::Size("conv2d flops overflow".into()))?;
            (*filters, params, per)
        }
        LayerOp::Pool2d { kind, .. } => {
            let _ = matches!(kind, PoolKind::Max);
            (c, vec![], mul(mul(kernel.0, kernel.1)?, c)?)
        }
        _ => return Err(RuleError::Size("not a window op".into())),
    };
    let dims = vec![
        x.dims[0].clone(),
        Dim::Known(oh),
        Dim::Known(ow),
        Dim::Known(channels),
    ];
    let _ = per_sample(&dims)?;
    Ok(Inferred {
        output: Fact {
            dtype: x.dtype,
            dims,
        },
        params,
        flops: flops(mul(positions, per_position)?),
    })
}
