//! `embedding(input_dim, output_dim)`: Keras's Embedding, integer ids `[N, ...]` to vectors
//! `[N, ..., output_dim]`.
//!
//! `mask_zero: true` (Keras's) also marks the steps whose id is 0 as padding: the mask that
//! `ops::mask` carries to the recurrent layers and pools after it (no weights, no op of its own).
//!
//! Weights: `embeddings [input_dim, output_dim]` (uniform in ±0.05). No FLOPs counted (a
//! gather). An embedding read only by a recurrent layer is folded into that layer's input
//! projection by `fold-embedding-projection` at inference (see `recurrent`).
//! Export: ONNX `Gather` on the table; PyTorch `nn.Embedding`.

use super::layer::{first, not_mine, param, LayerOp};
use super::op::{self, Activation as IrActivation, Op};
use super::param::{Init, ParamId, ParamInfo, ParamRef};
use super::rule::{mul, need_rank_at_least, one, Inferred, Rule, RuleError};
use super::signature::{kw, layer, pos, BoundArgs, Default, Kind, LayerSpec, SIZE};
use super::types::{DType, Dim, Fact};

pub const LAYERS: &[LayerSpec] = &[layer(
    "embedding",
    &[
        pos("input_dim", SIZE, Default::Required),
        pos("output_dim", SIZE, Default::Required),
        kw("mask_zero", Kind::Bool, Default::Bool(false)),
    ],
)];

pub fn build(name: &str, args: &BoundArgs) -> Option<LayerOp> {
    (name == "embedding").then(|| LayerOp::Embedding {
        input_dim: args.size("input_dim"),
        output_dim: args.size("output_dim"),
        mask_zero: args.bool("mask_zero"),
    })
}

/// The checker's entry: [`rule`] over the first input.
pub fn infer(op: &LayerOp, inputs: &[Fact]) -> Rule {
    match op {
        LayerOp::Embedding {
            input_dim,
            output_dim,
            ..
        } => rule(first(inputs)?, *input_dim, *output_dim),
        other => Err(not_mine("embedding", other)),
    }
}

/// The shape rule: `[N, ...]` integer ids → `[N, ..., output_dim]` f32.
pub fn rule(x: &Fact, input_dim: usize, output_dim: usize) -> Rule {
    if !x.dtype.is_integer() {
        return Err(RuleError::NeedsInteger { found: x.dtype });
    }
    need_rank_at_least(x, 1, "at least 1 ([batch, ...])")?;
    let mut dims = x.dims.clone();
    dims.push(Dim::Known(output_dim));
    let _ = mul(input_dim, output_dim)?;
    Ok(Inferred {
        output: Fact::new(DType::F32, dims),
        params: vec![ParamInfo::new(
            "embeddings",
            vec![input_dim, output_dim],
            Init::Uniform { limit: 0.05 },
        )],
        flops: 0,
    })
}

/// The IR verifier's entry: [`rule`] with the sizes of the table the graph holds.
pub fn verify(op: &Op, inputs: &[&Fact], params: &[ParamRef<'_>]) -> Result<Fact, String> {
    if !matches!(op, Op::Embedding { .. }) {
        return Err(op::not_mine("embedding", op.kind()));
    }
    let Some([vocab, dim]) = params
        .first()
        .and_then(|t| <[usize; 2]>::try_from(t.shape).ok())
    else {
        return Err("the embedding table is not 2-D".to_string());
    };
    op::checked(
        rule(one(inputs).map_err(|e| e.to_string())?, vocab, dim),
        params,
    )
}

/// The IR op of an embedding layer.
pub fn lower(op: &LayerOp, params: &[ParamId]) -> Result<(Op, IrActivation), String> {
    match op {
        LayerOp::Embedding { .. } => Ok((
            Op::Embedding {
                table: param(params, 0)?,
            },
            IrActivation::Linear,
        )),
        other => Err(not_mine("embedding", other).to_string()),
    }
}

// ---- ONNX export -------------------------------------------------------------------------

/// ONNX export: `Gather` of the table's rows (axis 0) at the ids, int32 or int64 as given.
pub fn to_onnx(op: &Op, cx: &mut super::onnx::NodeCx<'_>) -> Result<(), String> {
    use super::onnx::Layout;
    let Op::Embedding { .. } = op else {
        return Err(op::not_mine("embedding", op.kind()));
    };
    let ids = cx.input(0, Layout::Nhwc)?;
    let table = cx.param(0)?;
    let (shape, data) = (table.shape.to_vec(), table.data.to_vec());
    let table = cx.f32_tensor("embeddings", shape, data);
    let y = cx.node(
        "Gather",
        "gather",
        vec![table, ids],
        vec![("axis", super::onnx::Attr::Int(0))],
    );
    cx.set_output(y, Layout::Nhwc);
    Ok(())
}

/// PyTorch export: `nn.Embedding(input_dim, output_dim)` over the ids as `int64`; the table
/// `embeddings` is the module's `weight` as it is. A padding mask (`mask_zero: true`) is not
/// the embedding's to compute: each layer that reads it is given `ids != 0` by the exporter.
pub fn to_pytorch(op: &LayerOp) -> Result<super::torch::TorchLayer, String> {
    use super::torch::{TorchLayer, TorchParam};
    // `mask_zero`: the layers that read the mask get `ids != 0` (`ops::torch`'s `{mask}`).
    let LayerOp::Embedding {
        input_dim,
        output_dim,
        mask_zero: _,
    } = *op
    else {
        return Err(not_mine("embedding", op).to_string());
    };
    Ok(TorchLayer {
        module: Some(format!("nn.Embedding({input_dim}, {output_dim})")),
        forward: "{m}({x}.long())".into(),
        params: vec![TorchParam::same("embeddings", "weight")],
    })
}
