//! The upsampling family: `conv2d_transpose(filters, kernel, strides: 1, padding: valid | same,
//! use_bias: true, activation: linear)` (Keras's Conv2DTranspose, `output_padding=None`) and
//! `upsampling2d(size: 2, interpolation: nearest | bilinear)` (Keras's UpSampling2D), both over
//! `[N, H, W, C]`.
//!
//! conv2d_transpose: output `(H − 1)·s + k` for `valid`, `H·s` for `same` (per axis); weights
//! `kernel [kh, kw, filters, in]` (Glorot uniform; the kernel of the convolution it transposes,
//! which maps `[.., filters]` back to `[.., in]`), `bias [filters]`. Input pixel `i` adds
//! `x[i]·kernel[k]` to output pixel `i·s + k − pad`, where `pad` is the top/left padding of
//! TensorFlow's `SAME` convolution from the output size back to the input: `⌊max(k − s, 0) / 2⌋`
//! (0 for `valid`). FLOPs `2·kh·kw·in·filters` per input position (+ `filters` per output one).
//! Export: ONNX `ConvTranspose` (kernel as `[in, filters, kh, kw]`, `pads` as above, the rest
//! of a `same` output with `k < s` as `output_padding`); PyTorch `nn.ConvTranspose2d`
//! unpadded, its output cropped (or zero-extended) to Keras's, then the bias.
//!
//! upsampling2d: `[N, H·sh, W·sw, C]`; `nearest` repeats each pixel, `bilinear` is
//! `tf.image.resize(..., "bilinear")` (half-pixel centres: output `o` samples input
//! `(o + ½)/s − ½`, clamped to the edge pixels). FLOPs: 0 (a copy) or 8 per output element
//! (four weighted taps). Export: ONNX `Resize` for `nearest` (`asymmetric` coordinates,
//! `floor`), two `MatMul`s by constant interpolation matrices for `bilinear`; PyTorch
//! `repeat_interleave` / `F.interpolate(mode="bilinear", align_corners=False)`.

use super::activation::lower_activation;
use super::layer::{first, not_mine, param, LayerOp};
use super::op::{self, Activation as IrActivation, Op, Window};
use super::param::{Init, ParamId, ParamInfo, ParamRef};
use super::rule::{known, mul, need_float, need_rank, one, Inferred, Rule, RuleError, RANK4};
use super::signature::{kw, pos, BoundArgs, Default, Kind, LayerSpec, Param, ACTIVATION, SIZE};
use super::signature::{IMAGES_HELP, USE_BIAS};
use super::types::{Activation, Dim, Fact, Padding};
use serde::{Deserialize, Serialize};

pub const LAYERS: &[LayerSpec] = &[
    super::signature::layer(
        "conv2d_transpose",
        &[
            pos("filters", SIZE, Default::Required),
            Param {
                aliases: &["kernel_size"],
                ..pos("kernel", Kind::Pair, Default::Required)
            },
            Param {
                aliases: &["stride"],
                ..kw("strides", Kind::Pair, Default::Int(1))
            },
            kw(
                "padding",
                Kind::Choice(&["valid", "same"]),
                Default::Name("valid"),
            ),
            USE_BIAS,
            ACTIVATION,
        ],
    )
    .with_input_help(IMAGES_HELP),
    super::signature::layer(
        "upsampling2d",
        &[
            kw("size", Kind::Pair, Default::Int(2)),
            kw(
                "interpolation",
                Kind::Choice(&["nearest", "bilinear"]),
                Default::Name("nearest"),
            ),
        ],
    )
    .with_input_help(IMAGES_HELP),
];

/// How `upsampling2d` fills its new pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    /// Each input pixel repeated `sh × sw` times.
    Nearest,
    /// `tf.image.resize(..., "bilinear")`: half-pixel centres, edges clamped.
    Bilinear,
}

pub fn build(name: &str, args: &BoundArgs) -> Option<LayerOp> {
    let pair = |n: &str| args.pair(n).unwrap_or((1, 1));
    match name {
        "conv2d_transpose" => Some(LayerOp::Conv2dTranspose {
            filters: args.size("filters"),
            kernel: pair("kernel"),
            strides: pair("strides"),
            padding: if args.name("padding") == "same" {
                Padding::Same
            } else {
                Padding::Valid
            },
            use_bias: args.bool("use_bias"),
            activation: Activation::from_name(args.name("activation"))
                .unwrap_or(Activation::Linear),
        }),
        "upsampling2d" => Some(LayerOp::UpSampling2d {
            size: args.pair("size").unwrap_or((2, 2)),
            interpolation: if args.name("interpolation") == "bilinear" {
                Interpolation::Bilinear
            } else {
                Interpolation::Nearest
            },
        }),
        _ => None,
    }
}

