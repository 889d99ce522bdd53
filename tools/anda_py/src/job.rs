//! One engine call as a job: prepared on the calling thread, run on the
//! shared runtime with the GIL released, and its outcome turned into Python
//! values once it is done — waited for (`runtime::block_on_caller`), or
//! started and delivered to an event loop (`start`), cancellable through
//! its `NativeTask`.
#[cfg(unix)]
use crate::inbox::NativeInbox;
use crate::{
    convert, errors,
    runtime::{self, Outcome},
};
use anda_embedded::{
    BulkError, EmbeddedNexus, Principal, Problem, StoreError, ToolName, WriteCommand, skipped,
};
use anda_engine::memory::KipArgs;
use anda_kip::Response;
use pyo3::{exceptions::PyValueError, prelude::*};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::RwLock;

/// The open store, or `None` once closed. Calls hold a read guard for their
/// whole run, so `close()` (which takes the write guard) waits for them.
pub(crate) type SharedStore = Arc<RwLock<Option<Arc<EmbeddedNexus>>>>;

pub(crate) const CLOSED_MESSAGE: &str =
    "this Nexus is closed; open a new one to use the store again";

/// A running `execute_async` call, so the awaiting side can cancel it.
#[pyclass(frozen, module = "anda._anda")]
pub struct NativeTask {
    handle: tokio::task::AbortHandle,
}

#[pymethods]
impl NativeTask {
    /// Aborts the engine task at its next suspension point.
    fn cancel(&self) {
        self.handle.abort();
    }
}

/// One engine call, prepared on the calling thread and run on the runtime.
pub(crate) struct Job {
    pub(crate) store: SharedStore,
    pub(crate) caller: Principal,
    pub(crate) work: Work,
}

#[allow(clippy::large_enum_variant)] // one per call, moved once into its task
pub(crate) enum Work {
    Kip {
        args: KipArgs,
        readonly: bool,
    },
    Tool {
        tool: ToolName,
        /// The model's arguments as JSON, or the failed response they earn.
        arguments: Result<Value, Box<Response>>,
        readonly: bool,
    },
    Bulk {
        writes: Vec<WriteCommand>,
        readonly: bool,
    },
    Envelope {
        /// The envelope as JSON, or the failed response it earns.
        envelope: Result<Value, Box<Response>>,
        readonly: bool,
    },
}

/// Why a call failed, kept as Rust values until the engine is done: the
/// exception is built on the calling thread (see `runtime::block_on_caller`).
pub(crate) enum CallFailure {
    Closed,
    /// The engine answered by leaving these damaged records out.
    Damaged(Vec<Problem>),
    /// A write that cannot join the bulk transaction.
    Refused(BulkError),
    /// The call's writes could not be acknowledged.
    Store(StoreError),
    Encode(serde_json::Error),
}

impl From<CallFailure> for PyErr {
    fn from(failure: CallFailure) -> Self {
        match failure {
            CallFailure::Closed => errors::closed_error(CLOSED_MESSAGE),
            CallFailure::Damaged(problems) => {
                errors::from_store_error(StoreError::Corrupt(problems))
            }
            CallFailure::Refused(err) => PyValueError::new_err((err.message, err.index)),
            CallFailure::Store(err) => errors::from_store_error(err),
            CallFailure::Encode(err) => encode_error(err),
        }
    }
}

