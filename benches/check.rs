//! `cargo bench --bench check`: parse + check time of generated specs of 1k, 10k and 100k
//! dense/relu layers (target: 10k under 200 ms, linear growth).

use modelc::diag::FileId;
use modelc::syntax::{parse, Limits};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

fn spec(layers: usize) -> String {
    let mut s = String::from("model Deep(x: f32[N, 16]) -> f32[N, 16] {\n");
    for i in 0..layers {
        let _ = writeln!(s, "    {}", if i % 2 == 0 { "dense(16)" } else { "relu()" });
    }
    s.push_str("}\n");
    s
}

fn main() {
    let limits = Limits {
        max_source_bytes: u64::MAX,
        ..Limits::default()
    };
    println!(
        "{:>8}  {:>10}  {:>12}  {:>12}",
        "layers", "bytes", "best (ms)", "µs/layer"
    );
    for n in [1_000usize, 10_000, 100_000] {
        let text = spec(n);
        let runs = if n >= 100_000 { 3 } else { 10 };
        let mut best = Duration::MAX;
        for _ in 0..runs {
            let t = Instant::now();
            let parsed = parse(FileId::from_index(0), &text, &limits);
            let checked = modelc::check::check_file(FileId::from_index(0), &parsed.file);
            let elapsed = t.elapsed();
            assert!(parsed.diagnostics.is_empty() && checked.diagnostics.is_empty());
            assert_eq!(checked.models[0].layers.len(), n);
            best = best.min(elapsed);
        }
        let ms = best.as_secs_f64() * 1e3;
        println!(
            "{n:>8}  {:>10}  {ms:>12.2}  {:>12.3}",
            text.len(),
            ms * 1e3 / n as f64
        );
    }
}
