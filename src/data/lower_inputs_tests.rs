//! Tests of the `inputs` line's lowering: where each group's columns land in the source's
//! feature vector, and how a csv source without a column list gets the groups' columns.

use crate::data::lower_data_def;
use crate::data::spec::{ColumnRef, FeatureColumns, PipelineSpec, SourceKind, Transform};
use crate::diag::FileId;
use crate::syntax::ast::Item;

fn lower(body: &str) -> PipelineSpec {
    let text = format!("data D {{\n{body}\n    batch 4\n}}\n");
    let parsed = crate::syntax::parse(FileId::default(), &text, &crate::syntax::Limits::default());
    let Some(Item::Data(d)) = parsed.file.items.first() else {
        panic!("no data block: {:?}", parsed.diagnostics)
    };
    let (spec, diags) = lower_data_def(FileId::default(), d);
    assert!(diags.is_empty(), "{diags:?}");
    spec.unwrap()
}

fn positions(spec: &PipelineSpec) -> Vec<(String, Vec<usize>)> {
    spec.inputs
        .iter()
        .map(|g| (g.name.clone(), g.positions.clone()))
        .collect()
}

fn csv_features(spec: &PipelineSpec) -> FeatureColumns {
    match &spec.source.kind {
        SourceKind::Csv(c) => c.features.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn names_are_positions_in_the_sources_column_list_and_counts_follow_the_last() {
    let spec = lower(
        "    source csv(\"x.csv\", label: \"y\", features: [\"a\", \"b\", \"c\", \"d\", \"e\"])\n    \
         inputs p: [\"d\", \"b\"], q: 1, r: [\"a\", \"e\"]",
    );
    // `q` takes the column after `p`'s last (b, at 1): c, at 2.
    let want: Vec<(String, Vec<usize>)> = vec![
        ("p".into(), vec![3, 1]),
        ("q".into(), vec![2]),
        ("r".into(), vec![0, 4]),
    ];
    assert_eq!(positions(&spec), want);
    // The source keeps its own list.
    assert!(matches!(csv_features(&spec), FeatureColumns::Listed(c) if c.len() == 5));
}

#[test]
fn a_csv_without_a_column_list_reads_exactly_the_groups_columns() {
    let spec = lower(
        "    source csv(\"x.csv\", label: \"y\")\n    inputs p: [\"d\", \"b\"], q: [\"a\"]\n    \
         map    q: scale(2)",
    );
    let want: Vec<(String, Vec<usize>)> = vec![("p".into(), vec![0, 1]), ("q".into(), vec![2])];
    assert_eq!(positions(&spec), want);
    let names = ["d", "b", "a"].map(|n| ColumnRef::Name(n.into())).to_vec();
    assert_eq!(csv_features(&spec), FeatureColumns::Listed(names));
    // Steps go to their group; none stay on the whole pipeline.
    assert!(spec.preprocess.is_empty());
    assert_eq!(spec.inputs[0].preprocess.len(), 0);
    assert_eq!(
        spec.inputs[1].preprocess[0].op,
        Transform::Scale {
            factor: 2.0,
            offset: 0.0
        }
    );
}

#[test]
fn counts_on_a_csv_without_a_count_fix_the_number_of_feature_columns() {
    let spec = lower("    source csv(\"x.csv\", label: \"y\")\n    inputs p: 3, q: 2");
    let want: Vec<(String, Vec<usize>)> =
        vec![("p".into(), vec![0, 1, 2]), ("q".into(), vec![3, 4])];
    assert_eq!(positions(&spec), want);
    assert_eq!(
        csv_features(&spec),
        FeatureColumns::AllButLabel { count: Some(5) }
    );
}

#[test]
fn a_pipeline_without_inputs_is_lowered_as_before() {
    let spec = lower("    source regression(n: 8, features: 2)\n    map scale(2)");
    assert!(spec.inputs.is_empty());
    assert_eq!(spec.preprocess.len(), 1);
    // The plan format of a single-input pipeline does not change: no `inputs` field.
    let ron = ron::to_string(&spec).unwrap();
    assert!(!ron.contains("inputs"), "{ron}");
}
