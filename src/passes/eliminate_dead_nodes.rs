//! `eliminate-dead-nodes`: nodes whose values never reach an output are removed, then
//! parameters no live node (or live derived parameter) reads are dropped and handles renumbered.

use super::{Mode, Pass};
use crate::ir::{Graph, Op, ParamId, ParamSource, Recipe};

pub struct EliminateDeadNodes;

impl Pass for EliminateDeadNodes {
    fn name(&self) -> &'static str {
        "eliminate-dead-nodes"
    }

    fn applies_to(&self, _mode: Mode) -> bool {
        true
    }

    fn run(&self, graph: &mut Graph, log: &mut Vec<String>) -> bool {
        let mut live = vec![false; graph.values.len()];
        for v in &graph.outputs {
            if let Some(l) = live.get_mut(v.index()) {
                *l = true;
            }
        }
        let mut keep = vec![false; graph.nodes.len()];
        for (i, n) in graph.nodes.iter().enumerate().rev() {
            if live.get(n.output.index()).copied().unwrap_or(false) {
                keep[i] = true;
                for v in &n.inputs {
                    if let Some(l) = live.get_mut(v.index()) {
                        *l = true;
                    }
                }
            }
        }
        let mut changed = false;
        let mut idx = 0;
        graph.nodes.retain(|n| {
            let k = keep[idx];
            idx += 1;
            if !k {
                log.push(format!("{} removed (unused)", n.name));
                changed = true;
            }
            k
        });
        changed | compact_params(graph)
    }
}

fn recipe_params(r: &Recipe) -> Vec<ParamId> {
    match r {
        Recipe::BatchNormKernel {
            kernel,
            gamma,
            variance,
            ..
        } => vec![*kernel, *gamma, *variance],
        Recipe::BatchNormBias {
            bias,
            gamma,
            beta,
            mean,
            variance,
            ..
        } => bias
            .iter()
            .copied()
            .chain([*gamma, *beta, *mean, *variance])
            .collect(),
        Recipe::AffineKernel { kernel, .. } => vec![*kernel],
        Recipe::AffineBias { bias, kernel, .. } => bias.iter().copied().chain([*kernel]).collect(),
        Recipe::EmbeddingProjection {
            table,
            kernel,
            bias,
        } => vec![*table, *kernel, *bias],
    }
}

fn remap_recipe(r: &mut Recipe, map: &[Option<u32>]) {
    let f = |p: &mut ParamId| {
        if let Some(Some(n)) = map.get(p.index()) {
            *p = ParamId(*n);
        }
    };
    match r {
        Recipe::BatchNormKernel {
            kernel,
            gamma,
            variance,
            ..
        } => {
            for p in [kernel, gamma, variance] {
                f(p);
            }
        }
        Recipe::BatchNormBias {
            bias,
            gamma,
            beta,
            mean,
            variance,
            ..
        } => {
            if let Some(b) = bias {
                f(b);
            }
            for p in [gamma, beta, mean, variance] {
                f(p);
            }
        }
        Recipe::AffineKernel { kernel, .. } => f(kernel),
        Recipe::AffineBias { bias, kernel, .. } => {
            if let Some(b) = bias {
                f(b);
            }
            f(kernel);
        }
        Recipe::EmbeddingProjection {
            table,
            kernel,
            bias,
        } => {
            for p in [table, kernel, bias] {
                f(p);
            }
        }
    }
}

fn remap_op(op: &mut Op, map: &[Option<u32>]) {
    for p in op.params_mut() {
        if let Some(Some(n)) = map.get(p.index()) {
            *p = ParamId(*n);
        }
    }
}

/// Drops unreferenced parameters; returns whether any were dropped.
fn compact_params(graph: &mut Graph) -> bool {
    let mut used = vec![false; graph.params.len()];
    let mut stack: Vec<ParamId> = graph.nodes.iter().flat_map(|n| n.op.params()).collect();
    while let Some(p) = stack.pop() {
        let Some(slot) = used.get_mut(p.index()) else {
            continue;
        };
        if *slot {
            continue;
        }
        *slot = true;
        if let Some(ParamSource::Derived(r)) = graph.param(p).map(|x| &x.source) {
            stack.extend(recipe_params(r));
        }
    }
    if used.iter().all(|&u| u) {
        return false;
    }
    let mut map = vec![None; graph.params.len()];
    let mut next = 0u32;
    for (i, &u) in used.iter().enumerate() {
        if u {
            map[i] = Some(next);
            next += 1;
        }
    }
    let mut idx = 0;
    graph.params.retain(|_| {
        let k = used[idx];
        idx += 1;
        k
    });
    for p in &mut graph.params {
        if let ParamSource::Derived(r) = &mut p.source {
            remap_recipe(r, &map);
        }
    }
    for n in &mut graph.nodes {
        remap_op(&mut n.op, &map);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::testing::{chain, run_pass};

    #[test]
    fn removes_nodes_that_reach_no_output_and_their_params() {
        let mut g = chain(&["dense:4", "relu", "dense:2"]);
        // Make the relu the output: the last dense is dead.
        g.outputs = vec![g.nodes[1].output];
        let log = run_pass(&EliminateDeadNodes, &mut g);
        assert_eq!(log, ["dense_1 removed (unused)"]);
        assert_eq!(
            g.params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["dense.kernel", "dense.bias"]
        );
    }

    #[test]
    fn keeps_params_that_derived_params_read() {
        let mut g = chain(&["dense:4", "bn"]);
        let mut log = Vec::new();
        super::super::fold_batch_norm::FoldBatchNorm.run(&mut g, &mut log);
        run_pass(&EliminateDeadNodes, &mut g);
        // dense.kernel, dense.bias and the four batch norm tensors feed the derived pair.
        assert_eq!(g.params.len(), 8);
        crate::ir::verify(&g).unwrap();
    }
}
