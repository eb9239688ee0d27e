//! Separable convolutions (`Op::SeparableConv2d`, a member of the conv family: `ops::conv`
//! hands its steps here): the depthwise kernel (`kernels::depthwise`, no bias) into an
//! intermediate `[N, OH, OW, C·M]`, then the pointwise `[1, 1, C·M, F]` kernel as one dense
//! product over its pixels (`kernels::dense`, with the bias), then the fused activation.
//!
//! Input: a step's [`InferStep`], [`ForwardStep`] or [`BackwardStep`] and the op's attributes.
//! Output: the step's value or its gradients. Invariants: inference keeps one sample's
//! intermediate at a time (the plan's buffers hold none); training recomputes the intermediate
//! in backward rather than keeping it; inference and the training forward compute each sample
//! with the same kernels in the same order.

use ndarray::{Array4, ArrayView1, ArrayView2, ArrayView4, ArrayViewD, ArrayViewMut2, Ix1, Ix4};

use crate::ir::{Activation, Op, ParamId, Window};
use crate::runtime::interp::elementwise::activation_in_place;
use crate::runtime::interp::exec::{dims4, plan_err, InferStep};
use crate::runtime::interp::RunError;
use crate::runtime::kernels::dense::{dense_backward, dense_forward, DenseGrads};
use crate::runtime::kernels::depthwise::{depthwise_backward, depthwise_forward, DepthwiseGrads};
use crate::runtime::train::backward::BackwardStep;
use crate::runtime::train::context::{self, Ctx};
use crate::runtime::train::forward::{param, ForwardStep};
use crate::runtime::train::fused;
use crate::runtime::train::TrainError;

/// The parameters of a separable step.
#[derive(Clone, Copy)]
struct SeparableParams {
    pub depthwise: ParamId,
    pub pointwise: ParamId,
    pub bias: Option<ParamId>,
    pub activation: Activation,
}

/// The window and parameters of a separable step's op (`None` for another op).
fn attributes(op: &Op) -> Option<(Window, SeparableParams)> {
    let Op::SeparableConv2d {
        window,
        depthwise_kernel,
        pointwise_kernel,
        bias,
        activation,
        ..
    } = op
    else {
        return None;
    };
    Some((
        *window,
        SeparableParams {
            depthwise: *depthwise_kernel,
            pointwise: *pointwise_kernel,
            bias: *bias,
            activation: *activation,
        },
    ))
}

