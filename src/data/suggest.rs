//! "Did you mean" suggestions for misspelt names in data blocks and data files.
//!
//! Input: a name as written and the names that would have been valid. Output: the closest
//! valid name, if it is close enough to be a plausible typo.

pub use crate::check::suggest::edit_distance;

/// The candidate closest to `name`, if within a third of its length (at least 1, at most 3
/// edits); ties go to the earlier candidate. Case differences alone always match.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = if c.to_lowercase() == lower {
            0
        } else {
            edit_distance(name, c)
        };
        let better = match best {
            Some((bd, _)) => d < bd,
            None => true,
        };
        if d <= limit && better {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// `help: did you mean `x`?` text for a suggestion, or a list of the valid names.
pub fn help_text(name: &str, candidates: &[&str]) -> String {
    match suggest(name, candidates.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("expected one of: {}", candidates.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_substitutions() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("bacth", "batch"), 1);
        assert_eq!(edit_distance("ca", "abc"), 3);
        assert_eq!(edit_distance("flaw", "lawn"), 2);
    }

    #[test]
    fn suggest_picks_the_closest_plausible_name() {
        let names = ["standardize", "normalize", "scale", "resize", "reshape"];
        assert_eq!(suggest("standardise", names), Some("standardize"));
        assert_eq!(suggest("resise", names), Some("resize"));
        assert_eq!(suggest("Scale", names), Some("scale"));
        assert_eq!(suggest("xyz", names), None);
    }
}
