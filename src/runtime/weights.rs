//! Model weights: safetensors files in and out, fresh initialization, derived parameters.
//!
//! Input: an [`ExecutionPlan`] (its parameter table) and a `.safetensors` file, or a seed.
//! Output: [`Weights`], one `f32` tensor per parameter of the plan, indexed like the plan's
//! parameter table (so `ParamId(i)` is entry `i`).
//!
//! File layout: a standard safetensors file (8-byte little-endian header length, a JSON header,
//! raw data) holding exactly one tensor per *stored* parameter, named `LAYER.PARAM`
//! (`conv2d_1.kernel`, `lstm.recurrent_kernel`, `batch_normalization.moving_mean`), dtype `F32`
//! (little-endian), in Keras layouts: conv kernels `[kh, kw, in, out]`, dense kernels
//! `[in, out]`, recurrent kernels `[in, G·units]` with Keras gate order, biases `[out]` (GRU
//! `[2, 3·units]`), embedding tables `[vocab, dim]`. A Keras model's `get_weights()` arrays can be
//! written under these names as they are. Derived parameters (an inference rewrite such as a
//! batch norm folded into a conv) are never in the file: they are computed from the stored ones
//! by their [`Recipe`] after loading (formulas in `crate::ir`). A Keras or PyTorch file given
//! instead is named by its first bytes (`foreign`: E0816, E0817) with the converter to run.
//!
//! Invariants: a loaded file is untrusted. Every tensor is checked (name, dtype, shape, finite
//! values) and *every* problem is reported by tensor name; a malformed file (header lies,
//! offsets past the end) is the safetensors crate's error, mapped to a diagnostic, never a
//! panic. Saving is atomic ([`crate::util::write_atomic`]) and writes tensors sorted by name.
//! Fresh weights draw parameter `name` from seed `param_seed(seed, name)`, so adding a layer
//! leaves the other layers' initial weights unchanged.

use std::path::Path;

use ndarray::{ArrayD, Axis, IxDyn};
use safetensors::{Dtype, SafeTensors};
use thiserror::Error;

use crate::diag::codes::{
    WEIGHTS_DTYPE, WEIGHTS_FORMAT, WEIGHTS_KERAS_FILE, WEIGHTS_MISSING, WEIGHTS_NON_FINITE,
    WEIGHTS_PLAN_MISMATCH, WEIGHTS_SHAPE, WEIGHTS_TOO_LARGE, WEIGHTS_TORCH_FILE,
    WEIGHTS_UNEXPECTED,
};
use crate::diag::{
    codes::{IO_READ, IO_WRITE},
    Diagnostic,
};
use crate::ir::{Init, Param, ParamId, ParamSource, Recipe};
use crate::passes::MAX_PROJECTION_BYTES;
use crate::plan::ExecutionPlan;
use crate::runtime::init::{initialize, Initializer};
use crate::runtime::kernels::rnn;
use crate::util::limits::DEFAULT_MAX_PARAM_BYTES;

pub use bounded_read::read_safetensors;
pub use foreign::Foreign;

/// One parameter tensor with its name.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightEntry {
    pub name: String,
    /// Read from / written to weight files (false for derived parameters).
    pub stored: bool,
    pub value: ArrayD<f32>,
}

/// Every parameter of a plan, in the plan's parameter order.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    entries: Vec<WeightEntry>,
}

