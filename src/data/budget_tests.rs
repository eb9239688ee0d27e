//! Tests of the data budget: its byte figures computed by hand, the static E0217 at the step
//! that makes a data set too large, and the loader's refusals before allocating.

use super::*;
use crate::data::samples::{Features, Labels, Samples};
use crate::data::spec::Step;
use crate::data::{lower_data_def, transform};
use crate::diag::codes::{CHECK_DATA_SET_TOO_LARGE, DATA_TOO_LARGE};
use crate::diag::{FileId, Span};
use crate::syntax::{ast, parse, Limits};

/// The pipeline of the only `data` block in `text`, and the text.
fn pipeline(text: &str) -> PipelineSpec {
    let parsed = parse(FileId::from_index(0), text, &Limits::default());
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
    let def = parsed
        .file
        .items
        .iter()
        .find_map(|i| match i {
            ast::Item::Data(d) => Some(d),
            _ => None,
        })
        .expect("a data block");
    let (spec, diags) = lower_data_def(FileId::from_index(0), def);
    assert!(diags.is_empty(), "{diags:?}");
    spec.expect("lowered")
}

/// The E0217 of `text`'s pipeline, with the source text its span covers.
fn too_large(text: &str) -> (StepError, String) {
    let errors = crate::data::element_type(&pipeline(text)).expect_err("refused");
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = errors.into_iter().next().expect("one error");
    assert_eq!(e.code, CHECK_DATA_SET_TOO_LARGE, "{}", e.message);
    let at = text[e.span.start..e.span.end].to_string();
    (e, at)
}

#[test]
fn bytes_are_rows_times_elements_times_width_and_overflow_is_none() {
    assert_eq!(bytes(3, &[4, 5], 4), Some(240));
    assert_eq!(bytes(10, &[], 8), Some(80));
    assert_eq!(bytes(0, &[1 << 40], 4), Some(0));
    assert_eq!(bytes(usize::MAX, &[2], 4), None);
    assert_eq!(bytes(1 << 62, &[1], 4), None, "2^62 × 4 overflows u64");
    assert!(within(Some(4 << 30)), "the budget itself fits");
    assert!(!within(Some((4 << 30) + 1)));
    assert!(!within(None));
}

#[test]
fn a_window_over_a_long_generated_series_is_refused_at_the_window() {
    let text = "data S {\n    source sine(n: 1000000, period: 50, noise: 0)\n    map    window(100000)\n    batch  32\n}\n";
    let (e, at) = too_large(text);
    assert_eq!(at, "window(100000)");
    // 1000000 + 1 - (100000 + 1) = 900000 windows of [100000, 1] f32:
    // 900000 × 100000 × 4 = 360,000,000,000 bytes, 335.3 GiB.
    assert!(
        e.message.contains("[900000, 100000, 1]") && e.message.contains("900000 samples"),
        "{}",
        e.message
    );
    assert!(e.message.contains("335.3 GiB"), "{}", e.message);
}

#[test]
fn a_resize_of_many_generated_rows_is_refused_at_the_resize() {
    // 100000 rows of [8, 8, 1] resized to [2000, 2000, 1]: 16,000,000 bytes each (fine alone),
    // 1,600,000,000,000 bytes in all.
    let text = "data S {\n    source regression(n: 100000, features: 64)\n    map    reshape(8, 8, 1) |> resize(2000, 2000)\n    batch  32\n}\n";
    let (e, at) = too_large(text);
    assert_eq!(at, "resize(2000, 2000)");
    assert!(
        e.message.contains("[100000, 2000, 2000, 1]"),
        "{}",
        e.message
    );
    assert!(e.message.contains("15.3 MiB"), "per sample: {}", e.message);
}

#[test]
fn one_hot_labels_and_token_sources_count_too() {
    // one_hot(100000) of 20000 class ids: 20000 × 100000 × 4 = 8,000,000,000 bytes of labels.
    let text = "data T {\n    source tokens(n: 20000, length: 8, vocab: 100001, classes: 100000)\n    map    one_hot(classes: 100000)\n    batch  32\n}\n";
    let (e, at) = too_large(text);
    assert_eq!(at, "one_hot(classes: 100000)");
    assert!(
        e.message.contains("labels of [20000, 100000]"),
        "{}",
        e.message
    );
    // The source itself: 600,000,000 × 8 i64 ids × 8 bytes = 38.4 GB of features.
    let text = "data T {\n    source tokens(n: 600000000, length: 8, vocab: 100, classes: 2)\n    batch  32\n}\n";
    let (e, at) = too_large(text);
    assert!(at.starts_with("tokens("), "{at}");
    assert!(
        e.message.starts_with("this source makes features"),
        "{}",
        e.message
    );
}

#[test]
fn sizes_check_cannot_know_pass_and_sizes_within_the_budget_pass() {
    // A CSV's row count is known only from its file: per-sample sizes are all check can judge.
    let text = "data C {\n    source csv(\"x.csv\", label: \"y\", features: 64)\n    map    reshape(8, 8, 1) |> resize(2000, 2000)\n    batch  32\n}\n";
    assert!(crate::data::element_type(&pipeline(text)).is_ok());
    // 1000 rows of [64, 64, 1]: 16 MiB.
    let text = "data S {\n    source regression(n: 1000, features: 64)\n    map    reshape(8, 8, 1) |> resize(64, 64)\n    batch  32\n}\n";
    assert!(crate::data::element_type(&pipeline(text)).is_ok());
}

#[test]
fn arrays_past_the_budget_are_refused_before_allocating() {
    // 600,000,000 × 2 f32 = 4,800,000,000 bytes > 4 GiB (4,294,967,296).
    let e = zeros(600_000_000, &[2], "one_hot").expect_err("refused");
    assert_eq!(e.code, DATA_TOO_LARGE);
    assert!(e.message.contains("[600000000, 2]"), "{}", e.message);
    let e = with_capacity::<i64>(usize::MAX, &[2], 8, "pad").expect_err("refused");
    assert!(e.message.contains("more than 2^64 bytes"), "{}", e.message);
    let a = filled(2, &[3], 8, 7i64, "pad").expect("small");
    assert_eq!(a.shape(), &[2, 3]);
    assert!(a.iter().all(|&v| v == 7));
}

#[test]
fn a_map_step_of_a_file_source_is_refused_by_the_loader_not_the_allocator() {
    // The rows come from a file, so only the loader knows them: 2 rows resized to 40000 × 40000
    // (6,400,000,000 bytes each, past the budget alone) are refused by the step itself.
    let samples = Samples {
        features: Features::F32(ArrayD::zeros(ndarray::IxDyn(&[2, 2, 2, 1]))),
        labels: Labels::None,
    };
    let mut steps = vec![Step {
        op: Transform::Resize {
            height: 40000,
            width: 40000,
        },
        span: Span::new(0, 1),
    }];
    let e = transform::apply_all(&mut steps, samples, &|_| Vec::new()).expect_err("refused");
    assert_eq!(e.code, DATA_TOO_LARGE);
    assert!(
        e.message
            .starts_with("resize would make an array of [2, 40000, 40000, 1]"),
        "{}",
        e.message
    );
}
