//! Turns pest's errors into diagnostics in users' words: "expected a layer call or `let`, found
//! `)`", never rule names.

use super::grammar::Rule;
use crate::diag::{codes, Diagnostic, FileId, Span};
use pest::error::{ErrorVariant, InputLocation};

/// The keywords a block starts with, as messages list them.
pub const BLOCK_KEYWORDS: &str = "`model`, `data`, `train` or `experiment`";

/// What the parser was parsing, which says what it expected at the start of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    TopLevel,
    ModelHeader,
    ModelBody,
    DataHeader,
    DataBody,
    TrainHeader,
    TrainBody,
    ExperimentHeader,
    ExperimentBody,
    Override,
}

impl Context {
    fn expected_at_start(self) -> &'static str {
        match self {
            Context::TopLevel => BLOCK_KEYWORDS,
            Context::ModelHeader => "a model header such as `model Name(x: f32[N, 4]) {`",
            Context::ModelBody => "a layer call or `let`",
            Context::DataHeader => "a data header such as `data Name {`",
            Context::DataBody => "a setting such as `source`, `map` or `batch`",
            Context::TrainHeader => "a train header such as `train Model on Data {`",
            Context::TrainBody => "a setting such as `loss`, `optimizer` or `epochs`",
            Context::ExperimentHeader => "an experiment header such as `experiment Name {`",
            Context::ExperimentBody => "`base`, `vary`, `repeat`, `select` or a setting",
            Context::Override => "a setting such as `optimizer=adam(lr: 3e-4)` or `data.batch=32`",
        }
    }
}

/// Words for what a rule stands for.
fn phrase(rule: Rule) -> &'static str {
    match rule {
        Rule::ident | Rule::arg_name => "a name",
        Rule::number | Rule::decimal | Rule::integer => "a number",
        Rule::string | Rule::string_body => "a string",
        Rule::boolean => "`true` or `false`",
        Rule::call | Rule::expr | Rule::list | Rule::tuple | Rule::stmt => "an expression",
        Rule::let_stmt | Rule::kw_let => "`let`",
        Rule::kw_model => "`model`",
        Rule::kw_data => "`data`",
        Rule::kw_train => "`train`",
        Rule::kw_on => "`on`",
        Rule::kw_as => "`as`",
        Rule::kw_experiment => "`experiment`",
        Rule::kw_vary => "`vary`",
        Rule::kw_select => "`select`",
        Rule::setting_path | Rule::vary_axes => "a setting such as `optimizer` or `data.batch`",
        Rule::vary_value | Rule::vary_group => "a value",
        Rule::pipe => "`|>`",
        Rule::arrow => "`->`",
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::lbracket => "`[`",
        Rule::rbracket => "`]`",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::comma => "`,`",
        Rule::colon => "`:`",
        Rule::eq => "`=`",
        Rule::slash => "`/`",
        Rule::tensor_type => "a tensor type such as `f32[N, 4]`",
        Rule::dim => "a dimension (a number or a symbol such as `N`)",
        Rule::param | Rule::params => "an input such as `x: f32[N, 4]`",
        Rule::output_list | Rule::output_decl => "an output such as `digit: f32[N, 10]`",
        Rule::arg => "an argument",
        Rule::setting | Rule::setting_alone | Rule::path_setting => "a setting",
        Rule::experiment_line | Rule::experiment_line_alone => "an experiment line",
        Rule::EOI => "the end of the line",
        _ => "something else",
    }
}

/// Rules that all mean "an expression could start here".
fn starts_expression(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::ident
            | Rule::call
            | Rule::number
            | Rule::decimal
            | Rule::string
            | Rule::boolean
            | Rule::list
            | Rule::tuple
            | Rule::lbracket
            | Rule::lparen
            | Rule::expr
            | Rule::arg
            | Rule::arg_name
    )
}

/// The order in which expected things are listed: the likeliest fix first.
fn rank(word: &str) -> u8 {
    match word {
        "`,`" => 0,
        "`)`" | "`]`" | "`}`" => 1,
        "an expression" | "a name" => 2,
        "the end of the line" => 4,
        "`|>`" => 5,
        _ => 3,
    }
}

