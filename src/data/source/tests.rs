//! Sources against the committed fixtures in `tests/fixtures/data` (written by numpy, see
//! `make_fixtures.py` there), good and broken.

#![allow(clippy::float_cmp)] // fixture values are exact in f32

use super::*;
use crate::data::npy::{npy_bytes, read_npy, NpyData, NpyError};
use crate::data::samples::{Features, Labels};
use crate::data::spec::{
    ColumnRef, CsvSource, FeatureColumns, IdxSource, LabelColumn, LabelRead, NpySource,
    RegressionSource, SineSource, TokenSource,
};
use crate::diag::codes::*;
use crate::diag::{Code, Span};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data")
}

fn src(kind: SourceKind) -> SourceSpec {
    SourceSpec {
        kind,
        span: Span::default(),
    }
}

fn csv(path: &str) -> CsvSource {
    CsvSource {
        path: path.into(),
        label: Some(ColumnRef::Name("target".into())),
        label_read: LabelRead::Class { classes: Some(3) },
        features: FeatureColumns::AllButLabel { count: None },
        header: true,
        more_labels: Vec::new(),
        label_spans: Vec::new(),
    }
}

fn load_csv(c: CsvSource) -> Result<Samples, Diagnostic> {
    load(&src(SourceKind::Csv(c)), &fixtures())
}

fn f32s(f: &Features) -> Vec<f32> {
    match f {
        Features::F32(a) => a.iter().copied().collect(),
        Features::I64(_) | Features::Groups(_) => panic!("expected f32 features"),
    }
}

fn fails(r: Result<Samples, Diagnostic>, code: Code) -> Diagnostic {
    let d = r.expect_err("expected an error");
    assert_eq!(d.code, code, "{d:?}");
    d
}

