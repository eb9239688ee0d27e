//! ONNX export of the windowed ops that are not plain 2-D: `conv1d` and the 1-D pools over
//! `[N, T, C]`, and `depthwise_conv2d` (the conv and pool families' `to_onnx` hand them here).
//!
//! Input: the IR op and its [`NodeCx`]. Output: the nodes. Invariants: a 1-D op reads its
//! channels-last input, runs the 1-D ONNX `Conv` / `MaxPool` / `AveragePool` on the
//! `Transpose`d `[N, C, T]` and transposes back (rank-3 values have one form only); its pads
//! are the 2-D twin's over `[N, 1, T, C]` (so `same` and `causal` are exactly the interpreter's
//! amounts); kernels are rearranged once into the initializers.

use super::onnx::{Attr, Layout, NodeCx};
use super::op::{Activation as IrActivation, Op, Window};

/// `[N, T, C]` ↔ `[N, C, T]`.
const SWAP_LAST: [i64; 3] = [0, 2, 1];

/// ONNX's `pads` `[left, right]` of a 1-D window (height 1) over the `[N, T, C]` input.
fn pads_1d(cx: &NodeCx<'_>, window: &Window) -> Result<Vec<i64>, String> {
    let image = super::conv::as_image(cx.input_fact(0)?).map_err(|e| e.to_string())?;
    let pads = super::conv::onnx_pads(&image, window)?;
    match pads.as_slice() {
        [0, left, 0, right] => Ok(vec![*left, *right]),
        other => Err(format!(
            "internal: a 1-D window padded across its height ({other:?})"
        )),
    }
}

/// The input `[N, T, C]` as `[N, C, T]`.
fn channels_first(cx: &mut NodeCx<'_>) -> Result<String, String> {
    let x = cx.input(0, Layout::Nhwc)?;
    Ok(cx.node(
        "Transpose",
        "channels_first",
        vec![x],
        vec![("perm", Attr::Ints(SWAP_LAST.to_vec()))],
    ))
}

/// `y` `[N, C', T']` back to `[N, T', C']`, recorded as the step's output.
fn finish_1d(cx: &mut NodeCx<'_>, y: String) {
    let y = cx.node(
        "Transpose",
        "channels_last",
        vec![y],
        vec![("perm", Attr::Ints(SWAP_LAST.to_vec()))],
    );
    cx.set_output(y, Layout::Nhwc);
}

/// The product of `sizes`, `None` on overflow.
fn product(sizes: &[usize]) -> Option<usize> {
    sizes.iter().try_fold(1usize, |a, &b| a.checked_mul(b))
}

fn ints(v: &[usize]) -> Attr {
    Attr::Ints(v.iter().map(|&n| n as i64).collect())
}

/// The bias initializer (parameter 1) when the op has one.
fn bias_input(cx: &mut NodeCx<'_>, has_bias: bool) -> Result<Option<String>, String> {
    if !has_bias {
        return Ok(None);
    }
    let b = cx.param(1)?;
    let (shape, data) = (b.shape.to_vec(), b.data.to_vec());
    Ok(Some(cx.f32_tensor("bias", shape, data)))
}

/// `conv1d`: a 1-D `Conv` with the kernel `[k, in, filters]` as `[filters, in, k]`.
pub fn conv1d(op: &Op, cx: &mut NodeCx<'_>) -> Result<(), String> {
    let Op::Conv1d {
        filters,
        window,
        bias,
        activation,
        ..
    } = op
    else {
        return Err(format!("internal: `{}` is not a conv1d", op.kind()));
    };
    let pads = pads_1d(cx, window)?;
    let kernel = cx.param(0)?;
    let &[k, cin, out] = kernel.shape else {
        return Err(format!("internal: conv1d kernel {:?}", kernel.shape));
    };
    if out != *filters || Some(kernel.data.len()) != product(&[k, cin, out]) {
        return Err(format!("internal: conv1d kernel {:?}", kernel.shape));
    }
    // [k, in, out] → [out, in, k]
    let mut w = vec![0.0f32; kernel.data.len()];
    for (i, &v) in kernel.data.iter().enumerate() {
        let (o, c, t) = (i % out, (i / out) % cin, i / (out * cin));
        w[(o * cin + c) * k + t] = v;
    }
    let x = channels_first(cx)?;
    let mut inputs = vec![x, cx.f32_tensor("kernel", vec![out, cin, k], w)];
    inputs.extend(bias_input(cx, bias.is_some())?);
    let mut y = cx.node(
        "Conv",
        "conv",
        inputs,
        vec![
            ("kernel_shape", ints(&[k])),
            ("strides", ints(&window.strides[1..])),
            ("dilations", ints(&window.dilation[1..])),
            ("pads", Attr::Ints(pads)),
        ],
    );
    if *activation != IrActivation::Linear {
        y = super::activation::onnx_activation(cx, *activation, y);
    }
    finish_1d(cx, y);
    Ok(())
}

