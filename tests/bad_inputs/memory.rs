//! Case 13's memory half: sizes that fit in 64 bits but not in memory. A pipeline whose data set
//! is too large is refused by `check` (E0217) at the step; a plan whose stored preprocessing is
//! too large is refused on load (E0905); and when the system itself refuses memory (here a
//! `ulimit -v`), the run ends with E0904 and exit status 2, never an abort or a backtrace.

use super::harness::{describe, find, json_lines, Case};
use super::{check_json, training};
use std::process::{Command, Output};

/// A model reading `[N, 16, 16, 1]` images and a data block of `n` generated rows resized to
/// `size` × `size`.
fn resize_spec(n: u64, size: u64) -> String {
    format!(
        "model M(x: f32[N, {size}, {size}, 1]) -> f32[N, 1] {{\n    global_avg_pool2d()\n    dense(1)\n}}\n\
         data D {{\n    source regression(n: {n}, features: 64)\n    map    reshape(8, 8, 1) |> resize({size}, {size})\n    batch  4\n}}\n\
         train M on D {{\n    loss mse\n    optimizer sgd(lr: 0.1)\n    epochs 1\n}}\n"
    )
}

/// E0217 at the step of a pipeline whose data set (rows known from its generator) exceeds the
/// budget, though each sample fits: it used to pass `check` and abort the training.
pub fn pipeline_data_sets_are_sized_by_check() {
    // 100000 rows × 2000 × 2000 × 1 f32 = 1,600,000,000,000 bytes (1.5 TiB).
    let spec = resize_spec(100_000, 2000);
    let case = Case::new(&[("a.model", spec.as_bytes())]);
    let lines = check_json(&case, "a.model", 1, &["E0217"]);
    let d = find(&lines, "E0217");
    assert_eq!(d["line"], 7, "{d}");
    assert_eq!(d["column"], 32, "at `resize(...)`: {d}");
    let message = d["message"].as_str().unwrap();
    assert!(
        message.contains("[100000, 2000, 2000, 1] (100000 samples of 15.3 MiB: 1.5 TiB)"),
        "{message}"
    );
    // `train` refuses it the same way, before anything is generated.
    case.expect(
        &["train", "--format", "json", "a.model", "--out", "run"],
        1,
        &["E0217"],
    );
    // A window over a long generated series: 900,000 windows of 100,000 values.
    let spec = b"model M(x: f32[N, 100000, 1]) -> f32[N, 1] {\n global_avg_pool1d()\n dense(1)\n}\n\
                 data S {\n source sine(n: 1000000, period: 50, noise: 0)\n map window(100000)\n batch 4\n}\n\
                 train M on S {\n loss mse\n optimizer sgd(lr: 0.1)\n epochs 1\n}\n";
    let case = Case::new(&[("a.model", spec)]);
    let lines = check_json(&case, "a.model", 1, &["E0217"]);
    assert!(find(&lines, "E0217")["message"]
        .as_str()
        .unwrap()
        .contains("[900000, 100000, 1]"));
}

/// E0905 for a plan whose stored preprocessing was edited to `resize(100000, 100000)`: 40 GB a
/// sample, refused when the plan is read, by every command that reads one.
pub fn plan_preprocessing_is_sized_on_load() {
    let spec = resize_spec(16, 16);
    let x = training::npy_f32(&[1, 64], &[0.5; 64]);
    let mut case = Case::new(&[("a.model", spec.as_bytes()), ("x.npy", &x)]);
    case.expect_writing(
        &["compile", "--format", "json", "a.model", "-o", "p.ron"],
        0,
        &[],
        &["p.ron"],
    );
    let plan = std::fs::read_to_string(case.path("p.ron")).unwrap();
    let edited = plan
        .replace("height: 16,", "height: 100000,")
        .replace("width: 16,", "width: 100000,");
    assert_ne!(plan, edited, "the plan stores its resize step:\n{plan}");
    std::fs::write(case.path("p.ron"), edited).unwrap();
    case.resnapshot();
    let run = [
        "run",
        "--format",
        "json",
        "p.ron",
        "--random-weights",
        "0",
        "--input",
        "x.npy",
    ];
    let lines = case.expect(&run, 2, &["E0905"]);
    let message = find(&lines, "E0905")["message"]
        .as_str()
        .unwrap()
        .to_string();
    // 100000 × 100000 × 1 channel × 4 bytes.
    assert!(
        message.contains("at least 40000000000 bytes (37.3 GiB)"),
        "{message}"
    );
    case.expect(&["inspect", "--format", "json", "p.ron"], 2, &["E0905"]);
}

