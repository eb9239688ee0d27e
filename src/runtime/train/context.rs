//! What one plan step sees while it runs: the values computed so far (or fed by the caller),
//! the step's kept state, and helpers that turn IR attributes into kernel arguments.
//!
//! Input: the trainer's value buffers and the caller's inputs. Output: typed views and kernel
//! parameter structs. Invariants: a value is either a graph input (read from the caller's
//! [`Input`]) or a computed `f32` buffer; every conversion failure is a [`TrainError`] naming
//! the layer.

use ndarray::{ArrayD, ArrayViewD, Dimension};

use super::error::TrainError;
use super::input::Input;
use crate::ir::{Padding, Window};
use crate::plan::Step;
use crate::runtime::kernels::batch_norm::BatchNormStats;
use crate::runtime::kernels::conv::{same_padding, Conv2dGeometry, Padding2d};
use crate::runtime::kernels::conv_sliced::SlicedConv;
use crate::runtime::kernels::pool::{Pool2dParams, PoolKind, PoolPadding};
use crate::runtime::kernels::KernelError;

/// What a step keeps between its forward and its backward (and reuses across steps).
#[derive(Debug, Default)]
pub(crate) enum StepState {
    #[default]
    Stateless,
    Conv {
        workspace: SlicedConv,
        /// The relu's derivative is applied by the max pool that alone reads this step's
        /// output (see `Trainer::new`), so backward skips it.
        relu_in_pool: bool,
        /// The valid-padding pool that alone reads this step's output
        /// (`train::setup::pool_crops`): forward and backward run over the output pixels it
        /// reaches (`Pool2dParams::reach`) only, the others zero.
        crop: Option<Pool2dParams>,
    },
    /// A 2-D pool; `relu_input`: its input is a relu's output whose derivative this
    /// step's backward applies.
    Pool {
        relu_input: bool,
    },
    /// A recurrent layer's workspaces and the embedding folded into it, if any.
    Rnn(crate::runtime::ops::recurrent_fold::RnnTrainState),
    /// A bidirectional layer's workspaces, per direction.
    Bidirectional(Box<crate::runtime::ops::bidirectional::BiTrainState>),
    BatchNorm(BatchNormStats),
    /// The dropout mask of the last training forward (`active` false: identity).
    Dropout {
        mask: ArrayD<f32>,
        active: bool,
    },
    /// Multi-head attention's projections, probabilities and dropout mask.
    Attention(Box<crate::runtime::kernels::attention::MhaCache>),
}

/// The values a step can read.
pub(crate) struct Env<'a, 'i> {
    pub values: &'a [Option<ArrayD<f32>>],
    pub inputs: &'a [Input<'i>],
    /// For each plan value, its position among the graph inputs.
    pub input_pos: &'a [Option<usize>],
}

impl<'a, 'i> Env<'a, 'i> {
    /// The caller's input behind value `v`, if it is a graph input.
    pub fn input(&self, v: u32) -> Option<&'a Input<'i>> {
        let pos = (*self.input_pos.get(v as usize)?)?;
        self.inputs.get(pos)
    }

    /// Value `v` as `f32`.
    pub fn f32(&self, v: u32) -> Result<ArrayViewD<'a, f32>, TrainError> {
        match self.input(v) {
            Some(Input::F32(a)) => Ok(a.view()),
            Some(_) => Err(TrainError::Internal(format!(
                "value {v} holds integer ids where f32 is needed"
            ))),
            None => self
                .values
                .get(v as usize)
                .and_then(Option::as_ref)
                .map(|a| a.view())
                .ok_or_else(|| TrainError::Internal(format!("value {v} has no buffer"))),
        }
    }
}

/// Names a step in errors.
pub(crate) struct Ctx<'s> {
    pub layer: &'s str,
    pub op: &'static str,
}