/// `max_pool1d` / `avg_pool1d` (`count_include_pad = 0`, Keras's `same` average) and the
/// global 1-D pools (`ReduceMax` / `ReduceMean` over the time axis).
pub fn pool1d(op: &Op, cx: &mut NodeCx<'_>) -> Result<(), String> {
    let (op_type, window) = match op {
        Op::MaxPool1d { window } => ("MaxPool", window),
        Op::AvgPool1d { window } => ("AveragePool", window),
        Op::GlobalAvgPool1d | Op::GlobalMaxPool1d => {
            let reduce = if matches!(op, Op::GlobalAvgPool1d) {
                "ReduceMean"
            } else {
                "ReduceMax"
            };
            let x = cx.input(0, Layout::Nhwc)?;
            let y = cx.reduce(reduce, "pool", x, &[1], false);
            cx.set_output(y, Layout::Nhwc);
            return Ok(());
        }
        other => return Err(format!("internal: `{}` is not a 1-D pool", other.kind())),
    };
    if window.dilation != [1, 1] {
        return Err("modelc does not run dilated pools, so one has no meaning to export".into());
    }
    let pads = pads_1d(cx, window)?;
    let x = channels_first(cx)?;
    let mut attributes = vec![
        ("kernel_shape", ints(&window.size[1..])),
        ("strides", ints(&window.strides[1..])),
        ("pads", Attr::Ints(pads)),
    ];
    if op_type == "AveragePool" {
        attributes.push(("count_include_pad", Attr::Int(0)));
    }
    let y = cx.node(op_type, "pool", vec![x], attributes);
    finish_1d(cx, y);
    Ok(())
}

/// `depthwise_conv2d`: `Conv` with `group = C` on the channels-first form, the kernel
/// `[kh, kw, C, M]` as `[C·M, 1, kh, kw]` (output channel `c·M + m`, as Keras).
pub fn depthwise(op: &Op, cx: &mut NodeCx<'_>) -> Result<(), String> {
    let Op::DepthwiseConv2d {
        multiplier,
        window,
        bias,
        activation,
        ..
    } = op
    else {
        return Err(format!(
            "internal: `{}` is not a depthwise_conv2d",
            op.kind()
        ));
    };
    let pads = super::conv::onnx_pads(cx.input_fact(0)?, window)?;
    let kernel = cx.param(0)?;
    let &[kh, kw, channels, m] = kernel.shape else {
        return Err(format!("internal: depthwise kernel {:?}", kernel.shape));
    };
    if m != *multiplier || Some(kernel.data.len()) != product(&[kh, kw, channels, m]) {
        return Err(format!("internal: depthwise kernel {:?}", kernel.shape));
    }
    // [kh, kw, C, M] → [C·M, 1, kh, kw]
    let mut w = vec![0.0f32; kernel.data.len()];
    for (i, &v) in kernel.data.iter().enumerate() {
        let (cm, ky, kx) = (
            i % (channels * m),
            i / (channels * m * kw),
            (i / (channels * m)) % kw,
        );
        w[(cm * kh + ky) * kw + kx] = v;
    }
    let x = cx.input(0, Layout::Nchw)?;
    let mut inputs = vec![x, cx.f32_tensor("kernel", vec![channels * m, 1, kh, kw], w)];
    inputs.extend(bias_input(cx, bias.is_some())?);
    let mut y = cx.node(
        "Conv",
        "conv",
        inputs,
        vec![
            ("group", Attr::Int(channels as i64)),
            ("kernel_shape", ints(&window.size)),
            ("strides", ints(&window.strides)),
            ("dilations", ints(&window.dilation)),
            ("pads", Attr::Ints(pads)),
        ],
    );
    if *activation != IrActivation::Linear {
        y = super::activation::onnx_activation(cx, *activation, y);
    }
    cx.set_output(y, Layout::Nchw);
    Ok(())
}
