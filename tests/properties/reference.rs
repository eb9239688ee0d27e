//! The independent shape model of `tests/properties.rs`: a generated layer stack, its spec text,
//! and each layer's output shape by Keras' size formulas (`None` when a size is not positive),
//! written without the checker so that the two can be compared.

/// The name a line before a self-attention layer binds.
const PREVIOUS: &str = "seq";

/// One layer of a generated stack, with its arguments.
#[derive(Clone, Debug)]
pub enum Layer {
    Conv {
        filters: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        same: bool,
        activation: &'static str,
    },
    Pool {
        max: bool,
        pool: usize,
        stride: Option<usize>,
        same: bool,
    },
    GlobalPool {
        max: bool,
    },
    Flatten,
    Dense {
        units: usize,
        activation: &'static str,
    },
    Dropout,
    BatchNorm,
    Activation(&'static str),
    Embedding {
        vocab: usize,
        dim: usize,
    },
    Rnn {
        cell: &'static str,
        units: usize,
        sequences: bool,
        /// Keras options written after the size (`, go_backwards: true`, ...): none changes
        /// the shape.
        options: &'static str,
    },
    /// `bidirectional(cell(units, return_sequences: sequences), merge: merge)`.
    Bidirectional {
        cell: &'static str,
        units: usize,
        sequences: bool,
        merge: &'static str,
    },
    /// `multi_head_attention(v, v, ...)`: self-attention on the previous line's value `v`.
    SelfAttention {
        heads: usize,
        key_dim: usize,
        causal: bool,
    },
    PositionEmbedding {
        max_length: usize,
    },
    // Issue 15's 1-D convolutions and pools.
    Conv1d {
        filters: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        padding: &'static str,
        activation: &'static str,
    },
    Pool1d {
        max: bool,
        pool: usize,
        stride: Option<usize>,
        same: bool,
    },
    GlobalPool1d {
        max: bool,
    },
    Depthwise {
        kernel: usize,
        multiplier: usize,
        stride: usize,
        dilation: usize,
        same: bool,
        activation: &'static str,
    },
    Separable {
        filters: usize,
        kernel: usize,
        multiplier: usize,
        stride: usize,
        dilation: usize,
        same: bool,
        activation: &'static str,
    },
    ConvTranspose {
        filters: usize,
        kernel: usize,
        stride: usize,
        same: bool,
        activation: &'static str,
    },
    UpSampling {
        size: (usize, usize),
        bilinear: bool,
    },
}

impl Layer {
    pub fn source(&self) -> String {
        let padding = |same: bool| if same { "same" } else { "valid" };
        match self {
            Layer::Conv {
                filters,
                kernel,
                stride,
                dilation,
                same,
                activation,
            } => format!(
                "conv2d({filters}, kernel: {kernel}, strides: {stride}, dilation: {dilation}, padding: {}, activation: {activation})",
                padding(*same)
            ),
            Layer::Pool {
                max,
                pool,
                stride,
                same,
            } => {
                let name = if *max { "max_pool2d" } else { "avg_pool2d" };
                let stride = stride.map_or(String::new(), |s| format!(", strides: {s}"));
                format!("{name}({pool}{stride}, padding: {})", padding(*same))
            }
            Layer::GlobalPool { max: true } => "global_max_pool2d()".into(),
            Layer::GlobalPool { max: false } => "global_avg_pool2d()".into(),
            Layer::Flatten => "flatten()".into(),
            Layer::Dense { units, activation } => {
                format!("dense({units}, activation: {activation})")
            }
            Layer::Dropout => "dropout(0.25)".into(),
            Layer::BatchNorm => "batch_norm()".into(),
            Layer::Activation(a) => format!("{a}()"),
            Layer::Embedding { vocab, dim } => format!("embedding({vocab}, {dim})"),
            Layer::Rnn {
                cell,
                units,
                sequences,
                options,
            } => format!("{cell}({units}, return_sequences: {sequences}{options})"),
            Layer::Bidirectional {
                cell,
                units,
                sequences,
                merge,
            } => format!(
                "bidirectional({cell}({units}, return_sequences: {sequences}), merge: {merge})"
            ),
            Layer::SelfAttention {
                heads,
                key_dim,
                causal,
            } => format!(
                "multi_head_attention({PREVIOUS}, {PREVIOUS}, heads: {heads}, key_dim: {key_dim}, causal: {causal})"
            ),
            Layer::PositionEmbedding { max_length } => format!("position_embedding({max_length})"),
            Layer::Conv1d {
                filters,
                kernel,
                stride,
                dilation,
                padding,
                activation,
            } => format!(
                "conv1d({filters}, {kernel}, strides: {stride}, dilation: {dilation}, padding: {padding}, activation: {activation})"
            ),
            Layer::Pool1d {
                max,
                pool,
                stride,
                same,
            } => {
                let name = if *max { "max_pool1d" } else { "avg_pool1d" };
                let stride = stride.map_or(String::new(), |s| format!(", strides: {s}"));
                format!("{name}({pool}{stride}, padding: {})", padding(*same))
            }
            Layer::GlobalPool1d { max: true } => "global_max_pool1d()".into(),
            Layer::GlobalPool1d { max: false } => "global_avg_pool1d()".into(),
            Layer::Depthwise {
                kernel,
                multiplier,
                stride,
                dilation,
                same,
                activation,
            } => format!(
                "depthwise_conv2d({kernel}, depth_multiplier: {multiplier}, strides: {stride}, dilation: {dilation}, padding: {}, activation: {activation})",
                padding(*same)
            ),
            Layer::Separable {
                filters,
                kernel,
                multiplier,
                stride,
                dilation,
                same,
                activation,
            } => format!(
                "separable_conv2d({filters}, {kernel}, depth_multiplier: {multiplier}, strides: {stride}, dilation: {dilation}, padding: {}, activation: {activation})",
                padding(*same)
            ),
            Layer::ConvTranspose {
                filters,
                kernel,
                stride,
                same,
                activation,
            } => format!(
                "conv2d_transpose({filters}, {kernel}, strides: {stride}, padding: {}, activation: {activation})",
                padding(*same)
            ),
            Layer::UpSampling { size, bilinear } => format!(
                "upsampling2d(size: [{}, {}], interpolation: {})",
                size.0,
                size.1,
                if *bilinear { "bilinear" } else { "nearest" }
            ),
        }
    }

