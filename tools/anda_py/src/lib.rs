//! The native core of the `anda` Python package (`anda._anda`): this file
//! only declares the modules and registers what Python sees.
//!
//! One concern per file: `nexus` (the store object), `job` (running a call on
//! the runtime: waiting, starting, cancelling), `args` (a call's arguments in
//! the store's terms), `convert` (Python ⇄ JSON), `requests` (what an
//! `anda.Client` sends, checked as `nexus` checks it), `bulk` (joining
//! writes into one transaction), `tools` (the engine's tools as a model sees
//! them), `errors` (typed exceptions), `copy` (copying a whole store),
//! `runtime` (the process-wide tokio runtime), `inbox` (how async calls'
//! results reach their event loop), `logging` (the engine's log records,
//! handed to Python's `logging`), `faults` (the fault-injection hooks of
//! `anda.testing`), `hooks` (entry points for anda's own tests and, with the
//! `bench` feature, its benchmark).
mod args;
mod bulk;
mod convert;
mod copy;
mod errors;
mod faults;
mod hooks;
#[cfg(unix)]
mod inbox;
mod job;
mod logging;
mod nexus;
mod requests;
mod runtime;
mod tools;

use pyo3::prelude::*;

#[pymodule(gil_used = false)]
mod _anda {
    #[pymodule_export]
    use super::args::{caller_principal_text, is_bucket_url};
    #[pymodule_export]
    use super::bulk::combine_writes;
    #[pymodule_export]
    use super::copy::NativeStoreCopy;
    #[pymodule_export]
    use super::faults::{_fault_crash_after, _fault_events, _fault_reset, _fault_rule};
    #[cfg(feature = "bench")]
    #[pymodule_export]
    use super::hooks::{_execute_json, _execute_timed};
    #[pymodule_export]
    use super::hooks::{_panic_in_engine, _sleep_in_engine};
    #[cfg(unix)]
    #[pymodule_export]
    use super::inbox::NativeInbox;
    #[pymodule_export]
    use super::job::NativeTask;
    #[pymodule_export]
    use super::logging::{_hand_over_engine_logs, _keep_engine_logs};
    #[pymodule_export]
    use super::nexus::NativeNexus;
    #[pymodule_export]
    use super::requests::{envelope_request, kip_request, tool_request};
    #[pymodule_export]
    use super::tools::{agent_texts, tool_definitions};

    #[allow(non_upper_case_globals)] // Python's name for it
    #[pymodule_export]
    const __version__: &str = env!("CARGO_PKG_VERSION");
    #[pymodule_export]
    const ANDA_ENGINE_VERSION: &str = anda_embedded::ANDA_ENGINE_VERSION;
    #[pymodule_export]
    const ANDA_KIP_VERSION: &str = anda_embedded::ANDA_KIP_VERSION;
    #[pymodule_export]
    const ANDA_COGNITIVE_NEXUS_VERSION: &str = anda_embedded::ANDA_COGNITIVE_NEXUS_VERSION;
    #[pymodule_export]
    const ANDA_DB_VERSION: &str = anda_embedded::ANDA_DB_VERSION;
    #[pymodule_export]
    const KIP_VERSION: &str = anda_embedded::KIP_VERSION;
    #[pymodule_export]
    const DEFAULT_DB_NAME: &str = anda_embedded::DEFAULT_DB_NAME;
    #[pymodule_export]
    const DEFAULT_LEASE_TTL: f64 = anda_embedded::DEFAULT_LEASE_TTL.as_secs_f64();
    #[pymodule_export]
    const MAX_JSON_DEPTH: usize = anda_embedded::MAX_JSON_DEPTH;
    #[pymodule_export]
    const MAX_SAFE_INTEGER: i64 = super::convert::MAX_SAFE_INTEGER;
    #[pymodule_export]
    const DEFAULT_CHUNK_SIZE: usize = anda_embedded::DEFAULT_CHUNK_SIZE;
    #[pymodule_export]
    const MAX_CHUNK_SIZE: usize = anda_embedded::MAX_CHUNK_SIZE;
    #[pymodule_export]
    const MAX_CHUNK_TEXT: usize = anda_embedded::MAX_CHUNK_TEXT;
}
