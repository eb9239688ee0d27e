//! TensorBoard event files for `modelc train --logdir DIR`, so that `tensorboard --logdir DIR`
//! shows modelc runs beside others.
//!
//! Input: a run's folder of logs (`DIR/<train block>`), then each finished epoch's record, the
//! spec's text and the hyperparameters. Output: one event file
//! `events.out.tfevents.<secs>.<host>.modelc` of framed records ([`record`]) holding `Event`
//! messages ([`proto`]): first the file version, then the spec as text (text plugin), the
//! hyperparameters (hparams plugin: a session start info), and per epoch the per-step
//! `batch_loss` scalars (step = the global step) and the `epoch_*` scalars (step = the epoch),
//! as Keras's TensorBoard callback names them. Invariant: records are appended and flushed per
//! epoch, so a reader sees whole records; a failure to write is returned, never a panic.

pub mod proto;
pub mod record;

use super::EpochRecord;
use prost::Message;
use proto::{
    Event, HParamValue, HParamsPluginData, PluginData, SessionStartInfo, Summary, SummaryMetadata,
    SummaryValue, TensorProto, TensorShape, TensorShapeDim, DT_STRING,
};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The tag of the spec's text.
pub const SPEC_TAG: &str = "spec";
/// The hparams plugin's tag of a session's start (its hyperparameters).
pub const HPARAMS_TAG: &str = "_hparams_/session_start_info";

/// An open event file.
pub struct EventWriter {
    file: File,
    path: PathBuf,
}

impl EventWriter {
    /// Creates `dir` (and its parents) and a new event file in it, and writes the file-version
    /// record.
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let now = now();
        let name = format!(
            "events.out.tfevents.{}.{}.modelc",
            now.trunc() as u64,
            host_name()
        );
        let path = dir.join(name);
        let file = File::options().write(true).create_new(true).open(&path)?;
        let mut writer = Self { file, path };
        writer.write(&[Event {
            wall_time: now,
            step: 0,
            file_version: Some("brain.Event:2".into()),
            summary: None,
        }])?;
        Ok(writer)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `events` as records and flushes them to the file.
    pub fn write(&mut self, events: &[Event]) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        for e in events {
            bytes.extend(record::frame(&e.encode_to_vec()));
        }
        self.file.write_all(&bytes)?;
        self.file.flush()
    }
}

/// Seconds since the Unix epoch, as events carry them.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The machine's name for the file name (letters, digits, `-` and `_` kept), `localhost` when
/// unknown.
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(64)
        .collect();
    if clean.is_empty() {
        "localhost".into()
    } else {
        clean
    }
}

fn summary_event(step: i64, wall_time: f64, value: SummaryValue) -> Event {
    Event {
        wall_time,
        step,
        file_version: None,
        summary: Some(Summary { value: vec![value] }),
    }
}

/// A scalar: `tag` at `step`.
pub fn scalar(tag: &str, step: i64, value: f64, wall_time: f64) -> Event {
    summary_event(
        step,
        wall_time,
        SummaryValue {
            tag: tag.into(),
            simple_value: Some(value as f32),
            tensor: None,
            metadata: None,
        },
    )
}

/// Markdown text under `tag` (TensorBoard's text plugin: a string tensor).
pub fn text(tag: &str, markdown: &str, wall_time: f64) -> Event {
    summary_event(
        0,
        wall_time,
        SummaryValue {
            tag: tag.into(),
            simple_value: None,
            tensor: Some(TensorProto {
                dtype: DT_STRING,
                tensor_shape: Some(TensorShape::default()),
                string_val: vec![markdown.as_bytes().to_vec()],
            }),
            metadata: Some(SummaryMetadata {
                plugin_data: Some(PluginData {
                    plugin_name: "text".into(),
                    content: Vec::new(),
                }),
            }),
        },
    )
}

/// The hyperparameters of a run (the hparams plugin's session start info, group `group`).
pub fn hparams(group: &str, values: BTreeMap<String, HParamValue>, wall_time: f64) -> Event {
    let data = HParamsPluginData {
        version: 0,
        session_start_info: Some(SessionStartInfo {
            hparams: values,
            group_name: group.into(),
            start_time_secs: wall_time,
        }),
    };
    summary_event(
        0,
        wall_time,
        SummaryValue {
            tag: HPARAMS_TAG.into(),
            simple_value: None,
            // An empty float tensor, as TensorBoard's own hparams summaries carry.
            tensor: Some(TensorProto {
                dtype: 1,
                tensor_shape: Some(TensorShape {
                    dim: vec![TensorShapeDim { size: 0 }],
                }),
                string_val: Vec::new(),
            }),
            metadata: Some(SummaryMetadata {
                plugin_data: Some(PluginData {
                    plugin_name: "hparams".into(),
                    content: data.encode_to_vec(),
                }),
            }),
        },
    )
}

/// The hyperparameters in a JSON value (a train block's settings), flattened: nested names
/// joined by `.`, numbers as numbers, strings and booleans as strings, lists as their JSON
/// text; nulls are left out.
pub fn flatten_hparams(value: &serde_json::Value) -> BTreeMap<String, HParamValue> {
    let mut out = BTreeMap::new();
    flatten_into("", value, &mut out);
    out
}

fn flatten_into(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, HParamValue>) {
    use serde_json::Value as J;
    let leaf = |v: HParamValue, out: &mut BTreeMap<String, HParamValue>| {
        out.insert(prefix.to_string(), v);
    };
    match value {
        J::Null => {}
        J::Object(map) => {
            for (k, v) in map {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_into(&name, v, out);
            }
        }
        J::Number(n) => leaf(
            HParamValue {
                number_value: n.as_f64(),
                string_value: None,
            },
            out,
        ),
        J::String(s) => leaf(string_value(s.clone()), out),
        J::Bool(b) => leaf(string_value(b.to_string()), out),
        J::Array(_) => leaf(string_value(value.to_string()), out),
    }
}

fn string_value(s: String) -> HParamValue {
    HParamValue {
        number_value: None,
        string_value: Some(s),
    }
}

/// An epoch's events: `batch_loss` per step (global steps `first_step + 1 ..`), then
/// `epoch_loss`, `epoch_<metric>`, `epoch_val_loss`, `epoch_val_<metric>` and
/// `epoch_learning_rate` at step `record.epoch`.
pub fn epoch_events(record: &EpochRecord, first_step: u64, wall_time: f64) -> Vec<Event> {
    let step = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
    let mut out: Vec<Event> = record
        .step_losses
        .iter()
        .enumerate()
        .map(|(k, &l)| {
            let global = first_step.saturating_add(k as u64 + 1);
            scalar("batch_loss", step(global), f64::from(l), wall_time)
        })
        .collect();
    let epoch = step(record.epoch);
    out.push(scalar("epoch_loss", epoch, record.loss, wall_time));
    for (name, v) in &record.metrics {
        out.push(scalar(&format!("epoch_{name}"), epoch, *v, wall_time));
    }
    if let Some(v) = record.val_loss {
        out.push(scalar("epoch_val_loss", epoch, v, wall_time));
    }
    for (name, v) in &record.val_metrics {
        out.push(scalar(&format!("epoch_val_{name}"), epoch, *v, wall_time));
    }
    out.push(scalar("epoch_learning_rate", epoch, record.lr, wall_time));
    out
}
