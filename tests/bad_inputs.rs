//! Every numbered case of `../shared/BAD-INPUTS.md` (1 to 29; case 30, `fmt`, lives in
//! `tests/fmt.rs`), run on the real binary in a fresh folder: the exit status (0 clean, 1 the
//! user's input, 2 usage or I/O), the diagnostic codes of `--format json`, and that every file
//! the user had is byte-identical afterwards, with no stray temporary file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_cmp
)]

#[path = "bad_inputs/cli_output.rs"]
mod cli_output;
#[path = "bad_inputs/data_files.rs"]
mod data_files;
#[path = "bad_inputs/harness.rs"]
mod harness;
#[path = "bad_inputs/memory.rs"]
mod memory;
#[path = "bad_inputs/training.rs"]
mod training;

use harness::{find, Case};

/// A tiny regression spec that trains in milliseconds.
pub const TINY: &str = "model M(x: f32[N, 4]) -> f32[N, 1] {\n    dense(1)\n}\n\
data D {\n    source regression(n: 64, features: 4, seed: 1)\n    split validation: 0.25, seed: 1\n    batch 16\n}\n\
train M on D {\n    loss mse\n    optimizer adam(lr: 0.01)\n    epochs 2\n    metrics [mae]\n    seed 3\n}\n";

fn check_json(case: &Case, file: &str, status: i32, codes: &[&str]) -> Vec<serde_json::Value> {
    case.expect(&["check", "--format", "json", file], status, codes)
}

/// A one-file case checked with `modelc check --format json`.
fn check_text(text: &[u8], status: i32, codes: &[&str]) -> Vec<serde_json::Value> {
    let case = Case::new(&[("a.model", text)]);
    check_json(&case, "a.model", status, codes)
}

fn at(d: &serde_json::Value) -> (u64, u64) {
    (d["line"].as_u64().unwrap(), d["column"].as_u64().unwrap())
}

#[test]
fn bad_input_01_empty_whitespace_or_comments_only() {
    for text in [&b""[..], b"  \n\t\n", b"// nothing\n/* at /* all */ */\n"] {
        let lines = check_text(text, 0, &["E0110"]);
        assert_eq!(find(&lines, "E0110")["severity"], "warning");
    }
}

#[test]
fn bad_input_02_invalid_utf8_nul_and_bom() {
    check_text(b"model M(x: f32[N, 4]) {\n dense(\xff)\n}\n", 1, &["E0106"]);
    check_text(b"model M(x: f32[N, 4]) {\n dense(3)\0\n}\n", 1, &["E0107"]);
    // A byte-order mark is accepted and does not shift columns.
    check_text(
        b"\xef\xbb\xbfmodel M(x: f32[N, 4]) {\n dense(3)\n}\n",
        0,
        &[],
    );
    let lines = check_text(
        b"\xef\xbb\xbfmodel M(x: f32[N, 4]) {\n dense(3 4)\n}\n",
        1,
        &["E0100"],
    );
    assert_eq!(at(find(&lines, "E0100")), (2, 10));
}

#[test]
fn bad_input_03_crlf_lone_cr_and_tabs_keep_lines_and_columns() {
    // `4` is the 10th character of line 2 in each (a tab counts as one column).
    for text in [
        &b"model M(x: f32[N, 4]) {\r\n dense(3 4)\r\n}\r\n"[..],
        b"model M(x: f32[N, 4]) {\r dense(3 4)\r}\r",
        b"model M(x: f32[N, 4]) {\n\tdense(3 4)\n}\n",
    ] {
        let lines = check_text(text, 1, &["E0100"]);
        assert_eq!(at(find(&lines, "E0100")), (2, 10));
    }
}

