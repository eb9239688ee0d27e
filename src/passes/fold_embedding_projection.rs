//! `fold-embedding-projection` (inference): an embedding whose output only a recurrent layer
//! reads is folded into that layer's input projection. A step of the layer computes
//! `x_t·W + h·U + b` with `x_t = E[id]`, and `E[id]·W + b_in = (E·W + b_in)[id]`; so the table
//! `P = E·W + b_in` (`[vocab, G·U]`, a derived parameter computed when the weights are loaded)
//! replaces both the embedding lookup and the layer's `x·W` product by a row gather, and the two
//! nodes become one [`Op::EmbeddedRnn`] that reads the token ids directly.
//!
//! The table grows from `D` to `G·U` floats per token, so it is built only while it stays at
//! most [`MAX_PROJECTION_BYTES`]; a larger vocabulary or a wider layer keeps the plain path.
//! The result differs from the unfolded plan by f32 rounding only (the sums are associated
//! differently). A layer with `go_backwards` or a GRU with `reset_after: false` is not folded;
//! a layer reading a padding mask (`mask_zero: true`) is, the mask's ids staying its inputs.

use super::{Mode, Pass, Rewrite};
use crate::ir::{Graph, Init, Op, Param, ParamSource, Recipe, ValueId};

/// The largest projection table built, in bytes (64 MiB: a 16k-token vocabulary under an LSTM
/// of 256 units). The table is `vocab × G·U` floats, `G·U / D` times the embedding's size, and
/// lives in memory beside the stored weights (which a plan still reads, so the weights file
/// does not change); past this size the memory and the one-off cost of computing it at load
/// time outweigh a quarter of the layer's multiply-adds.
pub const MAX_PROJECTION_BYTES: u64 = 64 << 20;

pub struct FoldEmbeddingProjection;

/// What the pass found: the embedding node, the ids it reads, and the new table.
struct Site {
    embedding: usize,
    ids: ValueId,
    projection: Param,
}

/// Whether node `r` is a recurrent layer whose input is an embedding's output that nothing
/// else reads, and if so the derived table that folds the embedding into it (when it is small
/// enough). Anchored on the reader, so that finding the embedding is one lookup.
fn site(graph: &Graph, edits: &Rewrite, r: usize) -> Option<Site> {
    let reader = graph.nodes.get(r)?;
    let Op::Rnn {
        cell,
        kernel,
        bias,
        options,
        ..
    } = reader.op
    else {
        return None;
    };
    let out = edits.input(graph, r, 0)?;
    if edits.uses(out) != 1 {
        return None;
    }
    let embedding = edits.producer(out)?;
    let Op::Embedding { table } = graph.nodes.get(embedding)?.op else {
        return None;
    };
    let ids = edits.single_input(graph, embedding)?;
    // `Op::EmbeddedRnn` runs the steps forwards with Keras's default GRU: a layer that goes
    // backwards or resets before keeps the plain path (dropout does not act at inference).
    // A padding mask's ids (inputs after the first, `ops::mask`) stay inputs of the folded op.
    let reads_twice = (1..reader.inputs.len()).any(|k| edits.input(graph, r, k) == Some(out));
    if options.go_backwards || !options.reset_after || reads_twice {
        return None;
    }
    let t = graph.param(table)?;
    let k = graph.param(kernel)?;
    let (&[vocab, dim], &[rows, cols]) = (t.shape.as_slice(), k.shape.as_slice()) else {
        return None;
    };
    if rows != dim || cols == 0 || cols % cell.gates() != 0 {
        return None;
    }
    let bytes = (vocab as u64).checked_mul(cols as u64)?.checked_mul(4)?;
    if bytes > MAX_PROJECTION_BYTES {
        return None;
    }
    Some(Site {
        embedding,
        ids,
        projection: Param {
            name: format!("{}+{}", t.name, reader.name),
            shape: vec![vocab, cols],
            trainable: false,
            init: Init::Zeros,
            source: ParamSource::Derived(Recipe::EmbeddingProjection {
                table,
                kernel,
                bias,
            }),
        },
    })
}

