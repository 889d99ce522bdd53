//! One live opener per bucket store: a lease object beside the data.
//!
//! AndaDB assumes a single process per database (opening runs recovery,
//! closing flushes), and a bucket has no file lock. The lease is an object,
//! `<name>.lease`, taken with a create-only put, renewed with a put
//! conditional on its ETag well inside its time-to-live, and deleted on close.
//! An expired lease is taken over with a put conditional on the ETag that was
//! read, so of two contenders at most one wins. A holder that fails to renew
//! before its lease expires stops writing: [`LeaseGuard`] refuses every
//! mutation from then on.
//!
//! The lease is advisory, for processes that go through anda; the backend's
//! conditional puts, which AndaDB's own commits use, are the last defence.
use crate::StoreError;
use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    Result, UpdateVersion, path::Path,
};
use serde_json::json;
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// How long a lease lasts without renewal.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// A held lease: renewed in the background until [`Lease::release`].
pub struct Lease {
    store: Arc<dyn ObjectStore>,
    path: Path,
    lost: Arc<AtomicBool>,
    renewal: tokio::task::JoinHandle<()>,
    etag: Arc<tokio::sync::Mutex<Option<String>>>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("path", &self.path).finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

fn body(holder: &str, ttl: Duration) -> PutPayload {
    let expires_at = now_ms() + ttl.as_millis() as u64;
    json!({"holder": holder, "expires_at_ms": expires_at, "ttl_ms": ttl.as_millis() as u64})
        .to_string()
        .into()
}

fn holder_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".to_string());
    format!(
        "{host} pid {} (opened at {} ms)",
        std::process::id(),
        now_ms()
    )
}

fn locked(url: &str, detail: String) -> StoreError {
    StoreError::Locked {
        path: url.into(),
        detail,
    }
}

fn storage(url: &str, what: &str, err: object_store::Error) -> StoreError {
    let hint = match err {
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            " (the server refused these credentials: check the access key, the secret and \
             what they may do in this bucket)"
        }
        _ => "",
    };
    StoreError::Engine(format!(
        "{url}: cannot {what} the store's lease{hint}: {err}"
    ))
}

impl Lease {
    /// Takes the lease for `name` in `store`, or fails with
    /// [`StoreError::Locked`] naming who holds it and until when.
    pub async fn acquire(
        store: Arc<dyn ObjectStore>,
        name: &str,
        url: &str,
        ttl: Duration,
    ) -> Result<Self, StoreError> {
        let path = Path::from(format!("{name}.lease"));
        let holder = holder_id();
        let create = PutOptions::from(PutMode::Create);
        let etag = match store.put_opts(&path, body(&holder, ttl), create).await {
            Ok(put) => put.e_tag,
            Err(object_store::Error::AlreadyExists { .. }) => {
                take_over(&store, &path, &holder, url, ttl).await?
            }
            Err(err) => return Err(storage(url, "take", err)),
        };
        let lost = Arc::new(AtomicBool::new(false));
        let etag = Arc::new(tokio::sync::Mutex::new(etag));
        let renewal = tokio::spawn(renew(
            store.clone(),
            path.clone(),
            holder,
            ttl,
            etag.clone(),
            lost.clone(),
        ));
        Ok(Self {
            store,
            path,
            lost,
            renewal,
            etag,
        })
    }

    /// The flag [`LeaseGuard`] checks before each write.
    pub fn lost_flag(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }

