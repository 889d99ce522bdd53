//! Copying a whole store to another location and proving the copy equal:
//! the procedure `anda.copy_store` (and `python -m anda copy`) runs.
//!
//! [`StoreCopy`] copies object for object ([`crate::copy`]), in batches of
//! about [`COPY_BATCH_BYTES`] so a caller can report progress and be
//! interrupted between them; then it reads every object back from the
//! destination, lets the destination go, and opens the copy read-only, as
//! anyone would. A copy that fails any of this, or that is abandoned, is
//! deleted.
use crate::{
    CopyDestination, EmbeddedNexus, Location, OpenOptions, StoreError, StoredObject,
    error::python_repr,
};
use bytes::Bytes;
use std::hash::{DefaultHasher, Hasher};

/// Bytes copied per [`StoreCopy::step`]: progress between steps, and Ctrl-C.
pub const COPY_BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// What a finished copy copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyResult {
    /// Objects copied (files, for a directory store); the lock file or lease
    /// of the source stays behind.
    pub files: u64,
    /// Bytes copied.
    pub bytes: u64,
}

/// One copy of a store under way: the destination is held (locked or
/// leased) from [`Self::begin`] until [`Self::finish`] or [`Self::abandon`].
pub struct StoreCopy {
    location: Location,
    options: OpenOptions,
    /// The destination as the caller wrote it, for messages.
    described: String,
    objects: Vec<StoredObject>,
    /// One digest per object copied so far, in `objects`' order.
    digests: Vec<u64>,
    copied: u64,
    total: u64,
    held: Option<CopyDestination>,
    /// Finished or discarded: nothing is left to clean up.
    settled: bool,
}

fn digest(bytes: &Bytes) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(bytes);
    hasher.finish()
}

fn not_equal(described: &str) -> StoreError {
    StoreError::Engine(format!(
        "the copy at {} did not read back equal to the source; removed it",
        python_repr(described)
    ))
}

const SETTLED: &str = "this copy is already finished or abandoned";

impl StoreCopy {
    /// Lists what `source` holds and takes `destination` for a copy of it
    /// (see [`CopyDestination::acquire`]: a store already there is refused,
    /// or with `overwrite` deleted). `described` names the destination in
    /// messages, as the caller wrote it.
    pub async fn begin(
        source: &EmbeddedNexus,
        destination: Location,
        options: OpenOptions,
        overwrite: bool,
        described: String,
    ) -> Result<Self, StoreError> {
        let objects = source.stored_objects().await?;
        let total = objects.iter().map(|object| object.size).sum();
        let held = CopyDestination::acquire(&destination, &options, overwrite).await?;
        Ok(Self {
            location: destination,
            options,
            described,
            digests: Vec::with_capacity(objects.len()),
            objects,
            copied: 0,
            total,
            held: Some(held),
            settled: false,
        })
    }

    /// Bytes copied so far.
    pub fn copied(&self) -> u64 {
        self.copied
    }

    /// Bytes to copy in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Copies the next batch of objects from `source` (the store given to
    /// [`Self::begin`]); `false` when everything is copied already.
    pub async fn step(&mut self, source: &EmbeddedNexus) -> Result<bool, StoreError> {
        let held = match (&self.held, self.settled) {
            (Some(held), false) => held,
            _ => return Err(StoreError::Engine(SETTLED.into())),
        };
        if self.digests.len() == self.objects.len() {
            return Ok(false);
        }
        let mut batch = 0;
        while batch < COPY_BATCH_BYTES && self.digests.len() < self.objects.len() {
            let key = &self.objects[self.digests.len()].key;
            let bytes = source.read_object(key).await?;
            let size = bytes.len() as u64;
            let sum = digest(&bytes);
            held.write(key, bytes).await?;
            self.digests.push(sum);
            self.copied += size;
            batch += size;
        }
        Ok(true)
    }

    /// Copies everything left, calling `progress(copied, total)` after each
    /// batch, then [`Self::finish`]es; on any failure the copy is deleted.
    pub async fn run(
        mut self,
        source: &EmbeddedNexus,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<CopyResult, StoreError> {
        loop {
            match self.step(source).await {
                Ok(true) => progress(self.copied, self.total),
                Ok(false) => break,
                Err(err) => {
                    let _ = self.abandon().await;
                    return Err(err);
                }
            }
        }
        self.finish().await
    }

    /// Proves the copy equal — every object read back from the destination
    /// as it was read from the source, and nothing else there — lets the
    /// destination go, and opens the copy read-only. On any failure the
    /// copy is deleted and the failure returned.
    pub async fn finish(&mut self) -> Result<CopyResult, StoreError> {
        if self.settled {
            return Err(StoreError::Engine(SETTLED.into()));
        }
        match self.prove_equal().await {
            Ok(result) => {
                self.settled = true;
                Ok(result)
            }
            Err(err) => {
                // The failure is the error to report, not how the copy was removed.
                let _ = self.abandon().await;
                Err(err)
            }
        }
    }

    async fn prove_equal(&mut self) -> Result<CopyResult, StoreError> {
        let Some(held) = &self.held else {
            return Err(StoreError::Engine(SETTLED.into()));
        };
        if self.digests.len() != self.objects.len() {
            return Err(not_equal(&self.described));
        }
        let found = held.listing(&self.options.name).await?;
        if found != self.objects {
            return Err(not_equal(&self.described));
        }
        for (object, expected) in self.objects.iter().zip(&self.digests) {
            if digest(&held.read(&object.key).await?) != *expected {
                return Err(not_equal(&self.described));
            }
        }
        if let Some(held) = self.held.take() {
            held.release().await?;
        }
        let reopen = OpenOptions {
            existing_only: true,
            ..self.options.clone()
        };
        let copy = EmbeddedNexus::open(self.location.clone(), &reopen).await?;
        copy.close().await?;
        Ok(CopyResult {
            files: self.objects.len() as u64,
            bytes: self.copied,
        })
    }

    /// Lets the destination go and deletes what was copied there. Idempotent;
    /// a no-op after a successful [`Self::finish`].
    pub async fn abandon(&mut self) -> Result<(), StoreError> {
        if self.settled {
            return Ok(());
        }
        self.settled = true;
        if let Some(held) = self.held.take() {
            // Whatever it made durable is deleted next.
            let _ = held.release().await;
        }
        // Taking the destination with `overwrite` clears it.
        CopyDestination::acquire(&self.location, &self.options, true)
            .await?
            .release()
            .await
    }
}

#[cfg(test)]
mod tests;
