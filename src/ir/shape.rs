//! Each node's shape rule, as the verifier applies it: the op family's rule (the checker's,
//! in `ops`) over the node's input facts and the parameters the graph holds for it.

use super::{Fact, Op, Param};
use crate::ops::param::ParamRef;

/// The output fact of `op` applied to `inputs`, its parameters looked up in `params`.
pub fn infer(op: &Op, inputs: &[&Fact], params: &[Param]) -> Result<Fact, String> {
    let refs = op
        .params()
        .into_iter()
        .map(|id| {
            params
                .get(id.index())
                .map(|p| ParamRef {
                    name: &p.name,
                    shape: &p.shape,
                })
                .ok_or_else(|| format!("parameter {} does not exist", id.0))
        })
        .collect::<Result<Vec<_>, _>>()?;
    op.infer(inputs, &refs)
}
