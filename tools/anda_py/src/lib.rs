//! The native core of the `anda` Python package (`anda._anda`).
//!
//! One concern per file: `nexus` (the store object), `convert` (Python ⇄ JSON),
//! `requests` (what an `anda.Client` sends, checked as `nexus` checks it),
//! `errors` (typed exceptions), `copy` (a copy's destination), `runtime` (the process-wide tokio runtime),
//! `inbox` (how async calls' results reach their event loop).
mod convert;
mod copy;
mod errors;
mod faults;
#[cfg(unix)]
mod inbox;
mod nexus;
mod requests;
mod runtime;

use pyo3::prelude::*;

#[pymodule(gil_used = false)]
mod _anda {
    #[pymodule_export]
    use super::copy::NativeCopyDestination;
    #[cfg(unix)]
    #[pymodule_export]
    use super::inbox::NativeInbox;
    #[pymodule_export]
    use super::nexus::{NativeNexus, NativeTask};
    #[pymodule_export]
    use super::requests::{envelope_request, kip_request, tool_request};

    use anda_embedded::{ToolName, tool_definition};
    use pyo3::prelude::*;

    /// The engine's function definitions of its KIP tools, as the pinned
    /// crates ship them: `execute_kip` then `execute_kip_readonly`, or only
    /// the latter with `readonly`.
    #[pyfunction]
    #[pyo3(signature = (readonly))]
    fn tool_definitions(py: Python<'_>, readonly: bool) -> PyResult<Vec<Bound<'_, PyAny>>> {
        let tools: &[ToolName] = if readonly {
            &[ToolName::ExecuteKipReadonly]
        } else {
            &[ToolName::ExecuteKip, ToolName::ExecuteKipReadonly]
        };
        tools
            .iter()
            .map(|tool| crate::convert::to_python(py, &tool_definition(*tool)))
            .collect()
    }

    /// The agent-facing documents anda_kip ships, by name.
    #[pyfunction]
    fn agent_texts() -> Vec<(&'static str, &'static str)> {
        anda_embedded::agent_texts().to_vec()
    }

    /// Joins KML writes (`(command, parameters)` tuples) into the one
    /// `MUTATE` and parameters a bulk transaction sends; a write that cannot
    /// join raises `ValueError(message, index)`.
    #[pyfunction]
    fn combine_writes<'py>(
        py: Python<'py>,
        writes: &Bound<'py, pyo3::types::PyList>,
    ) -> PyResult<(String, Bound<'py, PyAny>)> {
        let writes = crate::nexus::write_commands(writes)?;
        let (command, parameters) = anda_embedded::combine_writes(&writes)
            .map_err(|err| pyo3::exceptions::PyValueError::new_err((err.message, err.index)))?;
        let parameters = crate::convert::to_python(py, &serde_json::Value::Object(parameters))?;
        Ok((command, parameters))
    }

    /// Whether a location names an object-storage bucket (`s3://`, `gs://`,
    /// `az://`, ...) rather than a directory.
    #[pyfunction]
    fn is_bucket_url(location: &str) -> bool {
        anda_embedded::is_bucket_url(location)
    }

    /// The Principal (as text) that a caller id runs as.
    #[pyfunction]
    fn caller_principal(caller: &str) -> String {
        anda_embedded::caller_principal(caller).to_text()
    }

    /// Panics inside an engine call. A test hook: it proves that a panic in
    /// the engine reaches Python as `anda.EnginePanicError` instead of an
    /// abort, for a call polled as commands are or (`on_worker`) as the calls
    /// that run on the runtime's workers.
    #[pyfunction]
    #[pyo3(signature = (message, on_worker=false))]
    fn _panic_in_engine(py: Python<'_>, message: String, on_worker: bool) -> PyResult<()> {
        wait_in_engine(py, on_worker, async move {
            panic!("{message}");
        })
    }

    /// Waits `seconds` inside an engine call, as `_panic_in_engine` runs. A
    /// test hook: it stands in for a long engine call (the engine's own budgets
    /// stop real queries within a fraction of a second) to show that Ctrl-C
    /// interrupts the wait.
    #[pyfunction]
    #[pyo3(signature = (seconds, on_worker=false))]
    fn _sleep_in_engine(py: Python<'_>, seconds: f64, on_worker: bool) -> PyResult<()> {
        let duration = std::time::Duration::try_from_secs_f64(seconds)
            .map_err(|err| pyo3::exceptions::PyValueError::new_err(err.to_string()))?;
        // Made inside the future: a timer needs the runtime it runs on.
        wait_in_engine(
            py,
            on_worker,
            async move { tokio::time::sleep(duration).await },
        )
    }

    /// Waits for a test hook's future on the path commands take, or on the
    /// one the other calls take (`on_worker`).
    fn wait_in_engine(
        py: Python<'_>,
        on_worker: bool,
        future: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> PyResult<()> {
        if on_worker {
            crate::runtime::block_on(py, future)
        } else {
            crate::runtime::block_on_caller(py, future)
        }
    }

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
}
