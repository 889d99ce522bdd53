//! The native store object behind `anda.Nexus`.
//!
//! Each call converts its parameters once, runs the engine on the shared
//! runtime with the GIL released, and converts the response once. Argument
//! shapes (batch items, execution modes) are checked by the Python layer; this
//! file checks only what needs the values themselves.
#[cfg(unix)]
use crate::inbox::NativeInbox;
use crate::{
    convert::{self, ConversionError},
    errors,
    runtime::{self, Outcome},
};
use anda_embedded::{
    BucketLocation, BulkError, EmbeddedNexus, ExecutionMode, KipOperation, Location, OpenOptions,
    Operation, PackageSource, Principal, Problem, StoreError, Tenancy, ToolName, WriteCommand,
    caller_principal, invalid_arguments, skipped,
};
use anda_engine::memory::KipArgs;
use anda_kip::Response;
use pyo3::{
    exceptions::PyValueError,
    prelude::*,
    types::{PyList, PyString, PyTuple},
};
use serde_json::Value;
use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};
use tokio::sync::RwLock;

/// The open store, or `None` once closed. Calls hold a read guard for their
/// whole run, so `close()` (which takes the write guard) waits for them.
type SharedStore = Arc<RwLock<Option<Arc<EmbeddedNexus>>>>;

#[pyclass(frozen, module = "anda._anda")]
pub struct NativeNexus {
    store: SharedStore,
    closed: AtomicBool,
    readonly: bool,
    path: Option<PathBuf>,
    url: Option<String>,
    tenancy: Tenancy,
    /// The process that opened the store, and the forks counted then: a
    /// forked child must not use it.
    pid: u32,
    forks: u64,
}

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

#[pymethods]
impl NativeNexus {
    #[new]
    #[allow(clippy::too_many_arguments)] // one keyword each on the Python side
    #[pyo3(signature = (path, name, readonly, tenancy, schema_packages, inject_faults, url, storage_options, lease_ttl))]
    fn new(
        py: Python<'_>,
        path: Option<PathBuf>,
        name: String,
        readonly: bool,
        tenancy: &str,
        schema_packages: Vec<(String, String)>,
        inject_faults: bool,
        url: Option<String>,
        storage_options: Vec<(String, String)>,
        lease_ttl: f64,
    ) -> PyResult<Self> {
        let location = location(path.clone(), url.clone(), storage_options);
        let tenancy = tenancy_from_name(tenancy)?;
        let options = OpenOptions {
            name,
            tenancy,
            schema_packages: package_sources(schema_packages),
            inject_faults,
            lease_ttl: lease_duration(lease_ttl)?,
            existing_only: readonly,
        };
        let store = runtime::block_on(
            py,
            async move { EmbeddedNexus::open(location, &options).await },
        )?
        .map_err(errors::from_store_error)?;
        Ok(Self {
            store: Arc::new(RwLock::new(Some(Arc::new(store)))),
            closed: AtomicBool::new(false),
            readonly,
            path,
            url: url.map(|url| anda_embedded::redacted_url(&url)),
            tenancy,
            pid: std::process::id(),
            forks: runtime::forks::count(),
        })
    }

    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    #[getter]
    fn readonly(&self) -> bool {
        self.readonly
    }

    #[getter]
    fn path(&self) -> Option<PathBuf> {
        self.path.clone()
    }

    #[getter]
    fn url(&self) -> Option<String> {
        self.url.clone()
    }

