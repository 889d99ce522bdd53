//! Raising the package's typed exceptions from Rust.
//!
//! The classes live in `anda/errors.py`, so they are plain Python classes a
//! user can subclass, pickle and read in tracebacks; Rust only looks them up.
use anda_embedded::StoreError;
use pyo3::{prelude::*, sync::PyOnceLock, types::PyType};

fn raise(class: &'static PyOnceLock<Py<PyType>>, name: &str, message: String) -> PyErr {
    Python::attach(|py| match class.import(py, "anda.errors", name) {
        Ok(class) => PyErr::from_type(class.clone(), message),
        Err(err) => err,
    })
}

macro_rules! python_exception {
    ($fn_name:ident, $class:literal) => {
        pub fn $fn_name(message: impl Into<String>) -> PyErr {
            static CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
            raise(&CLASS, $class, message.into())
        }
    };
}

python_exception!(store_error, "StoreError");
python_exception!(store_locked_error, "StoreLockedError");
python_exception!(corrupt_store_error, "CorruptStoreError");
python_exception!(closed_error, "MemoryClosedError");
python_exception!(forked_error, "ForkedProcessError");
python_exception!(engine_panic_error, "EnginePanicError");
python_exception!(outcome_unknown_error, "OutcomeUnknownError");

/// A store that could not be opened, flushed or closed.
pub fn from_store_error(err: StoreError) -> PyErr {
    match err {
        StoreError::Locked { .. } => store_locked_error(err.to_string()),
        StoreError::Corrupt(_) => corrupt_store_error(err.to_string()),
        StoreError::OutcomeUnknown(_) => outcome_unknown_error(err.to_string()),
        StoreError::Schema(err) => kip_error(anda_kip::Response::from(*err)),
        StoreError::Config(message) => pyo3::exceptions::PyValueError::new_err(message),
        _ => store_error(err.to_string()),
    }
}

/// The `KipError` subclass `anda.errors.error_from_response` picks for a
/// failed response, as the Python layer raises it for a command.
pub fn kip_error(response: anda_kip::Response) -> PyErr {
    Python::attach(|py| {
        let build = || -> PyResult<PyErr> {
            let value = serde_json::to_value(&response)
                .map_err(|err| pyo3::exceptions::PyValueError::new_err(err.to_string()))?;
            let response = crate::convert::to_python(py, &value)?;
            let error = py
                .import("anda.errors")?
                .getattr("error_from_response")?
                .call1((response,))?;
            Ok(PyErr::from_value(error))
        };
        build().unwrap_or_else(|err| err)
    })
}

/// A Rust panic inside the engine, as an exception instead of an abort.
pub fn panic_error(payload: Box<dyn std::any::Any + Send>) -> PyErr {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".to_string());
    engine_panic_error(format!("the engine panicked: {detail}"))
}
