//! Attention over sequences: `multi_head_attention(query, value, [key], heads:, key_dim:,
//! value_dim:, dropout:, causal:)` (Keras 3's MultiHeadAttention) and
//! `position_embedding(max_length)` (Keras-hub's PositionEmbedding, added to its input).
//!
//! Multi-head attention reads `query [N, Tq, dq]`, `value [N, Tv, dv]` and `key [N, Tv, dk]`
//! (the value when not given) and returns `[N, Tq, dq]`: each input projected to `heads` heads
//! (`key_dim` wide for query and key, `value_dim` for value, which defaults to `key_dim`), the
//! projected query scaled by `1/√key_dim`, scores softmaxed over the value positions (future
//! positions `j > i` masked when `causal`), dropout on the probabilities in training only, the
//! weighted values projected back to `dq`. Weights (Keras's names and layouts, Glorot uniform
//! kernels, zero biases): `query.kernel [dq, heads, key_dim]`, `query.bias [heads, key_dim]`,
//! `key.kernel [dk, heads, key_dim]`, `key.bias`, `value.kernel [dv, heads, value_dim]`,
//! `value.bias [heads, value_dim]`, `attention_output.kernel [heads, value_dim, dq]`,
//! `attention_output.bias [dq]`. FLOPs: the four projections, the two batched products
//! (`2·Tq·Tv·heads·(key_dim + value_dim)`) and the softmax (3 per score), symbolic lengths
//! counting as 1.
//!
//! Position embedding reads `[N, T, d]` with `T ≤ max_length` known, adds row `t` of its
//! `embeddings [max_length, d]` table (Glorot uniform, Keras-hub's default) to position `t`.
//! FLOPs: one per element.
//!
//! Masks from `embedding(..., mask_zero: true)` do not reach attention (no padding mask).
//! Export: ONNX has no single op (a MatMul/Softmax subgraph); PyTorch's
//! `nn.MultiheadAttention` needs equal head sizes and fused in-projection weights, so the
//! PyTorch form is `model.py`'s own `_MultiHeadAttention` (einsum over Keras's layouts);
//! position embedding is an `Add` of a constant slice (PyTorch: a parameter added to the
//! input).

use super::layer::{first, not_mine, param, LayerOp};
use super::op::{self, Activation as IrActivation, Op};
use super::param::{Init, ParamId, ParamInfo, ParamRef};
use super::rule::{
    known, mul, need_float, need_rank, one, per_sample, same_dtype, unify, Inferred, Rule,
    RuleError, RANK3,
};
use super::signature::{
    float, kw, layer, multi_input, pos, BoundArgs, Default, Kind, LayerSpec, Limit, SIZE,
};
use super::symbols::Symbols;
use super::types::Fact;
use crate::diag::Span;

pub const LAYERS: &[LayerSpec] = &[
    multi_input(
        "multi_head_attention",
        &[
            kw("heads", SIZE, Default::Required),
            kw("key_dim", SIZE, Default::Required),
            kw("value_dim", SIZE, Default::Absent),
            kw(
                "dropout",
                float(Limit::Incl(0.0), Limit::Excl(1.0)),
                Default::Float(0.0),
            ),
            kw("causal", Kind::Bool, Default::Bool(false)),
        ],
    )
    .with_input_help(super::signature::SEQUENCES_HELP),
    layer(
        "position_embedding",
        &[pos("max_length", SIZE, Default::Required)],
    )
    .with_input_help(super::signature::SEQUENCES_HELP),
];

/// The sizes of a multi-head attention layer (its attributes, defaults filled in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heads {
    pub heads: usize,
    pub key_dim: usize,
    pub value_dim: usize,
}

pub fn build(name: &str, args: &BoundArgs) -> Option<LayerOp> {
    match name {
        "multi_head_attention" => {
            let key_dim = args.size("key_dim");
            // `value_dim` is absent (reads as 0) unless written: Keras's default is `key_dim`.
            let value_dim = if args.int("value_dim") > 0 {
                args.size("value_dim")
            } else {
                key_dim
            };
            Some(LayerOp::MultiHeadAttention {
                heads: args.size("heads"),
                key_dim,
                value_dim,
                dropout: args.float("dropout"),
                causal: args.bool("causal"),
            })
        }
        "position_embedding" => Some(LayerOp::PositionEmbedding {
            max_length: args.size("max_length"),
        }),
        _ => None,
    }
}