/// `modelc ARGS` in `case`'s folder under `ulimit -v kib`; `None` (with the reason printed) when
/// this system cannot set the limit or the binary cannot start under it.
fn under_ulimit(case: &Case, kib: u64, args: &[&str]) -> Option<Output> {
    let script = format!("ulimit -v {kib} || exit 77; exec \"$0\" \"$@\"");
    let run = |args: &[&str]| {
        Command::new("sh")
            .current_dir(case.dir.path())
            .arg("-c")
            .arg(&script)
            .arg(env!("CARGO_BIN_EXE_modelc"))
            .args(args)
            .output()
            .ok()
    };
    let Some(baseline) = run(&["check", "--format", "json", "a.model"]) else {
        eprintln!("skipped: `sh` cannot be run here");
        return None;
    };
    match baseline.status.code() {
        Some(77) => {
            eprintln!("skipped: `ulimit -v` is not available in this shell");
            None
        }
        Some(0) => run(args),
        _ => {
            eprintln!(
                "skipped: modelc cannot even check a spec under `ulimit -v {kib}` here:\n{}",
                describe(&["check", "a.model"], &baseline)
            );
            None
        }
    }
}

/// What every out-of-memory ending must look like, `args` run under the limit with
/// `--format json` and without: status 2, no panic, backtrace or Rust's abort message; E0904 on
/// stderr for people, and stdout all JSON with E0904 in it (asking for `bytes_at_least` bytes or
/// more) for programs. `None` when the limit cannot be set here.
fn expect_out_of_memory(case: &Case, args: &[&str], bytes_at_least: u64) -> Option<()> {
    let human: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| !["--format", "json"].contains(a))
        .collect();
    for (args, json) in [(args.to_vec(), true), (human, false)] {
        let o = under_ulimit(case, LIMIT_KIB, &args)?;
        let shown = describe(&args, &o);
        assert_eq!(o.status.code(), Some(2), "{shown}");
        let err = String::from_utf8_lossy(&o.stderr);
        for bad in [
            "panicked",
            "backtrace",
            "memory allocation of",
            "internal error",
        ] {
            assert!(!err.contains(bad), "`{bad}` in {shown}");
        }
        if !json {
            assert!(
                err.contains("error[E0904]: out of memory: could not allocate "),
                "{shown}"
            );
            continue;
        }
        let lines = json_lines(&o);
        let message = find(&lines, "E0904")["message"]
            .as_str()
            .unwrap()
            .to_string();
        let bytes: u64 = message
            .split("could not allocate ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no byte count in {message}"));
        assert!(
            bytes >= bytes_at_least,
            "{bytes} < {bytes_at_least}: {shown}"
        );
    }
    Some(())
}

/// The address-space limit of these cases: 1 GiB.
const LIMIT_KIB: u64 = 1 << 20;

/// Under a 1 GiB address-space limit: a 2 GB data set (within the 4 GiB data budget, so
/// nothing refuses it first) fails in the loader's fallible allocation with E0904 as a
/// diagnostic; 2 GB of activations (within the 4 GiB activation budget) fail in the
/// interpreter's plain allocation, which the binary's allocator turns into E0904.
pub fn the_allocator_never_says_no_itself() {
    // 500,000 rows × 1000 features × 4 bytes = 2,000,000,000 bytes of features.
    let spec = b"model M(x: f32[N, 1000]) -> f32[N, 1] {\n dense(1)\n}\n\
                 data D {\n source regression(n: 500000, features: 1000)\n batch 4\n}\n\
                 train M on D {\n loss mse\n optimizer sgd(lr: 0.1)\n epochs 1\n}\n";
    let case = Case::new(&[("a.model", spec)]);
    let train = ["train", "--format", "json", "a.model", "--out", "run"];
    if expect_out_of_memory(&case, &train, 2_000_000_000).is_none() {
        return;
    }
    // 250,000 samples × (1000 + 1000 outputs) × 4 bytes = 2,000,000,000 bytes of activations.
    let case = Case::new(&[("a.model", b"model M(x: f32[N, 1000]) {\n dense(1000)\n}\n")]);
    let bench = [
        "bench",
        "--format",
        "json",
        "--batch",
        "250000",
        "--iterations",
        "1",
        "a.model",
    ];
    expect_out_of_memory(&case, &bench, 100_000_000);
}
