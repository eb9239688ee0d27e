//! One walk's edits to a graph, applied in one sweep at the end: what keeps every pass linear
//! in the size of the graph.
//!
//! A pass visits the nodes in order and reads each node's inputs through [`Rewrite::input`],
//! which follows the values replaced so far. It removes a node with [`Rewrite::bypass`] (its
//! readers read another value instead). Use counts and producers are computed once and kept
//! exact as nodes go; [`Rewrite::finish`] renames every use and drops the removed nodes in one
//! pass over the graph. No edit costs more than the size of the node it touches, so a pass over
//! `n` nodes costs O(n), where removing nodes from the vector and renaming uses one edit at a
//! time cost O(n²).

use crate::ir::{Graph, ValueId};

/// The pending edits of one pass over a graph.
pub(crate) struct Rewrite {
    /// How many live nodes (and graph outputs) read each value, after the edits so far.
    uses: Vec<usize>,
    /// The node computing each value (indices into the graph's nodes as they were).
    producers: Vec<Option<usize>>,
    /// The value that now stands for each bypassed node's output.
    replaced: Vec<Option<ValueId>>,
    removed: Vec<bool>,
    edited: bool,
}

impl Rewrite {
    pub(crate) fn new(graph: &Graph) -> Self {
        Rewrite {
            uses: graph.use_counts(),
            producers: graph.producers(),
            replaced: vec![None; graph.values.len()],
            removed: vec![false; graph.nodes.len()],
            edited: false,
        }
    }

    /// The value that stands for `value` after the edits so far.
    pub(crate) fn resolve(&self, value: ValueId) -> ValueId {
        let mut v = value;
        // Each replacement is resolved when it is made, so this takes at most one step in the
        // passes' order; the loop keeps it right in any order.
        while let Some(Some(r)) = self.replaced.get(v.index()) {
            v = *r;
        }
        v
    }

    /// Input `k` of node `node`, after the edits so far.
    pub(crate) fn input(&self, graph: &Graph, node: usize, k: usize) -> Option<ValueId> {
        let v = *graph.nodes.get(node)?.inputs.get(k)?;
        Some(self.resolve(v))
    }

    /// The one input of node `node`, if it has exactly one.
    pub(crate) fn single_input(&self, graph: &Graph, node: usize) -> Option<ValueId> {
        match graph.nodes.get(node)?.inputs.as_slice() {
            [x] => Some(self.resolve(*x)),
            _ => None,
        }
    }

    /// How many live nodes and graph outputs read `value`.
    pub(crate) fn uses(&self, value: ValueId) -> usize {
        self.uses.get(value.index()).copied().unwrap_or(0)
    }

    /// The live node computing `value`, if a node does.
    pub(crate) fn producer(&self, value: ValueId) -> Option<usize> {
        let p = self.producers.get(value.index()).copied().flatten()?;
        (!self.removed.get(p).copied().unwrap_or(true)).then_some(p)
    }

    /// Whether node `node` is still in the graph.
    pub(crate) fn is_live(&self, node: usize) -> bool {
        node < self.removed.len() && !self.removed[node]
    }

    /// Removes node `node`: whatever read its output reads `replacement` instead.
    pub(crate) fn bypass(&mut self, graph: &Graph, node: usize, replacement: ValueId) {
        let Some(n) = graph.nodes.get(node) else {
            return;
        };
        if !self.is_live(node) {
            return;
        }
        for &v in &n.inputs {
            let v = self.resolve(v);
            if let Some(u) = self.uses.get_mut(v.index()) {
                *u = u.saturating_sub(1);
            }
        }
        let replacement = self.resolve(replacement);
        let out = n.output.index();
        let readers = self.uses.get(out).copied().unwrap_or(0);
        if let Some(u) = self.uses.get_mut(replacement.index()) {
            *u += readers;
        }
        if let Some(u) = self.uses.get_mut(out) {
            *u = 0;
        }
        if let Some(r) = self.replaced.get_mut(out) {
            *r = Some(replacement);
        }
        self.removed[node] = true;
        self.edited = true;
    }

    /// Applies the edits: every use renamed, the removed nodes dropped. Returns whether
    /// anything changed.
    pub(crate) fn finish(self, graph: &mut Graph) -> bool {
        if !self.edited {
            return false;
        }
        for node in &mut graph.nodes {
            for v in &mut node.inputs {
                *v = self.resolve(*v);
            }
        }
        for v in &mut graph.outputs {
            *v = self.resolve(*v);
        }
        let mut index = 0;
        graph.nodes.retain(|_| {
            let keep = !self.removed[index];
            index += 1;
            keep
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::testing::chain;

    #[test]
    fn bypassed_chains_resolve_to_the_first_live_value_and_keep_use_counts_exact() {
        // in → dense → dropout → dropout → relu (output)
        let mut g = chain(&["dense:4", "dropout", "dropout", "relu"]);
        let dense_out = g.nodes[0].output;
        let mut edits = Rewrite::new(&g);
        assert_eq!(edits.uses(dense_out), 1);
        let first = edits.single_input(&g, 1).unwrap();
        edits.bypass(&g, 1, first);
        // The second dropout now reads the dense output, through the first one's replacement.
        assert_eq!(edits.single_input(&g, 2), Some(dense_out));
        assert_eq!(edits.uses(dense_out), 1);
        let second = edits.single_input(&g, 2).unwrap();
        edits.bypass(&g, 2, second);
        assert_eq!(edits.single_input(&g, 3), Some(dense_out));
        assert_eq!(edits.uses(dense_out), 1);
        assert_eq!(edits.producer(dense_out), Some(0));
        assert!(!edits.is_live(1) && !edits.is_live(2) && edits.is_live(3));
        assert!(edits.finish(&mut g));
        assert_eq!(g.nodes.len(), 2);
        assert_eq!(g.nodes[1].inputs, [dense_out]);
        crate::ir::verify(&g).unwrap();
    }

    #[test]
    fn a_bypassed_graph_output_is_renamed_and_its_uses_move_to_the_replacement() {
        let mut g = chain(&["dense:4", "relu", "dropout"]);
        let relu_out = g.nodes[1].output;
        let dropout_out = g.nodes[2].output;
        assert_eq!(g.outputs, [dropout_out]);
        let mut edits = Rewrite::new(&g);
        edits.bypass(&g, 2, relu_out);
        // The graph output counts as a use of what replaced it.
        assert_eq!(edits.uses(relu_out), 1);
        assert_eq!(edits.uses(dropout_out), 0);
        assert!(edits.finish(&mut g));
        assert_eq!(g.outputs, [relu_out]);
        crate::ir::verify(&g).unwrap();
    }

    #[test]
    fn no_edit_changes_nothing() {
        let mut g = chain(&["dense:4", "relu"]);
        let before = g.clone();
        assert!(!Rewrite::new(&g).finish(&mut g));
        assert_eq!(g.nodes.len(), before.nodes.len());
    }
}
