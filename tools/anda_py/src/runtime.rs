//! The one process-wide tokio runtime, and how Python threads wait on it.
//!
//! Engine work always runs on the runtime's workers, never on the calling
//! Python thread: their stacks are sized for the engine's deep futures (a
//! Python thread's stack may be as small as 512 KiB), and the caller stays free
//! to notice Ctrl-C while it waits.
use crate::errors;
use futures::FutureExt;
use pyo3::prelude::*;
use std::{
    future::Future,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};
use tokio::runtime::Runtime;

/// How often a waiting Python thread checks for signals (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Engine futures nest deeply; 16 MiB of (lazily committed) stack is ample.
const WORKER_STACK_SIZE: usize = 16 << 20;

struct ProcessRuntime {
    pid: u32,
    runtime: Arc<Runtime>,
}

static RUNTIME: Mutex<Option<ProcessRuntime>> = Mutex::new(None);

/// The runtime of this process, created on first use.
///
/// After `fork()` the child inherits the parent's runtime object but none of
/// its worker threads, so waiting on it would hang forever. A child therefore
/// builds its own, and the inherited one is leaked: dropping it would try to
/// join threads that do not exist in this process.
pub fn runtime() -> PyResult<Arc<Runtime>> {
    let pid = std::process::id();
    let mut slot = RUNTIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(current) = slot.as_ref()
        && current.pid == pid
    {
        return Ok(current.runtime.clone());
    }
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("anda-engine")
            .thread_stack_size(WORKER_STACK_SIZE)
            .enable_all()
            .build()
            .map_err(|err| errors::store_error(format!("cannot start the tokio runtime: {err}")))?,
    );
    if let Some(inherited) = slot.replace(ProcessRuntime {
        pid,
        runtime: runtime.clone(),
    }) {
        std::mem::forget(inherited);
    }
    Ok(runtime)
}

/// The outcome of a spawned engine future: its value, or the panic it raised.
pub type Outcome<T> = Result<T, Box<dyn std::any::Any + Send>>;

/// Runs `future` on the runtime, catching a panic as a value.
pub fn spawn<T, F>(
    future: F,
    done: impl FnOnce(Outcome<T>) + Send + 'static,
) -> PyResult<tokio::task::AbortHandle>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handle = runtime()?.spawn(async move {
        done(AssertUnwindSafe(future).catch_unwind().await);
    });
    Ok(handle.abort_handle())
}

/// Runs `future` on the runtime and waits for it with the GIL released.
///
/// The wait wakes every [`SIGNAL_POLL`] to run Python's signal handlers; if one
/// raises (Ctrl-C's `KeyboardInterrupt`), the engine task is aborted and the
/// exception propagates.
pub fn block_on<T, F>(py: Python<'_>, future: F) -> PyResult<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (sender, receiver) = mpsc::sync_channel(1);
    let task = spawn(future, move |outcome| {
        let _ = sender.send(outcome);
    })?;
    // Only this thread receives; the mutex just makes the receiver `Sync` for `detach`.
    let receiver = Mutex::new(receiver);
    loop {
        let received = py.detach(|| {
            let receiver = receiver
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            receiver.recv_timeout(SIGNAL_POLL)
        });
        match received {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(panic)) => return Err(errors::panic_error(panic)),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(signal) = py.check_signals() {
                    task.abort();
                    return Err(signal);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(errors::panic_error(Box::new(
                    "the engine task ended without a result",
                )));
            }
        }
    }
}
