//! Many write commands as one engine transaction.
//!
//! Each engine transaction flushes the store, so a write costs about as much
//! as one flush whatever it changes; one `MUTATE { … }` holding many clauses
//! pays that once. [`combine`] joins KML commands, each with its own
//! parameters, into one `MUTATE` whose clauses cannot see one another's
//! names: every `?handle` and `:parameter` of command *i* is renamed to
//! `?o<i>_handle` / `:o<i>_parameter`, and the parameters are renamed with
//! them. Values stay data in the parameter map; only names are rewritten.
//!
//! Renaming is lexical, on KIP's tokens (JSON strings and `//` comments are
//! left alone). A `:` is a parameter sigil unless it separates a map key
//! from its value (`{ key: … }`). Any misreading leaves a parameter name the
//! combined map does not hold, which the engine refuses: never a silent
//! mis-binding.
use serde_json::{Map, Value};
use std::fmt;

/// The statements a `MUTATE` block may hold (KIP 2.0 `mutation_clause`), and
/// `MUTATE` itself, whose clauses are merged into the block.
const MUTATION_KEYWORDS: [&str; 10] = [
    "CREATE",
    "UPSERT",
    "ENSURE",
    "ASSERT",
    "UPDATE",
    "TRANSITION",
    "SET",
    "PURGE",
    "MERGE",
    "MUTATE",
];

/// Operations in a bulk write's first transaction (`anda.bulk`, and the
/// chunks the native benchmark loads with). The engine caps one transaction
/// by the size of its commit record (~2 MB) and of its change list (4,096
/// entries): a few hundred typical writes fit with room to spare. Unless told
/// a fixed chunk size, later transactions grow from here; a chunk that does
/// not fit is split and retried, never partly applied.
pub const DEFAULT_CHUNK_SIZE: usize = 200;

/// The most operations a growing chunk reaches: at one change each they
/// already fill the engine's change list.
pub const MAX_CHUNK_SIZE: usize = 4096;

/// Command text per transaction, well inside the parser's 256 KiB.
pub const MAX_CHUNK_TEXT: usize = 192 * 1024;

/// Why a command cannot join a bulk transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkError {
    /// The position of the command in the batch given to [`combine`].
    pub index: usize,
    pub message: String,
}

impl fmt::Display for BulkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "operation {}: {}", self.index, self.message)
    }
}

impl std::error::Error for BulkError {}

/// One write: KML command text and the parameters it takes.
pub type WriteCommand = (String, Option<Map<String, Value>>);

/// Joins `commands` into one `MUTATE { … }` and the parameters it takes.
pub fn combine(commands: &[WriteCommand]) -> Result<(String, Map<String, Value>), BulkError> {
    let mut text = String::from("MUTATE {\n");
    let mut parameters = Map::new();
    for (index, (command, params)) in commands.iter().enumerate() {
        let prefix = format!("o{index}_");
        let clauses =
            renamed_clauses(command, &prefix).map_err(|message| BulkError { index, message })?;
        text.push_str(&clauses);
        text.push('\n');
        for (name, value) in params.iter().flatten() {
            parameters.insert(format!("{prefix}{name}"), value.clone());
        }
    }
    text.push('}');
    Ok((text, parameters))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Token {
    Word,
    Str,
    Punct(char),
    Sigil,
}

/// The command with its names prefixed; for a `MUTATE`, its clauses only.
fn renamed_clauses(command: &str, prefix: &str) -> Result<String, String> {
    let chars: Vec<char> = command.chars().collect();
    let mut out = String::with_capacity(command.len() + 32);
    // The two significant tokens before the current one.
    let (mut last, mut before_last): (Option<Token>, Option<Token>) = (None, None);
    let mut first_word: Option<String> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let token = if c == '"' {
            let end = string_end(&chars, i).ok_or("unterminated string literal")?;
            out.extend(&chars[i..end]);
            i = end;
            Token::Str
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        } else if c.is_whitespace() {
            out.push(c);
            i += 1;
            continue;
        } else if is_word_start(c) {
            let end = word_end(&chars, i);
            let word: String = chars[i..end].iter().collect();
            if first_word.is_none() {
                first_word = Some(word.to_ascii_uppercase());
            }
            out.push_str(&word);
            i = end;
            Token::Word
        } else if (c == '?' || c == ':')
            && chars.get(i + 1).is_some_and(|&next| is_word_start(next))
            && !(c == ':' && separates_key(last, before_last))
        {
            // A handle or a parameter: the sigil, the prefix, the name.
            let end = word_end(&chars, i + 1);
            out.push(c);
            out.push_str(prefix);
            out.extend(&chars[i + 1..end]);
            i = end;
            Token::Sigil
        } else {
            out.push(c);
            i += 1;
            Token::Punct(c)
        };
        before_last = last;
        last = Some(token);
    }
    match first_word.as_deref() {
        Some("MUTATE") => mutate_body(&out),
        Some(word) if MUTATION_KEYWORDS.contains(&word) => Ok(out),
        _ => Err(format!(
            "not a KML write a MUTATE block can hold (CREATE, UPSERT, ENSURE, ASSERT, \
             UPDATE, TRANSITION, SET, PURGE, MERGE or MUTATE): {}",
            preview(command)
        )),
    }
}

