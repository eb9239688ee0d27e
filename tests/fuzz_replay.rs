//! Replays the fuzz corpus (`tests/fuzz_corpus/<target>/`) on stable Rust: every file goes to
//! the same `modelc::fuzz_entry` function its fuzz target calls, which must return (a panic
//! fails the test) without an internal error. Inputs that once crashed a target are named
//! `crash-*`, and a few real inputs are kept by name as `seed-*`; both have a specific expected
//! outcome below (so a reader that stops reporting, or starts refusing good files, fails too).
//! The other files are the minimized fuzz corpus, named by libFuzzer (`fuzz/README.md`).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelc::fuzz_entry::{self, Outcome};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// How long one corpus input may take. The fuzz targets run with `-timeout=1` on an optimized
/// build (`fuzz/README.md`); this debug-ish test build is a few times slower, so the bound is
/// looser, but still far below what a stage quadratic in an input's length takes on the
/// `seed-long-*` inputs (a 2,000-character comment once took 9 s).
const SLOW_INPUT: Duration = Duration::from_secs(3);

/// Feeds every corpus file of `target` to `entry`; returns the outcomes by file name. An input
/// slower than [`SLOW_INPUT`] fails: a hang the fuzzer's timeout would report.
fn replay(target: &str, entry: fn(&[u8]) -> Outcome) -> Vec<(String, Outcome)> {
    let files = corpus(target);
    assert!(
        files.len() >= 5,
        "{target}: only {} corpus files",
        files.len()
    );
    files
        .into_iter()
        .map(|(path, bytes)| {
            let started = Instant::now();
            let outcome = entry(&bytes);
            let took = started.elapsed();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                took < SLOW_INPUT,
                "{target}/{name} took {took:?} (limit {SLOW_INPUT:?}): a slow input"
            );
            assert!(
                outcome.internal_errors.is_empty(),
                "{target}/{name}: {:?}",
                outcome.internal_errors
            );
            (name, outcome)
        })
        .collect()
}

/// The outcome recorded for one corpus file.
fn outcome_of<'a>(outcomes: &'a [(String, Outcome)], name: &str) -> &'a Outcome {
    &outcomes
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no corpus file {name}"))
        .1
}

/// The long inputs of `fuzz/seed_corpus.py`: the clean ones stay clean, and a run of
/// thousands of bad characters is one diagnostic, not one per character.
fn expect_long_texts(outcomes: &[(String, Outcome)], checked: bool) {
    for clean in ["seed-long-line", "seed-long-layers", "seed-long-lets"] {
        expect(outcomes, clean, &[]);
    }
    for (name, code) in [
        ("seed-long-bidi-comment", "E0108"),
        ("seed-long-nul-comment", "E0107"),
    ] {
        assert_eq!(outcome_of(outcomes, name).codes, [code], "{name}");
    }
    // Unknown arguments are the checker's to find; the parser accepts them.
    let unknown_arguments: &[&str] = if checked { &["E0201"] } else { &[] };
    expect(outcomes, "seed-long-errors", unknown_arguments);
}

/// Asserts that the corpus file `name` had exactly the diagnostic codes `codes` (as a set).
fn expect(outcomes: &[(String, Outcome)], name: &str, codes: &[&str]) {
    let mut found = outcome_of(outcomes, name).codes.clone();
    found.sort_unstable();
    found.dedup();
    let mut want = codes.to_vec();
    want.sort_unstable();
    assert_eq!(found, want, "{name}");
}

#[test]
fn parse_corpus_replays() {
    let outcomes = replay("parse", fuzz_entry::parse);
    expect(&outcomes, "seed-seed_cnn", &[]);
    expect(&outcomes, "seed-deep_nesting", &["E0104"]);
    expect(&outcomes, "seed-bom", &["E0103"]);
    expect(&outcomes, "seed-unterminated_comment", &["E0102"]);
    expect_long_texts(&outcomes, false);
}

#[test]
fn check_corpus_replays() {
    let outcomes = replay("check", fuzz_entry::check);
    expect(&outcomes, "seed-seed_cnn", &[]);
    expect(&outcomes, "seed-seed_rnn", &[]);
    expect(&outcomes, "seed-text_transformer", &[]);
    expect(&outcomes, "seed-param_bytes_limit", &["E0409"]);
    expect(&outcomes, "seed-window_too_large", &["E0402"]);
    expect(&outcomes, "seed-dim_overflow", &["E0109"]);
    expect_long_texts(&outcomes, true);
}

#[test]
fn load_plan_corpus_replays() {
    let outcomes = replay("load_plan", fuzz_entry::load_plan);
    for clean in [
        "seed-seed_cnn-infer",
        "seed-seed_rnn-train",
        "seed-residual-o0",
    ] {
        expect(&outcomes, clean, &[]);
    }
    // A hand-edited plan declaring 6.8 TB of parameters, consistent everywhere: fresh weights
    // are refused before allocating (was an abort: allocation size too big).
    expect(&outcomes, "crash-fresh-weights-terabytes", &["E0717"]);
    // A compiled plan whose 96×96 conv keeps 16384 × 18432 floats of patches per sample: over
    // the run's budget, counted before allocating (was unbudgeted: 2.4 GB, out of memory).
    expect(&outcomes, "crash-conv-patch-scratch", &["E0804"]);
}

#[test]
fn load_weights_corpus_replays() {
    assert_eq!(fuzz_entry::weight_plan_count(), 3);
    let outcomes = replay("load_weights", fuzz_entry::load_weights);
    for ok in ["seed-cnn", "seed-lstm", "seed-folded"] {
        expect(&outcomes, ok, &[]);
    }
    // The LSTM's file against the CNN plan: parameters missing (E0711), tensors unexpected
    // (E0712), and the two that share a name but not a shape (E0714).
    expect(&outcomes, "seed-lstm-for-cnn", &["E0711", "E0712", "E0714"]);
}

#[test]
fn load_source_corpus_replays() {
    let outcomes = replay("load_source", fuzz_entry::load_source);
    for clean in [
        "seed-csv-points",
        "seed-idx-images-labels",
        "seed-idx-gz-labels",
        "seed-npy-x_f4",
    ] {
        expect(&outcomes, clean, &[]);
    }
    expect(&outcomes, "seed-csv-ragged", &["E0610"]);
    expect(&outcomes, "seed-csv-nan", &["E0613"]);
    expect(&outcomes, "seed-idx-bad_magic", &["E0615"]);
    expect(&outcomes, "seed-idx-images-labels4", &["E0616"]);
    expect(&outcomes, "seed-npy-x_fortran", &["E0618"]);
}
