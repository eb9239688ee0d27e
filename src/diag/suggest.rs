//! "Did you mean ...?": the one policy for the closest known name to a misspelled one, used by
//! the checker (layers, arguments, settings, dtypes, names) and by data (settings, sources,
//! transforms, CSV columns) alike.
//!
//! Input: a name and the candidates in scope. Output: the best candidate within an edit
//! distance that scales with the name's length (a third of it, at least 1), or one the name is
//! a prefix of (or that is a prefix of it), or nothing. Case is ignored. Deterministic: ties go
//! to the first candidate.

/// Levenshtein distance (insertions, deletions, substitutions) over chars, with a transposition
/// of two neighbours counted as one edit.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows of the dynamic-programming table: two back, one back, current.
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let mut best = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            if i > 0 && j > 0 && a.get(i - 1) == Some(cb) && b.get(j - 1) == Some(ca) {
                best = best.min(prev2[j - 1] + 1);
            }
            cur[j + 1] = best;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Names longer than this get no did-you-mean: nobody mistypes a name that long, and the edit
/// distance is quadratic in the lengths (a hostile spec or CSV header could hold megabytes).
const LONGEST_NAME: usize = 128;

/// The edit distance from `lower` (a name, lowercased) to candidate `c` when `c` is a likely
/// typo for it (within `limit` edits, or a prefix of one another longer than 3 bytes), else
/// `None`. A prefix's distance is the difference in length, and candidates whose length alone
/// rules them out are not compared, so the cost stays linear in the candidates.
fn typo_distance(lower: &str, c: &str, limit: usize) -> Option<usize> {
    let (n, m) = (lower.chars().count(), c.chars().count());
    if n > LONGEST_NAME || m > LONGEST_NAME {
        return None;
    }
    if c.len() > 3 && (c.starts_with(lower) || lower.starts_with(c)) {
        return Some(n.abs_diff(m));
    }
    if n.abs_diff(m) > limit {
        return None;
    }
    let d = edit_distance(lower, &c.to_ascii_lowercase());
    (d <= limit).then_some(d)
}

/// The closest candidate to `name`, if one is close enough to be a likely typo.
pub fn closest<'a, I>(name: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (name.chars().count() / 3).max(1);
    let lower = name.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        if c == name {
            continue;
        }
        if let Some(d) = typo_distance(&lower, c, limit) {
            if best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, c));
            }
        }
    }
    best.map(|(_, c)| c)
}

/// Up to `n` candidates close enough to `name` to be likely typos, closest first (ties in the
/// candidates' order): for a help that offers several (`conv1d` and `conv2d` for `conv`).
pub fn closest_several<'a, I>(name: &str, candidates: I, n: usize) -> Vec<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (name.chars().count() / 3).max(1);
    let lower = name.to_ascii_lowercase();
    let mut close: Vec<(usize, usize, &'a str)> = Vec::new();
    for (order, c) in candidates.into_iter().enumerate() {
        if c == name {
            continue;
        }
        if let Some(d) = typo_distance(&lower, c, limit) {
            close.push((d, order, c));
        }
    }
    close.sort_unstable();
    close.into_iter().take(n).map(|(_, _, c)| c).collect()
}

/// `did you mean `x`?` for a help line, or a list of valid names when nothing is close.
pub fn help_for<'a, I>(name: &str, candidates: I, what: &str) -> Option<String>
where
    I: IntoIterator<Item = &'a str> + Clone,
{
    if let Some(c) = closest(name, candidates.clone()) {
        return Some(format!("did you mean `{c}`?"));
    }
    let all: Vec<&str> = candidates.into_iter().collect();
    if all.is_empty() || all.len() > 12 {
        None
    } else {
        Some(format!("{what}: {}", all.join(", ")))
    }
}

/// `did you mean `x`?` for a help line, else the list of valid names (`expected one of: ...`,
/// capped by [`capped_list`]): for closed keyword sets and for names found in files.
pub fn help_or_list(name: &str, candidates: &[&str]) -> String {
    match closest(name, candidates.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None => format!("expected one of: {}", capped_list(candidates)),
    }
}

