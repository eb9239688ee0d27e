//! The vocabulary each op family writes its ONNX export in: a plain-data ONNX graph (nodes with
//! an op type, inputs, outputs and attributes; initializers as f32/i64 tensors with dims) and
//! [`NodeCx`], the context one IR step is exported in (its inputs in the layout it asks for,
//! its parameters' numbers, fresh value names, the opset).
//!
//! Input: what `export` hands over (values already exported, parameter data). Output: nodes
//! and initializers appended to an [`OnnxGraph`]. Invariants: no protobuf here (`export`
//! encodes); names are unique within a graph and allocated deterministically (same plan, same
//! names); a modelc value of rank 4 is channels-last (NHWC), and its channels-first (NCHW) form
//! is made by one `Transpose`, once, the first time an op asks for it (so a run of NCHW ops has
//! transposes only at its ends).

use super::types::{DType, Fact};
use std::collections::BTreeSet;

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
    Text(String),
}

/// One ONNX node.
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxNode {
    pub op_type: &'static str,
    pub name: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// In the order written (kept sorted by the encoder for deterministic bytes).
    pub attributes: Vec<(&'static str, Attr)>,
}

/// The numbers of an initializer.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// A constant tensor of the graph (weights, shapes, axes).
#[derive(Clone, Debug, PartialEq)]
pub struct Initializer {
    pub name: String,
    pub dims: Vec<usize>,
    pub data: TensorData,
}

/// Where a value's axes are: modelc's channels-last, or the channels-first form ONNX's
/// convolutions and pools read. Only rank-4 values have two forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Nhwc,
    Nchw,
}

/// The exported forms of one modelc value: the ONNX names holding it in each layout.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Forms {
    pub nhwc: Option<String>,
    pub nchw: Option<String>,
    pub rank: usize,
    /// The channels-last sizes after the batch (`None` where symbolic).
    pub sizes: Vec<Option<usize>>,
}

/// An ONNX graph under construction.
#[derive(Debug, Default)]
pub struct OnnxGraph {
    pub nodes: Vec<OnnxNode>,
    pub initializers: Vec<Initializer>,
    /// The forms of every modelc value exported so far, by plan value index.
    pub values: Vec<Forms>,
    taken: BTreeSet<String>,
}

