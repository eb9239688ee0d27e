//! `embedding(input_dim, output_dim)`: Keras's Embedding, integer ids `[N, ...]` to vectors
//! `[N, ..., output_dim]`.
//!
//! Weights: `embeddings [input_dim, output_dim]` (uniform in ±0.05). No FLOPs counted (a
//! gather). An embedding read only by a recurrent layer is folded into that layer's input
//! projection by `fold-embedding-projection` at inference (see `recurrent`).
//! Export: ONNX `Gather` on the table; PyTorch `nn.Embedding`.

use super::layer::{param, LayerOp};
use super::op::{Activation as IrActivation, Op};
use super::param::{Init, ParamId, ParamInfo, ParamRef};
use super::rule::{mul, need_rank_at_least, one, Inferred, Rule, RuleError};
use super::signature::{layer, pos, BoundArgs, Default, LayerSpec, SIZE};
use super::types::{DType, Dim, Fact};

pub const LAYERS: &[LayerSpec] = &[layer(
    "embedding",
    &[
        pos("input_dim", SIZE, Default::Required),
        pos("output_dim", SIZE, Default::Required),
    ],
)];

pub fn build(args: &BoundArgs) -> LayerOp {
    LayerOp::Embedding {
        input_dim: args.size("input_dim"),
        output_dim: args.size("output_dim"),
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

/// The IR op's rule: [`rule`] with the sizes of the table the graph holds.
pub fn ir_rule(inputs: &[&Fact], params: &[ParamRef<'_>]) -> Result<Fact, String> {
    let Some([vocab, dim]) = params
        .first()
        .and_then(|t| <[usize; 2]>::try_from(t.shape).ok())
    else {
        return Err("the embedding table is not 2-D".to_string());
    };
    super::op::checked(
        rule(one(inputs).map_err(|e| e.to_string())?, vocab, dim),
        params,
    )
}

pub fn lower(params: &[ParamId]) -> Result<(Op, IrActivation), String> {
    Ok((
        Op::Embedding {
            table: param(params, 0)?,
        },
        IrActivation::Linear,
    ))
}
