//! The engine's log records in Python's `logging` (`anda.engine.*` loggers).
//!
//! The engine logs on its own threads, which must never wait for the GIL
//! (a Python thread holding it may be waiting for them). So its records are
//! only queued there (`anda_embedded::engine_log`), and handed to Python
//! here, by the thread that made a call, once the call is done and the
//! thread holds the GIL again: [`hand_over`] costs one atomic load when
//! nothing was logged. `anda._engine_logs` turns them into `logging` records.
use anda_embedded::engine_log::{self, Entry, Level, LevelFilter};
use pyo3::prelude::*;

/// Keeps the engine's records at Python's logging `level` and above (a
/// number: 10 DEBUG, 20 INFO, 30 WARNING, 40 ERROR; above 50: none).
#[pyfunction]
pub fn _keep_engine_logs(level: i64) -> bool {
    let kept = match level {
        i64::MIN..=9 => LevelFilter::Trace,
        10..=19 => LevelFilter::Debug,
        20..=29 => LevelFilter::Info,
        30..=39 => LevelFilter::Warn,
        40..=50 => LevelFilter::Error,
        _ => LevelFilter::Off,
    };
    engine_log::keep(kept)
}

/// Hands the queued records to Python now (what every call does as it ends).
#[pyfunction]
pub fn _hand_over_engine_logs(py: Python<'_>) {
    hand_over(py);
}

/// Hands the records the engine logged since the last hand-over to
/// `anda._engine_logs.emit`, unless the interpreter is shutting down. Never
/// raises: logging must not fail a call.
pub(crate) fn hand_over(py: Python<'_>) {
    if !engine_log::pending() {
        return;
    }
    let (entries, dropped) = engine_log::take();
    if let Err(err) = emit(py, entries, dropped) {
        err.write_unraisable(py, None);
    }
}

type Emitted = (
    u32,
    String,
    String,
    Vec<(String, String)>,
    Option<String>,
    Option<u32>,
);

fn emit(py: Python<'_>, entries: Vec<Entry>, dropped: u64) -> PyResult<()> {
    let sys = py.import("sys")?;
    if sys.call_method0("is_finalizing")?.is_truthy()? {
        return Ok(());
    }
    let records: Vec<Emitted> = entries
        .into_iter()
        .map(|entry| {
            (
                python_level(entry.level),
                entry.target,
                entry.message,
                entry.fields,
                entry.file,
                entry.line,
            )
        })
        .collect();
    py.import("anda._engine_logs")?
        .call_method1("emit", (records, dropped))?;
    Ok(())
}

fn python_level(level: Level) -> u32 {
    match level {
        Level::Error => 40,
        Level::Warn => 30,
        Level::Info => 20,
        Level::Debug => 10,
        Level::Trace => 5,
    }
}