/// The checker's entry: [`attention_rule`] or [`position_rule`].
pub fn infer(op: &LayerOp, inputs: &[Fact], symbols: &mut Symbols, at: Span) -> Rule {
    match op {
        LayerOp::MultiHeadAttention {
            heads,
            key_dim,
            value_dim,
            ..
        } => {
            let sizes = Heads {
                heads: *heads,
                key_dim: *key_dim,
                value_dim: *value_dim,
            };
            attention_rule(inputs, sizes, symbols, at)
        }
        LayerOp::PositionEmbedding { max_length } => {
            position_rule(first(inputs)?, *max_length, None)
        }
        other => Err(not_mine("attention", other)),
    }
}

/// The parameters of multi-head attention in Keras's order (the IR op's `params()` order).
fn attention_params(sizes: Heads, dq: usize, dv: usize, dk: usize) -> Vec<ParamInfo> {
    let Heads {
        heads,
        key_dim,
        value_dim,
    } = sizes;
    let glorot = Init::GlorotUniform;
    vec![
        ParamInfo::new("query.kernel", vec![dq, heads, key_dim], glorot),
        ParamInfo::new("query.bias", vec![heads, key_dim], Init::Zeros),
        ParamInfo::new("key.kernel", vec![dk, heads, key_dim], glorot),
        ParamInfo::new("key.bias", vec![heads, key_dim], Init::Zeros),
        ParamInfo::new("value.kernel", vec![dv, heads, value_dim], glorot),
        ParamInfo::new("value.bias", vec![heads, value_dim], Init::Zeros),
        ParamInfo::new(
            "attention_output.kernel",
            vec![heads, value_dim, dq],
            glorot,
        ),
        ParamInfo::new("attention_output.bias", vec![dq], Init::Zeros),
    ]
}

fn size_err(what: &str) -> RuleError {
    RuleError::Size(format!("the attention {what} overflows"))
}

/// The shape rule of multi-head attention over `[query, value]` or `[query, value, key]`:
/// rank-3 float sequences sharing the batch, key and value sharing their length; the output
/// has the query's type.
pub fn attention_rule(inputs: &[Fact], sizes: Heads, symbols: &mut Symbols, at: Span) -> Rule {
    let (query, value, key) = match inputs {
        [q, v] => (q, v, v),
        [q, v, k] => (q, v, k),
        _ => {
            return Err(RuleError::InputCount {
                found: inputs.len(),
            })
        }
    };
    for (i, x) in [query, value, key].into_iter().enumerate() {
        need_float(x)?;
        need_rank(x, 3, RANK3)?;
        if i > 0 {
            same_dtype(query, x, i)?;
        }
    }
    unify(symbols, &query.dims[0], &value.dims[0], 0, 1, at)?;
    unify(symbols, &query.dims[0], &key.dims[0], 0, 2, at)?;
    unify(symbols, &value.dims[1], &key.dims[1], 1, 2, at)?;
    let dq = known(&query.dims, 2)?;
    let dv = known(&value.dims, 2)?;
    let dk = known(&key.dims, 2)?;
    let Heads {
        heads,
        key_dim,
        value_dim,
    } = sizes;
    let hk = mul(heads, key_dim)?;
    let hv = mul(heads, value_dim)?;
    for [a, b] in [[dq, hk], [dk, hk], [dv, hv], [hv, dq]] {
        mul(a, b)?;
    }
    let dims = symbols.resolve_all(&query.dims);
    let tq = dims[1].known().unwrap_or(1);
    let tv = symbols.resolve(&value.dims[1]).known().unwrap_or(1);
    // Projections: query and output over Tq rows, key and value over Tv rows.
    let rows = |t: usize, a: usize, b: usize| mul(mul(mul(2, t)?, a)?, b);
    let scores = mul(mul(tq, tv)?, heads)?;
    let flops = [
        rows(tq, dq, hk)?,
        rows(tv, dk, hk)?,
        rows(tv, dv, hv)?,
        rows(tq, hv, dq)?,
        mul(mul(2, scores)?, key_dim + value_dim)?,
        mul(3, scores)?,
    ]
    .into_iter()
    .try_fold(0usize, usize::checked_add)
    .ok_or_else(|| size_err("FLOP count"))?;
    Ok(Inferred {
        output: Fact::new(query.dtype, dims),
        params: attention_params(sizes, dq, dv, dk),
        flops: flops as u64,
    })
}

