//! Data-driven tests of the checker on small specs: output shapes and parameter counts against
//! values computed by hand from Keras's formulas, and the shipped specs' totals.

use super::summary::summarize;
use super::types::{Dim, Fact};
use super::{check_file, Checked};
use crate::diag::FileId;
use crate::syntax::{parse, Limits};

fn check(text: &str) -> Checked {
    let parsed = parse(FileId::from_index(0), text, &Limits::default());
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
    check_file(FileId::from_index(0), &parsed.file)
}

/// (layer name, output dims as text, params) of the only model in `text`.
fn layers(text: &str) -> Vec<(String, String, u64)> {
    let c = check(text);
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    let s = summarize(&c.models[0]);
    c.models[0]
        .layers
        .iter()
        .zip(&s.layers)
        .map(|(l, r)| (l.name.clone(), l.output.shape_string(), r.params))
        .collect()
}

fn codes(text: &str) -> Vec<&'static str> {
    check(text)
        .diagnostics
        .iter()
        .map(|d| d.code.as_str())
        .collect()
}

fn spec(name: &str) -> String {
    std::fs::read_to_string(format!("{}/specs/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn seed_cnn_matches_keras_summary() {
    let got = layers(&spec("seed_cnn.model"));
    let want = [
        ("conv2d", "[N, 26, 26, 32]", 320),
        ("max_pool2d", "[N, 13, 13, 32]", 0),
        ("conv2d_1", "[N, 11, 11, 64]", 18_496),
        ("max_pool2d_1", "[N, 5, 5, 64]", 0),
        ("conv2d_2", "[N, 3, 3, 128]", 73_856),
        ("max_pool2d_2", "[N, 1, 1, 128]", 0),
        ("flatten", "[N, 128]", 0),
        ("dense", "[N, 128]", 16_512),
        ("dense_1", "[N, 10]", 1_290),
    ];
    let want: Vec<(String, String, u64)> = want
        .iter()
        .map(|(a, b, c)| ((*a).into(), (*b).into(), *c))
        .collect();
    assert_eq!(got, want);
    assert_eq!(got.iter().map(|r| r.2).sum::<u64>(), 110_474);
}

#[test]
fn seed_rnn_matches_keras_summary() {
    let got = layers(&spec("seed_rnn.model"));
    let params: Vec<u64> = got.iter().map(|r| r.2).collect();
    // Embedding(1000, 64); LSTM(64) on 64 features: 4*(64*64 + 64*64 + 64); Dense(10) on 64.
    assert_eq!(params, vec![64_000, 33_024, 33_024, 650]);
    assert_eq!(params.iter().sum::<u64>(), 130_698);
    assert_eq!(got[1].1, "[N, 100, 64]");
    assert_eq!(got[2].1, "[N, 64]");
}

#[test]
fn every_shipped_spec_checks_clean() {
    for name in [
        "seed_cnn.model",
        "seed_rnn.model",
        "linear_regression.model",
        "text_transformer.model",
    ] {
        let c = check(&spec(name));
        assert!(c.diagnostics.is_empty(), "{name}: {:?}", c.diagnostics);
        assert_eq!(c.trains.len(), 1, "{name}");
    }
}

#[test]
fn conv_strides_padding_and_dilation_by_hand() {
    let got = layers(
        "model M(x: f32[N, 7, 9, 3]) {
            conv2d(4, kernel: 3, strides: 2, padding: same)
            conv2d(5, kernel: [2, 3], strides: [1, 2])
            conv2d(2, kernel: 2, dilation: [2, 1], use_bias: false)
        }",
    );
    // same, stride 2 on odd sizes: ceil(7/2)=4, ceil(9/2)=5; params 3*3*3*4+4 = 112.
    assert_eq!(got[0].1, "[N, 4, 5, 4]");
    assert_eq!(got[0].2, 112);
    // valid: (4-2)/1+1 = 3, (5-3)/2+1 = 2; params 2*3*4*5+5 = 125.
    assert_eq!(got[1].1, "[N, 3, 2, 5]");
    assert_eq!(got[1].2, 125);
    // dilation [2, 1]: height 3 - (2*1+1) + 1 = 1, width 2 - 2 + 1 = 1; no bias: 2*2*5*2 = 40.
    assert_eq!(got[2].1, "[N, 1, 1, 2]");
    assert_eq!(got[2].2, 40);
    // dilation 2, kernel 2 spans 3: 3-3+1 = 1 and 2 < 3 → too small on the width.
    let c = codes(
        "model M(x: f32[N, 3, 2, 5]) {
            conv2d(2, kernel: 2, dilation: 2)
        }",
    );
    assert_eq!(c, vec!["E0402"]);
}