impl Ctx<'_> {
    pub fn of(step: &Step) -> Ctx<'_> {
        Ctx {
            layer: &step.name,
            op: step.op.kind(),
        }
    }

    pub fn kernel(&self, source: KernelError) -> TrainError {
        TrainError::Kernel {
            layer: self.layer.to_string(),
            op: self.op,
            source,
        }
    }

    pub fn unsupported(&self, detail: impl Into<String>) -> TrainError {
        TrainError::Unsupported {
            layer: self.layer.to_string(),
            op: self.op,
            detail: detail.into(),
        }
    }

    pub fn internal(&self, detail: impl std::fmt::Display) -> TrainError {
        TrainError::Internal(format!("layer `{}` ({}): {detail}", self.layer, self.op))
    }

    /// A view with a fixed rank.
    pub fn rank<'v, A, D: Dimension>(
        &self,
        a: ArrayViewD<'v, A>,
    ) -> Result<ndarray::ArrayView<'v, A, D>, TrainError> {
        a.into_dimensionality::<D>().map_err(|e| self.internal(e))
    }

    /// A mutable view with a fixed rank.
    pub fn rank_mut<'v, A, D: Dimension>(
        &self,
        a: ndarray::ArrayViewMutD<'v, A>,
    ) -> Result<ndarray::ArrayViewMut<'v, A, D>, TrainError> {
        a.into_dimensionality::<D>().map_err(|e| self.internal(e))
    }

    /// The input value at position `k` of the step.
    pub fn arg(&self, step: &Step, k: usize) -> Result<u32, TrainError> {
        step.inputs
            .get(k)
            .copied()
            .ok_or_else(|| self.internal(format!("missing input {k}")))
    }
}

/// The convolution geometry of `window` over an `h × w` input.
pub(crate) fn conv_geometry(
    ctx: &Ctx<'_>,
    window: &Window,
    h: usize,
    w: usize,
) -> Result<Conv2dGeometry, TrainError> {
    let padding = match window.padding {
        Padding::Valid => Padding2d::default(),
        Padding::Same => {
            let (top, bottom) =
                same_padding(h, window.size[0], window.strides[0], window.dilation[0])
                    .map_err(|e| ctx.kernel(e))?;
            let (left, right) =
                same_padding(w, window.size[1], window.strides[1], window.dilation[1])
                    .map_err(|e| ctx.kernel(e))?;
            Padding2d {
                top,
                bottom,
                left,
                right,
            }
        }
        Padding::Explicit([top, bottom, left, right]) => Padding2d {
            top,
            bottom,
            left,
            right,
        },
    };
    Ok(Conv2dGeometry {
        stride: (window.strides[0], window.strides[1]),
        dilation: (window.dilation[0], window.dilation[1]),
        padding,
    })
}

/// The pooling parameters of `window`; explicit padding and dilation have no pool kernel.
pub(crate) fn pool_params(
    ctx: &Ctx<'_>,
    kind: PoolKind,
    window: &Window,
) -> Result<Pool2dParams, TrainError> {
    if window.dilation != [1, 1] {
        return Err(ctx.unsupported("dilated pooling"));
    }
    let padding = match window.padding {
        Padding::Valid => PoolPadding::Valid,
        Padding::Same => PoolPadding::Same,
        Padding::Explicit(_) => return Err(ctx.unsupported("explicit pooling padding")),
    };
    Ok(Pool2dParams {
        kind,
        pool: (window.size[0], window.size[1]),
        stride: (window.strides[0], window.strides[1]),
        padding,
    })
}

/// The kernels' activation for the IR's, softmax over the last axis of a rank-`rank` tensor.
pub(crate) fn activation(
    act: crate::ir::Activation,
    rank: usize,
) -> crate::runtime::kernels::activation::Activation {
    use crate::ir::Activation as Ir;
    use crate::runtime::kernels::activation::Activation as K;
    match act {
        Ir::Linear => K::Linear,
        Ir::Relu => K::Relu,
        Ir::LeakyRelu { alpha } => K::LeakyRelu { alpha },
        Ir::Sigmoid => K::Sigmoid,
        Ir::Tanh => K::Tanh,
        Ir::Gelu => K::Gelu,
        Ir::Softmax => K::Softmax {
            axis: rank.saturating_sub(1),
        },
        Ir::Swish => K::Swish,
        Ir::Elu { alpha } => K::Elu { alpha },
        Ir::Selu => K::Selu,
        Ir::Softplus => K::Softplus,
        Ir::HardSigmoid => K::HardSigmoid,
        Ir::Relu6 => K::Relu6,
        Ir::Mish => K::Mish,
    }
}

/// A concat axis (negative counts from the end) as an index into a rank-`rank` shape.
pub(crate) fn concat_axis(ctx: &Ctx<'_>, axis: i64, rank: usize) -> Result<usize, TrainError> {
    let r = rank as i64;
    let a = if axis < 0 { r + axis } else { axis };
    if a <= 0 || a >= r {
        return Err(ctx.internal(format!("concat axis {axis} of rank {rank}")));
    }
    Ok(a as usize)
}