/// How many names a list in a help shows, and how many characters of each.
const LIST_NAMES: usize = 16;
const LIST_NAME_CHARS: usize = 40;

/// `a, b, c`, at most [`LIST_NAMES`] names of at most [`LIST_NAME_CHARS`] characters each, then
/// `... and N more`: a list from a file (a CSV header) may be huge, or not names at all.
pub fn capped_list(names: &[&str]) -> String {
    let mut shown: Vec<String> = names
        .iter()
        .take(LIST_NAMES)
        .map(|n| match n.char_indices().nth(LIST_NAME_CHARS) {
            Some((cut, _)) => format!("{}…", &n[..cut]),
            None => (*n).to_string(),
        })
        .collect();
    if names.len() > LIST_NAMES {
        shown.push(format!("... and {} more", names.len() - LIST_NAMES));
    }
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_by_hand() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("dense", "dense"), 0);
        assert_eq!(edit_distance("dense", "dence"), 1);
        assert_eq!(edit_distance("conv2d", "conv3d"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("relu", "rleu"), 1); // transposition
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn lists_in_helps_are_capped_in_count_and_width() {
        let many: Vec<String> = (0..1000).map(|i| format!("col{i}")).collect();
        let names: Vec<&str> = many.iter().map(String::as_str).collect();
        let list = capped_list(&names);
        assert!(list.starts_with("col0, col1, "), "{list}");
        assert!(list.ends_with("col15, ... and 984 more"), "{list}");
        let long = "x".repeat(100);
        assert_eq!(
            capped_list(&[&long, "b"]),
            format!("{}…, b", "x".repeat(40))
        );
        assert_eq!(capped_list(&["a", "b"]), "a, b");
    }

    #[test]
    fn very_long_names_get_no_suggestion_and_cost_no_quadratic_work() {
        let long = "a".repeat(200_000);
        assert_eq!(closest(&long, ["aaaa", long.as_str()]), None);
        let header: Vec<String> = (0..100_000).map(|i| format!("c{i}")).collect();
        assert_eq!(
            closest("c99999x", header.iter().map(String::as_str)),
            Some("c99999")
        );
    }

    #[test]
    fn closest_picks_likely_typos_only() {
        let layers = ["dense", "conv2d", "max_pool2d", "dropout"];
        assert_eq!(closest("dnse", layers), Some("dense"));
        assert_eq!(closest("maxpool2d", layers), Some("max_pool2d"));
        assert_eq!(closest("Dense", layers), Some("dense"));
        assert_eq!(closest("transformer", layers), None);
        assert_eq!(closest("dense", layers), None);
    }

    #[test]
    fn several_close_names_come_closest_first() {
        let layers = ["conv2d", "conv1d", "dense", "max_pool1d", "max_pool2d"];
        assert_eq!(closest_several("conv", layers, 3), vec!["conv2d", "conv1d"]);
        assert_eq!(
            closest_several("conv3d", layers, 3),
            vec!["conv2d", "conv1d"]
        );
        assert_eq!(closest_several("max_pool3d", layers, 1), vec!["max_pool1d"]);
        assert!(closest_several("transformer", layers, 3).is_empty());
    }

    #[test]
    fn data_names_get_the_same_policy() {
        let names = ["standardize", "normalize", "scale", "resize", "reshape"];
        assert_eq!(closest("standardise", names), Some("standardize"));
        assert_eq!(closest("resise", names), Some("resize"));
        assert_eq!(closest("Scale", names), Some("scale"));
        assert_eq!(closest("xyz", names), None);
        assert_eq!(edit_distance("bacth", "batch"), 1);
        assert_eq!(edit_distance("flaw", "lawn"), 2);
        assert_eq!(help_or_list("sclae", &names), "did you mean `scale`?");
        assert_eq!(help_or_list("xyz", &["a", "b"]), "expected one of: a, b");
    }
}
