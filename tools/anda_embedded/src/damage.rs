//! Noticing the records the engine leaves out without an error.
//!
//! When a query meets a stored document that is gone or no longer fits its
//! schema, AndaDB skips it and says so only in a log warning: the answer is
//! then silently short. This module installs the process's `log` logger (if
//! nobody else has) and records those warnings, so that a call during which
//! one happened can be refused instead of answered wrong. The journal
//! reports here too ([`report`]) a payload it reads back damaged, which the
//! engine would skip without any warning.
use crate::verify::Problem;
use log::{Level, Log, Metadata, Record, kv};
use std::sync::{
    Mutex, Once,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

/// Warnings of AndaDB that mean "a stored record was left out".
const SKIP_MESSAGES: [&str; 3] = [
    "Skipping document that does not match the schema",
    "Skipping dead document id without a backing object",
    "Document id has no backing object",
];

/// Recent events kept for the error message; the count is kept whole.
const KEPT_EVENTS: usize = 64;

static EVENTS: AtomicU64 = AtomicU64::new(0);
static RECENT: Mutex<Vec<Problem>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();
static WATCHING: AtomicBool = AtomicBool::new(false);

struct DamageLog;

/// Whether a record may say that AndaDB skipped one.
fn watched(metadata: &Metadata<'_>) -> bool {
    metadata.level() <= Level::Warn && metadata.target().starts_with("anda_db")
}

impl Log for DamageLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        watched(metadata) || crate::engine_log::enabled(metadata)
    }

    /// Every record is also kept for the host, if it asked (`engine_log.rs`).
    fn log(&self, record: &Record<'_>) {
        crate::engine_log::log(record);
        if !watched(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        if !SKIP_MESSAGES.iter().any(|skip| message.starts_with(skip)) {
            return;
        }
        let source = record.key_values();
        let field = |key: &str| source.get(kv::Key::from_str(key)).map(|v| v.to_string());
        report(Problem {
            collection: field("collection").unwrap_or_else(|| "?".to_string()),
            document: field("doc_id").and_then(|id| id.parse().ok()),
            message,
        });
    }

    fn flush(&self) {}
}

/// Records a damaged record anda found itself (a payload that is not what
/// was written, see `journal/sums.rs`), so that the call that read it is
/// refused like one during which the engine skipped a record. Needs no
/// logger: it is noticed even when [`watch`] could not install one.
pub(crate) fn report(problem: Problem) {
    let mut recent = RECENT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if recent.len() == KEPT_EVENTS {
        recent.remove(0);
    }
    recent.push(problem);
    EVENTS.fetch_add(1, Ordering::AcqRel);
}

/// Starts watching (idempotent). Returns `false` if another logger was
/// installed first, in which case skipped records go unnoticed here.
pub fn watch() -> bool {
    static LOGGER: DamageLog = DamageLog;
    INSTALL.call_once(|| {
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(log::LevelFilter::Warn);
            WATCHING.store(true, Ordering::Release);
        }
    });
    WATCHING.load(Ordering::Acquire)
}

/// A mark to compare against with [`since`].
pub fn mark() -> u64 {
    EVENTS.load(Ordering::Acquire)
}

/// The records left out since `mark` (the latest few of them), if any.
pub fn since(mark: u64) -> Option<Vec<Problem>> {
    let now = EVENTS.load(Ordering::Acquire);
    if now == mark {
        return None;
    }
    let recent = RECENT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let new = usize::try_from(now - mark).unwrap_or(usize::MAX);
    Some(recent[recent.len().saturating_sub(new)..].to_vec())
}
