//! Where finished `*_async` calls wait for the event loop that awaits them.
//!
//! An engine thread that finishes an async call does not take the GIL to
//! hand its result over (that would cost a Python thread state per call and a
//! GIL hand-off with the loop thread): it queues the result here and rings a
//! socket the loop watches; the loop then builds the Python objects itself.
use crate::{
    job::{CallFailure, settled},
    runtime::Outcome,
};
use pyo3::prelude::*;
use serde_json::Value;
use std::{
    io::Write,
    os::{
        fd::{BorrowedFd, RawFd},
        unix::net::UnixStream,
    },
    sync::{Arc, Mutex},
};

type Finished = (u64, Outcome<Result<Value, CallFailure>>);

struct Shared {
    finished: Mutex<Vec<Finished>>,
    /// The ringing end of the socket pair whose other end the loop watches.
    bell: UnixStream,
}

/// One event loop's finished calls, each under the token its caller chose.
#[pyclass(frozen, module = "anda._anda")]
pub struct NativeInbox {
    shared: Arc<Shared>,
}

impl NativeInbox {
    /// What an engine thread calls when the call under `token` is done.
    pub(crate) fn poster(
        &self,
        token: u64,
    ) -> impl FnOnce(Outcome<Result<Value, CallFailure>>) + Send + 'static {
        let shared = self.shared.clone();
        move |outcome| {
            let mut finished = shared
                .finished
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // One ring per batch the loop collects: it reads the socket
            // before it takes the queue, so no result waits unrung.
            let ring = finished.is_empty();
            finished.push((token, outcome));
            drop(finished);
            if ring {
                // Full means a ring is already pending; closed means nobody
                // is listening any more.
                let _ = (&shared.bell).write(&[1]);
            }
        }
    }
}

#[pymethods]
impl NativeInbox {
    /// Rings `socket_fd` (the caller keeps its own copy of it) when a call
    /// finishes.
    #[new]
    fn new(socket_fd: RawFd) -> PyResult<Self> {
        // SAFETY: the descriptor is only duplicated, and `dup` refuses one
        // that is not open.
        let bell =
            UnixStream::from(unsafe { BorrowedFd::borrow_raw(socket_fd) }.try_clone_to_owned()?);
        bell.set_nonblocking(true)?;
        no_sigpipe(&bell)?;
        Ok(Self {
            shared: Arc::new(Shared {
                finished: Mutex::new(Vec::new()),
                bell,
            }),
        })
    }

    /// The calls finished since the last take, as `(token, result, error)`
    /// with exactly one of `result` and `error` set. Read the socket first.
    fn take<'py>(&self, py: Python<'py>) -> Vec<(u64, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let finished = std::mem::take(
            &mut *self
                .shared
                .finished
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        finished
            .into_iter()
            .map(|(token, outcome)| {
                let (result, error) = settled(py, outcome);
                (token, result, error)
            })
            .collect()
    }
}

/// Ringing a socket whose reader is gone must fail with `EPIPE`, not raise
/// `SIGPIPE` (fatal if the application restored its default). On Linux std
/// sends with `MSG_NOSIGNAL`; Apple's systems need the socket option.
#[cfg(target_vendor = "apple")]
fn no_sigpipe(socket: &UnixStream) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid descriptor, and `on` outlives the call.
    let status = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NOSIGPIPE,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if status == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_vendor = "apple"))]
fn no_sigpipe(_socket: &UnixStream) -> std::io::Result<()> {
    Ok(())
}