impl Pass for FoldEmbeddingProjection {
    fn name(&self) -> &'static str {
        "fold-embedding-projection"
    }

    fn applies_to(&self, mode: Mode) -> bool {
        mode == Mode::Infer
    }

    fn run(&self, graph: &mut Graph, log: &mut Vec<String>) -> bool {
        let mut edits = Rewrite::new(graph);
        for r in 0..graph.nodes.len() {
            let Some(found) = site(graph, &edits, r) else {
                continue;
            };
            let projection = graph.add_param(found.projection);
            let rnn = &mut graph.nodes[r];
            let Op::Rnn {
                cell,
                units,
                return_sequences,
                recurrent,
                bias,
                ..
            } = rnn.op
            else {
                continue;
            };
            rnn.op = Op::EmbeddedRnn {
                cell,
                units,
                return_sequences,
                projection,
                recurrent,
                bias,
            };
            log.push(format!(
                "{} folded into {}'s input projection",
                graph.nodes[found.embedding].name, graph.nodes[r].name
            ));
            // The layer now reads the ids (then the padding mask's ids it read, `ops::mask`);
            // they are defined before the embedding, so before the layer too.
            edits.bypass(graph, found.embedding, found.ids);
        }
        edits.finish(graph)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{DType, Dim, Fact, ParamId, RnnCell};
    use crate::passes::testing::run_pass;

    fn stored(g: &mut Graph, name: &str, shape: Vec<usize>) -> ParamId {
        g.add_param(Param {
            name: name.into(),
            shape,
            trainable: true,
            init: Init::Zeros,
            source: ParamSource::Stored,
        })
    }

    /// `ids [N, 5] → embedding(vocab, 3) → cell(units)`; with `second_reader`, the embedding's
    /// output is a graph output as well.
    fn text(cell: RnnCell, vocab: usize, units: usize, second_reader: bool) -> Graph {
        let mut g = Graph {
            name: "T".into(),
            ..Graph::default()
        };
        let ids = g.add_input(
            "ids",
            Fact::new(DType::I64, vec![Dim::Symbol("N".into()), Dim::Known(5)]),
        );
        let table = stored(&mut g, "embedding.embeddings", vec![vocab, 3]);
        let x = g
            .add_node("embedding", Op::Embedding { table }, vec![ids])
            .unwrap();
        let gu = cell.gates() * units;
        let kernel = stored(&mut g, "rnn.kernel", vec![3, gu]);
        let recurrent = stored(&mut g, "rnn.recurrent_kernel", vec![units, gu]);
        let bias_shape = if cell == RnnCell::Gru {
            vec![2, gu]
        } else {
            vec![gu]
        };
        let bias = stored(&mut g, "rnn.bias", bias_shape);
        let op = Op::Rnn {
            cell,
            units,
            return_sequences: true,
            options: crate::ops::recurrent::RnnOptions::default(),
            kernel,
            recurrent,
            bias,
        };
        let y = g.add_node("rnn", op, vec![x]).unwrap();
        g.outputs.push(y);
        if second_reader {
            g.outputs.push(x);
        }
        crate::ir::verify(&g).unwrap();
        g
    }

    #[test]
    fn folds_an_embedding_into_every_cell_kind() {
        for cell in [RnnCell::SimpleRnn, RnnCell::Lstm, RnnCell::Gru] {
            let mut g = text(cell, 11, 4, false);
            let log = run_pass(&FoldEmbeddingProjection, &mut g);
            assert_eq!(log, ["embedding folded into rnn's input projection"]);
            assert_eq!(g.nodes.len(), 1);
            let node = &g.nodes[0];
            assert_eq!(node.inputs, g.inputs);
            let Op::EmbeddedRnn {
                cell: folded,
                units: 4,
                return_sequences: true,
                projection,
                recurrent,
                bias,
            } = node.op
            else {
                panic!("{:?}", node.op)
            };
            assert_eq!(folded, cell);
            let p = g.param(projection).unwrap();
            assert_eq!(p.name, "embedding.embeddings+rnn");
            assert_eq!(p.shape, [11, cell.gates() * 4]);
            assert!(!p.trainable);
            assert_eq!(
                p.source,
                ParamSource::Derived(Recipe::EmbeddingProjection {
                    table: ParamId(0),
                    kernel: ParamId(1),
                    bias,
                })
            );
            assert_eq!((recurrent, bias), (ParamId(2), ParamId(3)));
            assert_eq!(
                g.value(node.output).unwrap().fact.to_string(),
                "f32[N, 5, 4]"
            );
        }
    }

    #[test]
    fn leaves_a_shared_embedding_and_the_training_plan_alone() {
        let mut g = text(RnnCell::Lstm, 11, 4, true);
        assert!(run_pass(&FoldEmbeddingProjection, &mut g).is_empty());
        assert_eq!(g.nodes[0].op.kind(), "embedding");
        assert!(!FoldEmbeddingProjection.applies_to(Mode::Train));
        assert!(FoldEmbeddingProjection.applies_to(Mode::Infer));
    }

    #[test]
    fn keeps_the_plain_path_above_the_size_limit() {
        // An LSTM of 64 units: 256 floats (1 KiB) per token, so 65,536 tokens fill the limit
        // exactly and one more token passes it.
        let at_limit = (MAX_PROJECTION_BYTES / 1024) as usize;
        let mut g = text(RnnCell::Lstm, at_limit, 64, false);
        assert_eq!(run_pass(&FoldEmbeddingProjection, &mut g).len(), 1);
        let mut g = text(RnnCell::Lstm, at_limit + 1, 64, false);
        assert!(run_pass(&FoldEmbeddingProjection, &mut g).is_empty());
        assert_eq!(g.nodes.len(), 2);
    }
}
