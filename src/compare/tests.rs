//! Tests of comparing runs against hand-computed values.

// Values parsed from the same decimal text are compared exactly on purpose.
#![allow(clippy::float_cmp)]

use super::*;

fn run(name: &str, configuration: &str, seed: u64, csv: &str) -> Run {
    Run {
        info: TrialInfo {
            name: name.into(),
            configuration: configuration.into(),
            settings: vec![("optimizer".into(), configuration.into())],
            seed,
            seconds: 1.5,
        },
        history: parse_metrics_csv(csv).unwrap(),
    }
}

/// A two-epoch history whose val_loss is `best` at epoch 2 (and `best + 0.3` at epoch 1).
fn two_epochs(best: f64) -> String {
    format!(
        "epoch,loss,accuracy,val_loss,val_accuracy,lr,samples_per_sec\n\
         1,0.900000,0.500000,{:.6},0.400000,0.001,100.0\n\
         2,0.600000,0.700000,{best:.6},{:.6},0.001,120.0\n",
        best + 0.3,
        1.0 - best
    )
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

#[test]
fn parses_the_metrics_csv_train_writes() {
    let h = parse_metrics_csv(&two_epochs(0.25)).unwrap();
    assert_eq!(h.columns.len(), 7);
    assert_eq!(h.rows.len(), 2);
    assert_eq!(h.rows[1][3], 0.25);
    assert_eq!(
        h.metric_names().collect::<Vec<_>>(),
        ["loss", "accuracy", "val_loss", "val_accuracy"]
    );
    assert_eq!(h.epoch_of(1), 2);
    // CRLF line ends, a header alone, NaN and inf cells.
    let h = parse_metrics_csv("epoch,loss\r\n1,NaN\r\n2,inf\r\n").unwrap();
    assert!(h.rows[0][1].is_nan() && h.rows[1][1].is_infinite());
    assert!(parse_metrics_csv("epoch,loss\n").unwrap().rows.is_empty());
}

#[test]
fn refuses_what_is_not_a_history_with_the_place() {
    let at = |text: &str| match parse_metrics_csv(text) {
        Err(CompareError::BadMetrics { line, column, .. }) => (line, column),
        other => panic!("{other:?}"),
    };
    assert_eq!(at(""), (1, 0));
    assert_eq!(at("loss,val_loss\n1,2\n"), (1, 1));
    assert_eq!(at("epoch,lr\n1,2\n"), (1, 1));
    assert_eq!(at("epoch,loss,loss\n"), (1, 3));
    assert_eq!(at("epoch,,loss\n"), (1, 2));
    assert_eq!(at("epoch,loss\n1,0.5\n2,0.4,9\n"), (3, 0));
    assert_eq!(at("epoch,loss\n1,0.5\n2,zero\n"), (3, 2));
    assert_eq!(at("epoch,loss\n1,0.5\n\n2,0.4\n"), (3, 0));
    let e = parse_metrics_csv("epoch,loss\n1,x\n").unwrap_err();
    assert_eq!(e.code().as_str(), "E1102");
    let d = e.to_diagnostic(Some("runs/a/metrics.csv"));
    assert_eq!(
        d.external.as_ref().map(|x| (x.line, x.column)),
        Some((2, 2))
    );
    assert!(d.message.contains("runs/a/metrics.csv"), "{}", d.message);
}

#[test]
fn means_and_stds_over_repeats_by_hand() {
    // Scores (best val_loss): a: 0.5, 0.7 -> mean 0.6, std sqrt((0.01 + 0.01) / 1) = 0.1414..;
    // b: 0.4, 1.0 -> mean 0.7, std sqrt((0.09 + 0.09) / 1) = 0.4242..; c: 0.65 alone, std 0.
    let runs = [
        run("a-1", "a", 1, &two_epochs(0.5)),
        run("a-2", "a", 2, &two_epochs(0.7)),
        run("b-1", "b", 1, &two_epochs(0.4)),
        run("b-2", "b", 2, &two_epochs(1.0)),
        run("c-1", "c", 1, &two_epochs(0.65)),
    ];
    let c = compare(&runs, &Select::default()).unwrap();
    assert_eq!(c.metric, "val_loss");
    let names: Vec<&str> = c.trials.iter().map(|t| t.info.name.as_str()).collect();
    assert_eq!(names, ["b-1", "a-1", "c-1", "a-2", "b-2"]);
    let configs: Vec<&str> = c
        .configurations
        .iter()
        .map(|g| g.configuration.as_str())
        .collect();
    assert_eq!(configs, ["a", "c", "b"]);
    let a = &c.configurations[0];
    close(a.score.mean, 0.6);
    close(a.score.std, 0.02f64.sqrt());
    assert_eq!(a.score.n, 2);
    assert_eq!(a.seeds, [1, 2]);
    let b = &c.configurations[2];
    close(b.score.mean, 0.7);
    close(b.score.std, 0.18f64.sqrt());
    assert_eq!(c.configurations[1].score.std, 0.0);
    // The final val_accuracy of a: 1 - 0.5 and 1 - 0.7 -> mean 0.4.
    let k = c.metrics.iter().position(|m| m == "val_accuracy").unwrap();
    close(a.final_metrics[k].mean, 0.4);
    assert_eq!(c.winning().map(|w| w.configuration.as_str()), Some("a"));
    assert_eq!(c.trials[0].best_epoch, Some(2));
    let summary = summary_csv(&c);
    let first = summary.lines().nth(1).unwrap();
    assert!(
        first.starts_with("1,a,a,2,1 2,0.600000,0.141421,"),
        "{summary}"
    );
}

#[test]
fn ranks_by_min_or_max_and_breaks_ties_by_name() {
    let runs = [
        run("zeta", "zeta", 0, &two_epochs(0.3)),
        run("alpha", "alpha", 0, &two_epochs(0.3)),
        run("mid", "mid", 0, &two_epochs(0.2)),
    ];
    let by = |metric: &str, goal| {
        let select = Select {
            metric: Some(metric.into()),
            goal,
        };
        let c = compare(&runs, &select).unwrap();
        c.trials
            .iter()
            .map(|t| t.info.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(by("val_loss", Goal::Min), ["mid", "alpha", "zeta"]);
    // val_accuracy at epoch 2 is 1 - best: 0.8 for mid, 0.7 for the others.
    assert_eq!(by("val_accuracy", Goal::Max), ["mid", "alpha", "zeta"]);
    assert_eq!(by("val_loss", Goal::Max), ["alpha", "zeta", "mid"]);
    // The order of the input does not matter.
    let mut reversed = runs.clone();
    reversed.reverse();
    assert_eq!(
        results_csv(&compare(&reversed, &Select::default()).unwrap()),
        results_csv(&compare(&runs, &Select::default()).unwrap())
    );
}

#[test]
fn the_best_epoch_gives_the_best_metrics_and_a_diverged_run_ranks_last() {
    let good = "epoch,loss,val_loss,lr,samples_per_sec\n1,0.9,0.8,0.1,1\n2,0.7,0.5,0.1,1\n3,0.6,0.6,0.1,1\n";
    let diverged = "epoch,loss,val_loss,lr,samples_per_sec\n1,NaN,NaN,0.1,1\n";
    let runs = [run("bad", "bad", 0, diverged), run("good", "good", 0, good)];
    let c = compare(&runs, &Select::default()).unwrap();
    let t = &c.trials[0];
    assert_eq!(t.info.name, "good");
    assert_eq!((t.epochs, t.best_epoch, t.score), (3, Some(2), Some(0.5)));
    assert_eq!(t.best_metrics, [Some(0.7), Some(0.5)]);
    assert_eq!(t.final_metrics, [Some(0.6), Some(0.6)]);
    assert_eq!((c.trials[1].score, c.trials[1].best_epoch), (None, None));
    assert_eq!(c.winner, Some(0));
    let csv = results_csv(&c);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines,
        [
            "rank,trial,configuration,optimizer,seed,epochs,best_epoch,final_loss,final_val_loss,best_loss,best_val_loss,seconds",
            "1,good,good,good,0,3,2,0.600000,0.600000,0.700000,0.500000,1.50",
            "2,bad,bad,bad,0,1,,NaN,NaN,,,1.50",
        ]
    );
}

#[test]
fn the_loss_selects_when_a_run_has_no_validation() {
    let plain = "epoch,loss,lr,samples_per_sec\n1,0.4,0.1,1\n";
    let runs = [run("v", "v", 0, &two_epochs(0.1)), run("p", "p", 0, plain)];
    let c = compare(&runs, &Select::default()).unwrap();
    assert_eq!(c.metric, "loss");
    assert_eq!(c.trials[0].info.name, "p");
    // An explicit select every run cannot give is E1104, with the closest column.
    let e = compare(
        &runs,
        &Select {
            metric: Some("val_loss".into()),
            goal: Goal::Min,
        },
    )
    .unwrap_err();
    assert_eq!(e.code().as_str(), "E1104");
    let d = e.to_diagnostic(None);
    assert!(d.message.contains("`p`"), "{}", d.message);
    let e = compare(
        &runs,
        &Select {
            metric: Some("los".into()),
            goal: Goal::Min,
        },
    )
    .unwrap_err();
    assert_eq!(
        e.to_diagnostic(None).help.as_deref(),
        Some("did you mean `loss`?")
    );
}

#[test]
fn two_runs_of_one_name_are_refused() {
    let runs = [
        run("x", "x", 0, &two_epochs(0.1)),
        run("x", "y", 0, &two_epochs(0.2)),
    ];
    let e = compare(&runs, &Select::default()).unwrap_err();
    assert_eq!(e, CompareError::DuplicateTrial { name: "x".into() });
    assert_eq!(e.code().as_str(), "E1105");
}

#[test]
fn trial_info_round_trips_and_a_bad_one_is_e1103() {
    let info = run("adam-1", "adam", 7, &two_epochs(0.1)).info;
    assert_eq!(parse_trial_info(&trial_info_json(&info)).unwrap(), info);
    let e = parse_trial_info("{\"name\": \"a\", \"seed\": \"one\"}").unwrap_err();
    assert_eq!(e.code().as_str(), "E1103");
    assert_eq!(TrialInfo::bare("r").configuration, "r");
}

/// The cells of the `<table id="ID">` of a page, header first, unescaped.
fn html_table(page: &str, id: &str) -> Vec<Vec<String>> {
    let start = page.find(&format!("<table id=\"{id}\">")).unwrap();
    let end = start + page[start..].find("</table>").unwrap();
    let body = &page[start..end];
    let mut rows = Vec::new();
    for tr in body.split("<tr").skip(1) {
        let mut cells = Vec::new();
        let mut rest = tr;
        while let Some(open) = rest.find("<td").into_iter().chain(rest.find("<th")).min() {
            let after = &rest[open..];
            let content_start = after.find('>').unwrap() + 1;
            let close = after.find("</t").unwrap();
            cells.push(
                after[content_start..close]
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&#39;", "'")
                    .replace("&amp;", "&"),
            );
            rest = &after[close + 3..];
        }
        rows.push(cells);
    }
    rows
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

fn hostile_runs() -> Vec<Run> {
    let mut a = run("<script>alert('x')</script>", "a&b", 1, &two_epochs(0.2));
    a.info.settings = vec![("optimizer".into(), "adam(lr: \"1e-3\"), <b>".into())];
    let b = run("plain, with comma", "plain", 2, &two_epochs(0.3));
    vec![a, b]
}

#[test]
fn the_report_table_is_results_csv_and_the_summary_is_summary_csv() {
    let runs = [
        run("a-1", "a", 1, &two_epochs(0.5)),
        run("a-2", "a", 2, &two_epochs(0.7)),
        run("b-1", "b", 1, &two_epochs(0.4)),
    ];
    for runs in [runs.to_vec(), hostile_runs()] {
        let c = compare(&runs, &Select::default()).unwrap();
        let page = report_html(&c, "title", None);
        assert_eq!(html_table(&page, "results"), csv_rows(&results_csv(&c)));
        assert_eq!(html_table(&page, "summary"), csv_rows(&summary_csv(&c)));
    }
}

#[test]
fn the_report_escapes_every_text_and_is_deterministic() {
    let c = compare(&hostile_runs(), &Select::default()).unwrap();
    let spec = "model M() {} </pre><script>evil()</script> & \"q\"";
    let page = report_html(&c, "<i>title</i>", Some(spec));
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<i>") && !page.contains("<b>"));
    assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(page.contains(
        "<pre id=\"spec\">model M() {} &lt;/pre&gt;&lt;script&gt;evil()&lt;/script&gt; &amp; &quot;q&quot;</pre>"
    ));
    assert_eq!(page.matches("<pre").count(), 1);
    assert_eq!(page, report_html(&c, "<i>title</i>", Some(spec)));
    // Nothing is fetched: no external reference of any kind.
    for fetch in ["http:", "https:", "src=", "href=", "@import", "url("] {
        assert!(!page.contains(fetch), "{fetch}");
    }
    // One chart per metric, each a closed svg, the winning configuration's rows marked.
    assert_eq!(page.matches("<svg").count(), 4);
    assert_eq!(page.matches("</svg>").count(), 4);
    assert_eq!(page.matches("<tr class=\"winner\">").count(), 2);
}

#[test]
fn curves_draw_mean_lines_and_min_max_bands_at_the_right_places() {
    // Two repeats of one configuration: losses 0.9 then 0.6 in both, val_loss 0.8/0.5 and
    // 1.0/0.7, so val_loss's mean is 0.9 then 0.6 and its band 0.8..1.0 then 0.5..0.7.
    let runs = [
        run("a-1", "a", 1, &two_epochs(0.5)),
        run("a-2", "a", 2, &two_epochs(0.7)),
    ];
    let c = compare(&runs, &Select::default()).unwrap();
    let members: Vec<&TrialResult> = c.trials.iter().collect();
    let b = stats::band(&members, "val_loss");
    assert_eq!(b.points.len(), 2);
    let (m, lo, hi) = b.points[1].unwrap();
    close(m, 0.6);
    close(lo, 0.5);
    close(hi, 0.7);
    let svg = chart::chart_svg(
        "val_loss",
        &[chart::Series {
            label: "a",
            band: b,
        }],
    );
    // Values 0.5..1.0 tick every 0.1 from 0.5 to 1.0 over the plot's 300 pixels from y 32 to
    // 332, epochs 1..2 (axis 1..2) over x 72 to 624: the mean goes from (72, 92) to (624, 272).
    assert!(svg.contains("points=\"72.0,92.0 624.0,272.0\""), "{svg}");
    assert_eq!(svg.matches("<polygon class=\"band\"").count(), 1);
    for tick in ["0.5", "0.6", "1.0"] {
        assert!(svg.contains(&format!(">{tick}</text>")), "{tick}");
    }
}

#[test]
fn json_lines_give_a_line_per_trial_then_the_summary() {
    let runs = [
        run("a-1", "a", 1, &two_epochs(0.5)),
        run(
            "b-1",
            "b",
            1,
            "epoch,loss,val_loss,lr,samples_per_sec\n1,NaN,NaN,0.1,1\n",
        ),
    ];
    let c = compare(&runs, &Select::default()).unwrap();
    let lines: Vec<serde_json::Value> = json_lines(&c)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["trial"], "a-1");
    assert_eq!(lines[0]["best"]["val_loss"], 0.5);
    assert_eq!(lines[0]["settings"]["optimizer"], "a");
    assert!(lines[1]["final"]["loss"].is_null());
    assert_eq!(lines[2]["winner"], "a");
    assert_eq!(lines[2]["select"]["metric"], "val_loss");
    assert_eq!(lines[2]["summary"][0]["best"]["mean"], 0.5);
}

#[test]
fn the_terminal_table_aligns_columns_and_marks_the_winner() {
    let runs = [
        run("long-name", "x", 1, &two_epochs(0.5)),
        run("s", "y", 2, &two_epochs(0.25)),
    ];
    let c = compare(&runs, &Select::default()).unwrap();
    let text = table_text(&c);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[1].starts_with("*     1  s "), "{text}");
    assert!(lines[2].starts_with("      2  long-name "), "{text}");
    assert_eq!(lines[3], "winner: y (best val_loss 0.250000)");
    // Right-aligned numbers end in the same column.
    let end = |l: &str, cell: &str| l.find(cell).unwrap() + cell.len();
    assert_eq!(end(lines[1], "0.250000"), end(lines[2], "0.500000"));
}