#[test]
fn pools_norms_and_recurrent_layers_by_hand() {
    let got = layers(
        "model M(x: f32[N, 11, 11, 6]) {
            avg_pool2d(3, strides: 2)
            batch_norm()
            max_pool2d(2, padding: same)
            global_max_pool2d()
            layer_norm()
            reshape(3, 2)
            gru(4, return_sequences: true)
            simple_rnn(5)
        }",
    );
    assert_eq!(got[0].1, "[N, 5, 5, 6]"); // floor((11-3)/2)+1
    assert_eq!(got[1].2, 24); // 4 * 6, half of it non-trainable
    assert_eq!(got[2].1, "[N, 3, 3, 6]"); // ceil(5/2)
    assert_eq!(got[3].1, "[N, 6]");
    assert_eq!(got[4].2, 12);
    assert_eq!(got[5].1, "[N, 3, 2]");
    // Keras GRU (reset_after): 3*(2*4 + 4*4 + 2*4) = 96.
    assert_eq!(got[6], ("gru".into(), "[N, 3, 4]".into(), 96));
    // SimpleRNN: 4*5 + 5*5 + 5 = 50.
    assert_eq!(got[7], ("simple_rnn".into(), "[N, 5]".into(), 50));
}

#[test]
fn batch_norm_statistics_are_non_trainable() {
    let c = check("model M(x: f32[N, 8]) {\n batch_norm()\n dense(2)\n}");
    let s = summarize(&c.models[0]);
    assert_eq!(
        (s.total_params, s.trainable_params, s.non_trainable_params),
        (50, 34, 16)
    );
}

#[test]
fn dense_applies_to_the_last_axis_of_any_rank() {
    let got = layers("model M(x: f32[N, T, 5, 7]) {\n dense(3)\n}");
    assert_eq!(got[0], ("dense".into(), "[N, T, 5, 3]".into(), 24));
}

#[test]
fn let_names_layers_and_residual_adds_check() {
    let c = check(
        "model ResBlock(x: f32[N, 16, 16, 8]) -> f32[N, 3] {
            let h = x |> conv2d(8, kernel: 3, padding: same) |> batch_norm() |> relu()
            let h = h |> conv2d(8, kernel: 3, padding: same) |> batch_norm()
            add(h, x) |> relu() |> global_avg_pool2d() |> dense(3, activation: softmax)
        }",
    );
    assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
    let m = &c.models[0];
    let names: Vec<&str> = m.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "conv2d",
            "batch_norm",
            "h",
            "conv2d_1",
            "h_1",
            "add",
            "relu",
            "global_avg_pool2d",
            "dense"
        ]
    );
    // Definitions before uses: every input id is smaller than the layer's own value id.
    for (i, l) in m.layers.iter().enumerate() {
        assert!(l.inputs.iter().all(|v| v.0 < m.inputs.len() + i));
    }
    assert_eq!(m.layers[5].inputs.len(), 2);
    assert_eq!(
        m.output_fact,
        Fact {
            dtype: super::DType::F32,
            dims: vec![Dim::Symbol("N".into()), Dim::Known(3)]
        }
    );
}

#[test]
fn inferred_output_keeps_symbols_and_concat_adds_sizes() {
    let c = check("model M(a: f32[N, T, 3], b: f32[N, T, 5]) {\n concat(a, b)\n}");
    assert_eq!(c.models[0].output_fact.shape_string(), "[N, T, 8]");
}

#[test]
fn errors_do_not_cascade() {
    // One unknown layer early: later layers see an unknown value and stay quiet.
    assert_eq!(
        codes("model M(x: f32[N, 4]) {\n dnse(3)\n dense(2)\n lstm(4)\n}"),
        vec!["E0200"]
    );
}

