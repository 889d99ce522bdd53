//! `anda.copy_store`'s native half: [`anda_embedded::StoreCopy`], stepped
//! from Python so progress is reported and Ctrl-C lands between batches.
use crate::{errors, nexus::NativeNexus, runtime};
use anda_embedded::{OpenOptions, StoreCopy};
use pyo3::prelude::*;
use std::{path::PathBuf, sync::Arc};
use tokio::sync::Mutex;

#[pyclass(frozen, module = "anda._anda")]
pub struct NativeStoreCopy {
    copy: Arc<Mutex<StoreCopy>>,
}

#[pymethods]
impl NativeStoreCopy {
    /// Lists what `source` holds and takes the destination (its lock or
    /// lease) for a copy of the database `name`; one already there is
    /// refused, or with `overwrite` deleted. `described` names the
    /// destination in messages.
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (source, path, url, storage_options, name, lease_ttl, overwrite, described))]
    fn new(
        py: Python<'_>,
        source: &NativeNexus,
        path: Option<PathBuf>,
        url: Option<String>,
        storage_options: Vec<(String, String)>,
        name: String,
        lease_ttl: f64,
        overwrite: bool,
        described: String,
    ) -> PyResult<Self> {
        let location = crate::args::location(path, url, storage_options);
        let options = OpenOptions {
            name,
            lease_ttl: crate::args::lease_duration(lease_ttl)?,
            ..OpenOptions::default()
        };
        let copy = source.with_store(py, move |nexus| async move {
            StoreCopy::begin(&nexus, location, options, overwrite, described)
                .await
                .map_err(errors::from_store_error)
        })?;
        Ok(Self {
            copy: Arc::new(Mutex::new(copy)),
        })
    }

    /// Copies the next batch from `source`; returns `(copied, total)` bytes,
    /// or `None` when everything is copied.
    fn step(&self, py: Python<'_>, source: &NativeNexus) -> PyResult<Option<(u64, u64)>> {
        let copy = self.copy.clone();
        source.with_store(py, move |nexus| async move {
            let mut copy = copy.lock().await;
            let more = copy.step(&nexus).await.map_err(errors::from_store_error)?;
            Ok(more.then(|| (copy.copied(), copy.total())))
        })
    }

    /// Proves the copy equal, lets the destination go and opens the copy;
    /// returns `(files, bytes)`. A failed copy is deleted.
    fn finish(&self, py: Python<'_>) -> PyResult<(u64, u64)> {
        let copy = self.copy.clone();
        let result = runtime::block_on(py, async move { copy.lock().await.finish().await })?
            .map_err(errors::from_store_error)?;
        Ok((result.files, result.bytes))
    }

    /// Lets the destination go and deletes the copy. Idempotent; a no-op
    /// after `finish` succeeded.
    fn abandon(&self, py: Python<'_>) -> PyResult<()> {
        let copy = self.copy.clone();
        runtime::block_on(py, async move { copy.lock().await.abandon().await })?
            .map_err(errors::from_store_error)
    }
}