/// The checker's entry: the op's rule over its first input.
pub fn infer(op: &LayerOp, inputs: &[Fact]) -> Rule {
    match op {
        LayerOp::Conv2dTranspose {
            filters,
            kernel,
            strides,
            padding,
            use_bias,
            ..
        } => transpose_rule(
            first(inputs)?,
            *filters,
            &transpose_window(*kernel, *strides, *padding),
            *use_bias,
        ),
        LayerOp::UpSampling2d {
            size,
            interpolation,
        } => upsampling_rule(first(inputs)?, [size.0, size.1], *interpolation),
        other => Err(not_mine("upsample", other)),
    }
}

/// The IR window of a conv2d_transpose: its kernel, strides and padding (`valid` or `same`),
/// no dilation.
pub fn transpose_window(
    kernel: (usize, usize),
    strides: (usize, usize),
    padding: Padding,
) -> Window {
    Window {
        size: [kernel.0, kernel.1],
        strides: [strides.0, strides.1],
        dilation: [1, 1],
        padding,
    }
}

/// One axis of a conv2d_transpose: its output size and the padding `(before, after)` of the
/// convolution it transposes (TensorFlow's `SAME` from the output back to the input, or none),
/// from the input size, kernel and stride. `None` on overflow or zero sizes.
pub fn transpose_axis(
    input: usize,
    kernel: usize,
    stride: usize,
    same: bool,
) -> Option<(usize, (usize, usize))> {
    if input == 0 || kernel == 0 || stride == 0 {
        return None;
    }
    if same {
        let out = input.checked_mul(stride)?;
        let total = kernel.saturating_sub(stride);
        Some((out, (total / 2, total - total / 2)))
    } else {
        let out = (input - 1).checked_mul(stride)?.checked_add(kernel)?;
        Some((out, (0, 0)))
    }
}

/// The shape rule of conv2d_transpose: `[N, H, W, C] → [N, OH, OW, filters]`.
pub fn transpose_rule(x: &Fact, filters: usize, window: &Window, use_bias: bool) -> Rule {
    need_float(x)?;
    need_rank(x, 4, RANK4)?;
    let c = known(&x.dims, 3)?;
    let same = match window.padding {
        Padding::Valid => false,
        Padding::Same => true,
        Padding::Explicit(_) => {
            return Err(RuleError::Size(
                "conv2d_transpose takes padding valid or same".into(),
            ))
        }
    };
    let [kh, kw] = window.size;
    let axis = |a: usize| {
        let input = known(&x.dims, a)?;
        transpose_axis(input, window.size[a - 1], window.strides[a - 1], same)
            .map(|(out, _)| out)
            .ok_or_else(|| RuleError::Size("conv2d_transpose's output size overflows".into()))
    };
    let (h, w) = (known(&x.dims, 1)?, known(&x.dims, 2)?);
    let (oh, ow) = (axis(1)?, axis(2)?);
    let mut params = vec![ParamInfo::new(
        "kernel",
        vec![kh, kw, filters, c],
        Init::GlorotUniform,
    )];
    if use_bias {
        params.push(ParamInfo::new("bias", vec![filters], Init::Zeros));
    }
    let per_input = mul(mul(2, mul(mul(kh, kw)?, c)?)?, filters)?;
    let bias_flops = if use_bias {
        mul(mul(oh, ow)?, filters)?
    } else {
        0
    };
    let dims = vec![
        x.dims[0].clone(),
        Dim::Known(oh),
        Dim::Known(ow),
        Dim::Known(filters),
    ];
    let _ = super::rule::per_sample(&dims)?;
    let flops = mul(mul(h, w)?, per_input)?
        .checked_add(bias_flops)
        .ok_or_else(|| RuleError::Size("conv2d_transpose flops overflow".into()))?;
    Ok(Inferred {
        output: Fact::new(x.dtype, dims),
        params,
        flops: flops as u64,
    })
}

