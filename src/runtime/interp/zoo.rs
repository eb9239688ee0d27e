//! Reference models built directly as IR graphs (no spec needed): the seed CNN and a small
//! Embedding + LSTM text classifier. The benchmark, the numpy fixtures and the tests use them.
//!
//! Output: a verified [`Graph`] with Keras layer and parameter names (`conv2d`, `conv2d_1`,
//! `dense`, `lstm`, ...) and Keras default initializers.

use crate::ir::{
    Activation, DType, Dim, Fact, Graph, Init, Op, Padding, Param, ParamId, ParamSource, RnnCell,
    ValueId, Window,
};

fn param(g: &mut Graph, name: String, shape: Vec<usize>, init: Init) -> ParamId {
    g.add_param(Param {
        name,
        shape,
        trainable: true,
        init,
        source: ParamSource::Stored,
    })
}

fn window(k: usize, stride: usize) -> Window {
    Window {
        size: [k, k],
        strides: [stride, stride],
        dilation: [1, 1],
        padding: Padding::Valid,
    }
}

/// A valid 3x3 conv with bias and `activation`.
fn conv(
    g: &mut Graph,
    name: &str,
    x: ValueId,
    cin: usize,
    filters: usize,
    act: Activation,
) -> Result<ValueId, String> {
    let kernel = param(
        g,
        format!("{name}.kernel"),
        vec![3, 3, cin, filters],
        Init::GlorotUniform,
    );
    let bias = param(g, format!("{name}.bias"), vec![filters], Init::Zeros);
    g.add_node(
        name,
        Op::Conv2d {
            filters,
            window: window(3, 1),
            kernel,
            bias: Some(bias),
            activation: act,
        },
        vec![x],
    )
}

fn dense(
    g: &mut Graph,
    name: &str,
    x: ValueId,
    inp: usize,
    units: usize,
    act: Activation,
) -> Result<ValueId, String> {
    let kernel = param(
        g,
        format!("{name}.kernel"),
        vec![inp, units],
        Init::GlorotUniform,
    );
    let bias = param(g, format!("{name}.bias"), vec![units], Init::Zeros);
    g.add_node(
        name,
        Op::Dense {
            units,
            kernel,
            bias: Some(bias),
            activation: act,
        },
        vec![x],
    )
}

/// 28x28x1 → conv 32 k3 relu → maxpool 2 → conv 64 k3 relu → maxpool 2 → conv 128 k3 relu →
/// maxpool 2 → flatten → dense 128 relu → dense 10 softmax. Activations are separate nodes
/// (as the checker lowers `activation:` layers); the optimizer fuses them.
pub fn seed_cnn() -> Result<Graph, String> {
    let mut g = Graph {
        name: "SeedCnn".into(),
        ..Graph::default()
    };
    let mut x = g.add_input(
        "x",
        Fact::new(
            DType::F32,
            vec![
                Dim::Symbol("N".into()),
                Dim::Known(28),
                Dim::Known(28),
                Dim::Known(1),
            ],
        ),
    );
    let mut cin = 1;
    for (i, filters) in [32usize, 64, 128].into_iter().enumerate() {
        let name = if i == 0 {
            "conv2d".to_string()
        } else {
            format!("conv2d_{i}")
        };
        x = conv(&mut g, &name, x, cin, filters, Activation::Linear)?;
        x = g.add_node(
            format!("{name}.relu"),
            Op::Activation(Activation::Relu),
            vec![x],
        )?;
        let pool = if i == 0 {
            "max_pooling2d".to_string()
        } else {
            format!("max_pooling2d_{i}")
        };
        x = g.add_node(
            pool,
            Op::MaxPool2d {
                window: window(2, 2),
            },
            vec![x],
        )?;
        cin = filters;
    }
    x = g.add_node("flatten", Op::Flatten, vec![x])?;
    x = dense(&mut g, "dense", x, 128, 128, Activation::Linear)?;
    x = g.add_node("dense.relu", Op::Activation(Activation::Relu), vec![x])?;
    x = dense(&mut g, "dense_1", x, 128, 10, Activation::Linear)?;
    x = g.add_node(
        "dense_1.softmax",
        Op::Activation(Activation::Softmax),
        vec![x],
    )?;
    g.outputs.push(x);
    crate::ir::verify(&g).map_err(|e| e.to_string())?;
    Ok(g)
}

/// Sizes of [`lstm_classifier`].
#[derive(Clone, Copy, Debug)]
pub struct TextSizes {
    pub vocab: usize,
    pub embed: usize,
    /// Units of each stacked LSTM; all but the last return sequences.
    pub units: &'static [usize],
    pub seq: usize,
    pub classes: usize,
}

/// The benchmark's text model: Embedding(1000, 64) → LSTM(64, sequences) → LSTM(64) →
/// dense(10) softmax over `[N, 100]` i32 tokens.
pub const BENCH_TEXT: TextSizes = TextSizes {
    vocab: 1000,
    embed: 64,
    units: &[64, 64],
    seq: 100,
    classes: 10,
};

/// tokens `i32[N, seq]` → embedding → LSTM stack → dense softmax.
pub fn lstm_classifier(s: TextSizes) -> Result<Graph, String> {
    let mut g = Graph {
        name: "TextLstm".into(),
        ..Graph::default()
    };
    let tokens = g.add_input(
        "tokens",
        Fact::new(DType::I32, vec![Dim::Symbol("N".into()), Dim::Known(s.seq)]),
    );
    let table = param(
        &mut g,
        "embedding.embeddings".into(),
        vec![s.vocab, s.embed],
        Init::Uniform { limit: 0.05 },
    );
    let mut x = g.add_node("embedding", Op::Embedding { table }, vec![tokens])?;
    let mut features = s.embed;
    for (i, &units) in s.units.iter().enumerate() {
        let name = if i == 0 {
            "lstm".to_string()
        } else {
            format!("lstm_{i}")
        };
        let kernel = param(
            &mut g,
            format!("{name}.kernel"),
            vec![features, 4 * units],
            Init::GlorotUniform,
        );
        let recurrent = param(
            &mut g,
            format!("{name}.recurrent_kernel"),
            vec![units, 4 * units],
            Init::Orthogonal,
        );
        let bias = param(
            &mut g,
            format!("{name}.bias"),
            vec![4 * units],
            Init::UnitForgetBias,
        );
        x = g.add_node(
            name,
            Op::Rnn {
                cell: RnnCell::Lstm,
                units,
                return_sequences: i + 1 < s.units.len(),
                options: crate::ops::recurrent::RnnOptions::default(),
                kernel,
                recurrent,
                bias,
            },
            vec![x],
        )?;
        features = units;
    }
    x = dense(&mut g, "dense", x, features, s.classes, Activation::Softmax)?;
    g.outputs.push(x);
    crate::ir::verify(&g).map_err(|e| e.to_string())?;
    Ok(g)
}
