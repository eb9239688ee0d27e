//! `modelc train --logdir DIR`: the TensorBoard event file read back. The framing and both
//! checksums are checked with a bitwise CRC-32C written here (not the table modelc uses), the
//! scalar events are decoded by a protobuf wire reader written here, and the values are
//! compared with the run's `metrics.csv`; the text and hparams summaries are decoded with the
//! prost messages.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelc::fit::tensorboard::proto::{Event, HParamsPluginData};
use prost::Message;
use std::path::Path;
use std::process::Command;

/// CRC-32C, bit by bit (Castagnoli, reflected 0x82F63B78), masked as TFRecord masks it.
fn masked_crc(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    (!crc).rotate_right(15).wrapping_add(0xa282_ead8)
}

/// The records of an event file, every length and checksum verified here.
fn records(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len_bytes = &bytes[at..at + 8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let len_crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        assert_eq!(
            len_crc,
            masked_crc(len_bytes),
            "length checksum of record {}",
            out.len()
        );
        let data = &bytes[at + 12..at + 12 + len];
        let crc = u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
        assert_eq!(
            crc,
            masked_crc(data),
            "data checksum of record {}",
            out.len()
        );
        out.push(data);
        at += 16 + len;
    }
    assert_eq!(at, bytes.len());
    out
}

/// Protobuf wire format: the fields of a message as `(number, value)`, varints and fixed
/// values as their raw bits, length-delimited ones as bytes.
enum Field<'a> {
    Int(u64),
    Bytes(&'a [u8]),
}

fn fields(mut b: &[u8]) -> Vec<(u64, Field<'_>)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = b[0];
            *b = &b[1..];
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        v
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b);
        let value = match key & 7 {
            0 => Field::Int(varint(&mut b)),
            1 => {
                let v = u64::from_le_bytes(b[..8].try_into().unwrap());
                b = &b[8..];
                Field::Int(v)
            }
            5 => {
                let v = u64::from(u32::from_le_bytes(b[..4].try_into().unwrap()));
                b = &b[4..];
                Field::Int(v)
            }
            2 => {
                let n = varint(&mut b) as usize;
                let v = &b[..n];
                b = &b[n..];
                Field::Bytes(v)
            }
            w => panic!("wire type {w}"),
        };
        out.push((key >> 3, value));
    }
    out
}

/// `(tag, step, value)` of an Event holding one scalar (`simple_value`), decoded by hand.
fn scalar(event: &[u8]) -> Option<(String, i64, f32)> {
    let mut step = 0;
    let mut found = None;
    for (n, f) in fields(event) {
        match (n, f) {
            (2, Field::Int(s)) => step = s as i64,
            (5, Field::Bytes(summary)) => {
                for (n, f) in fields(summary) {
                    let (1, Field::Bytes(value)) = (n, f) else {
                        continue;
                    };
                    let mut tag = String::new();
                    let mut simple = None;
                    for (n, f) in fields(value) {
                        match (n, f) {
                            (1, Field::Bytes(t)) => tag = String::from_utf8(t.to_vec()).unwrap(),
                            (2, Field::Int(bits)) => simple = Some(f32::from_bits(bits as u32)),
                            _ => {}
                        }
                    }
                    found = simple.map(|v| (tag, v));
                }
            }
            _ => {}
        }
    }
    found.map(|(tag, v)| (tag, step, v))
}