#[test]
fn huge_sizes_are_diagnostics_not_panics() {
    assert_eq!(
        codes("model M(x: f32[N, 2147483647]) {\n dense(2147483647)\n dense(2147483647)\n}"),
        Vec::<&str>::new()
    );
    assert_eq!(
        codes(
            "model M(x: f32[N, 65536, 65536, 1]) {\n conv2d(2147483647, kernel: 1)\n flatten()\n}"
        ),
        vec!["E0406"]
    );
}

#[test]
fn optimizer_defaults_follow_the_frameworks() {
    // lr: Keras's per optimizer; weight_decay: 0, except adamw's decoupled 0.01 (PyTorch's).
    let spec = |optimizer: &str| {
        format!(
            "model M(x: f32[N, 4]) -> f32[N, 1] {{\n dense(1)\n}}\n\
             data D {{\n source regression(n: 50, features: 4)\n batch 8\n}}\n\
             train M on D {{\n loss mse\n optimizer {optimizer}\n epochs 1\n}}\n"
        )
    };
    for (optimizer, lr, weight_decay) in [
        ("gd()", 0.01, 0.0),
        ("sgd()", 0.01, 0.0),
        ("adam()", 0.001, 0.0),
        ("adamw()", 0.001, 0.01),
        ("adamw(weight_decay: 0)", 0.001, 0.0),
        ("rmsprop()", 0.001, 0.0),
    ] {
        let checked = check(&spec(optimizer));
        assert!(
            !checked.has_errors(),
            "{optimizer}: {:?}",
            checked.diagnostics
        );
        let common = &checked.trains[0].optimizer.common;
        assert_eq!(
            (common.lr, common.weight_decay),
            (lr, weight_decay),
            "{optimizer}"
        );
    }
}

#[test]
fn text_transformer_matches_keras_summary() {
    let got = layers(&spec("text_transformer.model"));
    let params: Vec<u64> = got.iter().map(|r| r.2).collect();
    // Embedding(1000, 64); PositionEmbedding(64) on width 64; MultiHeadAttention(4 heads,
    // key_dim 16) on 64: four projections of 64·64 + 64; LayerNormalization 2·64; Dense(128)
    // on 64, Dense(64) on 128; the classifier on 64·64 flattened.
    assert_eq!(
        params,
        vec![
            64_000, 4_096, 16_640, 0, 128, 8_320, 8_256, 0, 128, 16_640, 0, 128, 8_320, 8_256, 0,
            128, 0, 40_970
        ]
    );
    assert_eq!(params.iter().sum::<u64>(), 176_010);
    assert_eq!(got[2], ("a".into(), "[N, 64, 64]".into(), 16_640));
    assert_eq!(got[5].1, "[N, 64, 128]");
}

#[test]
fn multi_head_attention_shapes_and_keras_parameter_counts() {
    let got = layers(
        "model M(q: f32[N, 7, 12], v: f32[N, 5, 6], k: f32[N, 5, 3]) {
            let a = multi_head_attention(q, v, k, heads: 3, key_dim: 4, value_dim: 2)
            let b = multi_head_attention(q, v, heads: 2, key_dim: 5)
            let c = multi_head_attention(a, b, heads: 1, key_dim: 8, causal: true, dropout: 0.2)
            let s = q |> multi_head_attention(q, heads: 2, key_dim: 6)
            add(c, s) |> position_embedding(9)
        }",
    );
    // Query 12 wide, 3 heads of 4: 12·12 + 12; key from 3: 3·12 + 12; value 3 heads of 2 from
    // 6: 6·6 + 6; output 6 → 12: 6·12 + 12. Keras: 156 + 48 + 42 + 84 = 330.
    assert_eq!(got[0], ("a".into(), "[N, 7, 12]".into(), 330));
    // value_dim defaults to key_dim; the key is the value: 12·10+10 + 6·10+10 + 6·10+10 + 10·12+12.
    assert_eq!(got[1], ("b".into(), "[N, 7, 12]".into(), 402));
    // One head of 8: three projections of 12·8 + 8, the output 8·12 + 12.
    assert_eq!(got[2], ("c".into(), "[N, 7, 12]".into(), 420));
    assert_eq!(got[3].1, "[N, 7, 12]");
    // The table: max_length 9 × width 12.
    assert_eq!(
        got[5],
        ("position_embedding".into(), "[N, 7, 12]".into(), 108)
    );
}