    #[getter]
    fn tenancy(&self) -> &'static str {
        match self.tenancy {
            Tenancy::Shared => "shared",
            Tenancy::PerCallerSpace => "per_caller",
        }
    }

    /// Runs one command (a `str`) or a batch (a list of `(command, parameters)`
    /// tuples) and returns the response envelope as a dict.
    #[pyo3(signature = (command, parameters, dry_run, execution, caller))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        command: &Bound<'py, PyAny>,
        parameters: &Bound<'py, PyAny>,
        dry_run: bool,
        execution: Option<&str>,
        caller: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let job = self.kip_job(command, parameters, dry_run, execution, caller)?;
        let response = runtime::block_on_caller(py, run(job))??;
        convert::to_python(py, &response)
    }

    /// The same call, returning the response as JSON text encoded off the GIL.
    /// `nox -s bench` compares it with building the objects in Rust.
    #[pyo3(signature = (command, parameters, dry_run, execution, caller))]
    fn _execute_json(
        &self,
        py: Python<'_>,
        command: &Bound<'_, PyAny>,
        parameters: &Bound<'_, PyAny>,
        dry_run: bool,
        execution: Option<&str>,
        caller: Option<&str>,
    ) -> PyResult<String> {
        let job = self.kip_job(command, parameters, dry_run, execution, caller)?;
        Ok(runtime::block_on_caller(py, async move {
            let response = respond(job).await?;
            serde_json::to_string(&response).map_err(CallFailure::Encode)
        })??)
    }

    /// The same call, with the nanoseconds the engine took on it (what
    /// `anda-bench-native` times): `nox -s bench` subtracts them from the
    /// call's wall time to measure the binding's own cost per call.
    #[pyo3(signature = (command, parameters, dry_run, execution, caller))]
    fn _execute_timed<'py>(
        &self,
        py: Python<'py>,
        command: &Bound<'py, PyAny>,
        parameters: &Bound<'py, PyAny>,
        dry_run: bool,
        execution: Option<&str>,
        caller: Option<&str>,
    ) -> PyResult<(Bound<'py, PyAny>, u64)> {
        let job = self.kip_job(command, parameters, dry_run, execution, caller)?;
        let (response, nanos) = runtime::block_on_caller(py, async move {
            let started = std::time::Instant::now();
            let response = run(job).await;
            (response, started.elapsed().as_nanos() as u64)
        })?;
        Ok((convert::to_python(py, &response?)?, nanos))
    }

    /// Starts the same call without waiting; its result goes to `reply` (see
    /// `start`).
    #[pyo3(signature = (command, parameters, dry_run, execution, caller, reply))]
    fn execute_async(
        &self,
        command: &Bound<'_, PyAny>,
        parameters: &Bound<'_, PyAny>,
        dry_run: bool,
        execution: Option<&str>,
        caller: Option<&str>,
        reply: &Bound<'_, PyAny>,
    ) -> PyResult<NativeTask> {
        let job = self.kip_job(command, parameters, dry_run, execution, caller)?;
        start(job, reply)
    }

    /// Runs a model's call of `execute_kip` or `execute_kip_readonly`:
    /// `arguments` is the JSON text or the mapping the model produced.
    /// Arguments that do not fit come back as a failed response, not as an
    /// exception; an unknown tool name is a `ValueError`.
    #[pyo3(signature = (name, arguments, caller))]
    fn call_tool<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        arguments: &Bound<'py, PyAny>,
        caller: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let job = self.tool_job(name, arguments, caller)?;
        let response = runtime::block_on_caller(py, run(job))??;
        convert::to_python(py, &response)
    }

    /// Commits KML writes (a list of `(command, parameters)` tuples) as one
    /// transaction and returns the response. A command that cannot join the
    /// transaction raises `ValueError(message, index)`.
    #[pyo3(signature = (commands, caller))]
    fn write_all<'py>(
        &self,
        py: Python<'py>,
        commands: &Bound<'py, PyList>,
        caller: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store_handle()?;
        let writes = write_commands(commands)?;
        let job = Job {
            store,
            caller: principal(caller),
            work: Work::Bulk {
                writes,
                readonly: self.readonly,
            },
        };
        let response = runtime::block_on_caller(py, run(job))??;
        convert::to_python(py, &response)
    }

    /// [`Self::call_tool`] without waiting, as `execute_async`.
    #[pyo3(signature = (name, arguments, caller, reply))]
    fn call_tool_async(
        &self,
        name: &str,
        arguments: &Bound<'_, PyAny>,
        caller: Option<&str>,
        reply: &Bound<'_, PyAny>,
    ) -> PyResult<NativeTask> {
        let job = self.tool_job(name, arguments, caller)?;
        start(job, reply)
    }

    /// Reads back every document the store lists; returns
    /// `(collections, documents_read, problems)` with collections as
    /// `(name, documents)` and problems as `(collection, document, message)`.
    #[allow(clippy::type_complexity)] // a plain tuple is the Python-side shape
    fn verify(
        &self,
        py: Python<'_>,
    ) -> PyResult<(Vec<(String, u64)>, u64, Vec<(String, Option<u64>, String)>)> {
        let report = self.with_store(py, |nexus| async move { Ok(nexus.verify().await) })?;
        let problems = report
            .problems
            .into_iter()
            .map(|p| (p.collection, p.document, p.message))
            .collect();
        Ok((report.collections, report.documents_read, problems))
    }

    /// Installs `(source, artifact)` Schema Packages and, with `activate`,
    /// puts them in force; returns the engine's response shape (a failed
    /// response when a package is refused).
    #[pyo3(signature = (packages, activate))]
    fn install_schema_packages<'py>(
        &self,
        py: Python<'py>,
        packages: Vec<(String, String)>,
        activate: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let packages = package_sources(packages);
        let response = self.on_store(py, move |nexus| async move {
            nexus.install_schema_packages(&packages, activate).await
        })?;
        convert::to_python(py, &response)
    }

    /// Imports a Capsule (JSON text) into the default Space; with
    /// `dry_run`, only checks it. Returns the engine's response shape.
    #[pyo3(signature = (capsule, dry_run))]
    fn import_capsule<'py>(
        &self,
        py: Python<'py>,
        capsule: String,
        dry_run: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let response = self.on_store(py, move |nexus| async move {
            nexus.import_capsule(&capsule, dry_run).await
        })?;
        convert::to_python(py, &response)
    }

    /// Runs a KIP 2.0 request envelope (a dict, as JSON decodes it) and
    /// returns the response envelope; the engine checks every member.
    #[pyo3(signature = (envelope, readonly, caller))]
    fn execute_envelope<'py>(
        &self,
        py: Python<'py>,
        envelope: &Bound<'py, PyAny>,
        readonly: bool,
        caller: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let job = self.envelope_job(envelope, readonly, caller)?;
        let response = runtime::block_on_caller(py, run(job))??;
        convert::to_python(py, &response)
    }

    /// [`Self::execute_envelope`] without waiting, as `execute_async`.
    #[pyo3(signature = (envelope, readonly, caller, reply))]
    fn execute_envelope_async(
        &self,
        envelope: &Bound<'_, PyAny>,
        readonly: bool,
        caller: Option<&str>,
        reply: &Bound<'_, PyAny>,
    ) -> PyResult<NativeTask> {
        let job = self.envelope_job(envelope, readonly, caller)?;
        start(job, reply)
    }

    /// `(key, size)` of every object of the store's database, by key.
    fn _stored_objects(&self, py: Python<'_>) -> PyResult<Vec<(String, u64)>> {
        let objects = self.with_store(py, |nexus| async move {
            nexus
                .stored_objects()
                .await
                .map_err(errors::from_store_error)
        })?;
        Ok(objects.into_iter().map(|o| (o.key, o.size)).collect())
    }

    /// Adds a fault rule (see `anda.testing.FaultInjector`).
    #[allow(clippy::too_many_arguments)] // one keyword each on the Python side
    #[pyo3(signature = (op, kind, path_contains, skip, times, keep_bytes, delay_seconds))]
    fn _fault_rule(
        &self,
        op: &str,
        kind: &str,
        path_contains: Option<String>,
        skip: u64,
        times: u64,
        keep_bytes: usize,
        delay_seconds: f64,
    ) -> PyResult<()> {
        let rule = crate::faults::rule(
            op,
            kind,
            path_contains,
            skip,
            times,
            keep_bytes,
            delay_seconds,
        )?;
        self.fault_handle()?.push_rule(rule);
        Ok(())
    }

    /// Fails every request after `n` more attempted mutations (a power cut).
    fn _fault_crash_after(&self, n: u64) -> PyResult<()> {
        self.fault_handle()?.crash_after_mutations(n);
        Ok(())
    }

    /// Removes every rule and restores power.
    fn _fault_reset(&self) -> PyResult<()> {
        self.fault_handle()?.reset();
        Ok(())
    }

    /// What the wrapper saw: `(operation, path, outcome)` per mutation event.
    fn _fault_events(&self) -> PyResult<Vec<(String, String, String)>> {
        Ok(crate::faults::events(&self.fault_handle()?))
    }

    /// Writes everything pending to storage.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.with_store(py, |nexus| async move {
            nexus.flush().await.map_err(errors::from_store_error)
        })
    }

    /// Waits for running calls, flushes and closes. Idempotent.
    ///
    /// In a forked child this only marks the inherited handle closed: the
    /// store belongs to the parent, which flushes it.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if self.check_process().is_err() {
            self.leak();
            return Ok(());
        }
        runtime::block_on(py, close_store(self.store.clone(), self.readonly))?
    }
}

