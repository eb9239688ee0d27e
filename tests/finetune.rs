//! Fine-tuning end to end: `train --init-weights W` starts from a trained run's weights by name,
//! layers written with `trainable: false` keep them bit for bit through training (and count as
//! non-trainable in `summary`), a layer the file does not name keeps its initializer (reported),
//! and a tensor of the wrong shape is an error naming it.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BASE: &str = "tests/fixtures/train/finetune_base.model";

fn modelc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--color", "never"])
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The base spec with `edit` applied, written into `dir`.
fn variant(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let base = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(BASE)).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, edit(base)).unwrap();
    path
}

/// The tensors of a safetensors file by name, as raw bytes.
fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.data().to_vec()))
        .collect();
    out.sort();
    out
}

fn tensor(all: &[(String, Vec<u8>)], name: &str) -> Vec<u8> {
    all.iter().find(|(n, _)| n == name).unwrap().1.clone()
}

#[test]
fn frozen_layers_keep_the_loaded_weights_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let o = modelc(&["train", BASE, "--epochs", "2", "--out", a.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let frozen = variant(dir.path(), "frozen.model", |s| {
        s.replace("embedding(20, 4)", "embedding(20, 4, trainable: false)")
            .replace(
                "dense(16, activation: relu)",
                "dense(16, activation: relu, trainable: false)",
            )
    });
    let summary = modelc(&["summary", frozen.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&summary.stdout).into_owned();
    // embedding 20·4 = 80, dense 32·16 + 16 = 528 frozen; the head 16·3 + 3 = 51 trains.
    assert!(text.contains("Trainable params: 51"), "{text}");
    assert!(text.contains("Non-trainable params: 608"), "{text}");

    let b = dir.path().join("b");
    let w = a.join("weights.safetensors");
    let o = modelc(&[
        "train",
        frozen.to_str().unwrap(),
        "--init-weights",
        w.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Initialized 5 of 5 parameters from"),
        "{}",
        stderr(&o)
    );
    let (before, after) = (tensors(&w), tensors(&b.join("weights.safetensors")));
    for frozen in ["embedding.embeddings", "dense.kernel", "dense.bias"] {
        assert_eq!(tensor(&before, frozen), tensor(&after, frozen), "{frozen}");
    }
    assert_ne!(
        tensor(&before, "dense_1.kernel"),
        tensor(&after, "dense_1.kernel"),
        "the head trains"
    );
}

#[test]
fn unnamed_layers_keep_their_initializers_and_wrong_shapes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let o = modelc(&["train", BASE, "--epochs", "1", "--out", a.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let w = a.join("weights.safetensors");
    // A new head under its own name: the file's head is not used, the new one keeps its
    // initializer; the block's `init` names the file relative to the spec.
    let renamed = variant(dir.path(), "renamed.model", |s| {
        s.replace(
            "    dense(3, activation: softmax)",
            "    let head = dense(3, activation: softmax)\n    head",
        )
        .replace(
            "    epochs 3",
            "    epochs 1\n    init \"a/weights.safetensors\"",
        )
    });
    let o = modelc(&[
        "train",
        renamed.to_str().unwrap(),
        "--out",
        dir.path().join("b").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("Initialized 3 of 5 parameters"), "{err}");
    assert!(
        err.contains("kept their initializers: head.kernel, head.bias"),
        "{err}"
    );
    assert!(
        err.contains("not in this model: dense_1.bias, dense_1.kernel"),
        "{err}"
    );
    // A wider hidden layer: its kernel no longer fits.
    let wider = variant(dir.path(), "wider.model", |s| {
        s.replace("dense(16, activation: relu)", "dense(24, activation: relu)")
    });
    let o = modelc(&[
        "train",
        wider.to_str().unwrap(),
        "--init-weights",
        w.to_str().unwrap(),
        "--out",
        dir.path().join("c").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("tensor `dense.kernel` has shape [32, 16], expected [32, 24]"),
        "{}",
        stderr(&o)
    );
}