    /// Whether the lease was lost (not renewed in time, or taken by another).
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// Stops renewing and deletes the lease, if it is still ours.
    pub async fn release(&self) {
        self.renewal.abort();
        let etag = self.etag.lock().await.clone();
        if self.lost.swap(true, Ordering::AcqRel) {
            return;
        }
        // Only our own version: a lease someone else took over stays theirs.
        match self.store.head(&self.path).await {
            Ok(meta) if meta.e_tag == etag => {
                let _ = self.store.delete(&self.path).await;
            }
            _ => {}
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// Takes over an expired lease; a live one is [`StoreError::Locked`].
async fn take_over(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    holder: &str,
    url: &str,
    ttl: Duration,
) -> Result<Option<String>, StoreError> {
    let current = store
        .get(path)
        .await
        .map_err(|err| storage(url, "read", err))?;
    let version = UpdateVersion {
        e_tag: current.meta.e_tag.clone(),
        version: current.meta.version.clone(),
    };
    let bytes = current
        .bytes()
        .await
        .map_err(|err| storage(url, "read", err))?;
    let lease: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let expires_at = lease["expires_at_ms"].as_u64().unwrap_or(0);
    let other = lease["holder"].as_str().unwrap_or("an unknown holder");
    if expires_at > now_ms() {
        let seconds = (expires_at - now_ms()).div_ceil(1000);
        return Err(locked(
            url,
            format!(
                "its lease is held by {other} for {seconds} more second(s) unless renewed \
                 (lease object {path})"
            ),
        ));
    }
    let update = PutOptions::from(PutMode::Update(version));
    match store.put_opts(path, body(holder, ttl), update).await {
        Ok(put) => Ok(put.e_tag),
        Err(object_store::Error::Precondition { .. }) => Err(locked(
            url,
            format!("another process took over its expired lease first (lease object {path})"),
        )),
        Err(err) => Err(storage(url, "take over", err)),
    }
}

/// Renews at a third of the time-to-live; a renewal that fails until the
/// lease would have expired marks it lost.
async fn renew(
    store: Arc<dyn ObjectStore>,
    path: Path,
    holder: String,
    ttl: Duration,
    etag: Arc<tokio::sync::Mutex<Option<String>>>,
    lost: Arc<AtomicBool>,
) {
    let mut valid_until = tokio::time::Instant::now() + ttl;
    loop {
        tokio::time::sleep(ttl / 3).await;
        let mut current = etag.lock().await;
        let update = PutOptions::from(PutMode::Update(UpdateVersion {
            e_tag: current.clone(),
            version: None,
        }));
        match store.put_opts(&path, body(&holder, ttl), update).await {
            Ok(put) => {
                *current = put.e_tag;
                valid_until = tokio::time::Instant::now() + ttl;
            }
            // Someone else holds it now: stop at once.
            Err(
                object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. },
            ) => {
                lost.store(true, Ordering::Release);
                return;
            }
            Err(_) if tokio::time::Instant::now() >= valid_until => {
                lost.store(true, Ordering::Release);
                return;
            }
            Err(_) => {} // transient: try again before it expires
        }
    }
}

/// Refuses every write once the lease is lost, so a process that no longer
/// holds the store never races the one that does.
#[derive(Debug)]
pub struct LeaseGuard {
    inner: Arc<dyn ObjectStore>,
    lost: Arc<AtomicBool>,
    url: String,
}

impl LeaseGuard {
    pub fn new(inner: Arc<dyn ObjectStore>, lost: Arc<AtomicBool>, url: String) -> Self {
        Self { inner, lost, url }
    }

    fn check(&self) -> Result<()> {
        if self.lost.load(Ordering::Acquire) {
            return Err(object_store::Error::Generic {
                store: "anda lease",
                source: format!(
                    "this process no longer holds the lease on {}: another process may own the \
                     store now, so nothing more is written; close it and open it again",
                    self.url
                )
                .into(),
            });
        }
        Ok(())
    }
}

impl std::fmt::Display for LeaseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LeaseGuard({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for LeaseGuard {
    async fn put_opts(
        &self,
        path: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.check()?;
        self.inner.put_opts(path, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        path: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.check()?;
        self.inner.put_multipart_opts(path, opts).await
    }
    async fn get_opts(&self, path: &Path, opts: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(path, opts).await
    }
    async fn get_ranges(
        &self,
        path: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> Result<Vec<bytes::Bytes>> {
        self.inner.get_ranges(path, ranges).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        match self.check() {
            Ok(()) => self.inner.delete_stream(locations),
            Err(err) => Box::pin(futures::stream::once(async move { Err(err) })),
        }
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, opts: CopyOptions) -> Result<()> {
        self.check()?;
        self.inner.copy_opts(from, to, opts).await
    }
    async fn rename_opts(&self, from: &Path, to: &Path, opts: RenameOptions) -> Result<()> {
        self.check()?;
        self.inner.rename_opts(from, to, opts).await
    }
}
