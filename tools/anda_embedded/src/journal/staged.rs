//! What AndaDB writes between two acknowledgements, held above MetaStore.
//!
//! MetaStore's bookkeeping for one put (a generation minted, its metadata
//! cached and written, the generation it replaces deleted) costs several
//! microseconds, some seventy times a commit, and AndaDB runs its commit
//! while it holds the engine's write lock: with several threads writing, the
//! layout alone made a directory store's commits about a fifth longer than
//! memory's. Here a commit's writes are only held; they pass through
//! MetaStore into the journal at the acknowledgement ([`Staged::sync`]),
//! after the engine has let its lock go, beside the next commit. An object
//! written twice before then passes once, and one created and deleted in
//! between never passes at all.
//!
//! Conditional writes are decided here, against the ETags this layer hands
//! out for the objects written through it (MetaStore's own for the others).
//! Writes pass down in the order they were taken, and the journal makes each
//! pass durable as one batch, so a stop leaves what an acknowledgement had
//! written, whole.
use super::{
    Journal, JournalStore,
    store::{self, TakesWholePuts, not_found},
};
use crate::StoreError;
use anda_object_store::MetaStore;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
    Result, UpdateVersion, path::Path,
};
use std::{
    collections::HashMap,
    ops::Range,
    sync::{Arc, Mutex, MutexGuard},
};

type Below = MetaStore<JournalStore>;

/// A directory store's objects: writes held until the acknowledgement, then
/// passed through MetaStore into the journal.
#[derive(Clone, Debug)]
pub(crate) struct Staged(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    below: Below,
    journal: Arc<Journal>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    objects: HashMap<Path, Object, foldhash::fast::RandomState>,
    /// The number of the last write taken.
    taken: u64,
    /// The number of the last write passed below.
    passed: u64,
}

/// An object written through this layer since the store opened.
#[derive(Debug, Clone)]
enum Object {
    /// Written, not yet passed below.
    Held {
        write: u64,
        data: Bytes,
        modified: DateTime<Utc>,
        /// Whether MetaStore may hold an earlier state of it.
        below: bool,
    },
    /// Deleted, and MetaStore still holds it.
    Deleted { write: u64 },
    /// Passed below as written by `write`, whose ETag it keeps.
    Passed { write: u64 },
}

impl Object {
    fn write(&self) -> u64 {
        match self {
            Self::Held { write, .. } | Self::Deleted { write } | Self::Passed { write } => *write,
        }
    }

    /// Its ETag, if it exists.
    fn e_tag(&self) -> Option<String> {
        match self {
            Self::Held { write, .. } | Self::Passed { write } => Some(e_tag(*write)),
            Self::Deleted { .. } => None,
        }
    }
}

/// The ETag of the object a write left. Distinct from MetaStore's (base64
/// digests), though only the ETags of one path are ever compared.
fn e_tag(write: u64) -> String {
    format!("anda-write-{write}")
}

fn held_meta(path: &Path, write: u64, data: &Bytes, modified: DateTime<Utc>) -> ObjectMeta {
    ObjectMeta {
        location: path.clone(),
        last_modified: modified,
        size: data.len() as u64,
        e_tag: Some(e_tag(write)),
        version: None,
    }
}

/// What a write needs to know of the object it replaces.
enum Current {
    /// This layer has it (or its deletion).
    Here(Object),
    /// Not written here: MetaStore's answer, if it was asked (its ETag,
    /// `None` if it holds no object there).
    Below(Option<Result<Option<String>>>),
}

impl Current {
    /// Whether MetaStore may hold a state of the object this write replaces.
    fn below(&self) -> bool {
        match self {
            Self::Here(Object::Held { below, .. }) => *below,
            Self::Here(_) => true,
            Self::Below(Some(Ok(e_tag))) => e_tag.is_some(),
            // Unasked, or an answer that failed (metadata it cannot read,
            // which its own delete and overwrite replace).
            Self::Below(_) => true,
        }
    }
}