/// Joins phrases as "a, b or c".
fn join_or(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Describes the token at `at` for "found ...".
pub fn describe_found(text: &str, at: usize) -> (String, Span) {
    let rest = text.get(at..).unwrap_or("");
    let Some(c) = rest.chars().next() else {
        return ("end of file".to_string(), Span::new(at, at));
    };
    if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
        let len = rest
            .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '.'))
            .unwrap_or(rest.len());
        let word = &rest[..len];
        let shown: String = word.chars().take(32).collect();
        return (format!("`{shown}`"), Span::new(at, at + len));
    }
    if c == '"' {
        return ("a string".to_string(), Span::new(at, at + 1));
    }
    if c == '\n' || c == '\r' {
        return ("the end of the line".to_string(), Span::new(at, at));
    }
    for two in ["|>", "->", "//", "/*"] {
        if rest.starts_with(two) {
            return (format!("`{two}`"), Span::new(at, at + 2));
        }
    }
    (format!("`{c}`"), Span::new(at, at + c.len_utf8()))
}

/// Converts a pest error from parsing `text[base..]` into a diagnostic.
pub fn syntax_error(
    file: FileId,
    text: &str,
    base: usize,
    err: &pest::error::Error<Rule>,
    context: Context,
) -> Diagnostic {
    let rel = match err.location {
        InputLocation::Pos(p) | InputLocation::Span((p, _)) => p,
    };
    let at = base.saturating_add(rel);
    let (found, span) = describe_found(text, at);
    let expected = if rel == 0 {
        context.expected_at_start().to_string()
    } else {
        match &err.variant {
            ErrorVariant::ParsingError { positives, .. } => {
                let in_body = matches!(
                    context,
                    Context::ModelBody
                        | Context::DataBody
                        | Context::TrainBody
                        | Context::ExperimentBody
                        | Context::Override
                );
                let mut words: Vec<&str> = Vec::new();
                let mut expression = false;
                for &r in positives {
                    if in_body && starts_expression(r) {
                        expression = true;
                    } else {
                        let p = phrase(r);
                        if !words.contains(&p) {
                            words.push(p);
                        }
                    }
                }
                if expression {
                    words.push("an expression");
                }
                // Every `)` and `]` in the grammar closes a comma-separated list.
                let closes_list = words.iter().any(|w| *w == "`)`" || *w == "`]`");
                if closes_list && !words.contains(&"`,`") {
                    words.push("`,`");
                }
                // What was found is not what was expected.
                words.retain(|w| *w != found);
                words.sort_by_key(|w| rank(w));
                if words.is_empty() {
                    "something else".to_string()
                } else {
                    join_or(&words)
                }
            }
            ErrorVariant::CustomError { message } => message.clone(),
        }
    };
    let label = if found == "end of file" || found == "the end of the line" {
        "the line ends here".to_string()
    } else {
        format!("unexpected {found}")
    };
    let mut d = Diagnostic::error(
        codes::SYNTAX_UNEXPECTED,
        format!("expected {expected}, found {found}"),
    )
    .primary(file, span, label);
    if let Some(h) = hint(text, at, context) {
        d = d.help(h);
    }
    d
}

/// A targeted hint for common slips.
fn hint(text: &str, at: usize, context: Context) -> Option<String> {
    let rest = text.get(at..).unwrap_or("");
    if rest.starts_with('=') && context == Context::ModelBody {
        return Some("bind a name with `let name = ...`".to_string());
    }
    if rest.starts_with("->") && context == Context::ModelBody {
        return Some(
            "layers are applied in order, one per line; pipe a value with `|>`".to_string(),
        );
    }
    if rest.starts_with('\'') {
        return Some("strings use double quotes: \"...\"".to_string());
    }
    if rest.starts_with(';') {
        return Some("statements end at the end of the line; remove the `;`".to_string());
    }
    if rest.starts_with('|') && !rest.starts_with("|>") {
        return Some("the pipe operator is `|>`".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_describes_words_symbols_and_end() {
        assert_eq!(describe_found("ab cd", 3).0, "`cd`");
        assert_eq!(describe_found("a)", 1).0, "`)`");
        assert_eq!(describe_found("a", 1).0, "end of file");
        assert_eq!(describe_found("x |> y", 2).0, "`|>`");
        assert_eq!(describe_found("\"s\"", 0).0, "a string");
    }

    #[test]
    fn join_reads_naturally() {
        assert_eq!(join_or(&["a"]), "a");
        assert_eq!(join_or(&["a", "b", "c"]), "a, b or c");
    }
}
