//! The cases of `tests/bad_inputs.rs` about weights, plans, checkpoints and training: each trains
//! or compiles the tiny regression spec in a fresh folder, damages something, and checks the
//! status, the codes and that the user's files (and the last good checkpoint) are intact.

use super::harness::{describe, epoch_records, find, json_lines, snapshot, Case};
use super::TINY;
use safetensors::tensor::{Dtype, TensorView};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Whether the tests run as root (permissions do not stop root).
fn is_root() -> bool {
    let o = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim() == "0"
}

/// Runs `modelc args` in the case folder as a user that permissions apply to: the current one,
/// or `nobody` (via `setpriv`) when the tests run as root. The case folder is opened up so that
/// this user can read it.
pub fn run_unprivileged(case: &Case, args: &[&str]) -> Output {
    let mut cmd = if is_root() {
        chmod(case.dir.path(), 0o755);
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_modelc"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_modelc"))
    };
    cmd.current_dir(case.dir.path())
        .args(args)
        .output()
        .unwrap()
}

/// A little-endian f32 `.npy` file.
pub fn npy_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    for v in values {
        out.extend(v.to_le_bytes());
    }
    out
}

/// A safetensors file of `(name, dtype, shape, bytes)`.
fn safetensors_file(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| ((*n).to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A case with the tiny spec and a 2×4 input.
fn tiny_case() -> Case {
    let x = npy_f32(&[2, 4], &[0.5, -1.0, 2.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
    Case::new(&[("a.model", TINY.as_bytes()), ("x.npy", &x)])
}

pub fn weights_cases() {
    let kernel = || ("dense.kernel", Dtype::F32, vec![4, 1], f32_bytes(&[1.0; 4]));
    let bias = || ("dense.bias", Dtype::F32, vec![1], f32_bytes(&[0.5]));
    let good = safetensors_file(&[kernel(), bias()]);
    let mut lying = good.clone();
    // The header promises more data than the file holds.
    lying.truncate(good.len() - 8);
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (safetensors_file(&[kernel()]), "E0711", "dense.bias"),
        (
            safetensors_file(&[
                kernel(),
                bias(),
                ("extra.w", Dtype::F32, vec![1], f32_bytes(&[1.0])),
            ]),
            "E0712",
            "extra.w",
        ),
        (
            safetensors_file(&[
                ("dense.kernel", Dtype::F64, vec![4, 1], vec![0; 32]),
                bias(),
            ]),
            "E0713",
            "dense.kernel",
        ),
        (
            safetensors_file(&[
                ("dense.kernel", Dtype::F32, vec![1, 4], f32_bytes(&[1.0; 4])),
                bias(),
            ]),
            "E0714",
            "dense.kernel",
        ),
        (
            safetensors_file(&[
                kernel(),
                ("dense.bias", Dtype::F32, vec![1], f32_bytes(&[f32::NAN])),
            ]),
            "E0715",
            "dense.bias",
        ),
        (lying, "E0710", "w.safetensors"),
        (b"not a safetensors file".to_vec(), "E0710", "w.safetensors"),
    ];
    for (bytes, code, name) in cases {
        let mut case = tiny_case();
        std::fs::write(case.path("w.safetensors"), bytes).unwrap();
        case.resnapshot();
        let lines = case.expect(
            &[
                "run",
                "--format",
                "json",
                "a.model",
                "--weights",
                "w.safetensors",
                "--input",
                "x.npy",
            ],
            1,
            &[code],
        );
        let d = find(&lines, code);
        assert!(d.to_string().contains(name), "{code}: {d}");
    }
    // The good file runs: y = x·1 + 0.5.
    let mut case = tiny_case();
    std::fs::write(case.path("w.safetensors"), good).unwrap();
    case.resnapshot();
    let o = case.run(&[
        "run",
        "--format",
        "json",
        "a.model",
        "--weights",
        "w.safetensors",
        "--input",
        "x.npy",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&[], &o));
    let out = json_lines(&o);
    let text = out[0].to_string();
    assert!(text.contains("2.0") && text.contains("4.5"), "{text}");
}

pub fn plan_cases() {
    let mut case = tiny_case();
    case.expect_writing(
        &["compile", "a.model", "-o", "plan.ron"],
        0,
        &[],
        &["plan.ron"],
    );
    let plan = std::fs::read_to_string(case.path("plan.ron")).unwrap();
    let truncated = &plan[..plan.len() / 2];
    let other_version = plan.replacen("format_version: 1,", "format_version: 99,", 1);
    assert_ne!(other_version, plan);
    // The weight's shape no longer agrees with the dense step's.
    let edited = plan.replacen("4,\n        1,", "5,\n        1,", 1);
    assert_ne!(edited, plan, "the kernel shape is written as expected");
    for (text, code) in [
        (truncated, "E0700"),
        (other_version.as_str(), "E0701"),
        (edited.as_str(), "E0702"),
    ] {
        std::fs::write(case.path("bad.ron"), text).unwrap();
        case.resnapshot();
        case.expect(&["inspect", "--format", "json", "bad.ron"], 1, &[code]);
        case.expect(
            &[
                "run",
                "--format",
                "json",
                "bad.ron",
                "--random-weights",
                "1",
                "--input",
                "x.npy",
            ],
            1,
            &[code],
        );
    }
}

/// Trains `spec` (a file in the case folder) into `run`; returns the output.
fn train(case: &Case, spec: &str, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--format", "json", spec, "--out", "run"];
    args.extend_from_slice(extra);
    case.run(&args)
}

const RUN_FILES: [&str; 5] = [
    "run/checkpoint.safetensors",
    "run/weights.safetensors",
    "run/plan.ron",
    "run/metrics.csv",
    "run/curves.svg",
];

pub fn resume_cases() {
    let other = TINY.replace("dense(1)", "dense(1, use_bias: false)");
    let mut case = Case::new(&[("a.model", TINY.as_bytes()), ("b.model", other.as_bytes())]);
    case.expect_writing(
        &[
            "train", "--format", "json", "a.model", "--out", "run", "--epochs", "1",
        ],
        0,
        &[],
        &RUN_FILES,
    );
    case.resnapshot();
    case.expect(
        &[
            "train", "--format", "json", "b.model", "--out", "run", "--resume",
        ],
        1,
        &["E0808"],
    );
    // A corrupt checkpoint is refused; the corrupt file itself is left for the user to look at.
    let path = case.path("run/checkpoint.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&path, bytes).unwrap();
    case.resnapshot();
    case.expect(
        &[
            "train", "--format", "json", "a.model", "--out", "run", "--resume",
        ],
        1,
        &["E0808"],
    );
    // No checkpoint at all is a usage problem.
    std::fs::remove_file(&path).unwrap();
    case.resnapshot();
    case.expect(
        &[
            "train", "--format", "json", "a.model", "--out", "run", "--resume",
        ],
        2,
        &["E0900"],
    );
}

pub fn divergence_case() {
    let diverging = TINY.replace("adam(lr: 0.01)", "sgd(lr: 1e30)");
    let mut case = Case::new(&[
        ("a.model", TINY.as_bytes()),
        ("b.model", diverging.as_bytes()),
    ]);
    case.expect_writing(
        &[
            "train", "--format", "json", "a.model", "--out", "run", "--epochs", "1",
        ],
        0,
        &[],
        &RUN_FILES,
    );
    case.resnapshot();
    // `--force`: the folder holds a's run, which a diverging run from scratch must not lose.
    let lines = case.expect(
        &[
            "train", "--format", "json", "b.model", "--out", "run", "--force",
        ],
        1,
        &["E0807"],
    );
    let message = find(&lines, "E0807")["message"]
        .as_str()
        .unwrap()
        .to_string();
    // The outputs grow huge but stay finite; their squared error overflows. The message names
    // the step and says that no layer produced the overflow (a layer that did would be named).
    assert!(
        message.contains("training step 2: the loss is not finite"),
        "{message}"
    );
    assert!(
        message
            .contains("every value of the forward pass was finite, so the loss itself overflowed"),
        "{message}"
    );
    // The last good checkpoint is untouched (checked above) and still resumes.
    let o = train(&case, "a.model", &["--resume", "--epochs", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&[], &o));
    assert_eq!(epoch_records(&json_lines(&o)).len(), 1, "only epoch 2 runs");
}

/// A spec that trains long enough to be interrupted: many epochs of a few batches.
fn long_spec() -> String {
    TINY.replace("epochs 2", "epochs 100000")
}

pub fn interrupt_case(signal: &str) {
    let case = Case::new(&[("a.model", long_spec().as_bytes())]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(case.dir.path())
        .args(["train", "--format", "json", "a.model", "--out", "run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    let record: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(record["epoch"], 1);
    let killed = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "SIG{signal}: {err}");
    let epochs_done = 1 + rest.lines().count();
    for line in rest.lines() {
        let _: serde_json::Value = serde_json::from_str(line).unwrap();
    }
    let after = snapshot(case.dir.path());
    for f in RUN_FILES {
        assert!(after.contains_key(Path::new(f)), "SIG{signal}: {f} missing");
    }
    assert_eq!(
        after.len(),
        RUN_FILES.len() + 1,
        "no temporary files: {after:?}"
    );
    // The checkpoint is complete: resume finishes the interrupted epoch and the next one.
    let target = (epochs_done + 1).to_string();
    let o = train(&case, "a.model", &["--resume", "--epochs", &target]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&[], &o));
    let lines = json_lines(&o);
    let epochs = epoch_records(&lines);
    assert_eq!(epochs.last().unwrap()["epoch"], epochs_done as u64 + 1);
    assert_eq!(lines.last().unwrap()["end"], "completed");
    let csv = std::fs::read_to_string(case.path("run/metrics.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        epochs_done + 2,
        "header + every epoch:\n{csv}"
    );
}

/// A folder holding `a.model` (the tiny spec) and `run/`, the output of one epoch of training
/// with its checkpoint, snapshotted.
fn trained_one_epoch() -> Case {
    let mut case = Case::new(&[("a.model", TINY.as_bytes())]);
    case.expect_writing(
        &[
            "train", "--format", "json", "a.model", "--out", "run", "--epochs", "1",
        ],
        0,
        &[],
        &RUN_FILES,
    );
    case.resnapshot();
    case
}

pub fn full_disk_case() {
    let case = trained_one_epoch();
    // `ulimit -f 0`: every write past 0 bytes fails with EFBIG (SIGXFSZ ignored, and inherited).
    let script = format!(
        "trap '' XFSZ; ulimit -f 0; exec '{}' train --format json a.model --out run --resume --epochs 2",
        env!("CARGO_BIN_EXE_modelc")
    );
    let o = Command::new("sh")
        .args(["-c", &script])
        .current_dir(case.dir.path())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        describe(&["(ulimit -f 0)"], &o)
    );
    let lines = json_lines(&o);
    let d = find(&lines, "E0901");
    assert!(d["message"].as_str().unwrap().contains("checkpoint"), "{d}");
    case.assert_unchanged_except(&[]);
}

pub fn read_only_case() {
    let case = trained_one_epoch();
    chmod(&case.path("run"), 0o555);
    let o = run_unprivileged(
        &case,
        &[
            "train", "--format", "json", "a.model", "--out", "run", "--resume", "--epochs", "2",
        ],
    );
    chmod(&case.path("run"), 0o755);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        describe(&["(read-only)"], &o)
    );
    let lines = json_lines(&o);
    assert!(find(&lines, "E0901")["message"]
        .as_str()
        .unwrap()
        .contains("checkpoint"));
    case.assert_unchanged_except(&[]);
}

pub fn determinism_case() {
    let case = Case::new(&[("a.model", TINY.as_bytes())]);
    let mut runs = Vec::new();
    for out in ["one", "two"] {
        let o = case.run(&["train", "--format", "json", "a.model", "--out", out]);
        assert_eq!(o.status.code(), Some(0), "{}", describe(&[], &o));
        let weights = std::fs::read(case.path(&format!("{out}/weights.safetensors"))).unwrap();
        let checkpoint =
            std::fs::read(case.path(&format!("{out}/checkpoint.safetensors"))).unwrap();
        // Every column but the wall-clock throughput.
        let metrics: Vec<String> =
            std::fs::read_to_string(case.path(&format!("{out}/metrics.csv")))
                .unwrap()
                .lines()
                .map(|l| l.rsplit_once(',').unwrap().0.to_string())
                .collect();
        runs.push((weights, metrics, checkpoint.len()));
    }
    assert_eq!(runs[0].0, runs[1].0, "weights differ");
    assert_eq!(runs[0].1, runs[1].1, "metrics differ");
    assert_eq!(runs[0].1.len(), 3);
}