    /// The reference shape rule (per sample, without the batch): `None` when a size would not
    /// be positive or the layer does not apply to this rank.
    pub fn apply(&self, shape: &[usize]) -> Option<Vec<usize>> {
        let conv = |n: usize, k: usize, s: usize, d: usize, same: bool| -> Option<usize> {
            if same {
                return Some(n.div_ceil(s));
            }
            let span = d * (k - 1) + 1;
            (n >= span).then(|| (n - span) / s + 1)
        };
        match (self, shape) {
            (
                Layer::Conv {
                    filters,
                    kernel,
                    stride,
                    dilation,
                    same,
                    ..
                },
                &[h, w, _],
            ) => Some(vec![
                conv(h, *kernel, *stride, *dilation, *same)?,
                conv(w, *kernel, *stride, *dilation, *same)?,
                *filters,
            ]),
            (
                Layer::Pool {
                    pool, stride, same, ..
                },
                &[h, w, c],
            ) => {
                let s = stride.unwrap_or(*pool);
                Some(vec![
                    conv(h, *pool, s, 1, *same)?,
                    conv(w, *pool, s, 1, *same)?,
                    c,
                ])
            }
            (Layer::GlobalPool { .. }, &[_, _, c]) => Some(vec![c]),
            (Layer::Flatten, s) if !s.is_empty() => Some(vec![s.iter().product()]),
            (Layer::Dense { units, .. }, [outer @ .., _]) => {
                let mut s = outer.to_vec();
                s.push(*units);
                Some(s)
            }
            (Layer::Dropout | Layer::BatchNorm | Layer::Activation(_), s) => Some(s.to_vec()),
            (Layer::Embedding { dim, .. }, &[t]) => Some(vec![t, *dim]),
            (
                Layer::Rnn {
                    units, sequences, ..
                },
                &[t, _],
            ) => Some(if *sequences {
                vec![t, *units]
            } else {
                vec![*units]
            }),
            // Keras's Bidirectional: the wrapped layer's shape, its units doubled by concat.
            (
                Layer::Bidirectional {
                    units,
                    sequences,
                    merge,
                    ..
                },
                &[t, _],
            ) => {
                let width = if *merge == "concat" {
                    2 * units
                } else {
                    *units
                };
                Some(if *sequences {
                    vec![t, width]
                } else {
                    vec![width]
                })
            }
            // Keras's MultiHeadAttention projects back to the query's width.
            (Layer::SelfAttention { .. }, &[t, d]) => Some(vec![t, d]),
            (Layer::PositionEmbedding { max_length }, &[t, d]) if t <= *max_length => {
                Some(vec![t, d])
            }
            // Keras Conv1D: `causal` pads dilation·(kernel − 1) on the left, so its output
            // has ceil(t / stride) steps, as `same`.
            (
                Layer::Conv1d {
                    filters,
                    kernel,
                    stride,
                    dilation,
                    padding,
                    ..
                },
                &[t, _],
            ) => Some(vec![
                conv(t, *kernel, *stride, *dilation, *padding != "valid")?,
                *filters,
            ]),
            (
                Layer::Pool1d {
                    pool, stride, same, ..
                },
                &[t, c],
            ) => Some(vec![conv(t, *pool, stride.unwrap_or(*pool), 1, *same)?, c]),
            (Layer::GlobalPool1d { .. }, &[_, c]) => Some(vec![c]),
            // Keras DepthwiseConv2D: conv2d's sizes, channels times the multiplier.
            (
                Layer::Depthwise {
                    kernel,
                    multiplier,
                    stride,
                    dilation,
                    same,
                    ..
                },
                &[h, w, c],
            ) => Some(vec![
                conv(h, *kernel, *stride, *dilation, *same)?,
                conv(w, *kernel, *stride, *dilation, *same)?,
                c * multiplier,
            ]),
            // Keras SeparableConv2D: conv2d's sizes.
            (
                Layer::Separable {
                    filters,
                    kernel,
                    stride,
                    dilation,
                    same,
                    ..
                },
                &[h, w, _],
            ) => Some(vec![
                conv(h, *kernel, *stride, *dilation, *same)?,
                conv(w, *kernel, *stride, *dilation, *same)?,
                *filters,
            ]),
            // Keras Conv2DTranspose (no output padding): `n·s` for same, `(n − 1)·s + k` for
            // valid.
            (
                Layer::ConvTranspose {
                    filters,
                    kernel,
                    stride,
                    same,
                    ..
                },
                &[h, w, _],
            ) => {
                let up = |n: usize| {
                    if *same {
                        n * stride
                    } else {
                        (n - 1) * stride + kernel
                    }
                };
                Some(vec![up(h), up(w), *filters])
            }
            (Layer::UpSampling { size, .. }, &[h, w, c]) => Some(vec![h * size.0, w * size.1, c]),
            _ => None,
        }
    }
}

/// A generated model: its input and its layers.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Per-sample input shape (the batch `N` comes first in the spec).
    pub input: Vec<usize>,
    /// Token ids (`i32`) below this vocabulary, or `None` for `f32` input.
    pub tokens: Option<usize>,
    pub layers: Vec<Layer>,
}