/// A problem with weights, named by tensor where there is one.
#[derive(Debug, Error)]
pub enum WeightsError {
    #[error("cannot read the weights file: {0}")]
    Read(std::io::Error),
    #[error("cannot write the weights file: {0}")]
    Write(std::io::Error),
    /// Not a safetensors file, or its header lies (offsets past the end, overlaps, bad JSON).
    #[error("not a valid safetensors file: {0}")]
    Format(String),
    /// Another framework's weights file (Keras HDF5 or `.keras`, PyTorch), named by its bytes.
    #[error("the weights file is {}, not a safetensors file", .0.describe())]
    Foreign(Foreign),
    #[error("tensor `{name}` is missing (expected f32{shape:?})")]
    Missing { name: String, shape: Vec<usize> },
    #[error("tensor `{name}` is not a parameter of this model")]
    Unexpected { name: String },
    #[error("tensor `{name}` has dtype {found}, expected F32")]
    DType { name: String, found: String },
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape {
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error(
        "tensor `{name}` holds {count} NaN or infinite value(s), the first at flat index {first}"
    )]
    NonFinite {
        name: String,
        count: usize,
        first: usize,
    },
    /// The weights do not fit the plan's parameter table (a derived recipe that does not agree
    /// with its sources, weights made for another plan).
    #[error("weights do not fit the plan: {0}")]
    PlanMismatch(String),
    /// Fresh weights for a plan whose parameters need more bytes than the limit (`None`: more
    /// than 2^64), refused before allocating.
    #[error("the plan's parameters need {} bytes; the limit for fresh weights is {limit} bytes", .bytes.map_or_else(|| "more than 2^64".to_string(), |b| b.to_string()))]
    TooLarge { bytes: Option<u64>, limit: u64 },
}

impl WeightsError {
    /// The diagnostic for this problem, located in the weights file at `path`.
    pub fn to_diagnostic(&self, path: &str) -> Diagnostic {
        let code = match self {
            WeightsError::Read(_) => IO_READ,
            WeightsError::Write(_) => IO_WRITE,
            WeightsError::Format(_)
            | WeightsError::Foreign(Foreign::NumpyArchive | Foreign::Zip) => WEIGHTS_FORMAT,
            WeightsError::Foreign(Foreign::KerasHdf5 | Foreign::KerasArchive) => WEIGHTS_KERAS_FILE,
            WeightsError::Foreign(Foreign::TorchArchive | Foreign::Pickle) => WEIGHTS_TORCH_FILE,
            WeightsError::Missing { .. } => WEIGHTS_MISSING,
            WeightsError::Unexpected { .. } => WEIGHTS_UNEXPECTED,
            WeightsError::DType { .. } => WEIGHTS_DTYPE,
            WeightsError::Shape { .. } => WEIGHTS_SHAPE,
            WeightsError::NonFinite { .. } => WEIGHTS_NON_FINITE,
            WeightsError::PlanMismatch(_) => WEIGHTS_PLAN_MISMATCH,
            WeightsError::TooLarge { .. } => WEIGHTS_TOO_LARGE,
        };
        let d = Diagnostic::error(code, self.to_string()).at_external(path, 0, 0);
        match self {
            WeightsError::Missing { .. } => {
                d.help("save the weights of the model this plan was compiled from")
            }
            WeightsError::Unexpected { .. } => {
                d.note("weight files hold one tensor per stored parameter, named LAYER.PARAM")
            }
            WeightsError::DType { .. } => d.help("convert the tensor to float32"),
            WeightsError::Shape { .. } => d.note("tensors use Keras layouts"),
            WeightsError::NonFinite { .. } => {
                d.help("the weights were saved after training diverged; use an earlier checkpoint")
            }
            WeightsError::TooLarge { .. } => d
                .note("the plan file declares every parameter's shape; nothing else bounds them")
                .help("run the plan with trained weights (`--weights W.safetensors`)"),
            WeightsError::Foreign(kind) => foreign_help(d, *kind, path),
            _ => d,
        }
    }
}

/// The note and help of a weights file of another framework: the converter command for it.
fn foreign_help(d: Diagnostic, kind: Foreign, path: &str) -> Diagnostic {
    let d = d.note(
        "modelc reads safetensors files: one f32 tensor per parameter, named LAYER.PARAM \
         (`modelc inspect SPEC.model` lists them), in Keras layouts",
    );
    let Some(converter) = kind.converter() else {
        return if kind == Foreign::NumpyArchive {
            d.help(
                "write the arrays with `safetensors.numpy.save_file`, named after the spec's \
                 parameters",
            )
        } else {
            d
        };
    };
    let out = Path::new(path).with_extension("safetensors");
    let out = if out == Path::new(path) {
        "converted.safetensors".to_string()
    } else {
        out.display().to_string()
    };
    let what = match kind {
        Foreign::TorchArchive | Foreign::Pickle => "convert its state_dict",
        _ => "convert it",
    };
    d.help(format!(
        "{what}: `python3 {converter} {path} --spec SPEC.model -o {out}`"
    ))
}

