//! Expansion of experiments into trials: grid order, tied keys, repeats and seeds, names,
//! each trial's checked settings, and where problems are reported.

use crate::check::train_types::OptimizerKind;
use crate::check::{check_file, Checked};
use crate::diag::FileId;
use crate::syntax::{parse, Limits};

const BASE: &str = "
model Tiny(image: f32[N, 8, 8, 1]) -> f32[N, 10] {
    flatten()
    dense(10, activation: softmax)
}
model Wide(image: f32[N, 8, 8, 1]) -> f32[N, 10] {
    flatten()
    dense(32, activation: relu)
    dense(10, activation: softmax)
}
data Digits {
    source csv(\"d.csv\", label: \"target\", features: 64, classes: 10)
    map    reshape(8, 8, 1) |> scale(1/16)
    split  validation: 0.2, seed: 7
    batch  32
}
train Tiny on Digits {
    loss      sparse_categorical_crossentropy
    optimizer adam(lr: 1e-3)
    epochs    3
    metrics   [accuracy]
    seed      5
}
";

fn check(experiment: &str) -> Checked {
    let text = format!("{BASE}{experiment}");
    let parsed = parse(FileId::from_index(0), &text, &Limits::default());
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
    check_file(FileId::from_index(0), &parsed.file)
}

fn names(c: &Checked) -> Vec<String> {
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    c.experiments[0]
        .trials
        .iter()
        .map(|t| t.name.clone())
        .collect()
}

#[test]
fn a_grid_runs_the_first_vary_line_outermost_then_the_repeats() {
    let c = check(
        "experiment X {
            base   Tiny
            vary   optimizer: [sgd(lr: 0.1), adam()]
            vary   data.batch: [16, 64]
            repeat 2
        }",
    );
    assert_eq!(
        names(&c),
        [
            "optimizer=sgd,data.batch=16,seed=5",
            "optimizer=sgd,data.batch=16,seed=6",
            "optimizer=sgd,data.batch=64,seed=5",
            "optimizer=sgd,data.batch=64,seed=6",
            "optimizer=adam,data.batch=16,seed=5",
            "optimizer=adam,data.batch=16,seed=6",
            "optimizer=adam,data.batch=64,seed=5",
            "optimizer=adam,data.batch=64,seed=6",
        ]
    );
    let x = &c.experiments[0];
    assert_eq!(x.axes, ["optimizer", "data.batch"]);
    assert_eq!(x.select.metric, "val_loss");
    assert!(!x.select.maximize);
    let t = &x.trials[2];
    assert_eq!(t.configuration, "optimizer=sgd,data.batch=64");
    assert_eq!(t.seed, 5);
    assert_eq!(t.train.seed, 5);
    assert_eq!(x.trials[3].train.seed, 6);
    assert_eq!(t.pipeline.batch.size, 64);
    assert_eq!(
        t.train.optimizer.kind,
        OptimizerKind::Sgd {
            momentum: 0.0,
            nesterov: false
        }
    );
    assert!((t.train.optimizer.common.lr - 0.1).abs() < 1e-12);
    assert_eq!(
        t.settings,
        [
            ("optimizer".to_string(), "sgd(lr: 0.1)".to_string()),
            ("data.batch".to_string(), "64".to_string())
        ]
    );
    // The unchanged settings are the base's.
    assert_eq!(t.train.epochs, 3);
}

#[test]
fn tied_keys_move_together_and_fixed_settings_apply_to_every_trial() {
    let c = check(
        "experiment X {
            base   Tiny
            vary   (epochs, data.batch): [(1, 8), (2, 16)]
            vary   model: [Tiny, Wide]
            early_stopping patience: 1
            select max val_accuracy
        }",
    );
    assert_eq!(
        names(&c),
        [
            "epochs=1,data.batch=8,model=Tiny",
            "epochs=1,data.batch=8,model=Wide",
            "epochs=2,data.batch=16,model=Tiny",
            "epochs=2,data.batch=16,model=Wide",
        ]
    );
    let x = &c.experiments[0];
    assert_eq!(x.trials[3].train.epochs, 2);
    assert_eq!(x.trials[3].pipeline.batch.size, 16);
    assert_eq!(x.trials[3].model.name, "Wide");
    assert_eq!(x.trials[0].model.name, "Tiny");
    assert!(x.trials.iter().all(|t| t.train.early_stopping.is_some()));
    // Without `repeat`, names carry no seed and the configuration is the name.
    assert_eq!(x.trials[1].configuration, x.trials[1].name);
    assert!(x.select.maximize);
    assert_eq!(x.select.metric, "val_accuracy");
}

