//! What `modelc train` shows while it runs, and the TensorBoard log it keeps.
//!
//! Input: the fit loop's [`Progress`] calls. Output, by `--format`: on a terminal, a bar per
//! epoch like Keras's and cargo's (step/total, time per step, time left, the running loss and
//! metrics), then a visible validation phase, then the epoch's line; off a terminal (CI,
//! `NO_COLOR`, `TERM=dumb`) the epoch lines only, stable text with no redraws; with `json`, one
//! JSON object per epoch on stdout and nothing else. With `--logdir`, each finished epoch's
//! scalars are appended to the TensorBoard event file ([`crate::fit::tensorboard`]); a write
//! that fails is one E0820 warning and the log stops there, training goes on.

use super::super::output::Output;
use crate::diag::{codes, Diagnostic, Format};
use crate::fit::tensorboard::{self, EventWriter};
use crate::fit::{EpochRecord, Progress};
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// The TensorBoard log of a run: the open file and the global step its epochs start at.
pub struct TensorBoardLog {
    pub writer: EventWriter,
    /// The first write that failed (the log stops there).
    pub failed: Option<Diagnostic>,
}

impl TensorBoardLog {
    /// Appends an epoch's scalars; the first failure is kept and ends the log.
    fn epoch(&mut self, record: &EpochRecord, batches: u64) {
        if self.failed.is_some() {
            return;
        }
        let first_step = record.epoch.saturating_sub(1).saturating_mul(batches);
        let events = tensorboard::epoch_events(record, first_step, tensorboard::now());
        if let Err(e) = self.writer.write(&events) {
            self.failed = Some(write_failed(self.writer.path(), &e));
        }
    }
}

/// E0820 for an event file that could not be written.
pub fn write_failed(path: &std::path::Path, e: &std::io::Error) -> Diagnostic {
    Diagnostic::warning(
        codes::TENSORBOARD_WRITE,
        format!("cannot write the TensorBoard log {}: {e}", path.display()),
    )
    .at_external(path.display().to_string(), 0, 0)
    .note("training went on; the log holds the epochs written before this one")
    .help("point `--logdir` at a folder with space that you can write to")
}

/// Progress for people, and the TensorBoard log.
pub struct Reporter {
    pub format: Format,
    pub terminal: bool,
    pub log: Option<TensorBoardLog>,
    bar: Option<ProgressBar>,
    epochs: u64,
    batches: u64,
    /// The running loss and metrics shown on the bar, and when the metrics were last computed.
    loss_text: String,
    metrics_text: String,
    metrics_at: Option<Instant>,
}

impl Reporter {
    pub fn new(format: Format, terminal: bool, log: Option<TensorBoardLog>) -> Self {
        Self {
            format,
            terminal,
            log,
            bar: None,
            epochs: 0,
            batches: 0,
            loss_text: String::new(),
            metrics_text: String::new(),
            metrics_at: None,
        }
    }

    /// Long runs (the 1000-epoch regression) print about twenty epoch lines, and the last.
    fn shows(&self, epoch: u64) -> bool {
        let every = self.epochs.div_ceil(20).max(1);
        self.epochs <= 30 || epoch.is_multiple_of(every) || epoch == self.epochs || epoch == 1
    }

    fn show_message(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{}{}", self.loss_text, self.metrics_text));
        }
    }
}

/// `12ms/step` (or `1.3s/step`), from the bar's measured rate.
fn step_time(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let rate = state.per_sec();
    if rate > 0.0 && rate.is_finite() {
        let secs = 1.0 / rate;
        let _ = if secs >= 1.0 {
            write!(w, "{secs:.1}s/step")
        } else {
            write!(w, "{:.0}ms/step", secs * 1000.0)
        };
    } else {
        let _ = write!(w, "-ms/step");
    }
}

impl Progress for Reporter {
    fn epoch_start(&mut self, epoch: u64, epochs: u64, batches: u64) {
        self.epochs = epochs;
        self.batches = batches;
        self.loss_text.clear();
        self.metrics_text.clear();
        self.metrics_at = None;
        if self.format == Format::Human && self.terminal && self.shows(epoch) {
            let bar = ProgressBar::new(batches);
            let template = "epoch {prefix} [{bar:30}] {pos}/{len} {step_time} - ETA {eta} - {msg}";
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.with_key("step_time", step_time).progress_chars("=> "));
            }
            bar.set_prefix(format!("{epoch}/{epochs}"));
            self.bar = Some(bar);
        }
    }

    fn batch(&mut self, done: u64, running_loss: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            self.loss_text = format!("loss {running_loss:.4}");
            self.show_message();
        }
    }

    fn wants_running_metrics(&mut self) -> bool {
        self.bar.is_some()
            && self
                .metrics_at
                .is_none_or(|t| t.elapsed() >= Duration::from_millis(250))
    }

    fn running_metrics(&mut self, metrics: &[(String, f64)]) {
        self.metrics_at = Some(Instant::now());
        self.metrics_text.clear();
        for (k, v) in metrics {
            let _ = write!(self.metrics_text, " - {k} {v:.4}");
        }
        self.show_message();
    }

    fn validation_start(&mut self) {
        if let Some(bar) = &self.bar {
            if let Ok(style) = ProgressStyle::with_template(
                "epoch {prefix} {spinner} validating… {elapsed} - {msg}",
            ) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
        }
    }

    fn epoch_end(&mut self, r: &EpochRecord) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if let Some(log) = &mut self.log {
            log.epoch(r, self.batches);
        }
        match self.format {
            Format::Json => Output::stdout(&format!("{}\n", epoch_json(r))),
            _ if self.shows(r.epoch) => eprintln!("{}", epoch_line(r)),
            _ => {}
        }
    }
}

/// `{"epoch": 3, "loss": ..., "<metric>": ..., "val_loss": ..., "val_<metric>": ..., "lr": ...,
/// "samples_per_sec": ..., "data_wait_fraction": ...}`.
fn epoch_json(r: &EpochRecord) -> serde_json::Value {
    let mut obj = serde_json::Map::new();
    obj.insert("epoch".into(), r.epoch.into());
    obj.insert("loss".into(), r.loss.into());
    for (k, v) in &r.metrics {
        obj.insert(k.clone(), (*v).into());
    }
    obj.insert(
        "val_loss".into(),
        r.val_loss.map_or(serde_json::Value::Null, Into::into),
    );
    for (k, v) in &r.val_metrics {
        obj.insert(format!("val_{k}"), (*v).into());
    }
    obj.insert("lr".into(), r.lr.into());
    obj.insert("samples_per_sec".into(), r.samples_per_sec.into());
    obj.insert("data_wait_fraction".into(), r.data_wait_fraction.into());
    serde_json::Value::Object(obj)
}

/// `epoch 3: loss 0.1234 - accuracy 0.9612 - val_loss 0.1500 - val_accuracy 0.9500 (4,210 samples/s)`
pub fn epoch_line(r: &EpochRecord) -> String {
    let mut s = format!("epoch {}: loss {:.4}", r.epoch, r.loss);
    for (k, v) in &r.metrics {
        let _ = write!(s, " - {k} {v:.4}");
    }
    if let Some(v) = r.val_loss {
        let _ = write!(s, " - val_loss {v:.4}");
    }
    for (k, v) in &r.val_metrics {
        let _ = write!(s, " - val_{k} {v:.4}");
    }
    let _ = write!(s, " ({:.0} samples/s)", r.samples_per_sec);
    s
}
