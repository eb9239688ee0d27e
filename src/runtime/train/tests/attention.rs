//! Multi-head attention and position embedding: whole-plan gradients against central finite
//! differences (`gradients::check`), for self-attention (one input read as query, key and
//! value, its gradient the sum of the three), cross-attention with a separate key, causal
//! masking, dropout on the probabilities (the fixed step's mask in every forward) and a
//! position table longer than the sequence (its unread rows get zero gradients).

use super::gradients::check;
use super::{noise, Builder};
use crate::ir::{Activation, DType, Init, Op, ValueId};

/// Options of one attention node.
struct Heads {
    heads: usize,
    key_dim: usize,
    value_dim: usize,
    dropout: f32,
    causal: bool,
}

impl Builder {
    /// Multi-head attention over `[query, value]` or `[query, value, key]`.
    fn attention(&mut self, name: &str, inputs: &[ValueId], o: &Heads) -> ValueId {
        let width = |b: &Self, v: ValueId| b.g.value(v).unwrap().fact.dim(-1).unwrap();
        let dq = width(self, inputs[0]);
        let dv = width(self, inputs[1]);
        let dk = width(self, *inputs.get(2).unwrap_or(&inputs[1]));
        let (h, k, v) = (o.heads, o.key_dim, o.value_dim);
        let mut p = |what: &str, shape: &[usize], bias: bool| {
            let init = if bias {
                Init::Uniform { limit: 0.3 }
            } else {
                Init::GlorotUniform
            };
            self.param(&format!("{name}.{what}"), shape, init, true)
        };
        let op = Op::MultiHeadAttention {
            heads: h,
            key_dim: k,
            value_dim: v,
            dropout: o.dropout,
            causal: o.causal,
            query_kernel: p("query.kernel", &[dq, h, k], false),
            query_bias: p("query.bias", &[h, k], true),
            key_kernel: p("key.kernel", &[dk, h, k], false),
            key_bias: p("key.bias", &[h, k], true),
            value_kernel: p("value.kernel", &[dv, h, v], false),
            value_bias: p("value.bias", &[h, v], true),
            output_kernel: p("attention_output.kernel", &[h, v, dq], false),
            output_bias: p("attention_output.bias", &[dq], true),
        };
        self.node(name, op, inputs)
    }

    fn position(&mut self, name: &str, x: ValueId, max_length: usize) -> ValueId {
        let d = self.g.value(x).unwrap().fact.dim(-1).unwrap();
        let table = self.param(
            &format!("{name}.embeddings"),
            &[max_length, d],
            Init::Uniform { limit: 0.5 },
            true,
        );
        self.node(name, Op::PositionEmbedding { table }, &[x])
    }
}

#[test]
fn self_attention_with_positions_and_a_residual() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[4, 5]);
    let p = b.position("pos", x, 6);
    let o = Heads {
        heads: 2,
        key_dim: 3,
        value_dim: 2,
        dropout: 0.0,
        causal: false,
    };
    let a = b.attention("mha", &[p, p], &o);
    let s = b.node("res", Op::Add, &[p, a]);
    let y = b.dense("d", s, 3, Activation::Tanh);
    check(b.plan(y), vec![noise(&[2, 4, 5], 21, 1.0)], None, 1e-2);
}

#[test]
fn cross_attention_with_a_separate_key_causal_and_with_dropout() {
    for (causal, dropout) in [(true, 0.0), (false, 0.3), (true, 0.5)] {
        let mut b = Builder::new();
        let q = b.input("q", DType::F32, &[3, 4]);
        let v = b.input("v", DType::F32, &[5, 3]);
        let k = b.input("k", DType::F32, &[5, 2]);
        let o = Heads {
            heads: 3,
            key_dim: 2,
            value_dim: 3,
            dropout,
            causal,
        };
        let a = b.attention("mha", &[q, v, k], &o);
        let plan = b.plan(a);
        let inputs = vec![
            noise(&[2, 3, 4], 22, 1.0),
            noise(&[2, 5, 3], 23, 1.0),
            noise(&[2, 5, 2], 24, 1.0),
        ];
        check(plan, inputs, None, 1e-2);
    }
}
