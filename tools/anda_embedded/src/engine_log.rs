//! The engine's log records, kept for a host to hand to its own logging.
//!
//! AndaDB and the engine say what goes wrong (a record skipped, a retry, a
//! recovery) only in `log` records; object_store's HTTP client says it in
//! `tracing` events. Nothing reads either unless a host asks: [`keep`] sets
//! the least severe level kept, and from then on the process's `log` logger
//! (the one `damage.rs` installs, which passes every record here) and a
//! `tracing` subscriber queue each record at or above it, on whatever thread
//! logs it, without waiting on anything but a short lock. The host drains the
//! queue with [`take`] when it suits it: anda_py does at the end of each
//! call, on the calling thread, which holds the GIL then anyway.
//!
//! The queue is bounded: past [`CAPACITY`] records the oldest go, and
//! [`take`] says how many.
pub use log::{Level, LevelFilter};
use log::{Metadata, Record, kv};
use std::{
    collections::VecDeque,
    sync::{
        Mutex, Once,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
};

/// Records kept between two [`take`]s; older ones are dropped first.
pub const CAPACITY: usize = 1024;

/// One record, as the engine logged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub level: Level,
    /// Where it was logged: a module path, e.g. `anda_db::collection`.
    pub target: String,
    pub message: String,
    /// Its structured fields (`collection`, `doc_id`, ...), as text.
    pub fields: Vec<(String, String)>,
    pub file: Option<String>,
    pub line: Option<u32>,
}

/// The least severe level kept, as `LevelFilter as usize` (0: nothing).
static LEVEL: AtomicUsize = AtomicUsize::new(0);
static QUEUE: Mutex<VecDeque<Entry>> = Mutex::new(VecDeque::new());
static PENDING: AtomicBool = AtomicBool::new(false);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static TRACING: Once = Once::new();

/// Keeps the records at `level` and above from now on (`LevelFilter::Off`:
/// none). Installs the `log` logger and the `tracing` subscriber if nobody
/// else has; returns `false` if the `log` logger could not be installed.
pub fn keep(level: LevelFilter) -> bool {
    let installed = crate::damage::watch();
    LEVEL.store(level as usize, Ordering::Release);
    // The damage watch needs AndaDB's warnings whatever the host keeps.
    log::set_max_level(level.max(LevelFilter::Warn));
    TRACING.call_once(|| {
        let _ = tracing::subscriber::set_global_default(Events);
    });
    installed
}