/// Executes on the engine, holding the store open for the whole call.
pub(crate) async fn respond(job: Job) -> Result<Response, CallFailure> {
    let guard = job.store.read_owned().await;
    let Some(nexus) = guard.as_ref() else {
        return Err(CallFailure::Closed);
    };
    let mark = skipped::mark();
    let response = match job.work {
        Work::Kip { args, readonly } => nexus.execute(args, readonly, &job.caller).await,
        Work::Tool {
            tool,
            arguments,
            readonly,
        } => match arguments {
            Ok(arguments) => {
                nexus
                    .call_tool(tool, arguments, readonly, &job.caller)
                    .await
            }
            Err(response) => *response,
        },
        Work::Bulk { writes, readonly } => nexus
            .write_all(&writes, readonly, &job.caller)
            .await
            .map_err(CallFailure::Refused)?,
        Work::Envelope { envelope, readonly } => match envelope {
            Ok(envelope) => {
                nexus
                    .execute_envelope(envelope, readonly, &job.caller)
                    .await
            }
            Err(response) => *response,
        },
    };
    nexus.acknowledge().await.map_err(CallFailure::Store)?;
    // An answer the engine built by leaving damaged records out is wrong.
    match skipped::since(mark) {
        Some(problems) => Err(CallFailure::Damaged(problems)),
        None => Ok(response),
    }
}

/// Executes and encodes the response while still off the GIL.
pub(crate) async fn run(job: Job) -> Result<Value, CallFailure> {
    let response = respond(job).await?;
    serde_json::to_value(&response).map_err(CallFailure::Encode)
}

/// Runs `job` on the calling thread, the GIL released, and returns the
/// response as Python values.
pub(crate) fn wait<'py>(py: Python<'py>, job: Job) -> PyResult<Bound<'py, PyAny>> {
    let response = runtime::block_on_caller(py, run(job))??;
    convert::to_python(py, &response)
}

/// Starts `job` on the runtime. Its result goes to `reply`: an
/// `(inbox, token)` pair (see `inbox.rs`), or a callable called as
/// `reply(result, error)` from the engine thread.
pub(crate) fn start(job: Job, reply: &Bound<'_, PyAny>) -> PyResult<NativeTask> {
    #[cfg(unix)]
    if let Ok((inbox, token)) = reply.extract::<(PyRef<'_, NativeInbox>, u64)>() {
        let handle = runtime::spawn(run(job), inbox.poster(token))?;
        return Ok(NativeTask { handle });
    }
    let callback = reply.clone().unbind();
    let handle = runtime::spawn(run(job), move |outcome| {
        Python::attach(|py| deliver(py, &callback, outcome));
    })?;
    Ok(NativeTask { handle })
}

/// Runs `work` on the open store, which stays open until it is done: on the
/// runtime's workers, for the calls that are not commands.
pub(crate) fn with_store<T, F, Fut>(py: Python<'_>, store: SharedStore, work: F) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce(Arc<EmbeddedNexus>) -> Fut + Send + 'static,
    Fut: Future<Output = PyResult<T>> + Send + 'static,
{
    runtime::block_on(py, async move {
        // Held for the whole call, so close() waits for it.
        let guard = store.read_owned().await;
        match guard.as_ref() {
            Some(nexus) => work(nexus.clone()).await,
            None => Err(errors::closed_error(CLOSED_MESSAGE)),
        }
    })?
}

pub(crate) fn encode_error(err: serde_json::Error) -> PyErr {
    errors::store_error(format!("cannot encode the engine response: {err}"))
}

/// A finished call as Python's `(result, error)`, exactly one of them set.
pub(crate) fn settled<'py>(
    py: Python<'py>,
    outcome: Outcome<Result<Value, CallFailure>>,
) -> (Bound<'py, PyAny>, Bound<'py, PyAny>) {
    let failed = |err: PyErr| {
        (
            py.None().into_bound(py),
            err.into_value(py).into_bound(py).into_any(),
        )
    };
    match outcome {
        Ok(Ok(value)) => match convert::to_python(py, &value) {
            Ok(object) => (object, py.None().into_bound(py)),
            Err(err) => failed(err),
        },
        Ok(Err(failure)) => failed(failure.into()),
        Err(panic) => failed(errors::panic_error(panic)),
    }
}

fn deliver(py: Python<'_>, callback: &Py<PyAny>, outcome: Outcome<Result<Value, CallFailure>>) {
    if let Err(err) = callback.call1(py, settled(py, outcome)) {
        err.write_unraisable(py, Some(callback.bind(py)));
    }
}