impl Staged {
    pub(crate) fn new(below: Below, journal: Arc<Journal>) -> Self {
        Self(Arc::new(Inner {
            below,
            journal,
            state: Mutex::new(State::default()),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `change` on the state of `path`. When this layer holds nothing
    /// of it, MetaStore is asked first if `ask` says so; its answer stands
    /// if the path is still not held here after it, as a pass only changes
    /// held paths.
    async fn with_current<T>(
        &self,
        path: &Path,
        ask: bool,
        change: impl FnOnce(&mut State, Current) -> Result<T>,
    ) -> Result<T> {
        let held = self.lock().objects.get(path).cloned();
        let answer = match held {
            Some(object) => return change(&mut self.lock(), Current::Here(object)),
            None if !ask => None,
            None => Some(match self.0.below.head(path).await {
                Ok(meta) => Ok(meta.e_tag),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(err) => Err(err),
            }),
        };
        let mut state = self.lock();
        match state.objects.get(path).cloned() {
            Some(object) => change(&mut state, Current::Here(object)),
            None => change(&mut state, Current::Below(answer)),
        }
    }

    async fn hold(&self, path: &Path, data: Bytes, mode: &PutMode) -> Result<PutResult> {
        self.0.journal.check_writable()?;
        let modified = Utc::now();
        // An overwrite needs nothing of what it replaces.
        let ask = !matches!(mode, PutMode::Overwrite);
        let write = self
            .with_current(path, ask, |state, current| {
                let below = current.below();
                let current_e_tag = match current {
                    Current::Here(object) => object.e_tag(),
                    Current::Below(Some(answer)) => answer?,
                    Current::Below(None) => None,
                };
                match mode {
                    PutMode::Overwrite => {}
                    PutMode::Create if current_e_tag.is_some() => {
                        return Err(object_store::Error::AlreadyExists {
                            path: path.to_string(),
                            source: "an object is already there".into(),
                        });
                    }
                    PutMode::Create => {}
                    PutMode::Update(expected) => check_update(path, current_e_tag, expected)?,
                }
                state.taken += 1;
                let write = state.taken;
                state.objects.insert(
                    path.clone(),
                    Object::Held {
                        write,
                        data: data.clone(),
                        modified,
                        below,
                    },
                );
                Ok(write)
            })
            .await?;
        Ok(PutResult {
            e_tag: Some(e_tag(write)),
            version: None,
            extensions: Default::default(),
        })
    }

    async fn delete_one(&self, path: Path) -> Result<Path> {
        self.0.journal.check_writable()?;
        self.with_current(&path, true, |state, current| {
            if let Current::Here(Object::Deleted { .. }) | Current::Below(Some(Ok(None))) = current
            {
                return Err(not_found(&path));
            }
            let below = current.below();
            state.taken += 1;
            let write = state.taken;
            if below {
                state
                    .objects
                    .insert(path.clone(), Object::Deleted { write });
            } else {
                // Created since the last pass: MetaStore never hears of it.
                state.objects.remove(&path);
            }
            Ok(())
        })
        .await?;
        Ok(path)
    }

    /// Passes every write held so far through MetaStore into the journal,
    /// with the journal's `passing` held: one pass at a time, so an object's
    /// writes reach MetaStore in the order they were taken, and none while
    /// a checkpoint takes the batch.
    async fn pass(&self) -> Result<(), StoreError> {
        let (mut held, taken) = {
            let state = self.lock();
            // A failed journal takes nothing; its sync says why.
            if state.passed == state.taken || self.0.journal.check_writable().is_err() {
                return Ok(());
            }
            let held: Vec<(Path, Object)> = state
                .objects
                .iter()
                .filter(|(_, object)| !matches!(object, Object::Passed { .. }))
                .map(|(path, object)| (path.clone(), object.clone()))
                .collect();
            (held, state.taken)
        };
        held.sort_by_key(|(_, object)| object.write());
        for (path, object) in &held {
            let passed = match object {
                Object::Held { data, .. } => self
                    .0
                    .below
                    .put_opts(
                        path,
                        data.clone().into(),
                        PutOptions::from(PutMode::Overwrite),
                    )
                    .await
                    .map(drop),
                Object::Deleted { .. } => match self.0.below.delete(path).await {
                    Err(object_store::Error::NotFound { .. }) => Ok(()),
                    done => done,
                },
                Object::Passed { .. } => unreachable!("filtered out above"),
            };
            if let Err(err) = passed {
                // The engine was told these writes were done: what reached
                // the journal is now unknown until a reopen replays it.
                let why = format!("anda could not pass a write to {path} into the journal: {err}");
                self.0.journal.fail(why.clone());
                return Err(StoreError::OutcomeUnknown(why));
            }
        }
        let mut state = self.lock();
        for (path, object) in held {
            let write = object.write();
            if state.objects.get(&path).map(Object::write) != Some(write) {
                continue;
            }
            match object {
                Object::Held { .. } => {
                    state.objects.insert(path, Object::Passed { write });
                }
                _ => {
                    state.objects.remove(&path);
                }
            }
        }
        state.passed = state.passed.max(taken);
        Ok(())
    }

    /// Makes every write taken so far durable: the acknowledgement point of
    /// a call (see [`Journal::sync`]).
    pub(crate) async fn sync(&self) -> Result<(), StoreError> {
        // A call that finds nothing held and nothing to sync (a read, most
        // often) waits for no pass that another call has under way.
        let nothing_held = {
            let state = self.lock();
            state.passed == state.taken
        };
        if nothing_held && self.0.journal.acknowledge_if_durable()? {
            return Ok(());
        }
        // Held through the journal's sync: its batch then ends with this
        // pass, whole (the state a pass leaves is the one every write taken
        // before it left; half of it may be no state AndaDB ever wrote).
        let _passing = self.0.journal.passing.lock().await;
        self.pass().await?;
        self.0.journal.sync().await
    }

    /// Syncs, then puts the journal's objects into the directory.
    pub(crate) async fn checkpoint(&self) -> Result<(), StoreError> {
        self.sync().await?;
        self.0.journal.checkpoint().await
    }

    /// Syncs and checkpoints for the last time (see [`Journal::close`]).
    pub(crate) async fn close(&self) -> Result<(), StoreError> {
        {
            let _passing = self.0.journal.passing.lock().await;
            self.pass().await?;
        }
        self.0.journal.close().await
    }

    /// Writes nothing more (see [`Journal::abandon`]).
    pub(crate) fn abandon(&self) {
        self.0.journal.abandon();
    }

    /// What this layer knows of the objects under `prefix`, to lay over
    /// MetaStore's listing.
    fn under(&self, prefix: Option<&Path>) -> HashMap<Path, Object, foldhash::fast::RandomState> {
        self.lock()
            .objects
            .iter()
            .filter(|(path, _)| prefix.is_none_or(|prefix| path.prefix_matches(prefix)))
            .map(|(path, object)| (path.clone(), object.clone()))
            .collect()
    }

    fn merged(
        &self,
        prefix: Option<&Path>,
        offset: Option<&Path>,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let here = Arc::new(self.under(prefix));
        let below = match offset {
            Some(offset) => self.0.below.list_with_offset(prefix, offset),
            None => self.0.below.list(prefix),
        };
        let shadowing = here.clone();
        let below = below.try_filter_map(move |mut meta| {
            let kept = match shadowing.get(&meta.location) {
                None => Some(meta),
                Some(Object::Passed { write }) => {
                    meta.e_tag = Some(e_tag(*write));
                    Some(meta)
                }
                Some(_) => None,
            };
            futures::future::ready(Ok(kept))
        });
        let offset = offset.cloned();
        let held: Vec<Result<ObjectMeta>> = here
            .iter()
            .filter(|(path, _)| offset.as_ref().is_none_or(|offset| *path > offset))
            .filter_map(|(path, object)| match object {
                Object::Held {
                    write,
                    data,
                    modified,
                    ..
                } => Some(Ok(held_meta(path, *write, data, *modified))),
                _ => None,
            })
            .collect();
        below.chain(futures::stream::iter(held)).boxed()
    }
}

/// MetaStore's rule for a conditional update: the ETag must be given and
/// match; versions are not supported.
fn check_update(path: &Path, current: Option<String>, expected: &UpdateVersion) -> Result<()> {
    let precondition = |source: String| object_store::Error::Precondition {
        path: path.to_string(),
        source: source.into(),
    };
    let Some(wanted) = &expected.e_tag else {
        return Err(precondition("missing e_tag for conditional update".into()));
    };
    if current.as_ref() != Some(wanted) {
        return Err(precondition(format!(
            "{current:?} does not match {wanted:?}"
        )));
    }
    if expected.version.is_some() {
        return Err(precondition(
            "version-addressed updates are not supported; use e_tag".into(),
        ));
    }
    Ok(())
}

#[async_trait]
impl TakesWholePuts for Staged {
    async fn put_whole(&self, path: &Path, data: Bytes, mode: &PutMode) -> Result<PutResult> {
        self.hold(path, data, mode).await
    }
}

impl std::fmt::Display for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Staged({})", self.0.below)
    }
}

#[async_trait]
impl ObjectStore for Staged {
    async fn put_opts(
        &self,
        path: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.hold(path, payload.into(), &opts.mode).await
    }

    async fn put_multipart_opts(
        &self,
        path: &Path,
        _opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        Ok(store::Upload::to(self, path))
    }

    async fn get_opts(&self, path: &Path, mut options: GetOptions) -> Result<GetResult> {
        let object = self.lock().objects.get(path).cloned();
        let write = match object {
            None => return self.0.below.get_opts(path, options).await,
            Some(Object::Deleted { .. }) => return Err(not_found(path)),
            Some(Object::Passed { write }) => write,
            Some(Object::Held {
                write,
                data,
                modified,
                ..
            }) => {
                let meta = held_meta(path, write, &data, modified);
                options.check_preconditions(&meta)?;
                let range = store::byte_range(&options, meta.size)?;
                let data = if options.head {
                    Bytes::new()
                } else {
                    data.slice(range.start as usize..range.end as usize)
                };
                return Ok(store::answer(meta, range, data));
            }
        };
        // MetaStore holds it as written here: its ETag is this layer's.
        let if_match = options.if_match.take();
        let if_none_match = options.if_none_match.take();
        let mut result = self.0.below.get_opts(path, options).await?;
        result.meta.e_tag = Some(e_tag(write));
        GetOptions {
            if_match,
            if_none_match,
            ..Default::default()
        }
        .check_preconditions(&result.meta)?;
        Ok(result)
    }

    async fn get_ranges(&self, path: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let object = self.lock().objects.get(path).cloned();
        match object {
            Some(Object::Held { data, .. }) => ranges
                .iter()
                .map(|range| {
                    let asked =
                        GetOptions::new().with_range(Some(GetRange::Bounded(range.clone())));
                    let range = store::byte_range(&asked, data.len() as u64)?;
                    Ok(data.slice(range.start as usize..range.end as usize))
                })
                .collect(),
            Some(Object::Deleted { .. }) => Err(not_found(path)),
            _ => self.0.below.get_ranges(path, ranges).await,
        }
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let store = self.clone();
        locations
            .and_then(move |path| {
                let store = store.clone();
                async move { store.delete_one(path).await }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.merged(prefix, None)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.merged(prefix, Some(offset))
    }

    /// Grouped from the whole listing under `prefix`: a directory whose
    /// objects were all deleted here is gone, as it will be below.
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let depth = prefix.map_or(0, |prefix| prefix.parts().count());
        let mut objects = Vec::new();
        let mut common_prefixes = std::collections::BTreeSet::new();
        let mut listed = self.merged(prefix, None);
        while let Some(meta) = listed.try_next().await? {
            let parts: Vec<_> = meta.location.parts().collect();
            if parts.len() == depth + 1 {
                objects.push(meta);
            } else {
                common_prefixes.insert(Path::from_iter(parts.into_iter().take(depth + 1)));
            }
        }
        Ok(ListResult {
            common_prefixes: common_prefixes.into_iter().collect(),
            objects,
            extensions: Default::default(),
        })
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        store::copy(self, from, to, options).await
    }
}

#[cfg(test)]
mod tests;