const CLOSED_MESSAGE: &str = "this Nexus is closed; open a new one to use the store again";

impl NativeNexus {
    fn check_process(&self) -> PyResult<()> {
        if self.forked() {
            return Err(errors::forked_error(format!(
                "this Nexus was opened in process {} and cannot be used in the forked child \
                 process {}; open a new Nexus in the child",
                self.pid,
                std::process::id()
            )));
        }
        Ok(())
    }

    fn forked(&self) -> bool {
        runtime::forks::count() != self.forks
    }

    /// Keeps a store inherited through `fork()` alive forever: its engine
    /// state may be held by threads that do not exist in this process, so
    /// dropping it could block on them.
    fn leak(&self) {
        std::mem::forget(self.store.clone());
    }

    /// Everything a KIP call needs, checked and converted before any engine work.
    fn kip_job(
        &self,
        command: &Bound<'_, PyAny>,
        parameters: &Bound<'_, PyAny>,
        dry_run: bool,
        execution: Option<&str>,
        caller: Option<&str>,
    ) -> PyResult<Job> {
        let store = self.store_handle()?;
        let args = kip_args(command, parameters, dry_run, execution)?;
        Ok(Job {
            store,
            caller: principal(caller),
            work: Work::Kip {
                args,
                readonly: self.readonly,
            },
        })
    }