#[test]
fn csv_reads_features_and_labels_by_name_and_index() {
    let s = load_csv(csv("points.csv")).unwrap();
    assert_eq!(s.features.shape(), &[3, 2]);
    assert_eq!(f32s(&s.features), vec![1.0, 2.0, 3.5, -4.0, 0.0, 0.25]);
    assert_eq!(s.labels, Labels::Class(vec![0, 1, 2]));

    let mut c = csv("points_noheader.csv");
    c.header = false;
    c.label = Some(ColumnRef::Index(0));
    c.features = FeatureColumns::Listed(vec![ColumnRef::Index(2), ColumnRef::Index(1)]);
    c.label_read = LabelRead::Value;
    let s = load_csv(c).unwrap();
    assert_eq!(f32s(&s.features), vec![0.0, 2.0, 1.0, -4.0]);
    match s.labels {
        Labels::Values(v) => assert_eq!(v.iter().copied().collect::<Vec<_>>(), vec![1.0, 3.5]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn csv_problems_name_file_row_and_column() {
    let d = fails(load_csv(csv("ragged.csv")), DATA_CSV_RAGGED);
    assert_eq!(d.external.as_ref().unwrap().line, 3);
    assert!(d.message.contains("2 cells"), "{}", d.message);

    let d = fails(load_csv(csv("non_numeric.csv")), DATA_NOT_A_NUMBER);
    let at = d.external.as_ref().unwrap();
    assert_eq!((at.line, at.column), (3, 2));
    assert!(d.message.contains("`two`"), "{}", d.message);

    let d = fails(load_csv(csv("nan.csv")), DATA_NON_FINITE);
    assert_eq!(d.external.as_ref().unwrap().column, 2);
    let d = fails(load_csv(csv("inf.csv")), DATA_NON_FINITE);
    assert_eq!(d.external.as_ref().unwrap().line, 3);
    // Issue 22: `1e39` is a finite f64 but +inf as the f32 it becomes; refused like `inf`.
    let d = fails(load_csv(csv("f32_overflow.csv")), DATA_NON_FINITE);
    let at = d.external.as_ref().unwrap();
    assert_eq!((at.line, at.column), (3, 1));
    assert!(
        d.message.contains("beyond the range of f32"),
        "{}",
        d.message
    );

    fails(load_csv(csv("empty.csv")), DATA_EMPTY);
    let d = fails(load_csv(csv("header_only.csv")), DATA_EMPTY);
    assert!(d.message.contains("no data rows"));

    let d = fails(load_csv(csv("label_range.csv")), DATA_LABEL_RANGE);
    assert_eq!(d.external.as_ref().unwrap().line, 3);
    assert!(d.message.contains("row 3"), "{}", d.message);

    let mut c = csv("points.csv");
    c.label = Some(ColumnRef::Name("targt".into()));
    let d = fails(load_csv(c), DATA_COLUMN_NOT_FOUND);
    assert_eq!(d.help.as_deref(), Some("did you mean `target`?"));

    let mut c = csv("points.csv");
    c.features = FeatureColumns::AllButLabel { count: Some(3) };
    fails(load_csv(c), DATA_SHAPE_MISMATCH);
}

#[test]
fn missing_file_and_folder_are_io_errors() {
    let d = fails(load_csv(csv("no_such.csv")), IO_READ);
    assert!(d.message.contains("no_such.csv"));
    let d = fails(load_csv(csv(".")), IO_READ);
    assert!(d.message.contains("folder"));
    assert_eq!(crate::diag::exit_status(&[d]), 2);
}

fn idx(images: &str, labels: Option<&str>) -> Result<Samples, Diagnostic> {
    load(
        &src(SourceKind::Idx(IdxSource {
            images: images.into(),
            labels: labels.map(Into::into),
            shape: Some(vec![2, 2, 1]),
            classes: Some(3),
        })),
        &fixtures(),
    )
}

#[test]
fn idx_reads_plain_and_gzip() {
    for images in ["images.idx", "images.idx.gz"] {
        let s = idx(images, Some("labels.idx")).unwrap();
        assert_eq!(s.features.shape(), &[3, 2, 2, 1]);
        assert_eq!(
            f32s(&s.features),
            (0..12).map(|v| v as f32).collect::<Vec<_>>()
        );
        assert_eq!(s.labels, Labels::Class(vec![0, 1, 2]));
    }
}

#[test]
fn a_corrupt_gzip_stream_is_a_data_error() {
    let d = fails(idx("truncated.idx.gz", None), DATA_GZIP_CORRUPT);
    assert!(d.message.contains("truncated.idx.gz"), "{}", d.message);
    assert!(d.message.contains("corrupt"), "{}", d.message);
    // The same bytes given directly (the fuzzers' entry) give the same code.
    let bytes = std::fs::read(fixtures().join("truncated.idx.gz")).unwrap();
    let e = gunzip_if_gzip(bytes, "truncated.idx.gz").unwrap_err();
    assert_eq!(e.code, DATA_GZIP_CORRUPT);
}

#[test]
fn idx_problems_are_reported() {
    let d = fails(idx("bad_magic.idx", None), DATA_IDX_MALFORMED);
    assert!(d.message.contains("magic"), "{}", d.message);
    let d = fails(idx("truncated.idx", None), DATA_IDX_MALFORMED);
    assert!(d.message.contains("truncated"), "{}", d.message);
    let d = fails(idx("overflow.idx", None), DATA_IDX_MALFORMED);
    assert!(d.message.contains("multiply"), "{}", d.message);
    fails(idx("images.idx", Some("labels4.idx")), DATA_COUNT_MISMATCH);
    let d = fails(
        idx("images.idx", Some("labels_range.idx")),
        DATA_LABEL_RANGE,
    );
    assert_eq!(d.external.as_ref().unwrap().line, 2);
    assert!(d.message.contains("sample 1"), "{}", d.message);
    // labels file given as images: rank 1 gives per-sample shape [1], not [2, 2, 1]
    fails(idx("labels.idx", None), DATA_SHAPE_MISMATCH);
}

#[test]
fn npy_reads_every_supported_dtype() {
    let read = |name: &str| read_npy(&std::fs::read(fixtures().join(name)).unwrap());
    let f4 = read("x_f4.npy").unwrap();
    assert_eq!(f4.shape, vec![2, 3]);
    assert_eq!(
        f4.data,
        NpyData::F32(vec![0.5, -1.0, 2.0, 3.0, 4.25, -0.125])
    );
    assert_eq!(
        read("x_f8.npy").unwrap().data,
        NpyData::F64(vec![0.5, -1.0, 2.0, 3.0, 4.25, -0.125])
    );
    assert_eq!(
        read("x_i4.npy").unwrap().data,
        NpyData::I32(vec![1, -2, 3, 4, 5, -6])
    );
    assert_eq!(
        read("x_i8.npy").unwrap().data,
        NpyData::I64(vec![1, -2, 3, 4, 5, -6])
    );
    assert_eq!(
        read("x_u1.npy").unwrap().data,
        NpyData::U8(vec![0, 7, 255, 1, 2, 3])
    );

    assert_eq!(read("x_fortran.npy"), Err(NpyError::FortranOrder));
    assert!(matches!(read("x_object.npy"), Err(NpyError::Dtype(d)) if d == "|O"));
    assert!(matches!(read("x_big_endian.npy"), Err(NpyError::Dtype(d)) if d == ">f4"));
    assert!(matches!(
        read("x_truncated.npy"),
        Err(NpyError::Length {
            expected: 24,
            found: 19
        })
    ));
    assert_eq!(read_npy(b"PK\x03\x04 not npy"), Err(NpyError::BadMagic));
    assert!(read_npy(b"\x93NUMPY\x01").is_err());
}

#[test]
fn npy_writer_matches_numpy_byte_for_byte() {
    let numpy = std::fs::read(fixtures().join("x_f4.npy")).unwrap();
    let ours = npy_bytes(&[2, 3], &[0.5, -1.0, 2.0, 3.0, 4.25, -0.125]);
    assert_eq!(ours, numpy);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("one.npy");
    crate::data::npy::write_npy(&p, &[4], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    let back = read_npy(&std::fs::read(&p).unwrap()).unwrap();
    assert_eq!(back.shape, vec![4]);
    assert_eq!(back.to_f32(), vec![1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn npy_source_pairs_features_and_labels() {
    let npy = |f: &str, l: &str| {
        load(
            &src(SourceKind::Npy(NpySource {
                features: f.into(),
                labels: Some(l.into()),
                shape: None,
                label_read: LabelRead::Class { classes: Some(2) },
            })),
            &fixtures(),
        )
    };
    let s = npy("x_u1.npy", "y_i8.npy").unwrap();
    assert_eq!(s.features.shape(), &[2, 3]);
    assert_eq!(f32s(&s.features), vec![0.0, 7.0, 255.0, 1.0, 2.0, 3.0]);
    assert_eq!(s.labels, Labels::Class(vec![1, 0]));
    fails(npy("x_f4.npy", "y_3.npy"), DATA_COUNT_MISMATCH);
    fails(npy("x_fortran.npy", "y_i8.npy"), DATA_NPY_MALFORMED);
    fails(
        npy("x_i8.npy", "y_i8.npy").and(npy("x_f4.npy", "x_u1.npy")),
        DATA_NPY_MALFORMED,
    );
}

#[test]
fn generators_are_reproducible_and_follow_their_rules() {
    let reg = RegressionSource {
        n: 500,
        features: 3,
        noise: 0.0,
        seed: 4,
    };
    let a = load(&src(SourceKind::Regression(reg.clone())), Path::new(".")).unwrap();
    let b = load(&src(SourceKind::Regression(reg)), Path::new(".")).unwrap();
    assert_eq!(a, b);
    // with no noise, y is exactly affine in x: recover w and b from 4 samples, check the rest
    let x = f32s(&a.features);
    let Labels::Values(y) = &a.labels else {
        panic!()
    };
    let y: Vec<f32> = y.iter().copied().collect();
    let w = solve4(&x, &y);
    for i in 0..500 {
        let pred = w[3] + (0..3).map(|j| w[j] * f64::from(x[i * 3 + j])).sum::<f64>();
        assert!((pred - f64::from(y[i])).abs() < 1e-4, "sample {i}");
    }

    let tok = TokenSource {
        n: 300,
        length: 9,
        vocab: 31,
        classes: 3,
        seed: 2,
        min_length: None,
    };
    let s = load(&src(SourceKind::Tokens(tok)), Path::new(".")).unwrap();
    let Features::I64(ids) = &s.features else {
        panic!()
    };
    let Labels::Class(labels) = &s.labels else {
        panic!()
    };
    let mut seen = [0usize; 3];
    for (row, &l) in ids.outer_iter().zip(labels) {
        let row: Vec<i64> = row.iter().copied().collect();
        assert!(row.iter().all(|&t| (1..31).contains(&t)));
        // the rule by hand: bands 1..=10, 11..=20, 21..=30, majority band, ties low
        let mut counts = [0; 3];
        for t in &row {
            counts[((t - 1) / 10) as usize] += 1;
        }
        let max = *counts.iter().max().unwrap();
        assert_eq!(l, counts.iter().position(|&c| c == max).unwrap() as i64);
        seen[l as usize] += 1;
    }
    assert!(seen.iter().all(|&c| c > 60), "{seen:?}");

    let sine = SineSource {
        n: 50,
        period: 20.0,
        noise: 0.0,
        seed: 0,
    };
    let s = load(&src(SourceKind::Sine(sine)), Path::new(".")).unwrap();
    let v = f32s(&s.features);
    assert!((v[5] - 1.0).abs() < 1e-6 && v[10].abs() < 1e-6 && (v[15] + 1.0).abs() < 1e-6);
}

#[test]
fn padded_tokens_hold_min_length_to_length_tokens_then_zeros_that_the_label_skips() {
    let tok = TokenSource {
        n: 400,
        length: 9,
        vocab: 31,
        classes: 3,
        seed: 2,
        min_length: Some(4),
    };
    let s = load(&src(SourceKind::Tokens(tok)), Path::new(".")).unwrap();
    let (Features::I64(ids), Labels::Class(labels)) = (&s.features, &s.labels) else {
        panic!()
    };
    let mut lengths = [0usize; 10];
    for (row, &l) in ids.outer_iter().zip(labels) {
        let row: Vec<i64> = row.iter().copied().collect();
        let kept = row.iter().take_while(|&&t| t != 0).count();
        assert!((4..=9).contains(&kept), "{row:?}");
        assert!(row[kept..].iter().all(|&t| t == 0), "{row:?}");
        lengths[kept] += 1;
        let mut counts = [0; 3];
        for t in &row[..kept] {
            counts[((t - 1) / 10) as usize] += 1;
        }
        let max = *counts.iter().max().unwrap();
        assert_eq!(l, counts.iter().position(|&c| c == max).unwrap() as i64);
    }
    // Every length from 4 to 9 is drawn.
    assert!(lengths[4..].iter().all(|&c| c > 20), "{lengths:?}");
}

/// Solves for `[w0, w1, w2, b]` from the first four samples (Gaussian elimination, f64).
fn solve4(x: &[f32], y: &[f32]) -> Vec<f64> {
    let mut m: Vec<Vec<f64>> = (0..4)
        .map(|i| {
            let mut r: Vec<f64> = (0..3).map(|j| f64::from(x[i * 3 + j])).collect();
            r.push(1.0);
            r.push(f64::from(y[i]));
            r
        })
        .collect();
    for c in 0..4 {
        let p = (c..4)
            .max_by(|&a, &b| m[a][c].abs().total_cmp(&m[b][c].abs()))
            .unwrap();
        m.swap(c, p);
        for r in 0..4 {
            if r != c {
                let f = m[r][c] / m[c][c];
                let pivot = m[c].clone();
                for (x, p) in m[r].iter_mut().zip(&pivot).skip(c) {
                    *x -= f * p;
                }
            }
        }
    }
    (0..4).map(|i| m[i][4] / m[i][i]).collect()
}

#[test]
fn sources_past_the_memory_budget_are_refused_before_allocating() {
    let huge = RegressionSource {
        n: 1 << 31,
        features: 1 << 20,
        noise: 0.0,
        seed: 0,
    };
    let d = fails(
        load(&src(SourceKind::Regression(huge)), Path::new(".")),
        DATA_TOO_LARGE,
    );
    assert!(d.message.contains("data budget"), "{}", d.message);
}

/// `load_bytes` (fuzzers, tests) and `load` (the CLI) run the same readers: the same samples
/// from the same files, gzip'd or not, and the same diagnostic codes for broken ones.
#[test]
fn bytes_and_files_load_the_same_samples() {
    let read = |name: &str| std::fs::read(fixtures().join(name)).unwrap();
    let idx = |images: &str, labels: Option<&str>| IdxSource {
        images: images.into(),
        labels: labels.map(Into::into),
        shape: None,
        classes: Some(10),
    };
    let npy = |features: &str, labels: Option<&str>| NpySource {
        features: features.into(),
        labels: labels.map(Into::into),
        shape: None,
        label_read: LabelRead::Class { classes: Some(10) },
    };
    let cases = [
        src(SourceKind::Csv(csv("points.csv"))),
        src(SourceKind::Csv(csv("ragged.csv"))),
        src(SourceKind::Idx(idx("images.idx", Some("labels.idx")))),
        src(SourceKind::Idx(idx("images.idx.gz", Some("labels.idx")))),
        src(SourceKind::Idx(idx("truncated.idx", None))),
        src(SourceKind::Npy(npy("x_f4.npy", Some("y_3.npy")))),
        src(SourceKind::Npy(npy("x_fortran.npy", None))),
    ];
    for spec in &cases {
        let (features, labels) = match &spec.kind {
            SourceKind::Csv(c) => (read(&c.path), None),
            SourceKind::Idx(i) => (read(&i.images), i.labels.as_deref().map(read)),
            SourceKind::Npy(n) => (read(&n.features), n.labels.as_deref().map(read)),
            _ => unreachable!(),
        };
        let from_files = load(spec, &fixtures());
        let from_bytes = load_bytes(spec, &features, labels.as_deref());
        match (from_files, from_bytes) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{spec:?}"),
            (Err(a), Err(b)) => assert_eq!(a.code, b.code, "{spec:?}"),
            (a, b) => panic!("{spec:?}: files {a:?}, bytes {b:?}"),
        }
    }
    // The good cases really are good (the comparison above is not between two errors).
    assert!(load_bytes(&cases[0], &read("points.csv"), None).is_ok());
    assert!(load_bytes(&cases[3], &read("images.idx.gz"), Some(&read("labels.idx"))).is_ok());
}

/// Bad input class "a reader reads without limit": every file source judges a file's first
/// bytes before reading on, so an endless device is refused at once, whatever its kind.
#[test]
fn an_endless_device_is_refused_by_every_file_source_after_its_first_bytes() {
    let d = fails(load_csv(csv("/dev/zero")), DATA_NOT_A_NUMBER);
    assert!(d.message.contains("byte 0 is NUL"), "{}", d.message);
    let d = fails(idx("/dev/zero", None), DATA_IDX_MALFORMED);
    assert!(d.message.contains("idx element type 0x00"), "{}", d.message);
    let npy = load(
        &src(SourceKind::Npy(NpySource {
            features: "/dev/zero".into(),
            labels: None,
            shape: None,
            label_read: LabelRead::Class { classes: Some(2) },
        })),
        &fixtures(),
    );
    fails(npy, DATA_NPY_MALFORMED);
}

/// A file whose header declares its size is read no further than that and one byte: the
/// trailing data is found without reading it all (the file has 100,000 more bytes; the reader
/// saw only those in its first 1,024 bytes, the longest IDX header, and read no further).
#[test]
fn an_idx_file_is_read_only_as_far_as_its_header_says() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.idx");
    let mut bytes = vec![0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3, 4];
    bytes.extend(std::iter::repeat_n(7_u8, 100_000));
    std::fs::write(&path, bytes).unwrap();
    let d = fails(idx(path.to_str().unwrap(), None), DATA_IDX_MALFORMED);
    assert!(
        d.message
            .contains("describes 4 data bytes, but the file has 1016"),
        "{}",
        d.message
    );
}

#[test]
fn csv_reads_a_label_set_per_label_column_and_leaves_them_out_of_the_features() {
    let mut c = csv("points.csv");
    c.more_labels = vec![LabelColumn {
        column: ColumnRef::Name("y".into()),
        read: LabelRead::Value,
    }];
    let s = load_csv(c.clone()).unwrap();
    assert_eq!(s.features.shape(), &[3, 1]);
    assert_eq!(f32s(&s.features), vec![1.0, 3.5, 0.0]);
    let Labels::Outputs(sets) = &s.labels else {
        panic!("{:?}", s.labels)
    };
    assert_eq!(sets[0], Labels::Class(vec![0, 1, 2]));
    match &sets[1] {
        Labels::Values(v) => {
            assert_eq!(v.shape(), &[3, 1]);
            assert_eq!(v.iter().copied().collect::<Vec<_>>(), vec![2.0, -4.0, 0.25]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.labels.count(), Some(3));
    // Each column is checked as it is read: `x` holds 3.5, not a class id.
    c.more_labels[0] = LabelColumn {
        column: ColumnRef::Name("x".into()),
        read: LabelRead::Class { classes: Some(4) },
    };
    let d = fails(load_csv(c), DATA_LABEL_RANGE);
    assert_eq!(d.external.as_ref().unwrap().line, 3);
    assert_eq!(d.external.as_ref().unwrap().column, 1);
}
