//! `trainable: false` on any layer call (Keras's `layer.trainable = False`): the layer's weights
//! get no gradient and no optimizer state, keep their values bit for bit through training, and
//! count as non-trainable in `summary`.
//!
//! Input: a layer call as written. Output: the call without its `trainable` argument (so the
//! layer's own signature binds the rest) and whether the layer is frozen; a `trainable` that is
//! not `true` or `false` is E0302.

use crate::diag::{codes, Diagnostic, FileId, Span};
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