#[test]
fn labels_are_short_unique_and_safe_in_folder_names() {
    let c = check(
        "experiment X {
            base Tiny
            vary optimizer: [sgd(lr: 0.1), sgd(lr: 0.1, momentum: 0.9), adam()]
            vary early_stopping: [none, (patience: 2, monitor: val_loss)]
        }",
    );
    assert_eq!(
        names(&c),
        [
            "optimizer=sgd(lr=0.1),early_stopping=none",
            "optimizer=sgd(lr=0.1),early_stopping=(patience=2,monitor=val_loss)",
            "optimizer=sgd(lr=0.1,momentum=0.9),early_stopping=none",
            "optimizer=sgd(lr=0.1,momentum=0.9),early_stopping=(patience=2,monitor=val_loss)",
            "optimizer=adam,early_stopping=none",
            "optimizer=adam,early_stopping=(patience=2,monitor=val_loss)",
        ]
    );
    let x = &c.experiments[0];
    assert!(x.trials[0].train.early_stopping.is_none());
    assert_eq!(
        x.trials[1]
            .train
            .early_stopping
            .as_ref()
            .map(|e| e.patience),
        Some(2)
    );
    // The same value twice gets its place in the list.
    let c = check("experiment X {\n base Tiny\n vary data.batch: [32, 32]\n}");
    assert_eq!(names(&c), ["data.batch=32", "data.batch=32#2"]);
    // No vary: one trial, named by its seed.
    let c = check("experiment X {\n base Tiny\n}");
    assert_eq!(names(&c), ["seed=5"]);
}

fn problems(experiment: &str) -> Vec<(&'static str, String, Vec<String>)> {
    let text = format!("{BASE}{experiment}");
    let parsed = parse(FileId::from_index(0), &text, &Limits::default());
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
    let c = check_file(FileId::from_index(0), &parsed.file);
    assert!(c.experiments.is_empty());
    c.diagnostics
        .iter()
        .map(|d| {
            let at = d
                .primary_label()
                .map_or("", |l| &text[l.span.start..l.span.end]);
            (d.code.as_str(), at.to_string(), d.notes.clone())
        })
        .collect()
}

#[test]
fn a_bad_variant_is_reported_once_at_its_value_naming_the_trial() {
    let found = problems(
        "experiment X {
            base Tiny
            vary data.batch: [16, 64]
            vary optimizer: [adam(), adamm(lr: 1)]
        }",
    );
    assert_eq!(found.len(), 1, "{found:?}");
    let (code, at, notes) = &found[0];
    assert_eq!(*code, "E0212");
    assert_eq!(at, "adamm");
    assert_eq!(
        notes
            .iter()
            .filter(|n| n.starts_with("in trial"))
            .collect::<Vec<_>>(),
        ["in trial `data.batch=16,optimizer=adamm`"]
    );
    assert!(
        notes
            .iter()
            .any(|n| n == "1 other trial of `X` fails the same way"),
        "{notes:?}"
    );
}

#[test]
fn a_problem_found_outside_the_block_moves_to_the_trial_value() {
    // A flat 64-vector does not fit the model's 8x8x1 input: the checker labels the train
    // block; the experiment shows the `vary` value that made it.
    let found = problems(
        "experiment X {
            base Tiny
            vary data.map: [reshape(8, 8, 1), reshape(64)]
        }",
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "E0504");
    assert_eq!(found[0].1, "reshape(64)");
}

#[test]
fn experiment_errors_have_their_codes() {
    let codes = |x: &str| -> Vec<&'static str> { problems(x).into_iter().map(|p| p.0).collect() };
    assert_eq!(codes("experiment X {\n base Tin\n}"), ["E0590"]);
    assert_eq!(codes("experiment X {\n vary epochs: [1]\n}"), ["E0590"]);
    assert_eq!(
        codes("experiment X {\n base Tiny\n vary batch: [1]\n}"),
        ["E0591"]
    );
    assert_eq!(
        codes("experiment X {\n base Tiny\n vary epochs: []\n}"),
        ["E0592"]
    );
    assert_eq!(
        codes("experiment X {\n base Tiny\n vary (epochs, seed): [(1, 2), (3)]\n}"),
        ["E0593"]
    );
    assert_eq!(
        codes("experiment X {\n base Tiny\n select max val_mae\n}"),
        ["E0594"]
    );
    assert_eq!(
        codes("experiment X {\n base Tiny\n vary seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\n repeat 100\n}"),
        ["E0595"]
    );
    assert_eq!(
        codes("experiment X {\n base Tiny\n vary epochs: [1]\n epochs 2\n}"),
        ["E0501"]
    );
}

#[test]
fn overrides_replace_the_train_and_data_settings() {
    use crate::syntax::parse_override;
    let parsed = parse(FileId::from_index(0), BASE, &Limits::default());
    let limits = Limits::default();
    let set: Vec<_> = ["optimizer=sgd(lr: 0.5)", "data.batch=8", "epochs=1"]
        .iter()
        .map(|t| parse_override(FileId::from_index(0), t, 10_000, &limits).unwrap())
        .collect();
    let changed = super::with_overrides(FileId::from_index(0), &parsed.file, None, &set).unwrap();
    let c = check_file(FileId::from_index(0), &changed);
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    assert_eq!(c.trains[0].epochs, 1);
    assert!((c.trains[0].optimizer.common.lr - 0.5).abs() < 1e-12);
    assert_eq!(c.pipelines[0].batch.size, 8);
    let span = set[0].1[0].span;
    assert_eq!((span.start, span.end), (10_010, 10_022));
}
