//! Bulk writes: many KML writes joined into one transaction by
//! `anda_embedded`'s rules, for `anda.bulk` (the chunk policy's constants
//! are the crate's too, shared with the native benchmark).
use pyo3::{exceptions::PyValueError, prelude::*, types::PyList};

/// Joins KML writes (`(command, parameters)` tuples) into the one `MUTATE`
/// and parameters a bulk transaction sends; a write that cannot join raises
/// `ValueError(message, index)`.
#[pyfunction]
pub fn combine_writes<'py>(
    py: Python<'py>,
    writes: &Bound<'py, PyList>,
) -> PyResult<(String, Bound<'py, PyAny>)> {
    let writes = crate::args::write_commands(writes)?;
    let (command, parameters) = anda_embedded::combine_writes(&writes)
        .map_err(|err| PyValueError::new_err((err.message, err.index)))?;
    let parameters = crate::convert::to_python(py, &serde_json::Value::Object(parameters))?;
    Ok((command, parameters))
}
