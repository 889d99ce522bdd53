//! The native store object behind `anda.Nexus`.
//!
//! Each call converts its arguments once (`args`), runs the engine on the
//! shared runtime with the GIL released (`job`), and converts the response
//! once. Argument shapes (batch items, execution modes) are checked by the
//! Python layer; `args` checks only what needs the values themselves.
use crate::{
    args::{self, principal},
    convert, errors,
    job::{self, CLOSED_MESSAGE, Job, NativeTask, SharedStore, Work},
    runtime,
};
use anda_embedded::{EmbeddedNexus, OpenOptions, StoreWrite, Tenancy, refuse_if_readonly};
use anda_kip::Response;
use pyo3::{exceptions::PyValueError, prelude::*, types::PyList};
use serde_json::Value;
use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};
use tokio::sync::RwLock;

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
        let location = args::location(path.clone(), url.clone(), storage_options);
        let tenancy = args::tenancy_from_name(tenancy)?;
        let options = OpenOptions {
            name,
            tenancy,
            schema_packages: args::package_sources(schema_packages),
            inject_faults,
            lease_ttl: args::lease_duration(lease_ttl)?,
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
        args::tenancy_name(self.tenancy)
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
        job::wait(py, job)
    }

    /// Starts the same call without waiting; its result goes to `reply` (see
    /// `job::start`).
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
        job::start(job, reply)
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
        job::wait(py, job)
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
        job::start(job, reply)
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
        let writes = args::write_commands(commands)?;
        let job = Job {
            store,
            caller: principal(caller),
            work: Work::Bulk {
                writes,
                readonly: self.readonly,
            },
        };
        job::wait(py, job)
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
        job::wait(py, job)
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
        job::start(job, reply)
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
    /// response when a package is refused, or the store is read-only).
    #[pyo3(signature = (packages, activate))]
    fn install_schema_packages<'py>(
        &self,
        py: Python<'py>,
        packages: Vec<(String, String)>,
        activate: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Err(refused) = refuse_if_readonly(self.readonly, StoreWrite::InstallSchemaPackage) {
            return convert::to_python(py, &refused.response());
        }
        let packages = args::package_sources(packages);
        let response = self.on_store(py, move |nexus| async move {
            nexus.install_schema_packages(&packages, activate).await
        })?;
        convert::to_python(py, &response)
    }

    /// Imports a Capsule (JSON text) into the default Space; with
    /// `dry_run`, only checks it. Returns the engine's response shape (a
    /// failed response for a write to a read-only store).
    #[pyo3(signature = (capsule, dry_run))]
    fn import_capsule<'py>(
        &self,
        py: Python<'py>,
        capsule: String,
        dry_run: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        // A dry run writes nothing, so a read-only store takes it.
        if !dry_run
            && let Err(refused) = refuse_if_readonly(self.readonly, StoreWrite::ImportCapsule)
        {
            return convert::to_python(py, &refused.response());
        }
        let response = self.on_store(py, move |nexus| async move {
            nexus.import_capsule(&capsule, dry_run).await
        })?;
        convert::to_python(py, &response)
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
    pub(crate) fn kip_job(
        &self,
        command: &Bound<'_, PyAny>,
        parameters: &Bound<'_, PyAny>,
        dry_run: bool,
        execution: Option<&str>,
        caller: Option<&str>,
    ) -> PyResult<Job> {
        let store = self.store_handle()?;
        let args = args::kip_args(command, parameters, dry_run, execution)?;
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
        let tool = args::tool_name(name)?;
        Ok(Job {
            store,
            caller: principal(caller),
            work: Work::Tool {
                tool,
                arguments: args::tool_arguments(arguments),
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
        let envelope = args::envelope_json(envelope);
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
        job::with_store(py, self.store_handle()?, work)
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
                Err(err) => serde_json::to_value(Response::from(err)).map_err(job::encode_error)?,
            })
        })
    }

    /// The fault injector of a store opened with `inject_faults`.
    pub(crate) fn fault_handle(&self) -> PyResult<anda_embedded::FaultHandle> {
        let guard = self
            .store
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