/// One output row's (or column's) two input taps and the weight of the second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tap {
    pub lo: usize,
    pub hi: usize,
    pub weight: f32,
}

/// The bilinear taps of every output position along an axis of `input` pixels scaled by
/// `factor`: output `o` reads input `src = (o + ½)·(in / out) − ½` (in f32, as TensorFlow),
/// between pixels `lo = max(⌊src⌋, 0)` and `hi = min(⌊src⌋ + 1, in − 1)`, weight `src − ⌊src⌋`
/// on `hi` (so past either edge the edge pixel). The kernels and the export both read them.
pub fn bilinear_taps(input: usize, factor: usize) -> Vec<Tap> {
    let out = input.saturating_mul(factor);
    let scale = input as f32 / out.max(1) as f32;
    (0..out)
        .map(|o| {
            let src = (o as f32 + 0.5) * scale - 0.5;
            let floor = src.floor();
            let below = if floor < 0.0 { 0 } else { floor as usize };
            Tap {
                lo: below.min(input.saturating_sub(1)),
                hi: (below + usize::from(floor >= 0.0)).min(input.saturating_sub(1)),
                weight: src - floor,
            }
        })
        .collect()
}

/// The shape rule of upsampling2d: `[N, H, W, C] → [N, H·sh, W·sw, C]`.
pub fn upsampling_rule(x: &Fact, size: [usize; 2], interpolation: Interpolation) -> Rule {
    need_float(x)?;
    need_rank(x, 4, RANK4)?;
    let oh = mul(known(&x.dims, 1)?, size[0])?;
    let ow = mul(known(&x.dims, 2)?, size[1])?;
    let dims = vec![
        x.dims[0].clone(),
        Dim::Known(oh),
        Dim::Known(ow),
        x.dims[3].clone(),
    ];
    let elements = super::rule::per_sample(&dims)?;
    let flops = match interpolation {
        Interpolation::Nearest => 0,
        Interpolation::Bilinear => mul(elements, 8)?,
    };
    Ok(Inferred::plain(Fact::new(x.dtype, dims), flops as u64))
}