/// A `:` right after a map key (`{ key:` or `, "key":`) separates it from its value.
fn separates_key(last: Option<Token>, before_last: Option<Token>) -> bool {
    matches!(last, Some(Token::Word | Token::Str))
        && matches!(before_last, Some(Token::Punct('{' | ',')))
}

/// The clauses between `MUTATE {` and its closing `}`.
fn mutate_body(renamed: &str) -> Result<String, String> {
    let trimmed = renamed.trim_end();
    let open = trimmed.find('{').ok_or("MUTATE without '{'")?;
    let body = trimmed
        .strip_suffix('}')
        .ok_or("MUTATE without its closing '}'")?;
    Ok(body[open + 1..].to_string())
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn word_end(chars: &[char], start: usize) -> usize {
    let mut end = start;
    while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_') {
        end += 1;
    }
    end
}

/// The index just past the string literal opening at `start`.
fn string_end(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

fn preview(command: &str) -> String {
    const LIMIT: usize = 80;
    let mut shown: String = command.trim().chars().take(LIMIT).collect();
    if command.trim().chars().count() > LIMIT {
        shown.push('…');
    }
    format!("{shown:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(value: Value) -> Option<Map<String, Value>> {
        value.as_object().cloned()
    }

    #[test]
    fn names_are_prefixed_per_command_and_values_stay_data() {
        let upsert = r#"UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key } SET FIELDS { name: :name } }"#;
        let (text, parameters) = combine(&[
            (
                upsert.into(),
                params(json!({"key": "a", "name": "A :key ?p"})),
            ),
            (upsert.into(), params(json!({"key": "b", "name": "B"}))),
        ])
        .unwrap();
        assert!(text.starts_with(
            "MUTATE {\nUPSERT CONCEPT ?o0_p { MATCH { type: \"Person\", key: :o0_key }"
        ));
        assert!(text.contains(
            "?o1_p { MATCH { type: \"Person\", key: :o1_key } SET FIELDS { name: :o1_name }"
        ));
        assert_eq!(parameters["o0_name"], json!("A :key ?p"));
        assert_eq!(parameters.len(), 4);
    }

    #[test]
    fn strings_comments_and_map_keys_are_left_alone() {
        let command = "ASSERT (?s, \"says\", \"?x :y \\\" :z\") // :w ?v\n { by: ?s, mode:\"stated\", flag:true, n::n }";
        let (text, _) = combine(&[(command.into(), None)]).unwrap();
        assert!(
            text.contains("(?o0_s, \"says\", \"?x :y \\\" :z\")"),
            "{text}"
        );
        assert!(!text.contains(":w"), "comments are dropped: {text}");
        assert!(
            text.contains("{ by: ?o0_s, mode:\"stated\", flag:true, n::o0_n }"),
            "{text}"
        );
    }

    #[test]
    fn a_mutate_is_merged_clause_by_clause() {
        let mutate = "MUTATE { UPSERT CONCEPT ?a { MATCH {type: \"Person\", key: :k} } }";
        let (text, _) = combine(&[(mutate.into(), None), (mutate.into(), None)]).unwrap();
        assert_eq!(text.matches("MUTATE").count(), 1, "{text}");
        assert!(text.contains("?o1_a"));
    }

    #[test]
    fn reads_and_broken_text_are_refused_with_their_index() {
        let ok = (
            "UPSERT CONCEPT ?p { MATCH {type: \"Person\", key: \"k\"} }".into(),
            None,
        );
        let read = ("FIND(?p) WHERE { ?p {type: \"Person\"} }".into(), None);
        let err = combine(&[ok.clone(), read]).unwrap_err();
        assert_eq!(err.index, 1);
        assert!(err.message.starts_with("not a KML write"), "{err}");
        let open = ("UPSERT CONCEPT ?p { MATCH {key: \"k} }".into(), None);
        assert_eq!(
            combine(&[ok, open]).unwrap_err().message,
            "unterminated string literal"
        );
    }
}
