//! Where a store lives, and taking hold of it: a directory behind its lock
//! and journal, a bucket behind its lease, or process memory. AndaDB is
//! opened on the objects later (`nexus.rs`); a copy's destination is held
//! the same way without it (`copy.rs`).
use crate::{
    BucketLocation, OpenOptions, StoreError, bucket, copy, journal, layout, lease,
    lock::DirectoryLock,
};
use anda_object_store::MetaStoreBuilder;
use object_store::{ObjectStore, memory::InMemory};
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

/// How long opening a bucket store may wait for its first answer (taking the
/// lease) before it fails: an unreachable endpoint or a client waiting on an
/// instance-metadata service must not hang the caller.
const BUCKET_OPEN_TIMEOUT: Duration = Duration::from_secs(20);

/// Object metadata entries MetaStore keeps cached for a directory store.
pub(crate) const META_CACHE_CAPACITY: u64 = 100_000;

/// Where a store keeps its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// Process memory; gone when the store is dropped.
    InMemory,
    /// A directory on disk, created if missing.
    Directory(PathBuf),
    /// An object-storage bucket (`s3://`, `gs://`, `az://`...).
    Bucket(BucketLocation),
}

/// A location's objects, held for one user: a directory behind its lock,
/// a bucket behind its lease. AndaDB is not opened on them yet.
pub(crate) struct Storage {
    pub(crate) objects: Arc<dyn ObjectStore>,
    pub(crate) lease: Option<lease::Lease>,
    pub(crate) lock: Option<DirectoryLock>,
    /// A directory store's writes, made durable at each acknowledgement.
    pub(crate) journal: Option<journal::Staged>,
}

impl Storage {
    /// Takes hold of `location` to open the store `options.name` there. With
    /// [`OpenOptions::existing_only`] (a read-only open) a location holding
    /// no such store is refused and nothing is created: a mistyped path must
    /// not read as an empty memory, nor leave a directory behind.
    pub(crate) async fn acquire_store(
        location: &Location,
        options: &OpenOptions,
    ) -> Result<Self, StoreError> {
        if options.existing_only
            && let Location::Directory(path) = location
            && !has_entries(path)
        {
            return Err(StoreError::NoStore { path: path.clone() });
        }
        let storage = Self::acquire(location, options).await?;
        if !options.existing_only || *location == Location::InMemory {
            return Ok(storage);
        }
        let found = copy::holds_store(&storage.objects, &options.name).await;
        if matches!(found, Ok(true)) {
            return Ok(storage);
        }
        if let Some(lease) = &storage.lease {
            lease.release().await;
        }
        let place = copy::place_of(location);
        Err(match found {
            Ok(_) => StoreError::NotAStore {
                path: PathBuf::from(place),
                detail: format!("it holds no store named {:?}", options.name),
            },
            Err(err) => StoreError::Engine(format!("{place}: cannot list the store: {err}")),
        })
    }

    /// Takes hold of `location`, creating a directory that is missing.
    pub(crate) async fn acquire(
        location: &Location,
        options: &OpenOptions,
    ) -> Result<Self, StoreError> {
        Ok(match location {
            Location::InMemory => Self {
                objects: Arc::new(InMemory::new()),
                lease: None,
                lock: None,
                journal: None,
            },
            Location::Bucket(bucket) => {
                let bucket::OpenedBucket {
                    store,
                    missing_credentials,
                } = bucket::open(bucket)?;
                let url = bucket::redacted(&bucket.url);
                // The first request shows whether the bucket can be reached at all.
                let hint = missing_credentials
                    .map(|why| format!("; {why}"))
                    .unwrap_or_default();
                let taken = tokio::time::timeout(
                    BUCKET_OPEN_TIMEOUT,
                    lease::Lease::acquire(store.clone(), &options.name, &url, options.lease_ttl),
                )
                .await
                .map_err(|_| {
                    StoreError::Engine(format!(
                        "{url}: no answer within {} s: check the endpoint and the \
                         credentials{hint}",
                        BUCKET_OPEN_TIMEOUT.as_secs()
                    ))
                })?
                .map_err(|err| match err {
                    StoreError::Engine(message) if !hint.is_empty() => {
                        StoreError::Engine(format!("{message}{hint}"))
                    }
                    other => other,
                })?;
                let guarded = lease::LeaseGuard::new(store, taken.lost_flag(), url);
                Self {
                    objects: Arc::new(guarded),
                    lease: Some(taken),
                    lock: None,
                    journal: None,
                }
            }
            Location::Directory(path) => {
                std::fs::create_dir_all(path).map_err(|source| StoreError::Io {
                    path: path.clone(),
                    source,
                })?;
                layout::check_directory(path)?;
                let lock = DirectoryLock::acquire(path)?;
                // Every write goes to the journal and is durable at the next
                // acknowledgement (journal/mod.rs).
                let journal = journal::Journal::open(path, options.existing_only).await?;
                // AndaDB commits with conditional puts, which a bare local file
                // system does not offer; MetaStore adds them (the layout AndaDB's
                // own local examples use).
                let layout = MetaStoreBuilder::new(
                    journal::JournalStore(journal.clone()),
                    META_CACHE_CAPACITY,
                )
                .build();
                // A commit's writes wait above the layout until it is acknowledged
                // (journal/staged.rs).
                let staged = journal::Staged::new(layout, journal);
                Self {
                    objects: Arc::new(staged.clone()),
                    lease: None,
                    lock: Some(lock),
                    journal: Some(staged),
                }
            }
        })
    }
}

/// Whether a directory exists and holds anything at all.
fn has_entries(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_some())
}