/// The IR verifier's entry: the op's rule over its one input.
pub fn verify(op: &Op, inputs: &[&Fact], params: &[ParamRef<'_>]) -> Result<Fact, String> {
    let x = one(inputs).map_err(|e| e.to_string())?;
    match op {
        Op::Conv2dTranspose {
            filters,
            window,
            bias,
            ..
        } => op::checked(transpose_rule(x, *filters, window, bias.is_some()), params),
        Op::UpSampling2d {
            size,
            interpolation,
        } => op::checked(upsampling_rule(x, *size, *interpolation), params),
        other => Err(op::not_mine("upsample", other.kind())),
    }
}

/// The IR op and the activation node to follow it (conv2d_transpose's `activation:`, fused
/// back by `fuse-activation`).
pub fn lower(op: &LayerOp, params: &[ParamId], rank: usize) -> Result<(Op, IrActivation), String> {
    match *op {
        LayerOp::Conv2dTranspose {
            filters,
            kernel,
            strides,
            padding,
            use_bias,
            activation,
        } => Ok((
            Op::Conv2dTranspose {
                filters,
                window: transpose_window(kernel, strides, padding),
                kernel: param(params, 0)?,
                bias: if use_bias {
                    Some(param(params, 1)?)
                } else {
                    None
                },
                activation: IrActivation::Linear,
            },
            lower_activation(activation, rank)?,
        )),
        LayerOp::UpSampling2d {
            size,
            interpolation,
        } => Ok((
            Op::UpSampling2d {
                size: [size.0, size.1],
                interpolation,
            },
            IrActivation::Linear,
        )),
        ref other => Err(not_mine("upsample", other).to_string()),
    }
}

// ---- ONNX export -------------------------------------------------------------------------

/// Bilinear upsampling as two `MatMul`s with constant interpolation matrices on the
/// channels-first form: `[N, C, H, W] · Awᵀ [W, OW]`, then `Ah [OH, H] · [N, C, H, OW]`, each
/// row holding the two weights of [`bilinear_taps`]. Exactly Keras's numbers (and the
/// interpreter's taps) in any runtime; ONNX `Resize` in `linear`/`half_pixel` mode would do the
/// same, but tract 0.22 extrapolates past the edges instead of clamping.
fn bilinear_onnx(cx: &mut super::onnx::NodeCx<'_>, size: [usize; 2]) -> Result<(), String> {
    use super::onnx::Layout;
    let fact = cx.input_fact(0)?;
    let known = |axis: isize| {
        fact.dim(axis)
            .ok_or_else(|| format!("the input's spatial size is not known ({fact})"))
    };
    let (h, w) = (known(1)?, known(2)?);
    // `rows[o·cols + i]`: the weight of input `i` in output `o` (transposed for the width).
    let matrix = |input: usize, factor: usize, transpose: bool| {
        let taps = bilinear_taps(input, factor);
        let mut m = vec![0.0f32; taps.len() * input];
        for (o, t) in taps.iter().enumerate() {
            for (i, weight) in [(t.lo, 1.0 - t.weight), (t.hi, t.weight)] {
                let at = if transpose {
                    i * taps.len() + o
                } else {
                    o * input + i
                };
                if let Some(slot) = m.get_mut(at) {
                    *slot += weight;
                }
            }
        }
        (taps.len(), m)
    };
    let mut y = cx.input(0, Layout::Nchw)?;
    if size[1] > 1 {
        let (ow, m) = matrix(w, size[1], true);
        let m = cx.f32_tensor("width_weights", vec![w, ow], m);
        y = cx.node("MatMul", "width", vec![y, m], vec![]);
    }
    if size[0] > 1 {
        let (oh, m) = matrix(h, size[0], false);
        let m = cx.f32_tensor("height_weights", vec![oh, h], m);
        y = cx.node("MatMul", "height", vec![m, y], vec![]);
    }
    if size == [1, 1] {
        y = cx.node("Identity", "identity", vec![y], vec![]);
    }
    cx.set_output(y, Layout::Nchw);
    Ok(())
}

/// ONNX export: `ConvTranspose` or `Resize` on the channels-first form.
pub fn to_onnx(op: &Op, cx: &mut super::onnx::NodeCx<'_>) -> Result<(), String> {
    use super::onnx::{Attr, Layout};
    let ints = |v: &[usize]| Attr::Ints(v.iter().map(|&n| n as i64).collect());
    let text = |s: &str| Attr::Text(s.to_string());
    match op {
        Op::Conv2dTranspose {
            filters,
            window,
            bias,
            activation,
            ..
        } => {
            let fact = cx.input_fact(0)?;
            let same = window.padding == Padding::Same;
            let mut before = [0usize; 2];
            let mut after = [0usize; 2];
            let mut extra = [0usize; 2];
            for a in 0..2 {
                let input = fact
                    .dim(a as isize + 1)
                    .ok_or_else(|| format!("the input's spatial size is not known ({fact})"))?;
                let (k, s) = (window.size[a], window.strides[a]);
                let (_, (b, e)) = transpose_axis(input, k, s, same)
                    .ok_or_else(|| "internal: conv2d_transpose sizes overflow".to_string())?;
                (before[a], after[a]) = (b, e);
                // A `same` output with `k < s` is `s − k` longer than ConvTranspose's.
                extra[a] = if same { s.saturating_sub(k) } else { 0 };
            }
            let kernel = cx.param(0)?;
            let &[kh, kw, f, cin] = kernel.shape else {
                return Err(format!("internal: transpose kernel {:?}", kernel.shape));
            };
            if f != *filters {
                return Err(format!("internal: transpose kernel {:?}", kernel.shape));
            }
            // [kh, kw, filters, in] → [in, filters, kh, kw]
            let mut w = vec![0.0f32; kernel.data.len()];
            for (i, &v) in kernel.data.iter().enumerate() {
                let (cin, f, kw) = (cin.max(1), f.max(1), kw.max(1));
                let (c, o) = (i % cin, (i / cin) % f);
                let (kx, ky) = ((i / (cin * f)) % kw, i / (cin * f * kw));
                if let Some(slot) = w.get_mut(((c * f + o) * kh + ky) * kw + kx) {
                    *slot = v;
                }
            }
            let x = cx.input(0, Layout::Nchw)?;
            let mut inputs = vec![x, cx.f32_tensor("kernel", vec![cin, f, kh, kw], w)];
            if bias.is_some() {
                let b = cx.param(1)?;
                let (shape, data) = (b.shape.to_vec(), b.data.to_vec());
                inputs.push(cx.f32_tensor("bias", shape, data));
            }
            let mut y = cx.node(
                "ConvTranspose",
                "conv_transpose",
                inputs,
                vec![
                    ("kernel_shape", ints(&window.size)),
                    ("strides", ints(&window.strides)),
                    ("pads", ints(&[before[0], before[1], after[0], after[1]])),
                    ("output_padding", ints(&extra)),
                ],
            );
            if *activation != IrActivation::Linear {
                y = super::activation::onnx_activation(cx, *activation, y);
            }
            cx.set_output(y, Layout::Nchw);
            Ok(())
        }
        Op::UpSampling2d {
            size,
            interpolation: Interpolation::Nearest,
        } => {
            let x = cx.input(0, Layout::Nchw)?;
            let scales = vec![1.0, 1.0, size[0] as f32, size[1] as f32];
            let scales = cx.f32_tensor("scales", vec![4], scales);
            let attrs = vec![
                ("mode", text("nearest")),
                ("coordinate_transformation_mode", text("asymmetric")),
                ("nearest_mode", text("floor")),
            ];
            let y = cx.node("Resize", "resize", vec![x, String::new(), scales], attrs);
            cx.set_output(y, Layout::Nchw);
            Ok(())
        }
        Op::UpSampling2d {
            size,
            interpolation: Interpolation::Bilinear,
        } => bilinear_onnx(cx, *size),
        other => Err(op::not_mine("upsample", other.kind())),
    }
}

// ---- PyTorch export ----------------------------------------------------------------------

/// PyTorch export. `conv2d_transpose` is an `nn.ConvTranspose2d` (no padding, its kernel
/// `[kh, kw, filters, in]` as `[in, filters, kh, kw]`: `conv2d_kernel`'s transposition) whose
/// full `(H − 1)·s + k` output `model.py`'s `_conv2d_transpose` crops to Keras's rows
/// (`transpose_axis`'s padding before, zeros after when `k < s`) before adding the bias, so
/// every output pixel is Keras's. `upsampling2d` is `_upsample2d`: `repeat_interleave` for
/// `nearest`; `F.interpolate(mode="bilinear", align_corners=False)` for `bilinear`, whose
/// half-pixel source coordinates, clamped to the edge pixels, are `tf.image.resize`'s
/// (no antialiasing when enlarging).
pub fn to_pytorch(op: &LayerOp, inputs: &[&Fact]) -> Result<super::torch::TorchLayer, String> {
    use super::torch::{activation, dim, last_dim, pair, TorchLayer, TorchParam};
    match *op {
        LayerOp::Conv2dTranspose {
            filters,
            kernel,
            strides,
            padding,
            use_bias,
            activation: a,
        } => {
            let same = padding == Padding::Same;
            let axis = |i: usize, k: usize, s: usize| {
                transpose_axis(dim(inputs, i)?, k, s, same)
                    .ok_or_else(|| "the conv2d_transpose output size overflows".to_string())
            };
            let (oh, (top, _)) = axis(1, kernel.0, strides.0)?;
            let (ow, (left, _)) = axis(2, kernel.1, strides.1)?;
            let mut params = vec![TorchParam::new("kernel", &["weight"], "conv2d_kernel")];
            if use_bias {
                params.push(TorchParam::same("bias", "bias"));
            }
            Ok(TorchLayer {
                module: Some(format!(
                    "nn.ConvTranspose2d({}, {filters}, {}, stride={}, bias={})",
                    last_dim(inputs)?,
                    pair(kernel),
                    pair(strides),
                    super::dense::py_bool(use_bias)
                )),
                forward: activation(
                    a,
                    &format!("_conv2d_transpose({{m}}, {{x}}, ({top}, {left}), ({oh}, {ow}))"),
                ),
                params,
            })
        }
        LayerOp::UpSampling2d {
            size,
            interpolation,
        } => {
            let mode = match interpolation {
                Interpolation::Nearest => "nearest",
                Interpolation::Bilinear => "bilinear",
            };
            Ok(TorchLayer {
                module: None,
                forward: format!("_upsample2d({{x}}, {}, \"{mode}\")", pair(size)),
                params: Vec::new(),
            })
        }
        ref other => Err(not_mine("upsample", other).to_string()),
    }
}