impl Spec {
    pub fn source(&self) -> String {
        let dims: Vec<String> = self.input.iter().map(ToString::to_string).collect();
        let dtype = if self.tokens.is_some() { "i32" } else { "f32" };
        let mut text = format!("model M(x: {dtype}[N, {}]) {{\n", dims.join(", "));
        for (i, l) in self.layers.iter().enumerate() {
            text.push_str("    ");
            // Self-attention names its input: the line before it binds `PREVIOUS` (the input
            // `x` itself for a first layer).
            let named = matches!(self.layers.get(i + 1), Some(Layer::SelfAttention { .. }));
            if named {
                text.push_str("let ");
                text.push_str(PREVIOUS);
                text.push_str(" = ");
            }
            let line = l.source();
            if i == 0 && matches!(l, Layer::SelfAttention { .. }) {
                text.push_str(&line.replace(PREVIOUS, "x"));
            } else {
                text.push_str(&line);
            }
            text.push('\n');
        }
        text.push_str("}\n");
        text
    }

    /// The reference output shape of every layer, per sample, or `None` when some layer is
    /// invalid.
    pub fn expected(&self) -> Option<Vec<Vec<usize>>> {
        let mut shapes: Vec<Vec<usize>> = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let input = shapes.last().unwrap_or(&self.input);
            shapes.push(l.apply(input)?);
        }
        Some(shapes)
    }
}
