//! What people see while an experiment runs: on a terminal, a bar per running trial (its
//! epoch, batches and running loss) above an overall bar of trials with the time left;
//! elsewhere a line as each trial starts and ends. With `--format json`, one JSON object per
//! finished trial on stdout instead. Workers send [`Event`]s; the main thread shows them.

use super::Outcome;
use crate::check::experiment::Trial;
use crate::diag::Format;
use crate::fit::{self, EpochRecord, FitEnd};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::mpsc;

/// What a worker reports.
pub enum Event {
    /// Trial `i` starts (`true`: from its checkpoint).
    Started(usize, bool),
    EpochStart {
        trial: usize,
        epoch: u64,
        epochs: u64,
        batches: u64,
    },
    Batch {
        trial: usize,
        done: u64,
        loss: f64,
    },
    EpochEnd(usize, Box<EpochRecord>),
    Finished(usize, Outcome),
}

/// A trial's `fit::Progress`, sending each step to the main thread.
pub struct TrialReporter {
    trial: usize,
    send: mpsc::Sender<Event>,
}

impl TrialReporter {
    pub fn new(trial: usize, send: mpsc::Sender<Event>) -> Self {
        Self { trial, send }
    }
}

impl fit::Progress for TrialReporter {
    fn epoch_start(&mut self, epoch: u64, epochs: u64, batches: u64) {
        let _ = self.send.send(Event::EpochStart {
            trial: self.trial,
            epoch,
            epochs,
            batches,
        });
    }
    fn batch(&mut self, done: u64, running_loss: f64) {
        let _ = self.send.send(Event::Batch {
            trial: self.trial,
            done,
            loss: running_loss,
        });
    }
    fn epoch_end(&mut self, record: &EpochRecord) {
        let _ = self
            .send
            .send(Event::EpochEnd(self.trial, Box::new(record.clone())));
    }
}

/// The main thread's view of the run.
pub struct Progress {
    format: Format,
    total: usize,
    done: usize,
    bars: Option<(MultiProgress, ProgressBar)>,
    running: HashMap<usize, ProgressBar>,
    last: HashMap<usize, EpochRecord>,
}

impl Progress {
    pub fn new(format: Format, total: usize) -> Self {
        let terminal = std::io::stderr().is_terminal()
            && std::env::var_os("NO_COLOR").is_none()
            && std::env::var("TERM").map_or(true, |t| t != "dumb");
        let bars = (format == Format::Human && terminal).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(total as u64));
            if let Ok(style) = ProgressStyle::with_template(
                "trials [{bar:30}] {pos}/{len} ({elapsed} so far, about {eta} left)",
            ) {
                overall.set_style(style.progress_chars("=> "));
            }
            (multi, overall)
        });
        Self {
            format,
            total,
            done: 0,
            bars,
            running: HashMap::new(),
            last: HashMap::new(),
        }
    }

    /// Shows one event; a finished trial's outcome comes back.
    pub fn event(&mut self, event: Event, trials: &[Trial]) -> Option<(usize, Outcome)> {
        match event {
            Event::Started(i, resumed) => {
                let name = trials.get(i).map_or("", |t| t.name.as_str());
                if let Some((multi, overall)) = &self.bars {
                    let bar = multi.insert_before(overall, ProgressBar::new(0));
                    if let Ok(style) =
                        ProgressStyle::with_template("{prefix} [{bar:20}] {pos}/{len} {msg}")
                    {
                        bar.set_style(style.progress_chars("=> "));
                    }
                    bar.set_prefix(name.to_string());
                    self.running.insert(i, bar);
                } else if self.format == Format::Human {
                    let how = if resumed {
                        "resumed from its checkpoint"
                    } else {
                        "started"
                    };
                    eprintln!("trial {}/{} {name}: {how}", i + 1, self.total);
                }
                None
            }
            Event::EpochStart {
                trial,
                epoch,
                epochs,
                batches,
            } => {
                if let Some(bar) = self.running.get(&trial) {
                    bar.set_length(batches);
                    bar.set_position(0);
                    bar.set_message(format!("epoch {epoch}/{epochs}"));
                }
                None
            }
            Event::Batch { trial, done, loss } => {
                if let Some(bar) = self.running.get(&trial) {
                    bar.set_position(done);
                    let epoch = bar.message();
                    let epoch = epoch.split(" loss").next().unwrap_or("").to_string();
                    bar.set_message(format!("{epoch} loss {loss:.4}"));
                }
                None
            }
            Event::EpochEnd(trial, record) => {
                self.last.insert(trial, *record);
                None
            }
            Event::Finished(i, outcome) => {
                self.finished(i, &outcome, trials);
                Some((i, outcome))
            }
        }
    }

    fn finished(&mut self, i: usize, outcome: &Outcome, trials: &[Trial]) {
        self.done += 1;
        if let Some(bar) = self.running.remove(&i) {
            bar.finish_and_clear();
            if let Some((multi, _)) = &self.bars {
                multi.remove(&bar);
            }
        }
        let Some(trial) = trials.get(i) else {
            return;
        };
        let last = self.last.remove(&i);
        if self.format == Format::Json {
            let obj = trial_json(trial, outcome, last.as_ref());
            super::super::output::Output::stdout(&format!("{obj}\n"));
            return;
        }
        let line = trial_line(trial, outcome, last.as_ref());
        let line = format!("trial {}/{} {line}", i + 1, self.total);
        match &self.bars {
            Some((multi, overall)) => {
                let _ = multi.println(line);
                overall.inc(1);
            }
            None => eprintln!("{line}"),
        }
    }

    /// Clears the bars.
    pub fn finish(&mut self) {
        if let Some((_, overall)) = self.bars.take() {
            overall.finish_and_clear();
        }
    }
}