#[test]
fn bad_input_04_non_ascii_confusables_and_bidi() {
    let lines = check_text(
        "model Mé(x: f32[N, 4]) {\n dense(3)\n}\n".as_bytes(),
        1,
        &["E0111"],
    );
    assert_eq!(at(find(&lines, "E0111")), (1, 8));
    // A Cyrillic `е` in `dense` is named by its code point.
    let lines = check_text(
        "model M(x: f32[N, 4]) {\n dеnse(3)\n}\n".as_bytes(),
        1,
        &["E0111"],
    );
    assert!(find(&lines, "E0111")["message"]
        .as_str()
        .unwrap()
        .contains("U+0435"));
    check_text(
        "model M(x: f32[N, 4]) {\n // \u{202e} reversed\n dense(3)\n}\n".as_bytes(),
        1,
        &["E0108"],
    );
}

#[test]
fn bad_input_05_size_limit_checked_before_reading() {
    let line = vec![b'a'; 10 * 1024 * 1024];
    let case = Case::new(&[("big.model", &line)]);
    let lines = check_json(&case, "big.model", 1, &["E0105"]);
    assert!(find(&lines, "E0105")["help"]
        .as_str()
        .unwrap()
        .contains("--max-source-bytes"));
    // Raised, the same 10 MB line is read and parsed (and fails as text, not as a size).
    case.expect(
        &[
            "check",
            "--format",
            "json",
            "--max-source-bytes",
            "20000000",
            "big.model",
        ],
        1,
        &["E0100"],
    );
}

#[test]
fn bad_input_06_deep_nesting_and_long_pipes() {
    let mut deep = b"model M(x: f32[N, 4]) {\n dense(".to_vec();
    deep.extend(std::iter::repeat_n(b'(', 100_000));
    deep.extend(b"\n}\n");
    check_text(&deep, 1, &["E0104"]);
    let mut deep_comment = Vec::new();
    for _ in 0..100_000 {
        deep_comment.extend(b"/*");
    }
    check_text(&deep_comment, 1, &["E0104"]);
    // 100,000 pipes are a flat list, not a deep tree: checked without a stack overflow.
    let mut pipes = b"model M(x: f32[N, 4]) {\n let y = x".to_vec();
    for _ in 0..100_000 {
        pipes.extend(b" |> relu()");
    }
    pipes.extend(b"\n y\n}\n");
    check_text(&pipes, 0, &[]);
    // And 100,001 layers are over the layer limit, which names its flag.
    let case = Case::new(&[("a.model", &pipes)]);
    let lines = case.expect(
        &[
            "check",
            "--format",
            "json",
            "--max-layers",
            "99999",
            "a.model",
        ],
        1,
        &["E0408"],
    );
    let d = find(&lines, "E0408");
    assert!(d["message"]
        .as_str()
        .unwrap()
        .contains("has 100000 layers; the limit is 99999"));
    assert!(d["help"].as_str().unwrap().contains("--max-layers 100000"));
}

#[test]
fn bad_input_07_unterminated_string_or_comment_at_the_end() {
    let lines = check_text(
        b"model M(x: f32[N, 4]) {\n dense(3)\n}\n/* open",
        1,
        &["E0102"],
    );
    assert_eq!(at(find(&lines, "E0102")), (4, 1));
    let lines = check_text(b"data D {\n source csv(\"a.csv)\n", 1, &["E0101"]);
    assert_eq!(at(find(&lines, "E0101")), (2, 13));
    // An error at the very last byte, with no final newline.
    let lines = check_text(b"model M(x: f32[N, 4]) {\n dense(3)", 1, &["E0103"]);
    assert!(at(find(&lines, "E0103")).0 >= 1);
}

#[test]
fn bad_input_08_many_errors_reported_up_to_the_cap() {
    let mut text = b"model M(x: f32[N, 4]) {\n".to_vec();
    for _ in 0..80 {
        text.extend(b" dense(3 4)\n");
    }
    text.extend(b"}\n");
    let lines = check_text(&text, 1, &["E0100"]);
    assert_eq!(lines.len(), 50, "the default cap is 50 errors");
    let case = Case::new(&[("a.model", &text)]);
    let lines = case.expect(
        &[
            "check",
            "--format",
            "json",
            "--max-errors",
            "200",
            "a.model",
        ],
        1,
        &["E0100"],
    );
    assert_eq!(lines.len(), 80);
    // Checker errors of different kinds in one file are all reported.
    check_text(
        b"model M(x: f32[N, 4]) {\n densee(3)\n dense(0)\n dense(2.5)\n}\n",
        1,
        &["E0200", "E0302", "E0303"],
    );
}

