//! PyTorch export of the conv and pool families (`ops::torch` dispatches both here, to keep
//! `conv.rs` short): `conv2d` → `nn.Conv2d`, `conv1d` → `nn.Conv1d`, the depthwise and
//! separable convs → grouped `nn.Conv2d`s, the 2-D and 1-D pools →
//! `F.max_pool*d` / `F.avg_pool*d`, the global pools → `amax` / `mean` over the spatial axes.
//!
//! Input: the checked op and its input facts (spatial sizes must be known). Output: a
//! [`TorchLayer`]. Invariants: padding is always explicit (`F.pad` before a `padding=0`
//! module), with TensorFlow's `same` amounts from `ops::window` (the odd pixel after), so
//! strided `same` windows match Keras exactly; a max pool pads with −∞ and an average pool
//! divides by the count of real pixels, as Keras; kernels `[kh, kw, in, out]` become
//! `[out, in, kh, kw]` (`conv2d_kernel`) and `[k, in, out]` become `[out, in, k]`
//! (`conv1d_kernel`). `depthwise_conv2d` is `nn.Conv2d(groups=C)` (kernel `[kh, kw, C, M]` as
//! `[C·M, 1, kh, kw]`, `depthwise_kernel`); `separable_conv2d` is that without bias then a 1 × 1
//! `nn.Conv2d` with the bias (an `nn.Sequential`, padded once before the depthwise part).

use super::layer::LayerOp;
use super::torch::{activation, dim, last_dim, pair, TorchLayer, TorchParam};
use super::types::{Fact, Padding, Padding1d, PoolKind};
use super::window::same_padding;

