//! The destination of `anda.copy_store`: a location held for a copy, filled
//! object by object from an open store.
use crate::{errors, nexus::NativeNexus, runtime};
use anda_embedded::{CopyDestination, OpenOptions};
use pyo3::prelude::*;
use std::{path::PathBuf, sync::Arc};
use tokio::sync::Mutex;

#[pyclass(frozen, module = "anda._anda")]
pub struct NativeCopyDestination {
    /// `None` once released.
    held: Arc<Mutex<Option<CopyDestination>>>,
}

const RELEASED: &str = "this copy destination was released";

#[pymethods]
impl NativeCopyDestination {
    /// Takes the location (its lock or lease) for a copy of the database
    /// `name`; one already there is refused, or with `overwrite` deleted.
    #[new]
    #[pyo3(signature = (path, url, storage_options, name, lease_ttl, overwrite))]
    fn new(
        py: Python<'_>,
        path: Option<PathBuf>,
        url: Option<String>,
        storage_options: Vec<(String, String)>,
        name: String,
        lease_ttl: f64,
        overwrite: bool,
    ) -> PyResult<Self> {
        let location = crate::args::location(path, url, storage_options);
        let options = OpenOptions {
            name,
            lease_ttl: crate::args::lease_duration(lease_ttl)?,
            ..OpenOptions::default()
        };
        let held = runtime::block_on(py, async move {
            CopyDestination::acquire(&location, &options, overwrite).await
        })?
        .map_err(errors::from_store_error)?;
        Ok(Self {
            held: Arc::new(Mutex::new(Some(held))),
        })
    }

    /// Copies the objects `keys` of `source` here; returns the bytes copied.
    fn copy_from(&self, py: Python<'_>, source: &NativeNexus, keys: Vec<String>) -> PyResult<u64> {
        let held = self.held.clone();
        source.with_store(py, move |nexus| async move {
            let guard = held.lock().await;
            let destination = guard
                .as_ref()
                .ok_or_else(|| errors::store_error(RELEASED))?;
            let mut copied = 0;
            for key in keys {
                let bytes = nexus
                    .read_object(&key)
                    .await
                    .map_err(errors::from_store_error)?;
                copied += bytes.len() as u64;
                destination
                    .write(&key, bytes)
                    .await
                    .map_err(errors::from_store_error)?;
            }
            Ok(copied)
        })
    }

    /// Lets the location go. Idempotent.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let held = self.held.clone();
        runtime::block_on(py, async move {
            match held.lock().await.take() {
                Some(destination) => destination.release().await,
                None => Ok(()),
            }
        })?
        .map_err(errors::from_store_error)
    }
}