#[test]
fn bad_input_09_number_literals() {
    check_text(
        b"model M(x: f32[N, 4]) {\n dense(1e309)\n}\n",
        1,
        &["E0109"],
    );
    check_text(
        b"model M(x: f32[N, 4]) {\n dense(99999999999999999999999)\n}\n",
        1,
        &["E0109"],
    );
    for (units, code) in [
        ("-3", "E0303"),
        ("0", "E0303"),
        ("2.5", "E0302"),
        ("nan", "E0302"),
    ] {
        let text = format!("model M(x: f32[N, 4]) {{\n dense({units})\n}}\n");
        check_text(text.as_bytes(), 1, &[code]);
    }
}

#[test]
fn bad_input_10_names() {
    let lines = check_text(
        b"model M(x: f32[N, 4]) {\n densee(2)\n}\nmodel M(x: f32[N, 4]) {\n dense(2)\n}\n",
        1,
        &["E0200", "E0205"],
    );
    assert!(find(&lines, "E0200")["help"]
        .as_str()
        .unwrap()
        .contains("dense"));
    // Use before definition, and a self-reference (the only way to write a cycle).
    check_text(
        b"model M(x: f32[N, 4]) {\n let b = add(a, x)\n let a = dense(4)\n b\n}\n",
        1,
        &["E0207"],
    );
    check_text(
        b"model M(x: f32[N, 4]) {\n let a = add(a, x)\n a\n}\n",
        1,
        &["E0207"],
    );
    // An unreachable layer is a warning; a model with no layers is an error.
    let lines = check_text(
        b"model M(x: f32[N, 4]) -> f32[N, 4] {\n let u = dense(9)\n x\n}\n",
        0,
        &["E0208"],
    );
    assert_eq!(find(&lines, "E0208")["severity"], "warning");
    check_text(b"model M(x: f32[N, 4]) {\n}\n", 1, &["E0209"]);
}

#[test]
fn bad_input_11_shape_mismatches() {
    check_text(
        b"model M(x: f32[N, 4], y: f32[N, 5]) {\n add(x, y)\n}\n",
        1,
        &["E0401"],
    );
    check_text(
        b"model M(x: f32[N, 4, 4]) {\n max_pool2d(2)\n}\n",
        1,
        &["E0400"],
    );
    check_text(b"model M(x: f32[N, 4]) {\n reshape(3)\n}\n", 1, &["E0403"]);
    check_text(
        b"model M(x: f32[N, 4]) {\n reshape(-1, -1)\n}\n",
        1,
        &["E0403"],
    );
    check_text(
        b"model M(x: f32[N, 4], y: f32[N, 4, 2]) {\n concat(x, y, axis: -1)\n}\n",
        1,
        &["E0401"],
    );
}

#[test]
fn bad_input_12_conv_and_pool_arithmetic() {
    let conv = |args: &str| {
        format!("model M(x: f32[N, 8, 8, 1]) {{\n conv2d(4, {args})\n}}\n").into_bytes()
    };
    check_text(&conv("kernel: 3, strides: 0"), 1, &["E0303"]);
    check_text(&conv("kernel: 9"), 1, &["E0402"]);
    check_text(&conv("kernel: 3, dilation: 1000000000"), 1, &["E0402"]);
    check_text(&conv("kernel: 3, padding: 1000000000000"), 1, &["E0302"]);
    check_text(
        b"model M(x: f32[N, 8, 8, 1]) {\n max_pool2d(16)\n}\n",
        1,
        &["E0402"],
    );
}

