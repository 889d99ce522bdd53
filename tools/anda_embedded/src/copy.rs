//! Copying a store between locations object by object, exactly as AndaDB
//! stored them: ids, keys, history and schema all come along.
//!
//! The source is an open [`EmbeddedNexus`] (so nobody writes to it meanwhile);
//! the destination is held the same way a store is ([`Storage`]: a
//! directory's lock, a bucket's lease) without opening AndaDB on it, which
//! would bootstrap a database of its own there.
use crate::{EmbeddedNexus, Location, OpenOptions, Storage, StoreError};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, path::Path};
use std::sync::Arc;

/// One object of a store: its key below the location, and its size in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    pub key: String,
    pub size: u64,
}

/// Everything AndaDB keeps under `name/`; the lease (`name.lease`) beside it
/// belongs to whoever holds the location, and never travels.
async fn objects_of(
    objects: &Arc<dyn ObjectStore>,
    name: &str,
    place: &str,
) -> Result<Vec<StoredObject>, StoreError> {
    let mut found: Vec<StoredObject> = objects
        .list(Some(&Path::from(name)))
        .map_ok(|meta| StoredObject {
            key: meta.location.to_string(),
            size: meta.size,
        })
        .try_collect()
        .await
        .map_err(|err| StoreError::Engine(format!("{place}: cannot list the store: {err}")))?;
    found.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(found)
}

/// Whether `objects` hold any object of the database `name`.
pub(crate) async fn holds_store(
    objects: &Arc<dyn ObjectStore>,
    name: &str,
) -> object_store::Result<bool> {
    let mut listing = objects.list(Some(&Path::from(name)));
    Ok(listing.try_next().await?.is_some())
}

pub(crate) fn place_of(location: &Location) -> String {
    match location {
        Location::InMemory => "memory".to_string(),
        Location::Directory(path) => path.display().to_string(),
        Location::Bucket(bucket) => crate::bucket::redacted(&bucket.url),
    }
}

impl EmbeddedNexus {
    /// Every object of this store's database, by key.
    pub async fn stored_objects(&self) -> Result<Vec<StoredObject>, StoreError> {
        objects_of(&self.objects, &self.name, &place_of(&self.location)).await
    }

    /// One object's bytes, as [`Self::stored_objects`] names it.
    pub async fn read_object(&self, key: &str) -> Result<Bytes, StoreError> {
        let place = place_of(&self.location);
        let read = async { self.objects.get(&Path::from(key)).await?.bytes().await };
        read.await
            .map_err(|err| StoreError::Engine(format!("{place}: cannot read {key}: {err}")))
    }
}

/// A location being filled with a copy, held so nobody opens it meanwhile.
pub struct CopyDestination {
    storage: Storage,
    place: String,
}

impl CopyDestination {
    /// Takes `location` for a copy of the database `options.name`: it must
    /// hold no such database, unless `overwrite`, which deletes the one there.
    pub async fn acquire(
        location: &Location,
        options: &OpenOptions,
        overwrite: bool,
    ) -> Result<Self, StoreError> {
        if *location == Location::InMemory {
            return Err(StoreError::Config(
                "a copy needs a destination that outlives it: a directory or a bucket".into(),
            ));
        }
        let place = place_of(location);
        let storage = Storage::acquire(location, options).await?;
        let destination = Self { storage, place };
        let existing = objects_of(
            &destination.storage.objects,
            &options.name,
            &destination.place,
        )
        .await;
        let cleared = match existing {
            Ok(existing) if existing.is_empty() => Ok(()),
            Ok(_) if overwrite => destination.clear(&options.name).await,
            Ok(_) => Err(StoreError::Engine(format!(
                "the destination {} already holds a store; pass overwrite=True (--overwrite) \
                 to replace it",
                destination.place
            ))),
            Err(err) => Err(err),
        };
        match cleared {
            Ok(()) => Ok(destination),
            Err(err) => {
                // The refusal is the error to report, not how the location was let go.
                let _ = destination.release().await;
                Err(err)
            }
        }
    }

    /// Deletes the database `name` here: what `overwrite` replaces, and what a
    /// failed copy leaves behind.
    pub async fn clear(&self, name: &str) -> Result<(), StoreError> {
        for object in objects_of(&self.storage.objects, name, &self.place).await? {
            let key = Path::from(object.key.as_str());
            self.storage.objects.delete(&key).await.map_err(|err| {
                StoreError::Engine(format!("{}: cannot delete {key}: {err}", self.place))
            })?;
        }
        Ok(())
    }

    /// Every object of the database `name` here, by key.
    pub async fn listing(&self, name: &str) -> Result<Vec<StoredObject>, StoreError> {
        objects_of(&self.storage.objects, name, &self.place).await
    }

    /// One object's bytes, as written here.
    pub async fn read(&self, key: &str) -> Result<Bytes, StoreError> {
        let read = async {
            self.storage
                .objects
                .get(&Path::from(key))
                .await?
                .bytes()
                .await
        };
        read.await
            .map_err(|err| StoreError::Engine(format!("{}: cannot read {key}: {err}", self.place)))
    }

    /// Writes one object; an object already there is an error, never overwritten.
    pub async fn write(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        self.storage
            .objects
            .put_opts(
                &Path::from(key),
                bytes.into(),
                PutOptions::from(PutMode::Create),
            )
            .await
            .map(drop)
            .map_err(|err| StoreError::Engine(format!("{}: cannot write {key}: {err}", self.place)))
    }

    /// Makes what was written durable and lets the location go (a bucket's
    /// lease now; a directory's lock with `self`, its journal checkpointed
    /// into the directory first).
    pub async fn release(self) -> Result<(), StoreError> {
        let written = match &self.storage.journal {
            Some(journal) => journal.close().await,
            None => Ok(()),
        };
        if let Some(lease) = &self.storage.lease {
            lease.release().await;
        }
        written
    }
}
