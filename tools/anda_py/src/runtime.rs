//! The one process-wide tokio runtime, and how Python threads wait on it.
//!
//! Engine work never runs on a Python thread's own stack: the engine's futures
//! nest deeply, and a Python thread's stack may be as small as 512 KiB. A
//! command (microseconds to milliseconds of work) is polled by the calling
//! thread itself on a kept 16 MiB stack of its own, which saves the two thread
//! wake-ups a hand-over to a worker costs; everything else runs on the
//! runtime's workers, whose stacks are as large. Either way the caller keeps
//! noticing Ctrl-C while it waits.
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
const ENGINE_STACK_SIZE: usize = 16 << 20;

struct ProcessRuntime {
    forks: u64,
    runtime: Arc<Runtime>,
}

static RUNTIME: Mutex<Option<ProcessRuntime>> = Mutex::new(None);

/// Forks since the first call: a fork handler counts one more in each child,
/// so telling a child from its parent costs an atomic load per call, not a
/// `getpid` system call.
#[cfg(unix)]
pub mod forks {
    use std::sync::{
        Once,
        atomic::{AtomicU64, Ordering},
    };

    static FORKS: AtomicU64 = AtomicU64::new(0);
    static WATCH: Once = Once::new();

    extern "C" fn forked() {
        FORKS.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count() -> u64 {
        WATCH.call_once(|| {
            // SAFETY: `forked` only touches an atomic, which is safe in a
            // freshly forked child; the handler lives as long as the process.
            unsafe { libc::pthread_atfork(None, None, Some(forked)) };
        });
        FORKS.load(Ordering::Relaxed)
    }
}

#[cfg(not(unix))]
pub mod forks {
    pub fn count() -> u64 {
        0
    }
}

/// The runtime of this process, created on first use.
///
/// After `fork()` the child inherits the parent's runtime object but none of
/// its worker threads, so waiting on it would hang forever. A child therefore
/// builds its own, and the inherited one is leaked: dropping it would try to
/// join threads that do not exist in this process.
pub fn runtime() -> PyResult<Arc<Runtime>> {
    let forks = forks::count();
    let mut slot = RUNTIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(current) = slot.as_ref()
        && current.forks == forks
    {
        return Ok(current.runtime.clone());
    }
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("anda-engine")
            .thread_stack_size(ENGINE_STACK_SIZE)
            .enable_all()
            .build()
            .map_err(|err| errors::store_error(format!("cannot start the tokio runtime: {err}")))?,
    );
    if let Some(inherited) = slot.replace(ProcessRuntime {
        forks,
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
/// exception propagates. What the engine logged meanwhile then goes to
/// Python's `logging` (see `logging.rs`), as after [`block_on_caller`].
pub fn block_on<T, F>(py: Python<'_>, future: F) -> PyResult<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let result = wait_on_worker(py, future);
    crate::logging::hand_over(py);
    result
}

fn wait_on_worker<T, F>(py: Python<'_>, future: F) -> PyResult<T>
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

/// A stack of [`ENGINE_STACK_SIZE`] per thread to poll engine futures on.
#[cfg(not(all(windows, target_arch = "aarch64")))]
mod engine_stack {
    use corosensei::stack::DefaultStack;
    use std::cell::Cell;

    thread_local! {
        /// This thread's engine stack, kept between calls so that its pages
        /// are mapped once, not on every call.
        static STACK: Cell<Option<DefaultStack>> = const { Cell::new(None) };
    }

    /// Runs `work` on this thread's engine stack, or `None` if none can be
    /// mapped.
    pub fn run<R>(work: impl FnOnce() -> R) -> Option<R> {
        let mut stack = match STACK.take() {
            Some(stack) => stack,
            None => DefaultStack::new(super::ENGINE_STACK_SIZE).ok()?,
        };
        let result = corosensei::on_stack(&mut stack, work);
        STACK.set(Some(stack));
        Some(result)
    }
}

/// corosensei cannot switch stacks on Windows on Arm: there, every call takes
/// [`block_on`]'s path to a worker.
#[cfg(all(windows, target_arch = "aarch64"))]
mod engine_stack {
    pub fn run<R>(_work: impl FnOnce() -> R) -> Option<R> {
        None
    }
}

/// Runs `future` to completion by polling it on the calling thread, on its
/// engine stack, with the GIL released.
///
/// `future` must not touch Python: it runs on a stack CPython does not know
/// (CPython 3.14's stack protection may take that for an overflow). Return
/// Rust errors from it and build exceptions once it is done.
///
/// Every [`SIGNAL_POLL`] the future is set aside to run Python's signal
/// handlers; if one raises (Ctrl-C's `KeyboardInterrupt`), the future is
/// dropped, which cancels the engine call, and the exception propagates.
/// A thread already inside the runtime, or one that cannot map a stack,
/// falls back to [`block_on`].
pub fn block_on_caller<T, F>(py: Python<'_>, future: F) -> PyResult<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let result = wait_on_caller(py, future);
    crate::logging::hand_over(py);
    result
}

fn wait_on_caller<T, F>(py: Python<'_>, future: F) -> PyResult<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        return wait_on_worker(py, future);
    }
    let runtime = runtime()?;
    let mut future = Box::pin(AssertUnwindSafe(future).catch_unwind());
    loop {
        let step = py.detach(|| {
            // The timer is made inside `block_on`, which gives it the runtime.
            engine_stack::run(|| {
                runtime.block_on(async { tokio::time::timeout(SIGNAL_POLL, future.as_mut()).await })
            })
        });
        match step {
            Some(Ok(Ok(value))) => return Ok(value),
            Some(Ok(Err(panic))) => return Err(errors::panic_error(panic)),
            Some(Err(_elapsed)) => {
                if let Err(signal) = py.check_signals() {
                    // Dropping runs the engine's cancellation code: on the
                    // large stack and inside the runtime, like its polls.
                    py.detach(|| {
                        engine_stack::run(|| {
                            let _context = runtime.enter();
                            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| drop(future)));
                        })
                    });
                    return Err(signal);
                }
            }
            None => return wait_on_worker(py, future)?.map_err(errors::panic_error),
        }
    }
}
