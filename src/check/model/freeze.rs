//! `trainable: false` on any layer call (Keras's `layer.trainable = False`): the layer's weights
//! get no gradient and no optimizer state, keep their values bit for bit through training, and
//! count as non-trainable in `summary`.
//!
//! Input: a layer call as written. Output: the call without its `trainable` argument (so the
//! layer's own signature binds the rest) and whether the layer is frozen; a `trainable` that is
//! not `true` or `false` is E0302. `Walker::freeze` then marks the layer's parameters.

use super::Walker;
use crate::diag::{codes, Diagnostic, FileId, Span};
use crate::ops::layer::LayerOp;
use crate::syntax::ast::{Call, ExprKind};

/// A call's `trainable` argument, taken out of it.
pub struct Trainable {
    /// The call without the argument.
    pub call: Call,
    pub frozen: bool,
    /// Where `trainable: false` was written.
    pub span: Span,
}

/// Takes `trainable:` out of `call`; `None` when it is not written.
pub fn take_trainable(file: FileId, call: &Call, diags: &mut Vec<Diagnostic>) -> Option<Trainable> {
    let at = call
        .args
        .iter()
        .position(|a| a.name.as_ref().is_some_and(|n| n.name == "trainable"))?;
    let mut stripped = call.clone();
    let arg = stripped.args.remove(at);
    let frozen = if let ExprKind::Bool(b) = arg.value.kind {
        !b
    } else {
        diags.push(
            Diagnostic::error(
                codes::CHECK_ARGUMENT_TYPE,
                "argument `trainable` of a layer must be `true` or `false`",
            )
            .primary(file, arg.value.span, "not `true` or `false`")
            .note("expected true or false"),
        );
        false
    };
    Some(Trainable {
        call: stripped,
        frozen,
        span: arg.span,
    })
}

impl Walker<'_> {
    /// Marks the parameters of the layer that computed `value` non-trainable. A frozen batch
    /// norm is refused: Keras runs it in inference mode, which the trainer does not.
    pub(super) fn freeze(&mut self, value: usize, at: Span) {
        let Some(layer) = self
            .values
            .get(value)
            .and_then(|v| v.layer)
            .and_then(|i| self.layers.get_mut(i))
        else {
            return;
        };
        if matches!(layer.op, LayerOp::BatchNorm { .. }) {
            self.diags.push(
                Diagnostic::error(
                    codes::CHECK_NOT_TRAINABLE,
                    "`trainable: false` on `batch_norm` is not supported",
                )
                .primary(self.file, at, "a frozen batch norm")
                .note("Keras runs a frozen batch norm in inference mode (its moving statistics fixed); the trainer updates them")
                .help("freeze the layers around it, or leave it trainable"),
            );
            return;
        }
        for p in &mut layer.params {
            p.trainable = false;
        }
    }
}