    /// Everything a tool call needs. Only the tool's name can make it fail.
    fn tool_job(
        &self,
        name: &str,
        arguments: &Bound<'_, PyAny>,
        caller: Option<&str>,
    ) -> PyResult<Job> {
        let store = self.store_handle()?;
        let tool = tool_name(name)?;
        Ok(Job {
            store,
            caller: principal(caller),
            work: Work::Tool {
                tool,
                arguments: tool_arguments(arguments),
                readonly: self.readonly,
            },
        })
    }

    /// Everything an envelope call needs; an envelope that is not JSON
    /// becomes the failed response it earns.
    fn envelope_job(
        &self,
        envelope: &Bound<'_, PyAny>,
        readonly: bool,
        caller: Option<&str>,
    ) -> PyResult<Job> {
        let store = self.store_handle()?;
        let envelope = envelope_json(envelope);
        Ok(Job {
            store,
            caller: principal(caller),
            work: Work::Envelope {
                envelope,
                readonly: readonly || self.readonly,
            },
        })
    }

    /// Runs `work` on the open store, which stays open until it is done.
    pub(crate) fn with_store<T, F, Fut>(&self, py: Python<'_>, work: F) -> PyResult<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<EmbeddedNexus>) -> Fut + Send + 'static,
        Fut: Future<Output = PyResult<T>> + Send + 'static,
    {
        let store = self.store_handle()?;
        runtime::block_on(py, async move {
            // Held for the whole call, so close() waits for it.
            let guard = store.read_owned().await;
            match guard.as_ref() {
                Some(nexus) => work(nexus.clone()).await,
                None => Err(errors::closed_error(CLOSED_MESSAGE)),
            }
        })?
    }

    /// Runs `work` on the open store and turns its result into the engine's
    /// response shape, so a refusal raises the same typed `KipError` as a command.
    fn on_store<F, Fut>(&self, py: Python<'_>, work: F) -> PyResult<Value>
    where
        F: FnOnce(Arc<EmbeddedNexus>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Value, anda_kip::KipError>> + Send + 'static,
    {
        self.with_store(py, |nexus| async move {
            let done = work(nexus.clone()).await;
            nexus
                .acknowledge()
                .await
                .map_err(errors::from_store_error)?;
            Ok(match done {
                Ok(result) => serde_json::json!({"status": "succeeded", "result": result}),
                Err(err) => serde_json::to_value(Response::from(err)).map_err(encode_error)?,
            })
        })
    }

    fn fault_handle(&self) -> PyResult<anda_embedded::FaultHandle> {
        let store = self.store.clone();
        let guard = store
            .try_read()
            .map_err(|_| errors::closed_error(CLOSED_MESSAGE))?;
        guard
            .as_ref()
            .and_then(|nexus| nexus.faults().cloned())
            .ok_or_else(|| PyValueError::new_err("this Nexus was not opened with fault injection"))
    }

    fn store_handle(&self) -> PyResult<SharedStore> {
        if self.closed() {
            return Err(errors::closed_error(CLOSED_MESSAGE));
        }
        self.check_process()?;
        Ok(self.store.clone())
    }
}

impl Drop for NativeNexus {
    /// A store dropped without `close()` is still flushed and closed, so
    /// nothing written through it is lost.
    fn drop(&mut self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if self.forked() {
            self.leak();
            return;
        }
        let Ok(rt) = runtime::runtime() else { return };
        let closing = rt.spawn(close_store(self.store.clone(), self.readonly));
        if tokio::runtime::Handle::try_current().is_err() {
            let _ = futures::executor::block_on(closing);
        }
    }
}

/// Closes the store: flushes it, or for a read-only Nexus only lets it go,
/// so that reading a store never rewrites it.
async fn close_store(store: SharedStore, readonly: bool) -> PyResult<()> {
    let taken = store.write().await.take();
    match taken {
        Some(nexus) if readonly => {
            nexus.release().await;
            Ok(())
        }
        Some(nexus) => nexus.close().await.map_err(errors::from_store_error),
        None => Ok(()),
    }
}

/// One engine call, prepared on the calling thread and run on the runtime.
struct Job {
    store: SharedStore,
    caller: Principal,
    work: Work,
}

#[allow(clippy::large_enum_variant)] // one per call, moved once into its task
enum Work {
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
async fn respond(job: Job) -> Result<Response, CallFailure> {
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
async fn run(job: Job) -> Result<Value, CallFailure> {
    let response = respond(job).await?;
    serde_json::to_value(&response).map_err(CallFailure::Encode)
}

/// Starts `job` on the runtime. Its result goes to `reply`: an
/// `(inbox, token)` pair (see `inbox.rs`), or a callable called as
/// `reply(result, error)` from the engine thread.
fn start(job: Job, reply: &Bound<'_, PyAny>) -> PyResult<NativeTask> {
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

/// KML writes from Python `(command, parameters)` tuples, checked as the
/// engine's values.
pub fn write_commands(commands: &Bound<'_, PyList>) -> PyResult<Vec<WriteCommand>> {
    let mut writes = Vec::with_capacity(commands.len());
    for (index, item) in commands.iter().enumerate() {
        let root = format!("operations[{index}]");
        let pair = item.cast::<PyTuple>()?;
        let text = command_text(pair.get_item(0)?.cast::<PyString>()?)
            .map_err(|err| err.into_pyerr(&root))?;
        let parameters = convert::parameters_to_json(&pair.get_item(1)?)
            .map_err(|err| err.into_pyerr(&format!("{root} parameters")))?;
        writes.push((text, parameters));
    }
    Ok(writes)
}

/// The anonymous Principal when no caller is named.
fn principal(caller: Option<&str>) -> Principal {
    caller.map_or_else(Principal::anonymous, caller_principal)
}

/// One of the engine's tools, by the name a model called it.
pub(crate) fn tool_name(name: &str) -> PyResult<ToolName> {
    ToolName::from_name(name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown tool {name:?}: anda runs 'execute_kip' and 'execute_kip_readonly'"
        ))
    })
}

/// A request envelope as JSON, under the engine's rules; one that is not
/// JSON becomes the failed response it earns.
pub(crate) fn envelope_json(envelope: &Bound<'_, PyAny>) -> Result<Value, Box<Response>> {
    convert::to_json(envelope, 0).map_err(|err| {
        let detail = err.describe("request");
        Box::new(Response::from(
            anda_kip::KipError::invalid_request_envelope(detail),
        ))
    })
}

/// A model's tool arguments as JSON: text is parsed, anything else converted
/// under the engine's rules; what fails becomes the model's error result.
pub(crate) fn tool_arguments(arguments: &Bound<'_, PyAny>) -> Result<Value, Box<Response>> {
    let invalid = |detail: &str| Box::new(invalid_arguments(detail));
    if let Ok(text) = arguments.cast::<PyString>() {
        let text = convert::to_utf8(text).map_err(|err| invalid(&err.describe("arguments")))?;
        return serde_json::from_str(&text)
            .map_err(|err| invalid(&format!("not valid JSON: {err}")));
    }
    convert::to_json(arguments, 0).map_err(|err| invalid(&err.describe("arguments")))
}

/// Where a store lives, from the Python layer's parts of it.
pub(crate) fn location(
    path: Option<PathBuf>,
    url: Option<String>,
    options: Vec<(String, String)>,
) -> Location {
    match (path, url) {
        (_, Some(url)) => Location::Bucket(BucketLocation { url, options }),
        (None, None) => Location::InMemory,
        (Some(path), None) => Location::Directory(path),
    }
}

pub(crate) fn lease_duration(seconds: f64) -> PyResult<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(seconds)
        .map_err(|err| PyValueError::new_err(format!("lease_ttl: {err}")))
}

fn package_sources(packages: Vec<(String, String)>) -> Vec<PackageSource> {
    packages
        .into_iter()
        .map(|(source, artifact)| PackageSource { source, artifact })
        .collect()
}

fn tenancy_from_name(name: &str) -> PyResult<Tenancy> {
    match name {
        "shared" => Ok(Tenancy::Shared),
        "per_caller" => Ok(Tenancy::PerCallerSpace),
        other => Err(PyValueError::new_err(format!(
            "tenancy must be 'shared' or 'per_caller', not {other:?}"
        ))),
    }
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

/// Builds the engine's tool arguments from the Python call.
pub(crate) fn kip_args(
    command: &Bound<'_, PyAny>,
    parameters: &Bound<'_, PyAny>,
    dry_run: bool,
    execution: Option<&str>,
) -> PyResult<KipArgs> {
    let parameters =
        convert::parameters_to_json(parameters).map_err(|err| err.into_pyerr("parameters"))?;
    let execution = execution.map(execution_mode).transpose()?;
    let mut args = KipArgs {
        parameters,
        dry_run: Some(dry_run),
        execution: execution.map(anda_embedded::Execution::new),
        ..KipArgs::default()
    };
    if let Ok(text) = command.cast::<PyString>() {
        args.command = Some(command_text(text).map_err(|err| err.into_pyerr("command"))?);
    } else {
        let batch = command.cast::<PyList>()?;
        let mut operations = Vec::with_capacity(batch.len());
        for (index, item) in batch.iter().enumerate() {
            let root = format!("commands[{index}]");
            let pair = item.cast::<PyTuple>()?;
            let text = command_text(pair.get_item(0)?.cast::<PyString>()?)
                .map_err(|err| err.into_pyerr(&root))?;
            let operation = match convert::parameters_to_json(&pair.get_item(1)?)
                .map_err(|err| err.into_pyerr(&format!("{root} parameters")))?
            {
                None => KipOperation::Command(text),
                Some(parameters) => KipOperation::Operation(Box::new(
                    Operation::new(text).with_parameters(parameters),
                )),
            };
            operations.push(operation);
        }
        args.operations = Some(operations);
    }
    Ok(args)
}

fn command_text(text: &Bound<'_, PyString>) -> Result<String, ConversionError> {
    Ok(convert::to_utf8(text)?.into_owned())
}

fn execution_mode(name: &str) -> PyResult<ExecutionMode> {
    match name {
        "sequence" => Ok(ExecutionMode::Sequence),
        "independent" => Ok(ExecutionMode::Independent),
        "atomic" => Ok(ExecutionMode::Atomic),
        other => Err(PyValueError::new_err(format!(
            "execution must be 'sequence', 'independent' or 'atomic', not {other:?}"
        ))),
    }
}