#[test]
fn the_event_file_holds_the_runs_scalars_spec_and_hyperparameters() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let logs = tmp.path().join("logs");
    let out = Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "train",
            "tests/fixtures/train/tiny_digits.model",
            "--train",
            "Tiny",
        ])
        .args(["--epochs", "2", "--out", run.to_str().unwrap()])
        .args(["--logdir", logs.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<_> = std::fs::read_dir(logs.join("Tiny"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("events.out.tfevents.") && name.ends_with(".modelc"),
        "{name}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("Wrote {}", files[0].display())),
        "{stderr}"
    );

    let bytes = std::fs::read(&files[0]).unwrap();
    let records = records(&bytes);
    let first = Event::decode(records[0]).unwrap();
    assert_eq!(first.file_version.as_deref(), Some("brain.Event:2"));
    assert!(first.wall_time > 1.0e9);

    // the spec as text, the hyperparameters as the hparams plugin's session start
    let events: Vec<Event> = records.iter().map(|r| Event::decode(*r).unwrap()).collect();
    let value = |tag: &str| {
        events
            .iter()
            .filter_map(|e| e.summary.as_ref())
            .flat_map(|s| s.value.iter())
            .find(|v| v.tag == tag)
            .unwrap_or_else(|| panic!("no {tag}"))
            .clone()
    };
    let spec = value("spec");
    let plugin = spec.metadata.unwrap().plugin_data.unwrap();
    assert_eq!(plugin.plugin_name, "text");
    let tensor = spec.tensor.unwrap();
    assert_eq!(tensor.dtype, 7, "DT_STRING");
    let text = String::from_utf8(tensor.string_val[0].clone()).unwrap();
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train/tiny_digits.model"),
    )
    .unwrap();
    assert!(text.contains(source.trim()), "{text}");
    let hp = value("_hparams_/session_start_info");
    let plugin = hp.metadata.unwrap().plugin_data.unwrap();
    assert_eq!(plugin.plugin_name, "hparams");
    let data = HParamsPluginData::decode(plugin.content.as_slice()).unwrap();
    let start = data.session_start_info.unwrap();
    assert_eq!(start.group_name, "Tiny");
    assert_eq!(
        start.hparams["optimizer.common.lr"].number_value,
        Some(0.02)
    );
    assert_eq!(start.hparams["batch"].number_value, Some(64.0));
    assert_eq!(start.hparams["epochs"].number_value, Some(3.0));
    assert_eq!(start.hparams["seed"].number_value, Some(1.0));

    // scalars against metrics.csv
    let scalars: Vec<(String, i64, f32)> = records.iter().filter_map(|r| scalar(r)).collect();
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut checked = 0;
    for line in lines {
        let row: Vec<f64> = line.split(',').map(|c| c.parse().unwrap()).collect();
        let epoch = row[0] as i64;
        for (name, want) in header.iter().zip(&row).skip(1) {
            let tag = match *name {
                "samples_per_sec" => continue,
                "lr" => "epoch_learning_rate".to_string(),
                other => format!("epoch_{other}"),
            };
            let got = scalars
                .iter()
                .find(|(t, s, _)| *t == tag && *s == epoch)
                .unwrap_or_else(|| panic!("no {tag} at epoch {epoch}"))
                .2;
            assert!(
                (f64::from(got) - want).abs() <= 1e-5 * want.abs().max(1.0),
                "{tag} at epoch {epoch}: {got} vs csv {want}"
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        2 * 5,
        "loss, accuracy, val_loss, val_accuracy, lr per epoch"
    );

    // per-step losses: 1438 training samples in batches of 64 are 23 steps per epoch (22 full,
    // one of 30); their sample-weighted mean is the epoch's loss
    let steps: Vec<&(String, i64, f32)> = scalars.iter().filter(|s| s.0 == "batch_loss").collect();
    assert_eq!(
        steps.iter().map(|s| s.1).collect::<Vec<_>>(),
        (1..=46).collect::<Vec<i64>>()
    );
    for epoch in 1..=2i64 {
        let batch = &steps[(epoch as usize - 1) * 23..epoch as usize * 23];
        let sum: f64 = batch
            .iter()
            .enumerate()
            .map(|(k, s)| f64::from(s.2) * if k == 22 { 30.0 } else { 64.0 })
            .sum();
        let epoch_loss = scalars
            .iter()
            .find(|s| s.0 == "epoch_loss" && s.1 == epoch)
            .unwrap()
            .2;
        assert!(
            (sum / 1438.0 - f64::from(epoch_loss)).abs() < 1e-4,
            "epoch {epoch}: mean of steps {} vs {epoch_loss}",
            sum / 1438.0
        );
    }
}

#[test]
fn a_logdir_that_cannot_be_made_is_e0820_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("logs");
    std::fs::write(&file, b"not a folder").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "train",
            "tests/fixtures/train/tiny_digits.model",
            "--train",
            "Tiny",
        ])
        .args([
            "--epochs",
            "1",
            "--out",
            tmp.path().join("run").to_str().unwrap(),
        ])
        .args(["--logdir", file.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error[E0820]"), "{stderr}");
    assert!(!tmp.path().join("run/weights.safetensors").exists());
}