#[test]
fn bad_input_13_overflowing_and_terabyte_shapes() {
    check_text(
        b"model M(x: f32[N, 4294967296, 4294967296, 4294967296]) {\n flatten()\n}\n",
        1,
        &["E0406"],
    );
    // Fits in 64 bits but needs 3.6 TiB of parameters: the checker refuses it, naming the flag.
    let case = Case::new(&[(
        "a.model",
        b"model M(x: f32[N, 1000000]) {\n dense(1000000)\n}\n",
    )]);
    let lines = check_json(&case, "a.model", 1, &["E0409"]);
    let d = find(&lines, "E0409");
    assert!(d["message"]
        .as_str()
        .unwrap()
        .contains("need 4000004000000 bytes (3.6 TiB); the limit is 4294967296 bytes"));
    assert!(d["help"]
        .as_str()
        .unwrap()
        .contains("--max-param-bytes 4000004000000"));
    case.expect(
        &[
            "check",
            "--format",
            "json",
            "--max-param-bytes",
            "4000004000000",
            "a.model",
        ],
        0,
        &[],
    );
    // Activations of a run are checked before any allocation: `bench` at a huge batch.
    let case = Case::new(&[("a.model", b"model M(x: f32[N, 1000]) {\n dense(1000)\n}\n")]);
    let lines = case.expect(
        &["bench", "--format", "json", "--batch", "1000000", "a.model"],
        1,
        &["E0810"],
    );
    let d = find(&lines, "E0810");
    assert!(d["message"]
        .as_str()
        .unwrap()
        .contains("on batches of 1000000 needs"));
    assert!(d["help"]
        .as_str()
        .unwrap()
        .contains("--max-activation-bytes"));
    case.expect(
        &[
            "bench",
            "--format",
            "json",
            "--batch",
            "4",
            "--iterations",
            "1",
            "--max-activation-bytes",
            "100",
            "a.model",
        ],
        1,
        &["E0810"],
    );
    // A spec that checks clean, with 100 KB of parameters and 1 MB of activations per sample,
    // whose conv keeps 65536 × 25600 floats of patches (6.7 GB) as scratch: refused before
    // allocating, naming the patch matrices (once an abort: "memory allocation failed").
    let spec = b"model M(x: f32[N, 256, 256, 4]) {\n conv2d(1, kernel: 80, padding: same)\n}\n";
    let x = training::npy_f32(&[1, 256, 256, 4], &vec![0.0; 256 * 256 * 4]);
    let case = Case::new(&[("a.model", spec), ("x.npy", &x)]);
    let run = [
        "run",
        "--format",
        "json",
        "a.model",
        "--random-weights",
        "0",
        "--input",
        "x.npy",
    ];
    let lines = case.expect(&run, 1, &["E0810"]);
    let note = find(&lines, "E0810")["notes"].to_string();
    assert!(
        note.contains("6710886400 bytes of scratch (patch matrices"),
        "{note}"
    );
    // Training keeps the patches of a whole batch and their gradient.
    let spec = b"model M(x: f32[N, 65536]) -> f32[N, 1] {\n reshape(128, 128, 4)\n \
                 conv2d(1, kernel: 100, padding: same)\n flatten()\n dense(1)\n}\n\
                 data D {\n source regression(n: 8, features: 65536)\n batch 2\n}\n\
                 train M on D {\n loss mse\n optimizer sgd(lr: 0.1)\n epochs 1\n}\n";
    let case = Case::new(&[("a.model", spec)]);
    let lines = case.expect(
        &["train", "--format", "json", "a.model", "--out", "run"],
        1,
        &["E0810"],
    );
    let note = find(&lines, "E0810")["notes"].to_string();
    assert!(note.contains("bytes of scratch (patch matrices"), "{note}");
    // Guards check's sizing of a pipeline's data sets (E0217; once an abort in the loader).
    memory::pipeline_data_sets_are_sized_by_check();
    // Guards a plan's stored preprocessing, sized when the plan is read (E0905).
    memory::plan_preprocessing_is_sized_on_load();
    // Guards the allocator: memory the system refuses is E0904 and exit 2, never an abort.
    memory::the_allocator_never_says_no_itself();
}