fn same(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> Result<(usize, usize), String> {
    same_padding(input, kernel, stride, dilation).map_err(|e| format!("window arithmetic: {e:?}"))
}

/// `F.pad`'s `(left, right, top, bottom)` of a 2-D window over the `[N, H, W, C]` input.
fn pads_2d(
    inputs: &[&Fact],
    padding: &Padding,
    kernel: (usize, usize),
    strides: (usize, usize),
    dilation: (usize, usize),
) -> Result<String, String> {
    let (top, bottom, left, right) = match padding {
        Padding::Valid => (0, 0, 0, 0),
        Padding::Same => {
            let (t, b) = same(dim(inputs, 1)?, kernel.0, strides.0, dilation.0)?;
            let (l, r) = same(dim(inputs, 2)?, kernel.1, strides.1, dilation.1)?;
            (t, b, l, r)
        }
        Padding::Explicit([t, b, l, r]) => (*t, *b, *l, *r),
    };
    Ok(format!("({left}, {right}, {top}, {bottom})"))
}

/// `F.pad`'s `(left, right)` of a 1-D window over the `[N, T, C]` input.
fn pads_1d(
    inputs: &[&Fact],
    padding: Padding1d,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> Result<String, String> {
    let (l, r) = match padding {
        Padding1d::Valid => (0, 0),
        Padding1d::Same => same(dim(inputs, 1)?, kernel, stride, dilation)?,
        Padding1d::Causal => (kernel.saturating_sub(1).saturating_mul(dilation), 0),
    };
    Ok(format!("({l}, {r})"))
}

fn kind_name(kind: PoolKind) -> &'static str {
    match kind {
        PoolKind::Max => "\"max\"",
        PoolKind::Avg => "\"avg\"",
    }
}

fn stateless(forward: String) -> TorchLayer {
    TorchLayer {
        module: None,
        forward,
        params: Vec::new(),
    }
}

fn conv_params(use_bias: bool, layout: &'static str) -> Vec<TorchParam> {
    let mut params = vec![TorchParam::new("kernel", &["weight"], layout)];
    if use_bias {
        params.push(TorchParam::same("bias", "bias"));
    }
    params
}

/// The conv and pool families' PyTorch forms.
pub fn to_pytorch(op: &LayerOp, inputs: &[&Fact]) -> Result<TorchLayer, String> {
    let bias = super::dense::py_bool;
    match op {
        LayerOp::Conv2d {
            filters,
            kernel,
            strides,
            padding,
            dilation,
            use_bias,
            activation: a,
        } => {
            let pads = pads_2d(inputs, padding, *kernel, *strides, *dilation)?;
            Ok(TorchLayer {
                module: Some(format!(
                    "nn.Conv2d({}, {filters}, {}, stride={}, dilation={}, bias={})",
                    last_dim(inputs)?,
                    pair(*kernel),
                    pair(*strides),
                    pair(*dilation),
                    bias(*use_bias)
                )),
                forward: activation(*a, &format!("_conv2d({{m}}, {{x}}, {pads})")),
                params: conv_params(*use_bias, "conv2d_kernel"),
            })
        }
        LayerOp::Conv1d {
            filters,
            kernel,
            strides,
            padding,
            dilation,
            use_bias,
            activation: a,
        } => {
            let pads = pads_1d(inputs, *padding, *kernel, *strides, *dilation)?;
            Ok(TorchLayer {
                module: Some(format!(
                    "nn.Conv1d({}, {filters}, {kernel}, stride={strides}, dilation={dilation}, bias={})",
                    last_dim(inputs)?,
                    bias(*use_bias)
                )),
                forward: activation(*a, &format!("_conv1d({{m}}, {{x}}, {pads})")),
                params: conv_params(*use_bias, "conv1d_kernel"),
            })
        }
        LayerOp::Pool2d {
            kind,
            pool,
            strides,
            padding,
        } => {
            if matches!(padding, Padding::Explicit(_)) {
                return Err("modelc runs pools with `valid` or `same` padding only".into());
            }
            let pads = pads_2d(inputs, padding, *pool, *strides, (1, 1))?;
            Ok(stateless(format!(
                "_pool2d({}, {{x}}, {}, {}, {pads})",
                kind_name(*kind),
                pair(*pool),
                pair(*strides)
            )))
        }
        LayerOp::Pool1d {
            kind,
            pool,
            strides,
            padding,
        } => {
            let pads = pads_1d(inputs, *padding, *pool, *strides, 1)?;
            Ok(stateless(format!(
                "_pool1d({}, {{x}}, {pool}, {strides}, {pads})",
                kind_name(*kind)
            )))
        }
        LayerOp::GlobalPool2d { kind } | LayerOp::GlobalPool1d { kind } => {
            let axes = if matches!(op, LayerOp::GlobalPool2d { .. }) {
                "(1, 2)"
            } else {
                "1"
            };
            Ok(stateless(match kind {
                PoolKind::Max => format!("{{x}}.amax(dim={axes})"),
                // over a padding mask: the mean of the kept steps (zeros when none is kept)
                PoolKind::Avg if axes == "1" => "_mean_steps({x}{mask})".into(),
                PoolKind::Avg => format!("{{x}}.mean(dim={axes})"),
            }))
        }
        LayerOp::DepthwiseConv2d { .. } | LayerOp::SeparableConv2d { .. } => grouped(op, inputs),
        other => Err(format!(
            "the PyTorch export does not write `{}` layers yet",
            other.kind_name()
        )),
    }
}

/// The depthwise and separable convs' PyTorch forms.
fn grouped(op: &LayerOp, inputs: &[&Fact]) -> Result<TorchLayer, String> {
    let bias = super::dense::py_bool;
    match op {
        LayerOp::DepthwiseConv2d {
            kernel,
            depth_multiplier,
            strides,
            padding,
            dilation,
            use_bias,
            activation: a,
        } => {
            let pads = pads_2d(inputs, padding, *kernel, *strides, *dilation)?;
            let c = last_dim(inputs)?;
            Ok(TorchLayer {
                module: Some(depthwise(
                    c,
                    *depth_multiplier,
                    *kernel,
                    *strides,
                    *dilation,
                    *use_bias,
                )?),
                forward: activation(*a, &format!("_conv2d({{m}}, {{x}}, {pads})")),
                params: conv_params(*use_bias, "depthwise_kernel"),
            })
        }
        LayerOp::SeparableConv2d {
            filters,
            kernel,
            depth_multiplier,
            strides,
            padding,
            dilation,
            use_bias,
            activation: a,
        } => {
            let pads = pads_2d(inputs, padding, *kernel, *strides, *dilation)?;
            let c = last_dim(inputs)?;
            let dw = depthwise(c, *depth_multiplier, *kernel, *strides, *dilation, false)?;
            let mid = c
                .checked_mul(*depth_multiplier)
                .ok_or("the depthwise channel count overflows")?;
            let mut params = vec![
                TorchParam::new("depthwise_kernel", &["0.weight"], "depthwise_kernel"),
                TorchParam::new("pointwise_kernel", &["1.weight"], "conv2d_kernel"),
            ];
            if *use_bias {
                params.push(TorchParam::same("bias", "1.bias"));
            }
            Ok(TorchLayer {
                module: Some(format!(
                    "nn.Sequential({dw}, nn.Conv2d({mid}, {filters}, 1, bias={}))",
                    bias(*use_bias)
                )),
                forward: activation(*a, &format!("_conv2d({{m}}, {{x}}, {pads})")),
                params,
            })
        }
        other => Err(format!(
            "`{}` is not a grouped convolution",
            other.kind_name()
        )),
    }
}

/// The `nn.Conv2d` of a depthwise convolution: `groups = C`, `C·M` outputs (output channel
/// `c·M + m`, as Keras's), its kernel `[kh, kw, C, M]` read as `[C·M, 1, kh, kw]`
/// (`depthwise_kernel`).
fn depthwise(
    c: usize,
    multiplier: usize,
    kernel: (usize, usize),
    strides: (usize, usize),
    dilation: (usize, usize),
    use_bias: bool,
) -> Result<String, String> {
    let out = c
        .checked_mul(multiplier)
        .ok_or("the depthwise channel count overflows")?;
    Ok(format!(
        "nn.Conv2d({c}, {out}, {}, stride={}, dilation={}, groups={c}, bias={})",
        pair(kernel),
        pair(strides),
        pair(dilation),
        super::dense::py_bool(use_bias)
    ))
}