#[test]
fn attention_refusals() {
    // Rank 2 query; key and value of different lengths; four inputs; too long a sequence; an
    // unknown length for the position table.
    for text in [
        "model M(x: f32[N, 4]) { multi_head_attention(x, x, heads: 1, key_dim: 2) }",
        "model M(q: f32[N, 3, 4], v: f32[N, 5, 4], k: f32[N, 6, 4]) { multi_head_attention(q, v, k, heads: 1, key_dim: 2) }",
        "model M(x: f32[N, 3, 4]) { multi_head_attention(x, x, x, x, heads: 1, key_dim: 2) }",
        "model M(x: f32[N, 10, 4]) { position_embedding(8) }",
        "model M(x: f32[N, T, 4]) { position_embedding(8) }",
        "model M(x: i32[N, 3, 4]) { multi_head_attention(x, x, heads: 1, key_dim: 2) }",
    ] {
        let c = codes(text);
        assert_eq!(c.len(), 1, "{text}: {c:?}");
    }
    // heads and key_dim are required.
    assert!(!codes("model M(x: f32[N, 3, 4]) { multi_head_attention(x, x, heads: 2) }").is_empty());
}

/// (layer name, the names its output's mask comes from, the names of the ids it reads a mask
/// from) of the only model in `text`.
fn masks(text: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
    let c = check(text);
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    let m = &c.models[0];
    let names = |ids: &[super::types::ValueId]| ids.iter().map(|&v| m.value_name(v)).collect();
    m.layers
        .iter()
        .map(|l| (l.name.clone(), names(&l.output_mask), names(&l.mask_inputs)))
        .collect()
}

#[test]
fn the_padding_mask_follows_keras_through_the_layers() {
    let text = "model M(a: i32[N, 6], b: i32[N, 6]) {
        let x = a |> embedding(20, 4, mask_zero: true)
        let y = b |> embedding(20, 4, mask_zero: true)
        let u = b |> embedding(20, 4)
        let s = add(x, y) |> dropout(0.1) |> dense(5) |> layer_norm() |> relu()
        let r = s |> lstm(3, return_sequences: true)
        let h = bidirectional(gru(3), merge: sum)
        let p = r |> global_avg_pool1d()
        let q = r |> global_max_pool1d()
        let f = r |> flatten()
        let mixed = add(x, u)
        let c = concat(x, y)
        concat(h, p, q, f, c |> global_avg_pool1d(), mixed |> global_avg_pool1d())
    }";
    let got = masks(text);
    let find = |name: &str| got.iter().find(|(n, _, _)| n == name).unwrap().clone();
    let both = vec!["a".to_string(), "b".to_string()];
    assert_eq!(find("x"), ("x".into(), vec!["a".into()], vec![]));
    assert_eq!(find("u"), ("u".into(), vec![], vec![]));
    // add ORs its inputs' masks; dropout, dense, layer_norm and relu pass it on.
    assert_eq!(find("s"), ("s".into(), both.clone(), vec![]));
    // A recurrent layer reads it, and passes it on with return_sequences only.
    assert_eq!(find("r"), ("r".into(), both.clone(), both.clone()));
    assert_eq!(find("h"), ("h".into(), vec![], both.clone()));
    assert_eq!(find("p"), ("p".into(), vec![], both.clone()));
    // global_max_pool1d and flatten drop it, as Keras 3 does.
    assert_eq!(find("q"), ("q".into(), vec![], vec![]));
    assert_eq!(find("f"), ("f".into(), vec![], vec![]));
    // A merge with an unmasked input has no mask; concat over the last axis ORs.
    assert_eq!(find("mixed"), ("mixed".into(), vec![], vec![]));
    assert_eq!(find("c"), ("c".into(), both, vec![]));
    let s = summarize(&check(text).models[0]);
    assert_eq!(s.layers[0].mask, vec!["a".to_string()]);
    assert!(s.layers[2].mask.is_empty());
}

