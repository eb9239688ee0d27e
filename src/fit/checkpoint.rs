//! Checkpoints: one safetensors file holding every parameter of the training plan (weights and
//! batch-norm statistics) and, in its metadata, the training state as RON: the spec hash, where
//! training stands (epoch, next batch, steps done), the optimizer's state and the history so far.
//! One file, written atomically, so a crash or a full disk leaves the previous checkpoint intact.

use super::EpochRecord;
use crate::runtime::optim::Optimizer;
use ndarray::ArrayD;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Where training stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// SHA-256 of the spec the checkpoint was made from.
    pub spec_hash: String,
    /// The train block's name.
    pub train: String,
    /// The epoch in progress (0-based) and the next batch of it to run.
    pub epoch: u64,
    pub next_batch: u64,
    /// Optimizer steps done (seeds the dropout masks).
    pub steps_done: u64,
    /// The training loss summed over the finished batches of the epoch in progress, and their
    /// sample count.
    pub partial_loss_sum: f64,
    pub partial_samples: u64,
    pub optimizer: Optimizer,
    pub history: Vec<EpochRecord>,
    /// Early stopping's best value so far and the epochs since it improved.
    pub best: Option<f64>,
    pub since_best: u64,
    /// The (1-based) epoch of `best`. `None` in checkpoints written before it was recorded.
    #[serde(default)]
    pub best_epoch: Option<u64>,
    /// The worker threads the run used: the numbers are bit-identical only for the same count,
    /// so a resume under another count is refused. `None` in checkpoints written before it was
    /// recorded.
    #[serde(default)]
    pub threads: Option<u64>,
}

impl TrainState {
    /// The state of a run that has not started: the spec's hash, the train block's name, the
    /// optimizer's initial state.
    pub fn fresh(spec_hash: String, train: String, optimizer: Optimizer) -> Self {
        Self {
            spec_hash,
            train,
            epoch: 0,
            next_batch: 0,
            steps_done: 0,
            partial_loss_sum: 0.0,
            partial_samples: 0,
            optimizer,
            history: Vec::new(),
            best: None,
            since_best: 0,
            best_epoch: None,
            threads: Some(rayon::current_num_threads() as u64),
        }
    }
}

/// Tensors with their names, in file order.
pub type NamedTensors = Vec<(String, ArrayD<f32>)>;

const STATE_KEY: &str = "modelc_train_state";

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a modelc checkpoint: {0}")]
    Format(String),
}

/// The checkpoint's bytes: named tensors plus the state.
pub fn to_bytes(
    names: &[String],
    tensors: &[ArrayD<f32>],
    state: &TrainState,
) -> Result<Vec<u8>, CheckpointError> {
    let ron = ron::to_string(state).map_err(|e| CheckpointError::Format(e.to_string()))?;
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::with_capacity(names.len());
    for ((name, t), b) in names.iter().zip(tensors).zip(&bytes) {
        let view = TensorView::new(Dtype::F32, t.shape().to_vec(), b)
            .map_err(|e| CheckpointError::Format(e.to_string()))?;
        views.push((name.clone(), view));
    }
    let meta = HashMap::from([(STATE_KEY.to_string(), ron)]);
    safetensors::serialize(views, Some(meta)).map_err(|e| CheckpointError::Format(e.to_string()))
}

/// Writes a checkpoint atomically.
pub fn save(
    path: &Path,
    names: &[String],
    tensors: &[ArrayD<f32>],
    state: &TrainState,
) -> Result<(), CheckpointError> {
    let bytes = to_bytes(names, tensors, state)?;
    crate::util::write_atomic(path, &bytes)?;
    Ok(())
}

/// Reads a checkpoint: the state and the tensors by name. Every byte is untrusted.
pub fn load(path: &Path) -> Result<(TrainState, NamedTensors), CheckpointError> {
    let bytes = std::fs::read(path)?;
    let (_, meta) =
        SafeTensors::read_metadata(&bytes).map_err(|e| CheckpointError::Format(e.to_string()))?;
    let ron_text = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(STATE_KEY))
        .ok_or_else(|| CheckpointError::Format("it has no training state".into()))?;
    let state: TrainState =
        ron::from_str(ron_text).map_err(|e| CheckpointError::Format(e.to_string()))?;
    let st =
        SafeTensors::deserialize(&bytes).map_err(|e| CheckpointError::Format(e.to_string()))?;
    let mut tensors = Vec::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(CheckpointError::Format(format!("tensor {name} is not f32")));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let array = ArrayD::from_shape_vec(view.shape().to_vec(), values)
            .map_err(|e| CheckpointError::Format(format!("tensor {name}: {e}")))?;
        tensors.push((name, array));
    }
    Ok((state, tensors))
}
