//! Why a store could not be opened, used or closed.
use crate::{Problem, journal};
use anda_kip::KipError;
use std::{fmt, path::PathBuf};

/// Why a store could not be opened or closed.
#[derive(Debug)]
pub enum StoreError {
    /// A bucket location or its options are wrong (an unknown option key, a
    /// configuration anda refuses).
    Config(String),
    /// A Schema Package given to open the store was refused.
    Schema(Box<KipError>),
    /// Another open store (in this process or another) holds the directory.
    Locked { path: PathBuf, detail: String },
    /// The directory could not be created or used.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The database or the engine refused to open, bootstrap or close.
    Engine(String),
    /// The store is damaged: documents its metadata lists cannot be read.
    Corrupt(Vec<Problem>),
    /// The directory holds something that is not an anda store, or holds
    /// a store in a way anda refuses to write through (a symbolic link).
    NotAStore { path: PathBuf, detail: String },
    /// Writes the engine took may or may not be durable: the journal could
    /// not be synced. The store takes no more calls until it is reopened.
    OutcomeUnknown(String),
    /// The directory holds a journal a stopped process left, which only a
    /// writable open replays.
    Unreplayed { path: PathBuf, bytes: u64 },
    /// A read-only open ([`crate::OpenOptions::existing_only`]) of a
    /// directory that is missing or empty: it is not created.
    NoStore { path: PathBuf },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Locked { path, detail } => write!(
                f,
                "the store directory {} is already open in another Nexus (this or another \
                 process); close it first ({detail})",
                path.display()
            ),
            StoreError::Io { path, source } => {
                write!(f, "cannot use store directory {}: {source}", path.display())
            }
            StoreError::Engine(message) | StoreError::Config(message) => f.write_str(message),
            StoreError::Schema(err) => write!(f, "{}: {}", err.code, err.message),
            StoreError::Corrupt(problems) => {
                write!(f, "the store is damaged ({} problem(s)):", problems.len())?;
                for problem in problems.iter().take(10) {
                    write!(f, " {}", describe(problem))?;
                }
                if problems.len() > 10 {
                    write!(f, " ... and {} more", problems.len() - 10)?;
                }
                Ok(())
            }
            StoreError::NotAStore { path, detail } => {
                write!(f, "refusing to use {} as a store: {detail}", path.display())
            }
            StoreError::OutcomeUnknown(message) => {
                write!(f, "the outcome of this call is unknown: {message}")
            }
            StoreError::NoStore { path } => write!(
                f,
                "no store to open read-only at {}",
                python_repr(&path.to_string_lossy())
            ),
            StoreError::Unreplayed { path, bytes } => write!(
                f,
                "the store directory {} holds an unreplayed journal ({} of {bytes} bytes): \
                 writes acknowledged before its last process stopped are only there. Open it \
                 once with anda, writable (for example `python -m anda --db {} \"DESCRIBE \
                 PRIMER\"`), to replay it",
                path.display(),
                journal::FILE_NAME,
                path.display()
            ),
        }
    }
}

impl std::error::Error for StoreError {}

/// One problem on one line: where, then what.
pub fn describe(problem: &Problem) -> String {
    match problem.document {
        Some(id) => format!(
            "[{} document {id}: {}]",
            problem.collection, problem.message
        ),
        None => format!("[{}: {}]", problem.collection, problem.message),
    }
}

pub(crate) fn engine_error(context: &str) -> impl FnOnce(String) -> StoreError + '_ {
    move |message| StoreError::Engine(format!("{context}: {message}"))
}

/// Text quoted as Python's `repr` quotes a `str`, so a message names a path
/// exactly as the Python caller wrote it.
pub(crate) fn python_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push(quote);
    for c in text.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if c == quote => {
                quoted.push('\\');
                quoted.push(c);
            }
            c if c.is_control() => quoted.extend(c.escape_default()),
            c => quoted.push(c),
        }
    }
    quoted.push(quote);
    quoted
}

#[cfg(test)]
mod tests {
    use super::python_repr;

    #[test]
    fn paths_are_quoted_as_python_quotes_them() {
        assert_eq!(python_repr("./no-store-here"), "'./no-store-here'");
        assert_eq!(python_repr("it's"), "\"it's\"");
        assert_eq!(python_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(python_repr("C:\\data"), "'C:\\\\data'");
    }
}
