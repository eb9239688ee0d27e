//! The layer names users bring from Keras and PyTorch (`Conv2D`, `BatchNormalization`,
//! `nn.Linear`), mapped to modelc's, for the checker's "unknown layer" help.
//!
//! Input: a name that is not a registered layer. Output: the registered layer it most likely
//! means, if any. Only names that are registered are ever returned, so a layer of the table that
//! the language does not have yet is simply not suggested.

use super::layer::lookup;

/// Class names whose modelc name is not their snake-case spelling (`MaxPooling2D` →
/// `max_pool2d`), Keras's and then PyTorch's. Compared ignoring case.
const RENAMED: &[(&str, &str)] = &[
    // Keras
    ("BatchNormalization", "batch_norm"),
    ("LayerNormalization", "layer_norm"),
    ("MaxPooling1D", "max_pool1d"),
    ("MaxPooling2D", "max_pool2d"),
    ("AveragePooling1D", "avg_pool1d"),
    ("AveragePooling2D", "avg_pool2d"),
    ("AvgPool1D", "avg_pool1d"),
    ("AvgPool2D", "avg_pool2d"),
    ("GlobalAveragePooling1D", "global_avg_pool1d"),
    ("GlobalAveragePooling2D", "global_avg_pool2d"),
    ("GlobalAvgPool1D", "global_avg_pool1d"),
    ("GlobalAvgPool2D", "global_avg_pool2d"),
    ("GlobalMaxPooling1D", "global_max_pool1d"),
    ("GlobalMaxPooling2D", "global_max_pool2d"),
    ("GlobalMaxPool1D", "global_max_pool1d"),
    ("GlobalMaxPool2D", "global_max_pool2d"),
    ("Concatenate", "concat"),
    ("SimpleRNN", "simple_rnn"),
    ("LeakyReLU", "leaky_relu"),
    ("ReLU", "relu"),
    ("ELU", "elu"),
    ("Conv1DTranspose", "conv1d_transpose"),
    ("Conv2DTranspose", "conv2d_transpose"),
    ("UpSampling2D", "upsampling2d"),
    ("DepthwiseConv2D", "depthwise_conv2d"),
    ("SeparableConv2D", "separable_conv2d"),
    ("MultiHeadAttention", "multi_head_attention"),
    ("PositionEmbedding", "position_embedding"),
    // PyTorch (`nn.` is dropped before looking up)
    ("Linear", "dense"),
    ("Conv1d", "conv1d"),
    ("Conv2d", "conv2d"),
    ("ConvTranspose2d", "conv2d_transpose"),
    ("MaxPool1d", "max_pool1d"),
    ("MaxPool2d", "max_pool2d"),
    ("AvgPool1d", "avg_pool1d"),
    ("AvgPool2d", "avg_pool2d"),
    ("AdaptiveAvgPool2d", "global_avg_pool2d"),
    ("AdaptiveMaxPool2d", "global_max_pool2d"),
    ("BatchNorm1d", "batch_norm"),
    ("BatchNorm2d", "batch_norm"),
    ("LayerNorm", "layer_norm"),
    ("RNN", "simple_rnn"),
    ("MultiheadAttention", "multi_head_attention"),
    ("Upsample", "upsampling2d"),
    ("SiLU", "swish"),
    ("GELU", "gelu"),
    ("Softmax", "softmax"),
    ("Sigmoid", "sigmoid"),
    ("Tanh", "tanh"),
    ("Identity", "linear"),
];

/// The registered layer a Keras or PyTorch class name stands for: from the table of renamed
/// layers, else the name in snake case (`Conv1D` → `conv1d`, `Bidirectional` →
/// `bidirectional`). `None` when the name is already modelc's spelling or means nothing here.
pub fn modelc_name(name: &str) -> Option<&'static str> {
    let bare = name
        .strip_prefix("nn.")
        .or_else(|| name.strip_prefix("layers."))
        .unwrap_or(name);
    let renamed = RENAMED
        .iter()
        .find(|(class, _)| class.eq_ignore_ascii_case(bare))
        .map(|(_, ours)| *ours);
    let candidate = renamed.map_or_else(|| snake_case(bare), str::to_string);
    let spec = lookup(&candidate)?;
    (spec.name != name).then_some(spec.name)
}

/// `MultiHeadAttention` → `multi_head_attention`, `Conv2D` → `conv2d`, `GRU` → `gru`: an
/// underscore before an upper-case letter that starts a word (after a lower-case letter, or
/// before a lower-case one after an upper-case run); digits and what follows them stay attached.
fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars.get(i - 1).copied().unwrap_or('_');
            let next = chars.get(i + 1).copied().unwrap_or('_');
            let word_start = prev.is_ascii_lowercase()
                || (prev.is_ascii_uppercase() && next.is_ascii_lowercase());
            if word_start {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_become_snake_case() {
        assert_eq!(snake_case("MultiHeadAttention"), "multi_head_attention");
        assert_eq!(snake_case("Conv2D"), "conv2d");
        assert_eq!(snake_case("GRU"), "gru");
        assert_eq!(snake_case("LSTMCell"), "lstm_cell");
        assert_eq!(snake_case("Dense"), "dense");
    }

    #[test]
    fn keras_and_pytorch_names_map_to_registered_layers() {
        assert_eq!(modelc_name("Dense"), Some("dense"));
        assert_eq!(modelc_name("Conv2D"), Some("conv2d"));
        assert_eq!(modelc_name("BatchNormalization"), Some("batch_norm"));
        assert_eq!(modelc_name("LayerNormalization"), Some("layer_norm"));
        assert_eq!(modelc_name("MaxPooling2D"), Some("max_pool2d"));
        assert_eq!(modelc_name("LSTM"), Some("lstm"));
        assert_eq!(modelc_name("SimpleRNN"), Some("simple_rnn"));
        assert_eq!(modelc_name("Concatenate"), Some("concat"));
        assert_eq!(modelc_name("nn.Linear"), Some("dense"));
        assert_eq!(modelc_name("nn.BatchNorm2d"), Some("batch_norm"));
        assert_eq!(modelc_name("layers.Embedding"), Some("embedding"));
        assert_eq!(modelc_name("SeparableConv2D"), Some("separable_conv2d"));
        assert_eq!(modelc_name("Conv2DTranspose"), Some("conv2d_transpose"));
        assert_eq!(modelc_name("nn.ConvTranspose2d"), Some("conv2d_transpose"));
        assert_eq!(modelc_name("UpSampling2D"), Some("upsampling2d"));
        assert_eq!(modelc_name("nn.Upsample"), Some("upsampling2d"));
    }

    #[test]
    fn modelc_names_and_unknown_classes_map_to_nothing() {
        assert_eq!(modelc_name("dense"), None);
        assert_eq!(modelc_name("TimeDistributed"), None);
        assert_eq!(modelc_name(""), None);
    }
}
