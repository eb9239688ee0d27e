//! Checkpoints: one safetensors file holding every parameter of the training plan (weights and
//! batch-norm statistics) and the optimizer's per-parameter state (`optimizer/SLOT/INDEX`), and,
//! in its metadata, the rest of the training state as RON: the spec hash, where training stands
//! (epoch, next batch, steps done), the optimizer's settings and step count, the history so far.
//! The running metric totals of an epoch in progress are in it too (small ones in the RON, the
//! large ones, such as AUC's scores, as tensors `metrics/INDEX/COLUMN`), so that a resumed epoch
//! logs the same metrics as an uninterrupted one.
//! One file, written atomically, so a crash or a full disk leaves the previous checkpoint intact.

use super::EpochRecord;
use crate::runtime::metrics::{Column, SavedMetric};
use crate::runtime::optim::Optimizer;
use crate::runtime::schedule::PlateauState;
use crate::runtime::weights::{read_safetensors, WeightsError};
use crate::util::limits::DEFAULT_MAX_PARAM_BYTES;
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
    /// The batch losses of the finished batches of the epoch in progress (its record's
    /// `step_losses` when it ends). Empty in checkpoints written before it was recorded.
    #[serde(default)]
    pub partial_step_losses: Vec<f32>,
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
    /// `reduce_on_plateau`'s state (rate, best value, wait, cooldown), when the schedule has it.
    #[serde(default)]
    pub plateau: Option<PlateauState>,
    /// The metrics' running totals over the finished batches of the epoch in progress, one per
    /// metric of the train block (empty between epochs, and in checkpoints written before they
    /// were recorded).
    #[serde(default)]
    pub partial_metrics: Vec<SavedMetric>,
    /// A model with several outputs: each output's loss summed over the finished batches of
    /// the epoch in progress (times their sizes), in the outputs' order; empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partial_output_losses: Vec<f64>,
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
            partial_step_losses: Vec::new(),
            optimizer,
            history: Vec::new(),
            best: None,
            since_best: 0,
            best_epoch: None,
            threads: Some(rayon::current_num_threads() as u64),
            plateau: None,
            partial_metrics: Vec::new(),
            partial_output_losses: Vec::new(),
        }
    }
}

impl TrainState {
    /// Checks a loaded state against the run it would continue (`batches` per epoch): every
    /// field of a checkpoint is untrusted, and a crafted cursor or step count must be refused,
    /// not trusted into a loop that never ends or a schedule far past its end.
    pub fn check_resumable(&self, batches: u64) -> Result<(), String> {
        if self.next_batch > batches {
            return Err(format!(
                "its next batch {} is past the {batches} batches of an epoch",
                self.next_batch
            ));
        }
        let most_steps = self
            .epoch
            .checked_add(1)
            .and_then(|e| e.checked_mul(batches.max(1)));
        if most_steps.is_none_or(|m| self.steps_done > m) {
            return Err(format!(
                "it counts {} optimizer steps, more than {} epochs of {batches} batches can take",
                self.steps_done,
                self.epoch.saturating_add(1)
            ));
        }
        if self.history.len() as u64 != self.epoch {
            return Err(format!(
                "it is at epoch {} but records {} finished epochs",
                self.epoch,
                self.history.len()
            ));
        }
        if self.best_epoch.is_some_and(|b| b == 0 || b > self.epoch) {
            return Err("its best epoch is not one of its finished epochs".to_string());
        }
        if self.partial_step_losses.len() as u64 > self.next_batch {
            return Err(format!(
                "it records {} batch losses of the epoch in progress, more than its {} finished batches",
                self.partial_step_losses.len(),
                self.next_batch
            ));
        }
        if !self.partial_loss_sum.is_finite() {
            return Err("its running loss is not a finite number".to_string());
        }
        Ok(())
    }
}

/// Tensors with their names, in file order.
pub type NamedTensors = Vec<(String, ArrayD<f32>)>;

const STATE_KEY: &str = "modelc_train_state";

/// The prefix of the optimizer's state tensors' names.
const OPTIMIZER_PREFIX: &str = "optimizer/";