/// `NAME: epoch 2: loss 0.41 - val_loss 0.38 - val_accuracy 0.88 (12.3 s)`.
fn trial_line(trial: &Trial, outcome: &Outcome, last: Option<&EpochRecord>) -> String {
    let mut s = format!("{}: ", trial.name);
    match outcome {
        Outcome::Kept => s.push_str("finished earlier, kept"),
        Outcome::Failed(d) => {
            let _ = write!(s, "failed: {}", d.message);
        }
        Outcome::Ran { saved, seconds } => {
            if matches!(saved.end, FitEnd::Interrupted { .. }) {
                s.push_str("interrupted, checkpoint written; ");
            }
            if let Some(r) = last {
                let _ = write!(s, "epoch {}: loss {:.4}", r.epoch, r.loss);
                for (k, v) in &r.metrics {
                    let _ = write!(s, " - {k} {v:.4}");
                }
                if let Some(v) = r.val_loss {
                    let _ = write!(s, " - val_loss {v:.4}");
                }
                for (k, v) in &r.val_metrics {
                    let _ = write!(s, " - val_{k} {v:.4}");
                }
            }
            let _ = write!(s, " ({seconds:.1} s)");
        }
    }
    s
}

/// The JSON object of a finished trial: its name, settings, seed, how it ended, its last
/// epoch's values and its time.
fn trial_json(trial: &Trial, outcome: &Outcome, last: Option<&EpochRecord>) -> serde_json::Value {
    let mut obj = serde_json::Map::new();
    obj.insert("trial".into(), trial.name.clone().into());
    obj.insert("configuration".into(), trial.configuration.clone().into());
    let settings: serde_json::Map<String, serde_json::Value> = trial
        .settings
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    obj.insert("settings".into(), settings.into());
    obj.insert("seed".into(), trial.seed.into());
    let end = match outcome {
        Outcome::Kept => "kept",
        Outcome::Failed(_) => "failed",
        Outcome::Ran { saved, .. } => match saved.end {
            FitEnd::Completed => "completed",
            FitEnd::EarlyStopped { .. } => "early_stopped",
            FitEnd::Interrupted { .. } => "interrupted",
        },
    };
    obj.insert("end".into(), end.into());
    if let Some(r) = last {
        obj.insert("epochs".into(), r.epoch.into());
        obj.insert("loss".into(), r.loss.into());
        for (k, v) in &r.metrics {
            obj.insert(k.clone(), (*v).into());
        }
        if let Some(v) = r.val_loss {
            obj.insert("val_loss".into(), v.into());
        }
        for (k, v) in &r.val_metrics {
            obj.insert(format!("val_{k}"), (*v).into());
        }
    }
    if let Outcome::Ran { seconds, .. } = outcome {
        obj.insert("seconds".into(), (*seconds).into());
    }
    if let Outcome::Failed(d) = outcome {
        obj.insert("error".into(), d.message.clone().into());
    }
    serde_json::Value::Object(obj)
}