/// The shape rule of position embedding: a float `[N, T, d]` with a known `T ≤ max_length`,
/// unchanged in type. `table` is the `[max_length, d]` table the graph holds (the IR's check
/// of its width).
pub fn position_rule(x: &Fact, max_length: usize, table: Option<[usize; 2]>) -> Rule {
    need_float(x)?;
    need_rank(x, 3, RANK3)?;
    let t = known(&x.dims, 1)?;
    let d = known(&x.dims, 2)?;
    if t > max_length {
        return Err(RuleError::Size(format!(
            "the sequence has {t} positions, more than max_length {max_length}"
        )));
    }
    if let Some([rows, cols]) = table {
        if rows != max_length || cols != d {
            return Err(RuleError::Size(format!(
                "a [{rows}, {cols}] position table for max_length {max_length} and width {d}"
            )));
        }
    }
    mul(max_length, d)?;
    Ok(Inferred {
        output: x.clone(),
        params: vec![ParamInfo::new(
            "embeddings",
            vec![max_length, d],
            Init::GlorotUniform,
        )],
        flops: per_sample(&x.dims)? as u64,
    })
}

/// The IR verifier's entry: the checker's rules over the node's inputs and parameters.
pub fn verify(op: &Op, inputs: &[&Fact], params: &[ParamRef<'_>]) -> Result<Fact, String> {
    match op {
        Op::MultiHeadAttention {
            heads,
            key_dim,
            value_dim,
            ..
        } => {
            let facts: Vec<Fact> = inputs.iter().map(|f| (*f).clone()).collect();
            let sizes = Heads {
                heads: *heads,
                key_dim: *key_dim,
                value_dim: *value_dim,
            };
            let mut symbols = Symbols::default();
            op::checked(
                attention_rule(&facts, sizes, &mut symbols, Span::default()),
                params,
            )
        }
        Op::PositionEmbedding { .. } => {
            let Some(table) = params
                .first()
                .and_then(|t| <[usize; 2]>::try_from(t.shape).ok())
            else {
                return Err("the position table is not 2-D".to_string());
            };
            let x = one(inputs).map_err(|e| e.to_string())?;
            op::checked(position_rule(x, table[0], Some(table)), params)
        }
        other => Err(op::not_mine("attention", other.kind())),
    }
}

/// The IR op of an attention-family layer.
pub fn lower(op: &LayerOp, params: &[ParamId]) -> Result<(Op, IrActivation), String> {
    let op = match *op {
        LayerOp::MultiHeadAttention {
            heads,
            key_dim,
            value_dim,
            dropout,
            causal,
        } => Op::MultiHeadAttention {
            heads,
            key_dim,
            value_dim,
            dropout: dropout as f32,
            causal,
            query_kernel: param(params, 0)?,
            query_bias: param(params, 1)?,
            key_kernel: param(params, 2)?,
            key_bias: param(params, 3)?,
            value_kernel: param(params, 4)?,
            value_bias: param(params, 5)?,
            output_kernel: param(params, 6)?,
            output_bias: param(params, 7)?,
        },
        LayerOp::PositionEmbedding { .. } => Op::PositionEmbedding {
            table: param(params, 0)?,
        },
        ref other => return Err(not_mine("attention", other).to_string()),
    };
    Ok((op, IrActivation::Linear))
}

// ---- ONNX export -------------------------------------------------------------------------

/// ONNX export. Multi-head attention as `MatMul`/`Add`/`Reshape`/`Transpose`/`Softmax`: each
/// projection a `MatMul` with the Keras kernel read as `[d, heads·size]` and its bias added
/// (the query's scaled by `1/√key_dim` in the initializers), the heads split by `Reshape`
/// `[0, -1, heads, size]` and `Transpose`, the scores `q·kᵀ` (plus a constant `[Tq, Tv]` mask of
/// `−1e9` above the diagonal when causal: Keras's logits, whose probabilities underflow to
/// exactly 0) softmaxed over the last axis, the weighted values' heads joined back and
/// projected by `attention_output`. Dropout does nothing at inference. Position embedding: an
/// `Add` of the table's first `T` rows (the sequence length is static).
pub fn to_onnx(op: &Op, cx: &mut super::onnx::NodeCx<'_>) -> Result<(), String> {
    use super::onnx::Layout;
    match op {
        Op::MultiHeadAttention {
            heads,
            key_dim,
            value_dim,
            causal,
            ..
        } => {
            let sizes = Heads {
                heads: *heads,
                key_dim: *key_dim,
                value_dim: *value_dim,
            };
            attention_onnx(cx, sizes, *causal)
        }
        Op::PositionEmbedding { .. } => {
            let x = cx.input_fact(0)?;
            let (Some(t), Some(d)) = (x.dim(1), x.dim(2)) else {
                return Err(format!("internal: position embedding over {x}"));
            };
            let table = cx.param(0)?;
            let rows = table
                .data
                .get(..t * d)
                .ok_or_else(|| format!("internal: a position table of {:?}", table.shape))?
                .to_vec();
            let x = cx.input(0, Layout::Nhwc)?;
            let rows = cx.f32_tensor("embeddings", vec![t, d], rows);
            let y = cx.node("Add", "add", vec![x, rows], vec![]);
            cx.set_output(y, Layout::Nhwc);
            Ok(())
        }
        other => Err(op::not_mine("attention", other.kind())),
    }
}

/// One input projection `x·W + b` as `[N, heads, T, size]` (or `[N, heads, size, T]` when
/// `transposed`), the kernel `[d, heads, size]` and bias scaled by `scale`.
fn projected_heads(
    cx: &mut super::onnx::NodeCx<'_>,
    (input, first_param): (usize, usize),
    (heads, size): (usize, usize),
    scale: f32,
    transposed: bool,
) -> Result<String, String> {
    use super::onnx::{Attr, Layout};
    let what = ["query", "key", "value"]
        .get(first_param / 2)
        .copied()
        .unwrap_or("projection");
    let kernel = cx.param(first_param)?;
    let d = kernel.shape.first().copied().unwrap_or(0);
    let width = heads * size;
    let w: Vec<f32> = kernel.data.iter().map(|v| v * scale).collect();
    let b: Vec<f32> = cx
        .param(first_param + 1)?
        .data
        .iter()
        .map(|v| v * scale)
        .collect();
    if w.len() != d * width || b.len() != width {
        return Err(format!("internal: {what} weights of {:?}", kernel.shape));
    }
    let x = cx.input(input, Layout::Nhwc)?;
    let w = cx.f32_tensor(&format!("{what}/kernel"), vec![d, width], w);
    let b = cx.f32_tensor(&format!("{what}/bias"), vec![width], b);
    let product = cx.node("MatMul", &format!("{what}/matmul"), vec![x, w], vec![]);
    let sum = cx.node("Add", &format!("{what}/add"), vec![product, b], vec![]);
    let shape = cx.i64_vector(
        &format!("{what}/heads_shape"),
        vec![0, -1, heads as i64, size as i64],
    );
    let split = cx.node(
        "Reshape",
        &format!("{what}/heads"),
        vec![sum, shape],
        vec![],
    );
    let perm = if transposed {
        vec![0, 2, 3, 1]
    } else {
        vec![0, 2, 1, 3]
    };
    Ok(cx.node(
        "Transpose",
        &format!("{what}/head_major"),
        vec![split],
        vec![("perm", Attr::Ints(perm))],
    ))
}

fn attention_onnx(
    cx: &mut super::onnx::NodeCx<'_>,
    sizes: Heads,
    causal: bool,
) -> Result<(), String> {
    use super::onnx::{Attr, Layout};
    let Heads {
        heads,
        key_dim,
        value_dim,
    } = sizes;
    let key_input = if cx.inputs.len() > 2 { 2 } else { 1 };
    let scale = 1.0 / (key_dim as f32).sqrt();
    let q = projected_heads(cx, (0, 0), (heads, key_dim), scale, false)?;
    let k = projected_heads(cx, (key_input, 2), (heads, key_dim), 1.0, true)?;
    let v = projected_heads(cx, (1, 4), (heads, value_dim), 1.0, false)?;
    let mut scores = cx.node("MatMul", "scores", vec![q, k], vec![]);
    if causal {
        let (Some(tq), Some(tv)) = (cx.input_fact(0)?.dim(1), cx.input_fact(1)?.dim(1)) else {
            return Err(
                "a sequence length is symbolic, so the causal mask has no fixed ONNX form".into(),
            );
        };
        let mask: Vec<f32> = (0..tq)
            .flat_map(|i| (0..tv).map(move |j| if j > i { -1e9 } else { 0.0 }))
            .collect();
        let mask = cx.f32_tensor("causal_mask", vec![tq, tv], mask);
        scores = cx.node("Add", "masked_scores", vec![scores, mask], vec![]);
    }
    let p = cx.node(
        "Softmax",
        "probabilities",
        vec![scores],
        vec![("axis", Attr::Int(-1))],
    );
    let o = cx.node("MatMul", "weighted", vec![p, v], vec![]);
    let o = cx.node(
        "Transpose",
        "position_major",
        vec![o],
        vec![("perm", Attr::Ints(vec![0, 2, 1, 3]))],
    );
    let width = heads * value_dim;
    let shape = cx.i64_vector("joined_shape", vec![0, -1, width as i64]);
    let o = cx.node("Reshape", "joined", vec![o, shape], vec![]);
    let kernel = cx.param(6)?;
    let dq = kernel.shape.last().copied().unwrap_or(0);
    let (w, b) = (kernel.data.to_vec(), cx.param(7)?.data.to_vec());
    if w.len() != width * dq || b.len() != dq {
        return Err(format!("internal: output weights of {:?}", kernel.shape));
    }
    let w = cx.f32_tensor("attention_output/kernel", vec![width, dq], w);
    let b = cx.f32_tensor("attention_output/bias", vec![dq], b);
    let y = cx.node("MatMul", "attention_output/matmul", vec![o, w], vec![]);
    let y = cx.node("Add", "attention_output/add", vec![y, b], vec![]);
    cx.set_output(y, Layout::Nhwc);
    Ok(())
}

// ---- PyTorch export ----------------------------------------------------------------------

/// PyTorch export. Multi-head attention is `model.py`'s `_MultiHeadAttention` (not
/// `nn.MultiheadAttention`, whose fused in-projection needs equal head sizes): its four
/// `_EinsumDense` projections hold Keras's kernels and biases in Keras's layouts (`query.kernel
/// [d, heads, key_dim]`, ..., `attention_output.kernel [heads, value_dim, d]`), so the
/// parameters map one to one; the forward is written with `einsum`: the query scaled by
/// `1/√key_dim`, scores softmaxed over the value positions (`−1e9` added above the diagonal when
/// causal, as Keras's masked softmax), dropout on the probabilities in training only, the
/// weighted values projected back. Position embedding is `_PositionEmbedding`: its `embeddings
/// [max_length, d]` table's first `T` rows added to the input.
pub fn to_pytorch(op: &LayerOp, inputs: &[&Fact]) -> Result<super::torch::TorchLayer, String> {
    use super::torch::{float, last_dim, TorchLayer, TorchParam};
    match *op {
        LayerOp::MultiHeadAttention {
            heads,
            key_dim,
            value_dim,
            dropout,
            causal,
        } => {
            let width = |i: usize| {
                inputs
                    .get(i)
                    .and_then(|f| f.dims.last())
                    .and_then(super::types::Dim::known)
                    .ok_or_else(|| format!("input {i}'s last axis has no known size"))
            };
            let dq = last_dim(inputs)?;
            let dv = width(1)?;
            let dk = if inputs.len() > 2 { width(2)? } else { dv };
            let key = if inputs.len() > 2 { "{x2}" } else { "{x1}" };
            // The module's tensors carry Keras's names and layouts.
            let names = [
                "query.kernel",
                "query.bias",
                "key.kernel",
                "key.bias",
                "value.kernel",
                "value.bias",
                "attention_output.kernel",
                "attention_output.bias",
            ];
            Ok(TorchLayer {
                module: Some(format!(
                    "_MultiHeadAttention({dq}, {dk}, {dv}, {heads}, {key_dim}, {value_dim}, {}, {})",
                    float(dropout),
                    super::dense::py_bool(causal)
                )),
                forward: format!("{{m}}({{x0}}, {{x1}}, {key})"),
                params: names
                    .iter()
                    .map(|&k| TorchParam::same(k, k))
                    .collect(),
            })
        }
        LayerOp::PositionEmbedding { max_length } => Ok(TorchLayer {
            module: Some(format!(
                "_PositionEmbedding({max_length}, {})",
                last_dim(inputs)?
            )),
            forward: "{m}({x})".into(),
            params: vec![TorchParam::same("embeddings", "embeddings")],
        }),
        ref other => Err(not_mine("attention", other).to_string()),
    }
}