/// A `[1, 1, C·M, F]` pointwise kernel as the `[C·M, F]` matrix it is.
fn as_matrix(k: ArrayViewD<'_, f32>) -> Option<ArrayView2<'_, f32>> {
    let [1, 1, cm, f] = *k.shape() else {
        return None;
    };
    k.into_shape_with_order((cm, f)).ok()
}

/// Inference, one sample at a time: its depthwise output into a scratch image, the pointwise
/// product with the bias into the step's output, then the activation in place.
pub(crate) fn infer(s: InferStep<'_, '_>) -> Result<(), RunError> {
    let InferStep {
        ctx, memory, dst, ..
    } = s;
    let step = ctx.step;
    let (window, p) =
        attributes(&step.op).ok_or_else(|| plan_err(step, "internal: not a separable_conv2d"))?;
    let window = &window;
    let x = ctx.input(0)?;
    let [n, h, w, c] = dims4(ctx.shape(x)?, ctx)?;
    let [_, oh, ow, f] = dims4(ctx.shape(step.output)?, ctx)?;
    let geom = crate::runtime::interp::conv::geometry(window, h, w)
        .map_err(|e| RunError::kernel(&step.name, e))?;
    let err = |e: &dyn std::fmt::Display| plan_err(step, &e.to_string());
    let dk = ctx
        .param(p.depthwise)?
        .view()
        .into_dimensionality::<Ix4>()
        .map_err(|e| err(&e))?;
    let pk = as_matrix(ctx.param(p.pointwise)?.view())
        .ok_or_else(|| plan_err(step, "its pointwise kernel is not [1, 1, C·M, F]"))?;
    let cm = pk.dim().0;
    let b = p.bias.map(|b| ctx.vector(b)).transpose()?;
    let xs = ctx.read(&memory.buffers, x)?;
    let mut mid = Array4::<f32>::zeros((1, oh, ow, cm));
    let (x_len, o_len) = (h * w * c, oh * ow * f);
    for i in 0..n {
        let xn = xs
            .get(i * x_len..(i + 1) * x_len)
            .ok_or_else(|| plan_err(step, "its input is shorter than its shape"))?;
        let xv = ArrayView4::from_shape((1, h, w, c), xn).map_err(|e| err(&e))?;
        ctx.kernel(depthwise_forward(xv, dk, None, &geom, mid.view_mut()))?;
        let on = dst
            .get_mut(i * o_len..(i + 1) * o_len)
            .ok_or_else(|| plan_err(step, "its output is shorter than its shape"))?;
        let ov = ArrayViewMut2::from_shape((oh * ow, f), on).map_err(|e| err(&e))?;
        let mv = mid
            .view()
            .into_shape_with_order((oh * ow, cm))
            .map_err(|e| err(&e))?;
        ctx.kernel(dense_forward(
            mv.into_dyn(),
            pk,
            b.map(ArrayView1::from),
            ov.into_dyn(),
        ))?;
    }
    activation_in_place(p.activation, dst, f);
    Ok(())
}

/// The depthwise output of the whole batch (the intermediate the pointwise product reads).
fn depthwise_part(
    ctx: &Ctx<'_>,
    x: &ArrayView4<'_, f32>,
    dk: &ArrayView4<'_, f32>,
    window: &Window,
) -> Result<Array4<f32>, TrainError> {
    let (n, h, w, c) = x.dim();
    let geom = context::conv_geometry(ctx, window, h, w)?;
    let m = dk.dim().3;
    let oh = crate::ops::window::padded_output_size(
        h,
        window.size[0],
        window.strides[0],
        window.dilation[0],
        (geom.padding.top, geom.padding.bottom),
    );
    let ow = crate::ops::window::padded_output_size(
        w,
        window.size[1],
        window.strides[1],
        window.dilation[1],
        (geom.padding.left, geom.padding.right),
    );
    let (Ok(oh), Ok(ow)) = (oh, ow) else {
        return Err(ctx.internal("its window does not fit its input"));
    };
    let mut mid = Array4::<f32>::zeros((n, oh, ow, c * m));
    depthwise_forward(x.view(), dk.view(), None, &geom, mid.view_mut())
        .map_err(|e| ctx.kernel(e))?;
    Ok(mid)
}

/// Training forward: the depthwise part, the pointwise product with the bias, the activation.
pub(crate) fn forward(f: ForwardStep<'_, '_, '_>) -> Result<(), TrainError> {
    let ForwardStep {
        step,
        ctx,
        env,
        params,
        out,
        ..
    } = f;
    let (window, p) = attributes(&step.op).ok_or_else(|| ctx.internal("not a separable_conv2d"))?;
    let window = &window;
    let xv = ctx.rank::<f32, Ix4>(env.f32(ctx.arg(step, 0)?)?)?;
    let dk = ctx.rank::<f32, Ix4>(param(ctx, params, p.depthwise)?)?;
    let pk = as_matrix(param(ctx, params, p.pointwise)?)
        .ok_or_else(|| ctx.internal("its pointwise kernel is not [1, 1, C·M, F]"))?;
    let bv = match p.bias {
        Some(b) => Some(ctx.rank::<f32, Ix1>(param(ctx, params, b)?)?),
        None => None,
    };
    let mid = depthwise_part(ctx, &xv, &dk, window)?;
    dense_forward(mid.view().into_dyn(), pk, bv, out.view_mut()).map_err(|e| ctx.kernel(e))?;
    fused::apply(p.activation, out);
    Ok(())
}

/// Backward: the activation's derivative; the intermediate recomputed; the pointwise
/// product's gradients (its kernel's, the bias's, the intermediate's); then the depthwise
/// kernel's and (when needed) the input's.
pub(crate) fn backward(b: BackwardStep<'_, '_, '_, '_>) -> Result<(), TrainError> {
    let BackwardStep {
        step,
        ctx,
        env,
        params,
        y,
        dy,
        grads,
        ..
    } = b;
    let (window, p) = attributes(&step.op).ok_or_else(|| ctx.internal("not a separable_conv2d"))?;
    let window = &window;
    fused::differentiate(p.activation, &y, dy);
    let v = ctx.arg(step, 0)?;
    let xv = ctx.rank::<f32, Ix4>(env.f32(v)?)?;
    let dk = ctx.rank::<f32, Ix4>(param(ctx, params, p.depthwise)?)?;
    let pk = as_matrix(param(ctx, params, p.pointwise)?)
        .ok_or_else(|| ctx.internal("its pointwise kernel is not [1, 1, C·M, F]"))?;
    let mid = depthwise_part(ctx, &xv, &dk, window)?;
    let mut dmid = Array4::<f32>::zeros(mid.dim());
    let mut dpk = grads.take_param(p.pointwise)?;
    let mut db = p.bias.map(|b| grads.take_param(b)).transpose()?;
    let dbias = match db.as_mut() {
        Some(s) => Some(ctx.rank_mut::<f32, Ix1>(s.target()?)?),
        None => None,
    };
    let (cm, f) = pk.dim();
    let dkernel = dpk
        .target()?
        .into_shape_with_order((cm, f))
        .map_err(|e| ctx.internal(e))?;
    let g = DenseGrads {
        dx: dmid.view_mut().into_dyn(),
        dkernel,
        dbias,
    };
    dense_backward(mid.view().into_dyn(), pk, dy.view(), g).map_err(|e| ctx.kernel(e))?;
    grads.put_param(p.pointwise, dpk);
    if let (Some(b), Some(s)) = (p.bias, db) {
        grads.put_param(b, s);
    }
    let geom = context::conv_geometry(ctx, window, xv.dim().1, xv.dim().2)?;
    let needed = grads.needs(v);
    let mut dx = grads.take_value(v)?;
    let mut ddk = grads.take_param(p.depthwise)?;
    let g = DepthwiseGrads {
        dx: if needed {
            Some(ctx.rank_mut::<f32, Ix4>(dx.target()?)?)
        } else {
            None
        },
        dkernel: ctx.rank_mut::<f32, Ix4>(ddk.target()?)?,
        dbias: None,
    };
    depthwise_backward(xv, dk, dmid.view(), &geom, g).map_err(|e| ctx.kernel(e))?;
    grads.put_value(v, dx, needed);
    grads.put_param(p.depthwise, ddk);
    Ok(())
}
