//! The cases of `tests/bad_inputs.rs` about data files (15 to 18): missing, unreadable and
//! relative paths, and broken CSV, IDX and NPY files, each in a fresh folder, checking the
//! status, the codes and the place each diagnostic names.

use super::harness::{describe, find, Case};
use super::{at, training};

fn data_spec(source: &str) -> Vec<u8> {
    format!("data D {{\n source {source}\n batch 2\n}}\n").into_bytes()
}

fn csv_source(file: &str) -> String {
    format!("csv(\"{file}\", label: \"target\", features: 2, classes: 3)")
}

pub fn bad_input_15_missing_folder_unreadable_and_relative_paths() {
    let case = Case::new(&[("a.model", &data_spec(&csv_source("missing.csv")))]);
    case.expect(
        &["data", "stats", "--format", "json", "a.model"],
        2,
        &["E0900"],
    );
    let case = Case::new(&[
        ("a.model", &data_spec(&csv_source("folder.csv"))),
        ("folder.csv/x", b""),
    ]);
    let lines = case.expect(
        &["data", "stats", "--format", "json", "a.model"],
        2,
        &["E0900"],
    );
    assert!(find(&lines, "E0900")["message"]
        .as_str()
        .unwrap()
        .contains("it is a folder"));
    // No permission: chmod 000, run as an unprivileged user when the tests run as root.
    let case = Case::with_fixtures(
        &["points.csv"],
        &[("a.model", &data_spec(&csv_source("points.csv")))],
    );
    training::chmod(&case.path("points.csv"), 0o000);
    let o = training::run_unprivileged(&case, &["data", "stats", "--format", "json", "a.model"]);
    assert_eq!(o.status.code(), Some(2), "{}", describe(&[], &o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"E0900\""));
    training::chmod(&case.path("points.csv"), 0o644);
    // Relative paths resolve against the spec's folder, not the working folder.
    let case = Case::with_fixtures(
        &[],
        &[
            (
                "specs/a.model",
                &data_spec(&csv_source("../data/points.csv")),
            ),
            (
                "data/points.csv",
                b"x,y,target\n1,2,0\n3.5,-4,1\n0,0.25,2\n",
            ),
        ],
    );
    case.expect(
        &["data", "stats", "--format", "json", "specs/a.model"],
        0,
        &[],
    );
}

pub fn bad_input_16_csv_problems_name_file_row_and_column() {
    for (file, code, line, column, words) in [
        ("ragged.csv", "E0610", 3, 1, "row 3"),
        ("non_numeric.csv", "E0612", 3, 2, "row 3, column 2"),
        ("nan.csv", "E0613", 2, 2, "row 2, column 2"),
        ("inf.csv", "E0613", 3, 1, "row 3, column 1"),
        ("empty.csv", "E0614", 1, 1, "is empty"),
        ("header_only.csv", "E0614", 1, 1, "no data rows"),
        ("points_noheader.csv", "E0611", 1, 1, "not in the header"),
    ] {
        let case = Case::with_fixtures(&[file], &[("a.model", &data_spec(&csv_source(file)))]);
        let lines = case.expect(
            &["data", "stats", "--format", "json", "a.model"],
            1,
            &[code],
        );
        let d = find(&lines, code);
        assert!(d["file"].as_str().unwrap().ends_with(file), "{d}");
        assert_eq!(at(d), (line, column), "{file}");
        let message = d["message"].as_str().unwrap();
        assert!(
            message.contains(words) && message.contains(file),
            "{message}"
        );
    }
    // A renamed label or feature column.
    for source in [
        "csv(\"points.csv\", label: \"targt\", features: 2, classes: 3)",
        "csv(\"points.csv\", label: \"target\", features: [\"x\", \"z\"], classes: 3)",
    ] {
        let case = Case::with_fixtures(&["points.csv"], &[("a.model", &data_spec(source))]);
        case.expect(
            &["data", "stats", "--format", "json", "a.model"],
            1,
            &["E0611"],
        );
    }
}

fn idx_source(images: &str, labels: &str) -> String {
    format!("idx(\"{images}\", labels: \"{labels}\", shape: [2, 2, 1], classes: 3)")
}

pub fn bad_input_17_idx_problems() {
    for (images, labels, code) in [
        ("bad_magic.idx", "labels.idx", "E0615"),
        ("truncated.idx", "labels.idx", "E0615"),
        ("overflow.idx", "labels.idx", "E0615"),
        ("images.idx", "labels4.idx", "E0616"),
        ("images.idx", "labels_range.idx", "E0617"),
        // A gzip stream cut short: the file was read, its data is broken (exit 1, not 2).
        ("truncated.idx.gz", "labels.idx", "E0622"),
    ] {
        let case = Case::with_fixtures(
            &[images, labels],
            &[("a.model", &data_spec(&idx_source(images, labels)))],
        );
        case.expect(
            &["data", "stats", "--format", "json", "a.model"],
            1,
            &[code],
        );
    }
    let case = Case::with_fixtures(
        &["images.idx.gz", "labels.idx"],
        &[(
            "a.model",
            &data_spec(&idx_source("images.idx.gz", "labels.idx")),
        )],
    );
    case.expect(&["data", "stats", "--format", "json", "a.model"], 0, &[]);
}

pub fn bad_input_18_npy_problems() {
    for (file, words) in [
        ("x_big_endian.npy", "`>f4` is not supported"),
        ("x_fortran.npy", "Fortran order"),
        ("x_object.npy", "`|O` is not supported"),
        ("x_truncated.npy", "the data is 19 bytes"),
    ] {
        let source = format!("npy(\"{file}\", labels: \"y_3.npy\", shape: [3], classes: 3)");
        let case = Case::with_fixtures(&[file, "y_3.npy"], &[("a.model", &data_spec(&source))]);
        let lines = case.expect(
            &["data", "stats", "--format", "json", "a.model"],
            1,
            &["E0618"],
        );
        assert!(find(&lines, "E0618")["message"]
            .as_str()
            .unwrap()
            .contains(words));
    }
    // Two samples and three labels.
    let source = "npy(\"x_f4.npy\", labels: \"y_3.npy\", shape: [3], classes: 3)";
    let case = Case::with_fixtures(&["x_f4.npy", "y_3.npy"], &[("a.model", &data_spec(source))]);
    case.expect(
        &["data", "stats", "--format", "json", "a.model"],
        1,
        &["E0616"],
    );
}