/// The least severe level kept now.
pub fn level() -> LevelFilter {
    match LEVEL.load(Ordering::Acquire) {
        0 => LevelFilter::Off,
        1 => LevelFilter::Error,
        2 => LevelFilter::Warn,
        3 => LevelFilter::Info,
        4 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

/// Whether records are waiting for [`take`]: one atomic load.
pub fn pending() -> bool {
    PENDING.load(Ordering::Acquire)
}

/// The records kept since the last call, oldest first, and how many were
/// dropped meanwhile because the queue was full.
pub fn take() -> (Vec<Entry>, u64) {
    if !PENDING.swap(false, Ordering::AcqRel) {
        return (Vec::new(), 0);
    }
    let mut queue = QUEUE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let entries = queue.drain(..).collect();
    drop(queue);
    (entries, DROPPED.swap(0, Ordering::AcqRel))
}

/// Whether a record of this level is kept now.
pub(crate) fn enabled(metadata: &Metadata<'_>) -> bool {
    (metadata.level() as usize) <= LEVEL.load(Ordering::Relaxed)
}

/// Keeps a `log` record, if its level is kept (see `damage::DamageLog`).
pub(crate) fn log(record: &Record<'_>) {
    if !enabled(record.metadata()) {
        return;
    }
    let mut fields = Fields(Vec::new());
    let _ = record.key_values().visit(&mut fields);
    push(Entry {
        level: record.level(),
        target: record.target().to_string(),
        message: record.args().to_string(),
        fields: fields.0,
        file: record.file().map(str::to_string),
        line: record.line(),
    });
}

fn push(entry: Entry) {
    let mut queue = QUEUE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if queue.len() >= CAPACITY {
        queue.pop_front();
        DROPPED.fetch_add(1, Ordering::AcqRel);
    }
    queue.push_back(entry);
    PENDING.store(true, Ordering::Release);
}

struct Fields(Vec<(String, String)>);

impl<'kvs> kv::VisitSource<'kvs> for Fields {
    fn visit_pair(&mut self, key: kv::Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        self.0.push((key.to_string(), value.to_string()));
        Ok(())
    }
}

/// The `tracing` subscriber: keeps events at the kept levels, and no span
/// (none is ever enabled, so they cost their callsites nothing more).
struct Events;

fn log_level(level: &tracing::Level) -> Level {
    match *level {
        tracing::Level::ERROR => Level::Error,
        tracing::Level::WARN => Level::Warn,
        tracing::Level::INFO => Level::Info,
        tracing::Level::DEBUG => Level::Debug,
        _ => Level::Trace,
    }
}

impl tracing::Subscriber for Events {
    fn register_callsite(
        &self,
        _metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // The kept level changes at run time: ask `enabled` every time.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.is_event()
            && (log_level(metadata.level()) as usize) <= LEVEL.load(Ordering::Relaxed)
    }

    fn new_span(&self, _span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _span: &tracing::span::Id, _values: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let metadata = event.metadata();
        let mut visitor = EventFields::default();
        event.record(&mut visitor);
        push(Entry {
            level: log_level(metadata.level()),
            target: metadata.target().to_string(),
            message: visitor.message,
            fields: visitor.fields,
            file: metadata.file().map(str::to_string),
            line: metadata.line(),
        });
    }

    fn enter(&self, _span: &tracing::span::Id) {}

    fn exit(&self, _span: &tracing::span::Id) {}
}

#[derive(Default)]
struct EventFields {
    message: String,
    fields: Vec<(String, String)>,
}

impl tracing::field::Visit for EventFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields
                .push((field.name().to_string(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields
                .push((field.name().to_string(), format!("{value:?}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the level and the queue are the process's.
    #[test]
    fn records_at_the_kept_level_are_queued_and_taken_once() {
        keep(LevelFilter::Warn);
        log::info!(target: "anda_db::test", "not kept");
        log::warn!(target: "anda_db::test", collection = "people", doc_id = 9; "kept {}", 1);
        tracing::warn!(target: "object_store::test", retries = 2, "retrying");
        tracing::debug!(target: "object_store::test", "not kept either");
        assert!(pending());
        let (entries, dropped) = take();
        assert_eq!(dropped, 0);
        let ours: Vec<_> = entries
            .iter()
            .filter(|e| e.target.ends_with("::test"))
            .collect();
        assert_eq!(ours.len(), 2, "{entries:?}");
        assert_eq!(ours[0].message, "kept 1");
        assert_eq!(ours[0].level, Level::Warn);
        assert_eq!(
            ours[0].fields,
            [
                ("collection".into(), "people".into()),
                ("doc_id".into(), "9".into())
            ]
        );
        assert_eq!(ours[1].message, "retrying");
        assert_eq!(ours[1].fields, [("retries".into(), "2".into())]);
        assert!(!pending() && take().0.is_empty());

        keep(LevelFilter::Off);
        log::error!(target: "anda_db::test", "nobody asked");
        assert!(!pending());
        for i in 0..CAPACITY + 5 {
            keep(LevelFilter::Error);
            log::error!(target: "anda_db::test", "{i}");
        }
        // Other tests may log errors meanwhile: only the bounds are exact.
        let (entries, dropped) = take();
        assert_eq!(entries.len(), CAPACITY);
        assert!(dropped >= 5, "{dropped}");
        let last = entries.iter().rev().find(|e| e.target == "anda_db::test");
        assert_eq!(last.map(|e| e.message.as_str()), Some("1028"));
        keep(LevelFilter::Off);
    }
}