/// Converts problems into diagnostics located in `path`.
pub fn to_diagnostics(errors: &[WeightsError], path: &Path) -> Vec<Diagnostic> {
    let p = path.display().to_string();
    errors.iter().map(|e| e.to_diagnostic(&p)).collect()
}

impl Weights {
    /// The tensor of parameter `id`.
    pub fn get(&self, id: ParamId) -> Option<&ArrayD<f32>> {
        self.entries.get(id.index()).map(|e| &e.value)
    }

    /// The tensor of the parameter called `name`.
    pub fn by_name(&self, name: &str) -> Option<&ArrayD<f32>> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| &e.value)
    }

    /// Every entry, in the plan's parameter order.
    pub fn entries(&self) -> &[WeightEntry] {
        &self.entries
    }

    /// Mutable access to stored tensors (for training); call [`Weights::derive`] afterwards.
    pub fn entries_mut(&mut self) -> &mut [WeightEntry] {
        &mut self.entries
    }

    /// Builds weights for `plan` from named stored tensors (a checkpoint, a test), checking each
    /// like a file would be, then computes the derived parameters.
    pub fn from_named(
        plan: &ExecutionPlan,
        tensors: Vec<(String, ArrayD<f32>)>,
    ) -> Result<Self, Vec<WeightsError>> {
        let mut slots: Vec<Option<ArrayD<f32>>> = vec![None; plan.params.len()];
        let mut present = vec![false; plan.params.len()];
        let mut errors = Vec::new();
        for (name, value) in tensors {
            match stored_index(&plan.params, &name) {
                None => errors.push(WeightsError::Unexpected { name }),
                Some(i) => {
                    present[i] = true;
                    if let Err(e) = check_tensor(&plan.params[i], value.shape(), &value) {
                        errors.push(e);
                    } else if let Some(slot) = slots.get_mut(i) {
                        *slot = Some(value);
                    }
                }
            }
        }
        Self::assemble(plan, slots, &present, errors)
    }

    /// Fills stored slots, reports absent ones (not `present` at all), and derives the rest.
    fn assemble(
        plan: &ExecutionPlan,
        slots: Vec<Option<ArrayD<f32>>>,
        present: &[bool],
        mut errors: Vec<WeightsError>,
    ) -> Result<Self, Vec<WeightsError>> {
        let mut entries = Vec::with_capacity(plan.params.len());
        for (i, (p, slot)) in plan.params.iter().zip(slots).enumerate() {
            let stored = p.source == ParamSource::Stored;
            let absent = stored && !present.get(i).copied().unwrap_or(false);
            if slot.is_none() && absent {
                errors.push(WeightsError::Missing {
                    name: p.name.clone(),
                    shape: p.shape.clone(),
                });
            }
            let value = slot.unwrap_or_else(|| ArrayD::zeros(IxDyn(&[0])));
            entries.push(WeightEntry {
                name: p.name.clone(),
                stored,
                value,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut w = Weights { entries };
        w.derive(plan).map_err(|e| vec![e])?;
        Ok(w)
    }

    /// Recomputes every derived parameter from the stored ones (in parameter order, so a recipe
    /// may use an earlier derived parameter).
    pub fn derive(&mut self, plan: &ExecutionPlan) -> Result<(), WeightsError> {
        if plan.params.len() != self.entries.len() {
            return Err(WeightsError::PlanMismatch(format!(
                "{} tensors for {} parameters",
                self.entries.len(),
                plan.params.len()
            )));
        }
        for (i, p) in plan.params.iter().enumerate() {
            if let ParamSource::Derived(recipe) = &p.source {
                let value = materialize(recipe, i, &self.entries)
                    .map_err(|m| WeightsError::PlanMismatch(format!("{}: {m}", p.name)))?;
                if value.shape() != p.shape.as_slice() {
                    return Err(WeightsError::PlanMismatch(format!(
                        "{} is computed with shape {:?}, the plan says {:?}",
                        p.name,
                        value.shape(),
                        p.shape
                    )));
                }
                self.entries[i].value = value;
            }
        }
        Ok(())
    }
}

fn stored_index(params: &[Param], name: &str) -> Option<usize> {
    params
        .iter()
        .position(|p| p.name == name && p.source == ParamSource::Stored)
}

fn check_tensor(p: &Param, shape: &[usize], value: &ArrayD<f32>) -> Result<(), WeightsError> {
    if shape != p.shape.as_slice() {
        return Err(WeightsError::Shape {
            name: p.name.clone(),
            found: shape.to_vec(),
            expected: p.shape.clone(),
        });
    }
    let mut count = 0;
    let mut first = None;
    for (i, v) in value.iter().enumerate() {
        if !v.is_finite() {
            count += 1;
            first.get_or_insert(i);
        }
    }
    match first {
        Some(first) => Err(WeightsError::NonFinite {
            name: p.name.clone(),
            count,
            first,
        }),
        None => Ok(()),
    }
}

/// Reads and checks a weights file for `plan`. Every problem becomes one diagnostic located in
/// the file. The read is bounded by the file's own header and the default parameter limit.
pub fn load_weights(path: &Path, plan: &ExecutionPlan) -> Result<Weights, Vec<Diagnostic>> {
    let bytes = std::fs::File::open(path)
        .map_err(WeightsError::Read)
        .and_then(|file| read_safetensors(file, DEFAULT_MAX_PARAM_BYTES))
        .map_err(|e| to_diagnostics(&[e], path))?;
    weights_from_bytes(&bytes, plan).map_err(|errors| to_diagnostics(&errors, path))
}

/// Parses safetensors bytes for `plan` (see [`load_weights`]).
pub fn weights_from_bytes(
    bytes: &[u8],
    plan: &ExecutionPlan,
) -> Result<Weights, Vec<WeightsError>> {
    let file = SafeTensors::deserialize(bytes).map_err(|e| {
        vec![foreign::identify(bytes)
            .map_or(WeightsError::Format(e.to_string()), WeightsError::Foreign)]
    })?;
    let mut tensors: Vec<_> = file.iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(b.0));
    let mut slots: Vec<Option<ArrayD<f32>>> = vec![None; plan.params.len()];
    let mut present = vec![false; plan.params.len()];
    let mut errors = Vec::new();
    for (name, view) in tensors {
        let Some(i) = stored_index(&plan.params, name) else {
            errors.push(WeightsError::Unexpected {
                name: name.to_string(),
            });
            continue;
        };
        present[i] = true;
        let p = &plan.params[i];
        if view.dtype() != Dtype::F32 {
            errors.push(WeightsError::DType {
                name: name.to_string(),
                found: format!("{:?}", view.dtype()),
            });
            continue;
        }
        if view.shape() != p.shape.as_slice() {
            errors.push(WeightsError::Shape {
                name: name.to_string(),
                found: view.shape().to_vec(),
                expected: p.shape.clone(),
            });
            continue;
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let value = match ArrayD::from_shape_vec(IxDyn(&p.shape), data) {
            Ok(v) => v,
            Err(e) => {
                errors.push(WeightsError::Format(format!("tensor `{name}`: {e}")));
                continue;
            }
        };
        match check_tensor(p, &p.shape, &value) {
            Ok(()) => slots[i] = Some(value),
            Err(e) => errors.push(e),
        }
    }
    Weights::assemble(plan, slots, &present, errors)
}

/// The seed of parameter `name` under the global `seed`: FNV-1a of the name mixed with the
/// seed by SplitMix64's finalizer.
pub fn param_seed(seed: u64, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = seed ^ h;
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn initializer(init: Init) -> Initializer {
    match init {
        Init::GlorotUniform => Initializer::GlorotUniform,
        Init::Zeros => Initializer::Zeros,
        Init::Ones => Initializer::Ones,
        Init::Orthogonal => Initializer::Orthogonal { gain: 1.0 },
        Init::Uniform { limit } => Initializer::Uniform {
            low: -limit,
            high: limit,
        },
        Init::UnitForgetBias => Initializer::UnitForgetBias,
    }
}

/// Fresh weights for `plan`: every stored parameter from its initializer, then the derived ones.
/// Refuses a plan whose parameters need more than the checker's default parameter limit (see
/// [`init_weights_within`]).
pub fn init_weights(plan: &ExecutionPlan, seed: u64) -> Result<Weights, WeightsError> {
    init_weights_within(plan, seed, DEFAULT_MAX_PARAM_BYTES)
}

/// [`init_weights`] with a limit on the parameters' bytes, checked (overflow included) before
/// anything is allocated. A loaded plan is untrusted and its parameter table alone sizes fresh
/// weights; a weights file is bounded by its own size instead.
pub fn init_weights_within(
    plan: &ExecutionPlan,
    seed: u64,
    max_param_bytes: u64,
) -> Result<Weights, WeightsError> {
    let bytes = plan.params.iter().try_fold(0u64, |total, p| {
        let count = p
            .shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d as u64))?;
        total.checked_add(count.checked_mul(4)?)
    });
    if bytes.is_none_or(|b| b > max_param_bytes) {
        return Err(WeightsError::TooLarge {
            bytes,
            limit: max_param_bytes,
        });
    }
    let mut slots = Vec::with_capacity(plan.params.len());
    for p in &plan.params {
        slots.push(if p.source == ParamSource::Stored {
            let v = initialize(initializer(p.init), &p.shape, param_seed(seed, &p.name))
                .map_err(|e| WeightsError::PlanMismatch(format!("{}: {e}", p.name)))?;
            Some(v)
        } else {
            None
        });
    }
    Weights::assemble(plan, slots, &[], Vec::new()).map_err(|mut e| {
        e.pop()
            .unwrap_or_else(|| WeightsError::PlanMismatch("no weights".into()))
    })
}

/// The stored tensors as safetensors bytes (sorted by name).
pub fn weights_to_bytes(weights: &Weights) -> Result<Vec<u8>, WeightsError> {
    let mut stored: Vec<(&str, Vec<u8>, Vec<usize>)> = weights
        .entries
        .iter()
        .filter(|e| e.stored)
        .map(|e| {
            let bytes = e.value.iter().flat_map(|v| v.to_le_bytes()).collect();
            (e.name.as_str(), bytes, e.value.shape().to_vec())
        })
        .collect();
    stored.sort_by(|a, b| a.0.cmp(b.0));
    let views = stored
        .iter()
        .map(|(name, bytes, shape)| {
            safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (*name, v))
                .map_err(|e| WeightsError::Format(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize(views, None).map_err(|e| WeightsError::Format(e.to_string()))
}

/// Writes the stored tensors to `path` atomically.
pub fn save_weights(path: &Path, weights: &Weights) -> Result<(), WeightsError> {
    let bytes = weights_to_bytes(weights)?;
    crate::util::write_atomic(path, &bytes).map_err(WeightsError::Write)
}

/// Computes one derived parameter (index `at`) from earlier entries.
fn materialize(recipe: &Recipe, at: usize, entries: &[WeightEntry]) -> Result<ArrayD<f32>, String> {
    match recipe {
        Recipe::BatchNormKernel {
            kernel,
            gamma,
            variance,
            epsilon,
        } => {
            let k = operands::source(entries, *kernel, at)?;
            let out = *k.shape().last().ok_or("rank-0 kernel")?;
            let scale = operands::bn_scale(
                operands::vector(entries, *gamma, at, out)?,
                operands::vector(entries, *variance, at, out)?,
                *epsilon,
            );
            let mut k = k.clone();
            let last = Axis(k.ndim() - 1);
            for row in k.lanes_mut(last) {
                for (v, s) in row.into_iter().zip(&scale) {
                    *v *= s;
                }
            }
            Ok(k)
        }
        Recipe::BatchNormBias {
            bias,
            gamma,
            beta,
            mean,
            variance,
            epsilon,
        } => {
            let out = operands::source(entries, *gamma, at)?.len();
            let scale = operands::bn_scale(
                operands::vector(entries, *gamma, at, out)?,
                operands::vector(entries, *variance, at, out)?,
                *epsilon,
            );
            let beta = operands::vector(entries, *beta, at, out)?;
            let mean = operands::vector(entries, *mean, at, out)?;
            let bias = match bias {
                Some(b) => Some(operands::vector(entries, *b, at, out)?),
                None => None,
            };
            let v: Vec<f32> = (0..out)
                .map(|o| (bias.map_or(0.0, |b| b[o]) - mean[o]) * scale[o] + beta[o])
                .collect();
            Ok(ArrayD::from_shape_vec(IxDyn(&[out]), v).map_err(|e| e.to_string())?)
        }
        Recipe::AffineKernel { kernel, scale } => {
            let k = operands::source(entries, *kernel, at)?;
            let axis = k.ndim().checked_sub(2).ok_or("kernel of rank < 2")?;
            if k.shape()[axis] != scale.len() {
                return Err("scale does not match the kernel's input channels".into());
            }
            let mut k = k.clone();
            for (c, mut sub) in k.axis_iter_mut(Axis(axis)).enumerate() {
                sub.mapv_inplace(|v| v * scale[c]);
            }
            Ok(k)
        }
        Recipe::AffineBias {
            bias,
            kernel,
            shift,
            units,
        } => {
            let k = operands::source(entries, *kernel, at)?;
            let axis = k.ndim().checked_sub(2).ok_or("kernel of rank < 2")?;
            if k.shape()[axis] != shift.len() || k.shape().last() != Some(units) {
                return Err("shift does not match the kernel".into());
            }
            let mut v = match bias {
                Some(b) => operands::vector(entries, *b, at, *units)?.to_vec(),
                None => vec![0.0; *units],
            };
            for (c, sub) in k.axis_iter(Axis(axis)).enumerate() {
                for row in sub.lanes(Axis(sub.ndim() - 1)) {
                    for (o, &kv) in v.iter_mut().zip(row) {
                        *o += shift[c] * kv;
                    }
                }
            }
            Ok(ArrayD::from_shape_vec(IxDyn(&[*units]), v).map_err(|e| e.to_string())?)
        }
        Recipe::EmbeddingProjection {
            table,
            kernel,
            bias,
        } => {
            let matrix = |id: ParamId| {
                operands::source(entries, id, at)?
                    .view()
                    .into_dimensionality::<ndarray::Ix2>()
                    .map_err(|_| format!("parameter {} is not a matrix", id.0))
            };
            let (t, k) = (matrix(*table)?, matrix(*kernel)?);
            let b = operands::source(entries, *bias, at)?;
            let gu = k.ncols();
            // The input bias: a simple RNN's or LSTM's `[G·U]`, row 0 of a GRU's `[2, G·U]`.
            let in_bias = match (b.shape(), b.as_slice()) {
                ([n], Some(s)) if *n == gu => s,
                ([2, n], Some(s)) if *n == gu => &s[..gu],
                _ => {
                    return Err(format!(
                        "bias of shape {:?} does not fit a kernel of {gu} columns",
                        b.shape()
                    ))
                }
            };
            // The table can be far larger than the tensors it is computed from; the pass never
            // asks for more than its limit, so a (tampered) plan that does is refused before
            // anything is allocated.
            let bytes = (t.nrows() as u64)
                .checked_mul(gu as u64)
                .and_then(|n| n.checked_mul(4));
            if bytes.is_none_or(|b| b > MAX_PROJECTION_BYTES) {
                return Err(format!(
                    "a [{}, {gu}] projection table is larger than {MAX_PROJECTION_BYTES} bytes",
                    t.nrows()
                ));
            }
            let p = rnn::embedding_projection(t, k, in_bias).map_err(|e| e.to_string())?;
            Ok(p.into_dyn())
        }
    }
}

mod bounded_read;
mod foreign;
mod operands;
