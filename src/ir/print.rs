//! A deterministic text form of a graph, for `--emit ir`, golden tests and bug reports.

use super::{Graph, Op, ParamSource};
use std::fmt::Write;

/// Renders the graph one line per input, node and parameter.
pub fn print(graph: &Graph) -> String {
    let mut out = String::new();
    let name = |v: super::ValueId| {
        graph
            .value(v)
            .map_or_else(|| format!("%{}", v.0), |x| format!("%{}", x.name))
    };
    let _ = writeln!(out, "graph {} {{", graph.name);
    for &v in &graph.inputs {
        if let Some(val) = graph.value(v) {
            let _ = writeln!(out, "  input {}: {}", name(v), val.fact);
        }
    }
    for n in &graph.nodes {
        let args: Vec<String> = n.inputs.iter().map(|&v| name(v)).collect();
        let fact = graph
            .value(n.output)
            .map(|v| v.fact.to_string())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {} = {}({}){} : {fact}",
            name(n.output),
            n.op.kind(),
            args.join(", "),
            attrs(graph, &n.op)
        );
    }
    let outs: Vec<String> = graph.outputs.iter().map(|&v| name(v)).collect();
    let _ = writeln!(out, "  output {}", outs.join(", "));
    for p in &graph.params {
        let kind = match &p.source {
            ParamSource::Stored if p.trainable => "param".to_string(),
            ParamSource::Stored => "state".to_string(),
            ParamSource::Derived(r) => format!("derived {}", recipe_name(r)),
        };
        let _ = writeln!(out, "  {kind} {} {:?}", p.name, p.shape);
    }
    out.push_str("}\n");
    out
}

fn recipe_name(r: &super::Recipe) -> &'static str {
    match r {
        super::Recipe::BatchNormKernel { .. } => "batch_norm_kernel",
        super::Recipe::BatchNormBias { .. } => "batch_norm_bias",
        super::Recipe::AffineKernel { .. } => "affine_kernel",
        super::Recipe::AffineBias { .. } => "affine_bias",
        super::Recipe::EmbeddingProjection { .. } => "embedding_projection",
    }
}

fn attrs(graph: &Graph, op: &Op) -> String {
    op.attributes_text(|p| {
        graph
            .param(p)
            .map_or_else(|| "?".to_string(), |x| x.name.clone())
    })
}