/// The prefix of the running metric totals' tensors' names (`metrics/INDEX/COLUMN`).
const METRICS_PREFIX: &str = "metrics/";

/// The most a checkpoint may hold: the parameters at their limit, and up to three optimizer
/// state tensors per parameter (Adam with AMSGrad).
pub const MAX_CHECKPOINT_BYTES: u64 = DEFAULT_MAX_PARAM_BYTES.saturating_mul(4);

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a modelc checkpoint: {0}")]
    Format(String),
}

/// The checkpoint's bytes: named tensors plus the state. The optimizer's per-parameter state
/// is stored as tensors too (`optimizer/SLOT/INDEX`; `/` never occurs in a parameter's name),
/// so the text in the header stays small whatever the model's size.
pub fn to_bytes(
    names: &[String],
    tensors: &[ArrayD<f32>],
    state: &TrainState,
) -> Result<Vec<u8>, CheckpointError> {
    let mut shell = state.clone();
    let mut slot_names = Vec::new();
    let mut slot_tensors = Vec::new();
    for (slot, slots) in shell.optimizer.slots_mut() {
        for (i, t) in slots.take().into_iter().enumerate() {
            slot_names.push(format!("{OPTIMIZER_PREFIX}{slot}/{i}"));
            slot_tensors.push(t);
        }
    }
    let mut columns = Vec::new();
    for (i, m) in shell.partial_metrics.iter_mut().enumerate() {
        for (name, column) in std::mem::take(&mut m.columns) {
            columns.push((format!("{METRICS_PREFIX}{i}/{name}"), column));
        }
    }
    let ron = ron::to_string(&shell).map_err(|e| CheckpointError::Format(e.to_string()))?;
    let f32_bytes = |t: &ArrayD<f32>| t.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    let mut entries: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, t) in names
        .iter()
        .chain(&slot_names)
        .zip(tensors.iter().chain(&slot_tensors))
    {
        entries.push((name.clone(), Dtype::F32, t.shape().to_vec(), f32_bytes(t)));
    }
    for (name, column) in columns {
        let (dtype, len, bytes): (Dtype, usize, Vec<u8>) = match column {
            Column::F32(v) => (
                Dtype::F32,
                v.len(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            Column::U64(v) => (
                Dtype::U64,
                v.len(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            Column::Bool(v) => (
                Dtype::BOOL,
                v.len(),
                v.iter().map(|&b| u8::from(b)).collect(),
            ),
        };
        entries.push((name, dtype, vec![len], bytes));
    }
    let mut views = Vec::with_capacity(entries.len());
    for (name, dtype, shape, bytes) in &entries {
        let view = TensorView::new(*dtype, shape.clone(), bytes)
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

/// Reads a checkpoint: the state and the parameters' tensors by name. Every byte is untrusted:
/// the read is bounded by the file's own header and [`MAX_CHECKPOINT_BYTES`].
pub fn load(path: &Path) -> Result<(TrainState, NamedTensors), CheckpointError> {
    let file = std::fs::File::open(path)?;
    let bytes = read_safetensors(file, MAX_CHECKPOINT_BYTES).map_err(|e| match e {
        WeightsError::Read(io) => CheckpointError::Io(io),
        other => CheckpointError::Format(other.to_string()),
    })?;
    let (_, meta) =
        SafeTensors::read_metadata(&bytes).map_err(|e| CheckpointError::Format(e.to_string()))?;
    let ron_text = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(STATE_KEY))
        .ok_or_else(|| CheckpointError::Format("it has no training state".into()))?;
    let mut state: TrainState =
        ron::from_str(ron_text).map_err(|e| CheckpointError::Format(e.to_string()))?;
    let st =
        SafeTensors::deserialize(&bytes).map_err(|e| CheckpointError::Format(e.to_string()))?;
    let mut tensors = Vec::new();
    let mut slot_tensors = HashMap::new();
    for (name, view) in st.tensors() {
        if let Some(column) = name.strip_prefix(METRICS_PREFIX) {
            restore_metric_column(&mut state, column, &view)?;
            continue;
        }
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
        match name.strip_prefix(OPTIMIZER_PREFIX) {
            Some(slot) => {
                slot_tensors.insert(slot.to_string(), array);
            }
            None => tensors.push((name, array)),
        }
    }
    restore_slots(&mut state, slot_tensors)?;
    Ok((state, tensors))
}

/// Puts a running metric's column (`INDEX/COLUMN`, a 1-D tensor) back into `state`: the
/// accumulator checks what it holds when the run restores it.
fn restore_metric_column(
    state: &mut TrainState,
    column: &str,
    view: &TensorView<'_>,
) -> Result<(), CheckpointError> {
    let bad = |why: &str| CheckpointError::Format(format!("tensor {METRICS_PREFIX}{column} {why}"));
    let (index, name) = column
        .split_once('/')
        .ok_or_else(|| bad("has no column name"))?;
    let saved = index
        .parse::<usize>()
        .ok()
        .and_then(|i| state.partial_metrics.get_mut(i))
        .ok_or_else(|| bad("is not of one of the checkpoint's metrics"))?;
    if view.shape().len() != 1 {
        return Err(bad("is not a list"));
    }
    let data = view.data();
    let values = match view.dtype() {
        Dtype::F32 => Column::F32(
            data.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        Dtype::U64 => Column::U64(
            data.chunks_exact(8)
                .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ),
        Dtype::BOOL if data.iter().all(|&b| b <= 1) => {
            Column::Bool(data.iter().map(|&b| b == 1).collect())
        }
        _ => return Err(bad("is not of a kind a metric keeps")),
    };
    if saved.columns.iter().any(|(n, _)| n == name) {
        return Err(bad("is there twice"));
    }
    saved.columns.push((name.to_string(), values));
    Ok(())
}

/// Puts the optimizer's state tensors (`SLOT/INDEX` → tensor) back into `state`'s optimizer.
/// A checkpoint written before they were tensors has none and keeps its state from the text.
fn restore_slots(
    state: &mut TrainState,
    mut found: HashMap<String, ArrayD<f32>>,
) -> Result<(), CheckpointError> {
    if found.is_empty() {
        return Ok(());
    }
    for (slot, slots) in state.optimizer.slots_mut() {
        let mut tensors = Vec::new();
        while let Some(t) = found.remove(&format!("{slot}/{}", tensors.len())) {
            tensors.push(t);
        }
        slots.restore(tensors);
    }
    let mut left: Vec<_> = found.into_keys().collect();
    left.sort();
    match left.first() {
        Some(name) => Err(CheckpointError::Format(format!(
            "tensor {OPTIMIZER_PREFIX}{name} is not state of the checkpoint's optimizer"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::optim::{Adam, AdamConfig};
    use ndarray::IxDyn;

    /// A state whose Adam has taken one step over a `[rows, 3]` parameter.
    fn adam_state(rows: usize) -> (Vec<String>, Vec<ArrayD<f32>>, TrainState) {
        let mut optimizer = Optimizer::Adam(Adam::new(AdamConfig::default()).unwrap());
        let mut params = vec![ArrayD::from_shape_fn(IxDyn(&[rows, 3]), |i| {
            i[0] as f32 * 0.25
        })];
        let grads = [ArrayD::from_shape_fn(IxDyn(&[rows, 3]), |i| {
            i[1] as f32 - 1.1
        })];
        let mut views: Vec<_> = params.iter_mut().map(|p| p.view_mut()).collect();
        let grad_views: Vec<_> = grads.iter().map(|g| g.view()).collect();
        optimizer.step(&mut views, &grad_views, 0.01).unwrap();
        let state = TrainState::fresh("hash".into(), "t".into(), optimizer);
        (vec!["dense.kernel".to_string()], params, state)
    }

    fn header_len(bytes: &[u8]) -> u64 {
        u64::from_le_bytes(bytes[..8].try_into().unwrap())
    }

    #[test]
    fn optimizer_state_is_stored_as_tensors_and_comes_back_bit_for_bit() {
        let (names, tensors, state) = adam_state(10_000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.safetensors");
        save(&path, &names, &tensors, &state).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // 30,000 moments in each of two slots as text would be hundreds of kilobytes of header;
        // as tensors the header holds only names, shapes and the small state.
        assert!(
            header_len(&bytes) < 4096,
            "header of {} bytes",
            header_len(&bytes)
        );
        let (back, loaded) = load(&path).unwrap();
        assert_eq!(
            back, state,
            "the optimizer's moments must come back exactly"
        );
        assert_eq!(loaded, vec![(names[0].clone(), tensors[0].clone())]);
    }

    #[test]
    fn a_checkpoint_with_the_state_as_text_still_loads() {
        let (names, tensors, state) = adam_state(4);
        let ron = ron::to_string(&state).unwrap();
        let bytes: Vec<u8> = tensors[0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = TensorView::new(Dtype::F32, vec![4, 3], &bytes).unwrap();
        let meta = HashMap::from([(STATE_KEY.to_string(), ron)]);
        let old = safetensors::serialize([(names[0].clone(), view)], Some(meta)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.safetensors");
        std::fs::write(&path, old).unwrap();
        let (back, _) = load(&path).unwrap();
        assert_eq!(back, state);
    }

    #[test]
    fn state_tensors_the_optimizer_does_not_have_are_refused() {
        let (mut names, mut tensors, state) = adam_state(2);
        names.push(format!("{OPTIMIZER_PREFIX}velocity/0"));
        tensors.push(ArrayD::zeros(IxDyn(&[2, 3])));
        let bytes = to_bytes(&names, &tensors, &state).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        std::fs::write(&path, bytes).unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("optimizer/velocity/0"), "{e}");
    }

    /// A change made to a state by hand.
    type Craft = fn(&mut TrainState);

    #[test]
    fn crafted_states_are_not_resumable() {
        let (_, _, fresh) = adam_state(1);
        assert_eq!(fresh.check_resumable(10), Ok(()));
        let cases: [(&str, Craft); 5] = [
            ("next batch 11", |s| s.next_batch = 11),
            ("optimizer steps", |s| s.steps_done = u64::MAX),
            ("records 0 finished epochs", |s| s.epoch = 3),
            ("best epoch", |s| s.best_epoch = Some(2)),
            ("running loss", |s| s.partial_loss_sum = f64::NAN),
        ];
        for (expected, craft) in cases {
            let mut state = fresh.clone();
            craft(&mut state);
            let e = state.check_resumable(10).unwrap_err();
            assert!(e.contains(expected), "{expected}: {e}");
        }
    }

    #[test]
    fn running_metrics_are_stored_as_tensors_and_come_back() {
        use crate::runtime::loss::Targets;
        use crate::runtime::metrics::{Metric, MetricAccumulator, Task};
        let (names, tensors, mut state) = adam_state(2);
        let n = 20_000;
        let out = ArrayD::from_shape_fn(IxDyn(&[n, 1]), |i| (i[0] % 97) as f32 * 0.01);
        let truth = ArrayD::from_shape_fn(IxDyn(&[n, 1]), |i| f32::from(u8::from(i[0] % 3 == 0)));
        let mut accs = [
            MetricAccumulator::new(Metric::Auc(Task::Binary { threshold: 0.5 })),
            MetricAccumulator::new(Metric::BinaryAccuracy { threshold: 0.5 }),
        ];
        for a in &mut accs {
            a.update(&out.view(), &Targets::Dense(truth.view()))
                .unwrap();
        }
        state.next_batch = 1;
        state.partial_metrics = accs.iter().map(MetricAccumulator::save).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        save(&path, &names, &tensors, &state).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // 20,000 scores as text would be a large header; as tensors it stays small.
        assert!(
            header_len(&bytes) < 4096,
            "header of {}",
            header_len(&bytes)
        );
        let (back, _) = load(&path).unwrap();
        for (a, saved) in accs.iter().zip(back.partial_metrics) {
            let restored = MetricAccumulator::restore(a.metric(), saved).unwrap();
            assert_eq!(&restored, a);
        }
    }

    #[test]
    fn an_endless_file_is_refused_without_reading_it() {
        let e = load(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("not a modelc checkpoint"), "{e}");
    }
}