impl OnnxGraph {
    /// An empty graph whose names avoid `reserved` (the graph's input and output names).
    pub fn new<'a>(reserved: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            taken: reserved.into_iter().map(str::to_string).collect(),
            ..Self::default()
        }
    }

    /// A name not used yet: `base`, else `base_1`, `base_2`, ...
    pub fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut i = 0usize;
        while self.taken.contains(&name) {
            i += 1;
            name = format!("{base}_{i}");
        }
        self.taken.insert(name.clone());
        name
    }

    /// Appends a node writing one fresh value named after `base`; returns the value's name.
    pub fn node(
        &mut self,
        op_type: &'static str,
        base: &str,
        inputs: Vec<String>,
        attributes: Vec<(&'static str, Attr)>,
    ) -> String {
        let output = self.fresh(base);
        self.nodes.push(OnnxNode {
            op_type,
            name: output.clone(),
            inputs,
            outputs: vec![output.clone()],
            attributes,
        });
        output
    }

    /// Appends a node with the outputs given (names the caller allocated).
    pub fn node_with_outputs(
        &mut self,
        op_type: &'static str,
        inputs: Vec<String>,
        outputs: Vec<String>,
        attributes: Vec<(&'static str, Attr)>,
    ) {
        let name = outputs.first().cloned().unwrap_or_default();
        self.nodes.push(OnnxNode {
            op_type,
            name,
            inputs,
            outputs,
            attributes,
        });
    }

    /// Adds an f32 initializer; returns its name.
    pub fn f32_tensor(&mut self, base: &str, dims: Vec<usize>, data: Vec<f32>) -> String {
        let name = self.fresh(base);
        self.initializers.push(Initializer {
            name: name.clone(),
            dims,
            data: TensorData::F32(data),
        });
        name
    }

    /// Adds an i64 vector initializer (shapes, axes); returns its name.
    pub fn i64_vector(&mut self, base: &str, data: Vec<i64>) -> String {
        let name = self.fresh(base);
        self.initializers.push(Initializer {
            name: name.clone(),
            dims: vec![data.len()],
            data: TensorData::I64(data),
        });
        name
    }

    /// The name of value `index` in `layout`, transposing (once) from the form that exists.
    pub fn value_in(&mut self, index: usize, layout: Layout) -> Result<String, String> {
        let forms = self
            .values
            .get(index)
            .cloned()
            .ok_or_else(|| format!("internal: value {index} used before it is exported"))?;
        let (wanted, other, perm) = match layout {
            Layout::Nhwc => (forms.nhwc, forms.nchw, [0, 2, 3, 1]),
            Layout::Nchw => (forms.nchw, forms.nhwc, [0, 3, 1, 2]),
        };
        if let Some(name) = wanted {
            return Ok(name);
        }
        let source = other.ok_or_else(|| format!("internal: value {index} has no form"))?;
        if forms.rank != 4 {
            return Ok(source);
        }
        let suffix = match layout {
            Layout::Nhwc => "nhwc",
            Layout::Nchw => "nchw",
        };
        let base = format!("{source}/{suffix}");
        let name = match reshape_for(&forms.sizes, layout) {
            // Only unit axes move (one channel, or a 1 × 1 image): the same bytes, reshaped.
            Some(target) => {
                let target = self.i64_vector(&format!("{base}_shape"), target);
                self.node("Reshape", &base, vec![source, target], vec![])
            }
            None => self.node(
                "Transpose",
                &base,
                vec![source],
                vec![("perm", Attr::Ints(perm.to_vec()))],
            ),
        };
        if let Some(f) = self.values.get_mut(index) {
            match layout {
                Layout::Nhwc => f.nhwc = Some(name.clone()),
                Layout::Nchw => f.nchw = Some(name.clone()),
            }
        }
        Ok(name)
    }

    /// The name of value `index` in whichever layout exists (channels-last first).
    pub fn value_any(&self, index: usize) -> Result<(String, Layout), String> {
        let forms = self
            .values
            .get(index)
            .ok_or_else(|| format!("internal: value {index} used before it is exported"))?;
        match (&forms.nhwc, &forms.nchw) {
            (Some(n), _) => Ok((n.clone(), Layout::Nhwc)),
            (None, Some(n)) => Ok((n.clone(), Layout::Nchw)),
            (None, None) => Err(format!("internal: value {index} has no form")),
        }
    }
}

/// A parameter's numbers as the exporter hands them to an op: Keras layout, row-major.
#[derive(Clone, Copy, Debug)]
pub struct ParamData<'a> {
    pub shape: &'a [usize],
    pub data: &'a [f32],
}

/// The context one IR step is exported in.
pub struct NodeCx<'a> {
    pub graph: &'a mut OnnxGraph,
    /// The ONNX opset the graph declares (13..=21).
    pub opset: i64,
    /// The step's name: the base of every name it allocates.
    pub step: &'a str,
    /// Plan value indices of the step's inputs.
    pub inputs: &'a [usize],
    pub input_facts: &'a [&'a Fact],
    pub output_fact: &'a Fact,
    /// The op's parameters in `Op::params` order.
    pub params: &'a [ParamData<'a>],
    /// Set by the op: the ONNX name of its output and the layout it is in.
    pub output: Option<(String, Layout)>,
}

