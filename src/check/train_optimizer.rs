//! A train block's `optimizer` setting: every optimizer with its options and Keras's defaults
//! (the table the editor completes from), and binding one to an [`Optimizer`].
//!
//! Input: the `optimizer` setting. Output: the bound [`Optimizer`], or diagnostics (an unknown
//! name with did-you-mean, options against the optimizer's signature).

use super::signature::{self as sig, float, kw, Default, Kind, Limit, Param, Signature};
use super::train::{choice_of, POSITIVE};
use super::train_types::{Optimizer, OptimizerCommon, OptimizerKind};
use crate::diag::{Diagnostic, FileId};
use crate::syntax::ast::Setting;

const UNIT_OPEN: Kind = float(Limit::Excl(0.0), Limit::Excl(1.0));
const MOMENTUM: Kind = float(Limit::Incl(0.0), Limit::Excl(1.0));

/// Options of every optimizer, with the defaults of `lr` and `weight_decay` set per optimizer
/// (Keras's learning rates; weight decay 0 except adamw's decoupled 0.01, PyTorch's).
macro_rules! optimizer_params {
    ($lr:expr, $wd:expr $(, $extra:expr)*) => {
        &[
            Param { aliases: &["learning_rate"], ..kw("lr", POSITIVE, Default::Float($lr)) },
            kw("weight_decay", float(Limit::Incl(0.0), Limit::None), Default::Float($wd)),
            kw("clipnorm", POSITIVE, Default::Absent),
            kw("clipvalue", POSITIVE, Default::Absent),
            $($extra,)*
        ]
    };
}

const GD: &[Param] = optimizer_params!(0.01, 0.0);
const SGD: &[Param] = optimizer_params!(
    0.01,
    0.0,
    kw("momentum", MOMENTUM, Default::Float(0.0)),
    kw("nesterov", Kind::Bool, Default::Bool(false))
);
/// Adam's options (Keras's defaults), with `weight_decay` defaulting to `$wd`.
macro_rules! adam_params {
    ($wd:expr) => {
        optimizer_params!(
            0.001,
            $wd,
            kw("beta1", UNIT_OPEN, Default::Float(0.9)),
            kw("beta2", UNIT_OPEN, Default::Float(0.999)),
            kw("epsilon", POSITIVE, Default::Float(1e-7))
        )
    };
}
const ADAM: &[Param] = adam_params!(0.0);
const ADAMW: &[Param] = adam_params!(0.01);
const RMSPROP: &[Param] = optimizer_params!(
    0.001,
    0.0,
    kw("rho", UNIT_OPEN, Default::Float(0.9)),
    kw("momentum", MOMENTUM, Default::Float(0.0)),
    kw("centered", Kind::Bool, Default::Bool(false)),
    kw("epsilon", POSITIVE, Default::Float(1e-7))
);
/// Every optimizer with its options (for binding, and for the editor's completion).
pub const OPTIMIZERS: &[(&str, &[Param])] = &[
    ("gd", GD),
    ("sgd", SGD),
    ("adam", ADAM),
    ("adamw", ADAMW),
    ("rmsprop", RMSPROP),
];

/// Binds the `optimizer` setting `s`.
pub(super) fn optimizer(
    file: FileId,
    s: &Setting,
    diags: &mut Vec<Diagnostic>,
) -> Option<Optimizer> {
    let names: Vec<&str> = OPTIMIZERS.iter().map(|(n, _)| *n).collect();
    let (name, args, span) = choice_of(file, s, &names, diags)?;
    let params = OPTIMIZERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| *p)?;
    let b = sig::bind(
        file,
        &Signature { params },
        &format!("optimizer `{name}`"),
        args,
        span,
        diags,
    )?;
    let common = OptimizerCommon {
        lr: b.float("lr"),
        weight_decay: b.float("weight_decay"),
        clipnorm: b.opt_float("clipnorm"),
        clipvalue: b.opt_float("clipvalue"),
    };
    let adam = || (b.float("beta1"), b.float("beta2"), b.float("epsilon"));
    let kind = match name {
        "gd" => OptimizerKind::Gd,
        "sgd" => OptimizerKind::Sgd {
            momentum: b.float("momentum"),
            nesterov: b.bool("nesterov"),
        },
        "adam" => {
            let (beta1, beta2, epsilon) = adam();
            OptimizerKind::Adam {
                beta1,
                beta2,
                epsilon,
            }
        }
        "adamw" => {
            let (beta1, beta2, epsilon) = adam();
            OptimizerKind::AdamW {
                beta1,
                beta2,
                epsilon,
            }
        }
        _ => OptimizerKind::RmsProp {
            rho: b.float("rho"),
            momentum: b.float("momentum"),
            centered: b.bool("centered"),
            epsilon: b.float("epsilon"),
        },
    };
    Some(Optimizer { kind, common })
}
