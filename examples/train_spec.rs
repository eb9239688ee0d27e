//! Trains a spec's (first) train block for a few epochs with the library and saves the trained
//! weights, as `modelc train` does without its files and progress bars.
//!
//! `cargo run --release --example train_spec -- specs/seed_cnn.model 2 /tmp/weights.safetensors`

use modelc::diag::FileId;
use modelc::fit::{FitOptions, Progress};
use modelc::passes::{Mode, PassOptions};
use modelc::runtime::train::ParamStore;
use modelc::syntax::{parse, Limits};
use std::path::Path;
use std::process::ExitCode;

struct Print;

impl Progress for Print {
    fn epoch_end(&mut self, r: &modelc::fit::EpochRecord) {
        println!(
            "epoch {}: loss {:.4} {:?} val_loss {:?}",
            r.epoch, r.loss, r.metrics, r.val_loss
        );
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, spec, epochs, out] = args.as_slice() else {
        eprintln!("usage: train_spec FILE.model EPOCHS OUT.safetensors");
        return ExitCode::from(2);
    };
    match train(spec, epochs.parse().unwrap_or(1), Path::new(out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(1)
        }
    }
}

fn train(spec: &str, epochs: u64, out: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(spec).map_err(|e| format!("cannot read {spec}: {e}"))?;
    let parsed = parse(FileId::default(), &text, &Limits::default());
    let checked = modelc::check::check_file(FileId::default(), &parsed.file);
    if parsed.has_errors() || checked.has_errors() {
        return Err(format!("{spec} has errors: run `modelc check {spec}`"));
    }
    let train = checked
        .trains
        .first()
        .ok_or("the spec has no train block")?;
    let model = checked
        .models
        .iter()
        .find(|m| m.name == train.model)
        .ok_or("model missing")?;
    let pipeline = checked
        .pipelines
        .iter()
        .find(|p| p.name == train.data)
        .ok_or("data missing")?;
    let base = Path::new(spec).parent().unwrap_or(Path::new("."));
    let dataset = modelc::data::loader::load_dataset(pipeline, base).map_err(|d| d.message)?;
    let graph = modelc::ir::lower(model).map_err(|e| e.message)?;
    let hash = modelc::plan::spec_hash(text.as_bytes());
    let plan = modelc::plan::compile(graph, Mode::Train, &PassOptions::default(), hash.clone())
        .map_err(|e| e.to_string())?;
    let params = ParamStore::init(&plan, train.seed).map_err(|e| e.to_string())?;
    let options = FitOptions {
        epochs: Some(epochs),
        spec_hash: hash,
        ..FitOptions::default()
    };
    let fitted = modelc::fit::fit(plan, params, train, &dataset, &options, &mut Print)
        .map_err(|d| d.message)?;
    // Every parameter of the training plan, by name (weights and batch-norm statistics).
    let names = fitted.params.names().to_vec();
    let tensors = fitted.params.into_tensors();
    let optimizer = modelc::fit::setup::optimizer(train).map_err(|e| e.to_string())?;
    let mut state =
        modelc::fit::checkpoint::TrainState::fresh(String::new(), train.name.clone(), optimizer);
    state.epoch = epochs;
    state.history = fitted.history;
    modelc::fit::checkpoint::save(out, &names, &tensors, &state).map_err(|e| e.to_string())?;
    println!("saved {} tensors to {}", names.len(), out.display());
    Ok(())
}