impl NodeCx<'_> {
    /// Input `i` in `layout` (a rank-4 input is transposed once if needed).
    pub fn input(&mut self, i: usize, layout: Layout) -> Result<String, String> {
        let index = self.input_index(i)?;
        self.graph.value_in(index, layout)
    }

    /// Input `i` in whichever layout it already has.
    pub fn input_any(&self, i: usize) -> Result<(String, Layout), String> {
        self.graph.value_any(self.input_index(i)?)
    }

    fn input_index(&self, i: usize) -> Result<usize, String> {
        self.inputs
            .get(i)
            .copied()
            .ok_or_else(|| format!("internal: {} has no input {i}", self.step))
    }

    /// The fact of input `i`.
    pub fn input_fact(&self, i: usize) -> Result<&Fact, String> {
        self.input_facts
            .get(i)
            .copied()
            .ok_or_else(|| format!("internal: {} has no input {i}", self.step))
    }

    /// Parameter `i` (in `Op::params` order).
    pub fn param(&self, i: usize) -> Result<ParamData<'_>, String> {
        self.params
            .get(i)
            .copied()
            .ok_or_else(|| format!("internal: {} has no parameter {i}", self.step))
    }

    /// `{step}/{what}`, for naming the step's values.
    pub fn base(&self, what: &str) -> String {
        format!("{}/{what}", self.step)
    }

    /// Appends a one-output node named after the step; returns its output.
    pub fn node(
        &mut self,
        op_type: &'static str,
        what: &str,
        inputs: Vec<String>,
        attributes: Vec<(&'static str, Attr)>,
    ) -> String {
        let base = self.base(what);
        self.graph.node(op_type, &base, inputs, attributes)
    }

    /// An f32 initializer named after the step.
    pub fn f32_tensor(&mut self, what: &str, dims: Vec<usize>, data: Vec<f32>) -> String {
        let base = self.base(what);
        self.graph.f32_tensor(&base, dims, data)
    }

    /// An i64 vector initializer named after the step.
    pub fn i64_vector(&mut self, what: &str, data: Vec<i64>) -> String {
        let base = self.base(what);
        self.graph.i64_vector(&base, data)
    }

    /// Records the step's output.
    pub fn set_output(&mut self, name: String, layout: Layout) {
        self.output = Some((name, layout));
    }

    /// `ReduceMean` / `ReduceMax` over `axes` (an attribute before opset 18, an input since).
    pub fn reduce(
        &mut self,
        op_type: &'static str,
        what: &str,
        x: String,
        axes: &[i64],
        keepdims: bool,
    ) -> String {
        let keep = ("keepdims", Attr::Int(i64::from(keepdims)));
        if self.opset >= 18 {
            let axes = self.i64_vector("axes", axes.to_vec());
            self.node(op_type, what, vec![x, axes], vec![keep])
        } else {
            self.node(
                op_type,
                what,
                vec![x],
                vec![("axes", Attr::Ints(axes.to_vec())), keep],
            )
        }
    }
}

/// ONNX's `TensorProto.DataType` number of a modelc dtype.
pub fn onnx_dtype(dtype: DType) -> i32 {
    match dtype {
        DType::F32 => 1,
        DType::I32 => 6,
        DType::I64 => 7,
    }
}

/// The `Reshape` target (batch `0`) that moves a rank-4 value with channels-last sizes `sizes`
/// into `layout`, when the move only shifts axes of size 1, so a reshape keeps every element in
/// place; `None` when a `Transpose` is needed (or a size is unknown).
fn reshape_for(sizes: &[Option<usize>], layout: Layout) -> Option<Vec<i64>> {
    let [Some(h), Some(w), Some(c)] = *sizes else {
        return None;
    };
    let (from, to) = match layout {
        Layout::Nchw => ([h, w, c], [c, h, w]),
        Layout::Nhwc => ([c, h, w], [h, w, c]),
    };
    let moved = |v: [usize; 3]| v.into_iter().filter(|&d| d != 1).collect::<Vec<_>>();
    (moved(from) == moved(to)).then(|| {
        std::iter::once(0)
            .chain(to.iter().map(|&d| d as i64))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::{reshape_for, Layout, OnnxGraph};

    #[test]
    fn a_move_of_unit_axes_only_is_a_reshape_and_any_other_a_transpose() {
        let s = |v: [usize; 3]| v.map(Some).to_vec();
        assert_eq!(
            reshape_for(&s([28, 28, 1]), Layout::Nchw),
            Some(vec![0, 1, 28, 28])
        );
        assert_eq!(
            reshape_for(&s([1, 1, 128]), Layout::Nhwc),
            Some(vec![0, 1, 1, 128])
        );
        assert_eq!(reshape_for(&s([3, 3, 128]), Layout::Nchw), None);
        assert_eq!(reshape_for(&s([1, 3, 2]), Layout::Nchw), None);
        assert_eq!(reshape_for(&[None, Some(1), Some(1)], Layout::Nchw), None);
    }

    #[test]
    fn fresh_names_avoid_reserved_and_earlier_ones() {
        let mut g = OnnxGraph::new(["x"]);
        assert_eq!(g.fresh("x"), "x_1");
        assert_eq!(g.fresh("y"), "y");
        assert_eq!(g.fresh("y"), "y_1");
    }
}