#[test]
fn masked_attention_and_a_time_concat_are_refused() {
    for text in [
        "model M(t: i32[N, 5]) { let x = t |> embedding(9, 4, mask_zero: true)\n multi_head_attention(x, x, heads: 1, key_dim: 2) }",
        "model M(t: i32[N, 5]) { let x = t |> embedding(9, 4, mask_zero: true)\n concat(x, x, axis: 1) }",
    ] {
        assert_eq!(codes(text), ["E0499"], "{text}");
    }
    // Without mask_zero, or once a recurrent layer has ended the mask, attention is fine.
    assert!(codes("model M(t: i32[N, 5]) { let x = t |> embedding(9, 4)\n multi_head_attention(x, x, heads: 1, key_dim: 2) }").is_empty());
    // The embedding's parameter count is Keras's with mask_zero too.
    assert_eq!(
        layers("model M(t: i32[N, 5]) { embedding(9, 4, mask_zero: true) }")[0].2,
        36
    );
}

#[test]
fn a_test_split_alone_holds_out_no_validation_data() {
    let spec = |split: &str, schedule: &str| {
        format!(
            "model M(x: i32[N, 4]) -> f32[N, 3] {{\n embedding(10, 4)\n flatten()\n \
             dense(3, activation: softmax)\n}}\n\
             data D {{\n source tokens(n: 64, length: 4, vocab: 10, classes: 3)\n {split}\n \
             batch 16\n}}\n\
             train M on D {{\n loss sparse_categorical_crossentropy\n optimizer sgd()\n \
             epochs 2\n schedule {schedule}\n}}\n"
        )
    };
    let watch = "warmup(epochs: 1) |> reduce_on_plateau(monitor: val_loss)";
    assert_eq!(codes(&spec("split test: 0.2", watch)), ["E0505"]);
    let both = "split validation: 0.1, test: 0.1, stratify: true, seed: 7";
    assert_eq!(codes(&spec(both, watch)), Vec::<&str>::new());
    // The validation fraction alone may still be written positionally.
    assert_eq!(codes(&spec("split 0.2", watch)), Vec::<&str>::new());
    assert_eq!(codes(&spec("split 0.6, test: 0.4", watch)), ["E0606"]);
}

#[test]
fn a_written_name_wins_over_let_and_kind_and_is_never_taken_by_them() {
    let names = |text: &str| -> Vec<String> { layers(text).into_iter().map(|l| l.0).collect() };
    // `name:` beats the `let` binding, so renaming the binding keeps the weights' names; the
    // generated names skip every written name, even one written further down.
    for binding in ["h", "renamed"] {
        let text = format!(
            "model M(x: f32[N, 4]) {{
                dense(8)
                let {binding} = dense(8, name: \"stem\", activation: relu)
                {binding} |> dense(3, name: \"dense_1\", trainable: false) |> dense(2)
            }}"
        );
        assert_eq!(names(&text), ["dense", "stem", "dense_1", "dense_2"]);
    }
    // A `let` binding whose name is written elsewhere gets a suffix instead.
    assert_eq!(
        names(
            "model M(x: f32[N, 4]) {
                let head = dense(8)
                head |> dense(2, name: \"head\")
            }"
        ),
        ["head_1", "head"]
    );
    // The name reaches the parameters, and freezing still applies after it is taken out.
    let c = check("model M(x: f32[N, 4]) {\n dense(3, name: \"out\", trainable: false)\n}");
    let l = &c.models[0].layers[0];
    assert_eq!(l.name, "out");
    assert!(l.params.iter().all(|p| !p.trainable));
}

#[test]
fn bad_layer_names_are_diagnosed() {
    let two = "model M(x: f32[N, 4]) {\n dense(8, name: \"a\")\n dense(8, name: \"a\")\n}";
    assert_eq!(codes(two), ["E0215"]);
    let dotted = "model M(x: f32[N, 4]) {\n dense(8, name: \"a.b\")\n}";
    assert_eq!(codes(dotted), ["E0216"]);
    let number = "model M(x: f32[N, 4]) {\n dense(8, name: 3)\n}";
    assert_eq!(codes(number), ["E0302"]);
    // In a nested multi-input call too.
    let nested = "model M(a: f32[N, 4], b: f32[N, 4]) {\n concat(a |> dense(2, name: \"x\"), b |> dense(2, name: \"x\"))\n}";
    assert_eq!(codes(nested), ["E0215"]);
}
