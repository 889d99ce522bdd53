//! Entry points that exist for anda's own tests and benchmark, not for
//! users: a panic and a long wait inside an engine call (for
//! `python_tests/test_concurrency.py`), and, built only with the `bench`
//! feature (`nox -s bench`), the timed and JSON-text variants of
//! `NativeNexus.execute` that tools/anda_bench/bench.py measures.
use crate::runtime;
use pyo3::prelude::*;

/// Panics inside an engine call. A test hook: it proves that a panic in the
/// engine reaches Python as `anda.EnginePanicError` instead of an abort, for
/// a call polled as commands are or (`on_worker`) as the calls that run on
/// the runtime's workers.
#[pyfunction]
#[pyo3(signature = (message, on_worker=false))]
pub fn _panic_in_engine(py: Python<'_>, message: String, on_worker: bool) -> PyResult<()> {
    wait_in_engine(py, on_worker, async move {
        panic!("{message}");
    })
}

/// Waits `seconds` inside an engine call, as `_panic_in_engine` runs. A test
/// hook: it stands in for a long engine call (the engine's own budgets stop
/// real queries within a fraction of a second) to show that Ctrl-C
/// interrupts the wait.
#[pyfunction]
#[pyo3(signature = (seconds, on_worker=false))]
pub fn _sleep_in_engine(py: Python<'_>, seconds: f64, on_worker: bool) -> PyResult<()> {
    let duration = std::time::Duration::try_from_secs_f64(seconds)
        .map_err(|err| pyo3::exceptions::PyValueError::new_err(err.to_string()))?;
    // Made inside the future: a timer needs the runtime it runs on.
    wait_in_engine(
        py,
        on_worker,
        async move { tokio::time::sleep(duration).await },
    )
}

/// Waits for a test hook's future on the path commands take, or on the one
/// the other calls take (`on_worker`).
fn wait_in_engine(
    py: Python<'_>,
    on_worker: bool,
    future: impl std::future::Future<Output = ()> + Send + 'static,
) -> PyResult<()> {
    if on_worker {
        runtime::block_on(py, future)
    } else {
        runtime::block_on_caller(py, future)
    }
}

#[cfg(feature = "bench")]
pub use bench::{_execute_json, _execute_timed};

#[cfg(feature = "bench")]
mod bench {
    use crate::{
        convert,
        job::{self, CallFailure},
        nexus::NativeNexus,
        runtime,
    };
    use pyo3::prelude::*;

    /// `NativeNexus.execute`, returning the response as JSON text encoded
    /// off the GIL: `nox -s bench` compares it with building the objects in
    /// Rust.
    #[pyfunction]
    #[pyo3(signature = (nexus, command, parameters, dry_run, execution, caller))]
    pub fn _execute_json(
        py: Python<'_>,
        nexus: &NativeNexus,
        command: &Bound<'_, PyAny>,
        parameters: &Bound<'_, PyAny>,
        dry_run: bool,
        execution: Option<&str>,
        caller: Option<&str>,
    ) -> PyResult<String> {
        let job = nexus.kip_job(command, parameters, dry_run, execution, caller)?;
        Ok(runtime::block_on_caller(py, async move {
            let response = job::respond(job).await?;
            serde_json::to_string(&response).map_err(CallFailure::Encode)
        })??)
    }

    /// `NativeNexus.execute`, with the nanoseconds the engine took on it
    /// (what `anda-bench-native` times): `nox -s bench` subtracts them from
    /// the call's wall time to measure the binding's own cost per call.
    #[pyfunction]
    #[pyo3(signature = (nexus, command, parameters, dry_run, execution, caller))]
    pub fn _execute_timed<'py>(
        py: Python<'py>,
        nexus: &NativeNexus,
        command: &Bound<'py, PyAny>,
        parameters: &Bound<'py, PyAny>,
        dry_run: bool,
        execution: Option<&str>,
        caller: Option<&str>,
    ) -> PyResult<(Bound<'py, PyAny>, u64)> {
        let job = nexus.kip_job(command, parameters, dry_run, execution, caller)?;
        let (response, nanos) = runtime::block_on_caller(py, async move {
            let started = std::time::Instant::now();
            let response = job::run(job).await;
            (response, started.elapsed().as_nanos() as u64)
        })?;
        Ok((convert::to_python(py, &response?)?, nanos))
    }
}
