//! Fuzz entry for data files: the CSV, IDX (plain or gzip'd) and NPY readers behind
//! `modelc data` and `modelc train`, fed from bytes through [`crate::data::source::load_bytes`].

use super::Outcome;
use crate::data::source::load_bytes;
use crate::data::spec::{
    ColumnRef, CsvSource, FeatureColumns, IdxSource, LabelRead, NpySource, SourceKind, SourceSpec,
};
use crate::diag::Span;

/// Loads `bytes` as a data source. The first byte picks the reader and its options:
///
/// - bits 0–1: CSV (0 and 3), IDX (1), NPY (2);
/// - bit 2: the source has labels (a label column, or a labels file);
/// - bits 3–4: declared classes: none, 2, 10 or 256;
/// - bit 5: a declared per-sample shape (`[byte 1, 1]`);
/// - bit 6: the CSV has a header row (labels then go by name, `target`);
/// - bit 7: labels are real values rather than class ids.
///
/// For IDX and NPY with labels, bytes 1–2 (little-endian) say where the features file ends and
/// the labels file begins; the rest of the input is split there.
pub fn load_source(bytes: &[u8]) -> Outcome {
    let Some((&selector, rest)) = bytes.split_first() else {
        return Outcome::default();
    };
    let bit = |i: u8| selector & (1 << i) != 0;
    let labelled = bit(2);
    let classes = match (selector >> 3) & 3 {
        0 => None,
        1 => Some(2),
        2 => Some(10),
        _ => Some(256),
    };
    let shape = bit(5).then(|| vec![usize::from(rest.first().copied().unwrap_or(1)).max(1), 1]);
    let label_read = if bit(7) {
        LabelRead::Value
    } else {
        LabelRead::Class { classes }
    };
    let (features, labels) = split(rest, labelled);
    let kind = match selector & 3 {
        1 => SourceKind::Idx(IdxSource {
            images: "images.idx".into(),
            labels: labelled.then(|| "labels.idx".into()),
            shape,
            classes,
        }),
        2 => SourceKind::Npy(NpySource {
            features: "x.npy".into(),
            labels: labelled.then(|| "y.npy".into()),
            shape,
            label_read,
        }),
        _ => {
            let header = bit(6);
            let label = labelled.then(|| {
                if header {
                    ColumnRef::Name("target".into())
                } else {
                    ColumnRef::Index(0)
                }
            });
            let features = if bit(5) {
                FeatureColumns::AllButLabel {
                    count: shape.as_ref().and_then(|s| s.first().copied()),
                }
            } else {
                FeatureColumns::AllButLabel { count: None }
            };
            return outcome(
                &SourceSpec {
                    kind: SourceKind::Csv(CsvSource {
                        path: "data.csv".into(),
                        label,
                        label_read,
                        features,
                        header,
                        more_labels: Vec::new(),
                        label_spans: Vec::new(),
                    }),
                    span: Span::default(),
                },
                rest,
                None,
            );
        }
    };
    outcome(
        &SourceSpec {
            kind,
            span: Span::default(),
        },
        features,
        labels,
    )
}

/// The features file and, when `labelled`, the labels file: bytes 0–1 of `rest` give the split.
fn split(rest: &[u8], labelled: bool) -> (&[u8], Option<&[u8]>) {
    if !labelled {
        return (rest, None);
    }
    let Some((head, body)) = rest.split_first_chunk::<2>() else {
        return (rest, Some(&[]));
    };
    let at = usize::from(u16::from_le_bytes(*head)).min(body.len());
    let (features, labels) = body.split_at(at);
    (features, Some(labels))
}

fn outcome(spec: &SourceSpec, features: &[u8], labels: Option<&[u8]>) -> Outcome {
    match load_bytes(spec, features, labels) {
        Ok(_) => Outcome::default(),
        Err(d) => Outcome::of(&[d]),
    }
}