#[test]
fn bad_input_14_hyperparameters_out_of_range() {
    let spec = |optimizer: &str, epochs: &str, batch: &str| {
        format!(
            "model M(x: f32[N, 4]) -> f32[N, 1] {{\n dense(1)\n}}\n\
             data D {{\n source regression(n: 50, features: 4)\n batch {batch}\n}}\n\
             train M on D {{\n loss mse\n optimizer {optimizer}\n epochs {epochs}\n}}\n"
        )
        .into_bytes()
    };
    for (optimizer, code) in [
        ("sgd(lr: 0)", "E0303"),
        ("sgd(lr: -1)", "E0303"),
        ("sgd(lr: nan)", "E0302"),
        ("sgd(lr: 0.1, momentum: 1)", "E0303"),
        ("adam(beta1: 1.5)", "E0303"),
        ("adam(beta2: 0)", "E0303"),
    ] {
        check_text(&spec(optimizer, "1", "8"), 1, &[code]);
    }
    check_text(&spec("sgd(lr: 0.1)", "0", "8"), 1, &["E0303"]);
    check_text(&spec("sgd(lr: 0.1)", "1", "0"), 1, &["E0606"]);
    // A batch larger than the data set is only known once the data is loaded.
    let case = Case::new(&[("a.model", &spec("sgd(lr: 0.1)", "1", "100"))]);
    check_json(&case, "a.model", 0, &[]);
    case.expect(
        &["train", "--format", "json", "a.model", "--out", "run"],
        1,
        &["E0620"],
    );
}

/// A spec whose data block reads `source` (relative to the spec's folder).
#[test]
fn bad_input_15_missing_folder_unreadable_and_relative_paths() {
    data_files::bad_input_15_missing_folder_unreadable_and_relative_paths();
}

#[test]
fn bad_input_16_csv_problems_name_file_row_and_column() {
    data_files::bad_input_16_csv_problems_name_file_row_and_column();
}

#[test]
fn bad_input_17_idx_problems() {
    data_files::bad_input_17_idx_problems();
}

#[test]
fn bad_input_18_npy_problems() {
    data_files::bad_input_18_npy_problems();
}

#[test]
fn bad_input_19_weight_files() {
    training::weights_cases();
}

#[test]
fn bad_input_20_plan_files() {
    training::plan_cases();
}

#[test]
fn bad_input_21_resume_from_another_spec_or_a_corrupt_checkpoint() {
    training::resume_cases();
}

#[test]
fn bad_input_22_divergence_keeps_the_last_good_checkpoint() {
    training::divergence_case();
}

#[test]
fn bad_input_23_sigint_and_sigterm_leave_a_complete_checkpoint() {
    training::interrupt_case("INT");
    training::interrupt_case("TERM");
}

#[test]
fn bad_input_24_full_disk_and_read_only_folder_keep_the_checkpoint() {
    training::full_disk_case();
    training::read_only_case();
}

#[test]
fn bad_input_25_same_seed_same_numbers_bit_for_bit() {
    training::determinism_case();
}

#[test]
fn bad_input_26_unknown_conflicting_flags_and_output_equal_to_input() {
    cli_output::bad_input_26_unknown_conflicting_flags_and_output_equal_to_input();
}

#[test]
fn bad_input_27_closed_stdout_is_not_a_panic() {
    cli_output::bad_input_27_closed_stdout_is_not_a_panic();
}

#[test]
fn bad_input_28_no_colour_or_redraws_off_a_terminal() {
    cli_output::bad_input_28_no_colour_or_redraws_off_a_terminal();
}

#[test]
fn bad_input_29_json_stays_json_on_early_failures() {
    cli_output::bad_input_29_json_stays_json_on_early_failures();
}

#[test]
fn internal_errors_say_please_report_and_exit_101() {
    let case = Case::new(&[]);
    let o = case.run(&["__internal-panic"]);
    assert_eq!(o.status.code(), Some(101));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: internal error: modelc panicked at src/cli/hook.rs:"),
        "{err}"
    );
    assert!(err.contains("deliberate panic"), "{err}");
    assert!(err.contains("please report this at"), "{err}");
    assert!(
        err.contains(&format!("(modelc {})", env!("CARGO_PKG_VERSION"))),
        "{err}"
    );
    // Hidden from help.
    let help = String::from_utf8_lossy(&case.run(&["--help"]).stdout).into_owned();
    assert!(!help.contains("internal-panic"), "{help}");
}
