//! An embedded Anda Cognitive Nexus.
//!
//! [`EmbeddedNexus`] opens the same stack `anda_engine`'s `memory` module runs
//! on — an AndaDB, a Cognitive Nexus over it with the Cognitive Memory profile
//! active, and [`MemoryManagement`] on top — and executes KIP requests exactly
//! as the engine's `execute_kip` / `execute_kip_readonly` tools do. The Python
//! binding and the native benchmark both go through this crate, so what the
//! benchmark measures is the path the binding takes.

mod bucket;
mod bulk;
mod caller;
mod copy;
mod damage;
pub mod engine_log;
mod journal;
mod layout;
mod lease;
mod lock;
mod schema;
mod tools;
mod verify;

use anda_cognitive_nexus::{CognitiveNexus, nexus::DEFAULT_SPACE, profiles};
use anda_db::database::{AndaDB, DBConfig};
pub use anda_engine::memory::Tenancy;
use anda_engine::memory::{KipArgs, MemoryManagement};
use anda_kip::{KipError, Request, Response, execute_request, execute_request_readonly};
use anda_object_store::{MetaStoreBuilder, fault::FaultStore};
pub use candid::Principal;
use object_store::{ObjectStore, memory::InMemory};
use std::{fmt, path::PathBuf, sync::Arc, time::Duration};

pub use anda_engine::memory::KipOperation;
pub use anda_kip::{Execution, ExecutionMode, KIP_VERSION, Operation};
pub use bulk::{
    BulkError, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MAX_CHUNK_TEXT, WriteCommand,
    combine as combine_writes,
};
pub use caller::caller_principal;
pub use copy::{CopyDestination, StoredObject};
pub use journal::{FILE_NAME as JOURNAL_FILE_NAME, unreplayed_bytes};
use lock::DirectoryLock;
pub use tools::{ToolName, agent_texts, invalid_arguments, tool_args, tool_definition};
pub use verify::{Problem, Report as VerifyReport};

pub use anda_object_store::fault::{
    FaultEvent, FaultGate, FaultHandle, FaultKind, FaultOp, FaultRule,
};
pub use bucket::{BucketLocation, is_bucket_url, redacted as redacted_url};
pub use lease::DEFAULT_TTL as DEFAULT_LEASE_TTL;
pub use schema::PackageSource;

/// Records the engine skipped silently: see [`damage`].
pub mod skipped {
    pub use crate::damage::{mark, since, watch};
}

/// Every allocation of the engine and of anda, in the extension and in the
/// native benchmark alike: about a third of a small request's time went to the
/// system allocator. mimalloc over jemalloc, which measured close: it is
/// portable to every platform anda ships wheels for, with no page-size
/// constraint, and its `local_dynamic_tls` build is safe in a library loaded
/// with `dlopen` (a Python extension).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The anda_engine version this build links.
pub const ANDA_ENGINE_VERSION: &str = env!("ANDA_ENGINE_VERSION");
/// The anda_kip version this build links.
pub const ANDA_KIP_VERSION: &str = env!("ANDA_KIP_VERSION");
/// The anda_cognitive_nexus version this build links.
pub const ANDA_COGNITIVE_NEXUS_VERSION: &str = env!("ANDA_COGNITIVE_NEXUS_VERSION");
/// The anda_db version this build links.
pub const ANDA_DB_VERSION: &str = env!("ANDA_DB_VERSION");

/// The deepest nesting the engine accepts in one JSON value (a parameter's
/// value counts from 0), as `anda_kip::validate_json` enforces it.
pub const MAX_JSON_DEPTH: usize = 100;

/// `DBConfig::default()`'s name, so a directory opened here and one opened by
/// an Anda agent built on the defaults are the same database.
pub const DEFAULT_DB_NAME: &str = "anda_db";

/// The schema packages every store activates in its default Space.
///
/// Core declares no Concept types at all, so without a profile the first
/// `UPSERT CONCEPT` a user sends would fail. The Cognitive Memory profile is
/// what `anda_engine`'s memory assumes (`Person`, `SelfModel`, ...); the
/// general domain adds the everyday predicates (`lives_in`, `works_for`, ...)
/// the KIP syntax card teaches.
const BOOTSTRAP_PACKAGES: [(&str, &str); 2] = [
    ("anda_engine", profiles::COGNITIVE_MEMORY),
    ("anda_engine", profiles::GENERAL_DOMAIN),
];

/// How long opening a bucket store may wait for its first answer (taking the
/// lease) before it fails: an unreachable endpoint or a client waiting on an
/// instance-metadata service must not hang the caller.
const BUCKET_OPEN_TIMEOUT: Duration = Duration::from_secs(20);

/// Object metadata entries MetaStore keeps cached for a directory store.
const META_CACHE_CAPACITY: u64 = 100_000;

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

/// Why a store could not be opened or closed.
#[derive(Debug)]
pub enum StoreError {
    /// A bucket location or its options are wrong (an unknown option key, a
    /// configuration anda refuses).
    Config(String),
    /// A Schema Package given to open the store was refused.
    Schema(Box<KipError>),
    /// Another open store (in this process or another) holds the directory.
    Locked { path: PathBuf, detail: String },
    /// The directory could not be created or used.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The database or the engine refused to open, bootstrap or close.
    Engine(String),
    /// The store is damaged: documents its metadata lists cannot be read.
    Corrupt(Vec<Problem>),
    /// The directory holds something that is not an anda store, or holds
    /// a store in a way anda refuses to write through (a symbolic link).
    NotAStore { path: PathBuf, detail: String },
    /// Writes the engine took may or may not be durable: the journal could
    /// not be synced. The store takes no more calls until it is reopened.
    OutcomeUnknown(String),
    /// The directory holds a journal a stopped process left, which only a
    /// writable open replays.
    Unreplayed { path: PathBuf, bytes: u64 },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Locked { path, detail } => write!(
                f,
                "the store directory {} is already open in another Nexus (this or another \
                 process); close it first ({detail})",
                path.display()
            ),
            StoreError::Io { path, source } => {
                write!(f, "cannot use store directory {}: {source}", path.display())
            }
            StoreError::Engine(message) | StoreError::Config(message) => f.write_str(message),
            StoreError::Schema(err) => write!(f, "{}: {}", err.code, err.message),
            StoreError::Corrupt(problems) => {
                write!(f, "the store is damaged ({} problem(s)):", problems.len())?;
                for problem in problems.iter().take(10) {
                    write!(f, " {}", describe(problem))?;
                }
                if problems.len() > 10 {
                    write!(f, " ... and {} more", problems.len() - 10)?;
                }
                Ok(())
            }
            StoreError::NotAStore { path, detail } => {
                write!(f, "refusing to use {} as a store: {detail}", path.display())
            }
            StoreError::OutcomeUnknown(message) => {
                write!(f, "the outcome of this call is unknown: {message}")
            }
            StoreError::Unreplayed { path, bytes } => write!(
                f,
                "the store directory {} holds an unreplayed journal ({} of {bytes} bytes): \
                 writes acknowledged before its last process stopped are only there. Open it \
                 once with anda, writable (for example `python -m anda --db {} \"DESCRIBE \
                 PRIMER\"`), to replay it",
                path.display(),
                journal::FILE_NAME,
                path.display()
            ),
        }
    }
}

impl std::error::Error for StoreError {}

/// One problem on one line: where, then what.
pub fn describe(problem: &Problem) -> String {
    match problem.document {
        Some(id) => format!(
            "[{} document {id}: {}]",
            problem.collection, problem.message
        ),
        None => format!("[{}: {}]", problem.collection, problem.message),
    }
}

fn engine_error(context: &str) -> impl FnOnce(String) -> StoreError + '_ {
    move |message| StoreError::Engine(format!("{context}: {message}"))
}

/// How a store is opened, beyond where it lives.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// The database name inside the store.
    pub name: String,
    /// How callers are bound to identity and Space.
    pub tenancy: Tenancy,
    /// Schema Packages to install and activate on top of the bootstrap ones.
    pub schema_packages: Vec<PackageSource>,
    /// Puts the store behind a fault-injecting wrapper ([`EmbeddedNexus::faults`]).
    /// For reliability tests only.
    pub inject_faults: bool,
    /// How long a bucket store's lease lasts without renewal.
    pub lease_ttl: Duration,
    /// Refuse a location that holds no store instead of creating one there
    /// (a read-only open: a mistyped location must not read as empty memory).
    pub existing_only: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            name: DEFAULT_DB_NAME.to_string(),
            tenancy: Tenancy::Shared,
            schema_packages: Vec::new(),
            inject_faults: false,
            lease_ttl: lease::DEFAULT_TTL,
            existing_only: false,
        }
    }
}

/// One open store: AndaDB + Cognitive Nexus + the engine's memory.
pub struct EmbeddedNexus {
    memory: Arc<MemoryManagement>,
    nexus: Arc<CognitiveNexus>,
    location: Location,
    /// What AndaDB reads and writes: for copying the store as it is.
    objects: Arc<dyn ObjectStore>,
    /// The database name inside the store.
    name: String,
    faults: Option<FaultHandle>,
    lease: Option<lease::Lease>,
    /// A directory store's journal: synced at every acknowledgement.
    journal: Option<Arc<journal::Journal>>,
    // Held for as long as the store is open; released on drop.
    _lock: Option<DirectoryLock>,
}

impl fmt::Debug for EmbeddedNexus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedNexus")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// A location's objects, held for one user: a directory behind its lock,
/// a bucket behind its lease. AndaDB is not opened on them yet.
pub(crate) struct Storage {
    pub(crate) objects: Arc<dyn ObjectStore>,
    pub(crate) lease: Option<lease::Lease>,
    pub(crate) lock: Option<DirectoryLock>,
    pub(crate) journal: Option<Arc<journal::Journal>>,
}

impl Storage {
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
                let store = MetaStoreBuilder::new(
                    journal::JournalStore(journal.clone()),
                    META_CACHE_CAPACITY,
                )
                .build();
                Self {
                    objects: Arc::new(store),
                    lease: None,
                    lock: Some(lock),
                    journal: Some(journal),
                }
            }
        })
    }
}

impl EmbeddedNexus {
    /// Opens (or creates) a store and activates the bootstrap packages.
    ///
    /// Activation is idempotent: reopening a store whose packages are already
    /// in force changes nothing.
    pub async fn open(location: Location, options: &OpenOptions) -> Result<Self, StoreError> {
        damage::watch();
        let Storage {
            objects: object_store,
            lease,
            lock,
            journal,
        } = Storage::acquire(&location, options).await?;
        if options.existing_only && location != Location::InMemory {
            let found = copy::holds_store(&object_store, &options.name).await;
            if !matches!(found, Ok(true)) {
                if let Some(lease) = &lease {
                    lease.release().await;
                }
                let place = copy::place_of(&location);
                return Err(match found {
                    Ok(_) => StoreError::NotAStore {
                        path: PathBuf::from(place),
                        detail: format!("it holds no store named {:?}", options.name),
                    },
                    Err(err) => {
                        StoreError::Engine(format!("{place}: cannot list the store: {err}"))
                    }
                });
            }
        }
        let (object_store, faults) = if options.inject_faults {
            let (store, handle) = FaultStore::wrap(object_store);
            (Arc::new(store) as Arc<dyn ObjectStore>, Some(handle))
        } else {
            (object_store, None)
        };

        let mut connected = Self::connect(object_store.clone(), options).await;
        if let (Ok(_), Some(journal)) = (&connected, &journal) {
            // Opening wrote the bootstrap; it is acknowledged like any call.
            if let Err(err) = journal.sync().await {
                connected = Err(err);
            }
        }
        let (memory, nexus) = match connected {
            Ok(parts) => parts,
            Err(err) => {
                if let Some(journal) = &journal {
                    journal.abandon();
                }
                // Free the store for the next opener now, not when the lease expires.
                if let Some(lease) = &lease {
                    lease.release().await;
                }
                return Err(err);
            }
        };
        Ok(Self {
            memory: Arc::new(memory),
            nexus,
            location,
            objects: object_store,
            name: options.name.clone(),
            faults,
            lease,
            journal,
            _lock: lock,
        })
    }

    /// AndaDB, the Cognitive Nexus with its schema, and the engine memory,
    /// over an object store that is ready to use.
    async fn connect(
        object_store: Arc<dyn ObjectStore>,
        options: &OpenOptions,
    ) -> Result<(MemoryManagement, Arc<CognitiveNexus>), StoreError> {
        let config = DBConfig {
            name: options.name.clone(),
            ..DBConfig::default()
        };
        let db = Arc::new(
            AndaDB::connect(object_store, config)
                .await
                .map_err(|err| err.to_string())
                .map_err(engine_error("cannot open AndaDB"))?,
        );
        let nexus = CognitiveNexus::connect(db.clone())
            .await
            .map_err(|err| err.to_string())
            .map_err(engine_error("cannot open the Cognitive Nexus"))?;
        let packages: Vec<PackageSource> = BOOTSTRAP_PACKAGES
            .iter()
            .map(|(source, artifact)| PackageSource {
                source: source.to_string(),
                artifact: artifact.to_string(),
            })
            .chain(options.schema_packages.iter().cloned())
            .collect();
        schema::install(&nexus, &packages, true)
            .await
            .map_err(|err| StoreError::Schema(Box::new(err)))?;
        let nexus = Arc::new(nexus);
        let memory = MemoryManagement::connect(db, nexus.clone())
            .await
            .map_err(|err| err.to_string())
            .map_err(engine_error("cannot open the engine memory"))?
            .with_tenancy(options.tenancy);
        // A document the engine skipped while opening would be left out of
        // every answer without a word: refuse the store instead.
        let skipped = verify::skipped_on_open(&nexus.store.db);
        if !skipped.is_empty() {
            // Not closed: closing flushes, and nothing is written to a
            // damaged store on anda's initiative.
            return Err(StoreError::Corrupt(skipped));
        }

        Ok((memory, nexus))
    }

    /// Executes the model-facing KIP tool arguments for `caller`, as the
    /// engine's `execute_kip` tool does (or `execute_kip_readonly` when
    /// `readonly`).
    ///
    /// Never fails: every problem, envelope errors included, is reported in
    /// the response, which is what the engine's tools return too.
    pub async fn execute(&self, args: KipArgs, readonly: bool, caller: &Principal) -> Response {
        let request = if readonly {
            args.into_readonly_request()
        } else {
            args.into_request()
        };
        match request {
            Ok(request) => self.execute_request(request, readonly, caller).await,
            Err(err) => Response::from(err),
        }
    }

    /// Executes a wire request envelope, bound to the caller's session and
    /// Space the way the engine binds a tool call: under `Tenancy::Shared`
    /// every caller runs as the system Principal; under
    /// `Tenancy::PerCallerSpace` each caller in a Space of its own, and the
    /// anonymous Principal with no rights at all.
    pub async fn execute_request(
        &self,
        mut request: Request,
        readonly: bool,
        caller: &Principal,
    ) -> Response {
        let session = match self.memory.session_for(caller, &mut request).await {
            Ok(session) => session,
            Err(err) => return Response::from(err),
        };
        if readonly {
            execute_request_readonly(&session, &request).await
        } else {
            execute_request(&session, &request).await
        }
    }

    /// Executes a KIP 2.0 request envelope as JSON (a wire request's
    /// `params`), checked by the engine itself: whatever the envelope asks
    /// (preconditions, context, capability requirements, ingest, options)
    /// the engine honours or refuses with its own error. The Space is always
    /// the caller's (see [`Self::execute_request`]), so `space` is refused.
    pub async fn execute_envelope(
        &self,
        envelope: serde_json::Value,
        readonly: bool,
        caller: &Principal,
    ) -> Response {
        let request = match Request::from_value(envelope) {
            Ok(request) => request,
            Err(err) => return Response::from(err),
        };
        if request.space.is_some() {
            // The engine would put the caller's Space in its place without a word.
            return Response::from(KipError::unsupported_capability(
                "`space`: a request runs in its caller's MemorySpace, which the store \
                 chooses; leave `space` out",
            ))
            .with_request_id(request.request_id.clone());
        }
        self.execute_request(request, readonly, caller).await
    }

    /// Commits `commands` (KML writes, each with its own parameters) as one
    /// engine transaction: all of them, or none.
    pub async fn write_all(
        &self,
        commands: &[WriteCommand],
        readonly: bool,
        caller: &Principal,
    ) -> Result<Response, BulkError> {
        let (command, parameters) = bulk::combine(commands)?;
        let args = KipArgs {
            command: Some(command),
            parameters: Some(parameters),
            ..KipArgs::default()
        };
        Ok(self.execute(args, readonly, caller).await)
    }

    /// Runs a model's call of one of the engine's KIP tools, with the
    /// arguments exactly as the model produced them. `execute_kip_readonly`
    /// takes the read-only path even on a writable store.
    pub async fn call_tool(
        &self,
        tool: ToolName,
        arguments: serde_json::Value,
        store_readonly: bool,
        caller: &Principal,
    ) -> Response {
        match tools::tool_args(arguments) {
            Ok(args) => {
                let readonly = store_readonly || tool == ToolName::ExecuteKipReadonly;
                self.execute(args, readonly, caller).await
            }
            Err(response) => response,
        }
    }

    /// Reads back every document the store's metadata lists (see
    /// [`verify::check`]); the report's `problems` is empty for a sound store.
    pub async fn verify(&self) -> VerifyReport {
        verify::check(&self.nexus.store.db).await
    }

    /// Installs Schema Packages into the store and, with `activate`, puts
    /// them in force in the default Space beside the packages already active.
    /// Every check runs first: a refused package changes nothing.
    #[allow(clippy::result_large_err)] // the engine's KipError, as the engine returns it
    pub async fn install_schema_packages(
        &self,
        packages: &[PackageSource],
        activate: bool,
    ) -> Result<serde_json::Value, KipError> {
        schema::install(&self.nexus, packages, activate).await
    }

    /// Imports a KIP Capsule (its JSON text) into the default Space in the
    /// engine's `merge` mode: every record gets a new id here (the report's
    /// `identity_map`), and importing the same Capsule again resolves to the
    /// same elements. With `dry_run`, checks everything and writes nothing.
    #[allow(clippy::result_large_err)] // the engine's KipError, as the engine returns it
    pub async fn import_capsule(
        &self,
        capsule: &str,
        dry_run: bool,
    ) -> Result<serde_json::Value, KipError> {
        let capsule: anda_kip::Capsule = serde_json::from_str(capsule).map_err(|err| {
            KipError::new(
                anda_kip::KipErrorCode::CapsuleValidationFailed,
                format!("this is not a KIP Capsule: {err}"),
            )
        })?;
        let report = if dry_run {
            anda_cognitive_nexus::capsule::import(
                &self.nexus,
                &capsule,
                DEFAULT_SPACE,
                true,
                anda_cognitive_nexus::governance::auth::AuthContext::system(),
                false,
                &[],
            )
            .await?
        } else {
            self.nexus.import_capsule(&capsule, DEFAULT_SPACE).await?
        };
        Ok(report.to_json(dry_run))
    }

    /// The fault injector, for a store opened with
    /// [`OpenOptions::inject_faults`].
    pub fn faults(&self) -> Option<&FaultHandle> {
        self.faults.as_ref()
    }

    /// Lets the store go without flushing: for a store that was only read,
    /// whose flush would rewrite metadata (statistics) and nothing else.
    /// The lease of a bucket store is released; a directory's lock goes with
    /// the store when it is dropped.
    pub async fn release(&self) {
        if let Some(journal) = &self.journal {
            // Only what opening wrote, if anything; a failure leaves the
            // journal for the next writable open to replay.
            let _ = journal.close().await;
        }
        if let Some(lease) = &self.lease {
            lease.release().await;
        }
    }

    /// Makes every write so far durable: the end of each call that tells its
    /// caller "done" (the executes, tool calls, bulk chunks, package installs,
    /// capsule imports). On a directory store that is one sync of its
    /// journal, shared by the calls that arrive meanwhile; other stores have
    /// made each write durable already.
    ///
    /// Fails with [`StoreError::OutcomeUnknown`] when the sync fails: the
    /// engine has taken the writes, the disk may not have them, and the
    /// store refuses every further call until it is reopened.
    pub async fn acknowledge(&self) -> Result<(), StoreError> {
        match &self.journal {
            Some(journal) => journal.sync().await,
            None => Ok(()),
        }
    }

    /// How this store binds callers.
    pub fn tenancy(&self) -> Tenancy {
        self.memory.tenancy()
    }

    /// Writes everything pending to storage; a directory store's journal is
    /// checkpointed into the directory.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.recover().await?;
        self.nexus
            .store
            .db
            .flush()
            .await
            .map_err(|err| err.to_string())
            .map_err(engine_error("flush failed"))?;
        match &self.journal {
            Some(journal) => {
                journal.sync().await?;
                journal.checkpoint().await
            }
            None => Ok(()),
        }
    }

    /// Recovers what a cancelled call left behind: a write aborted mid-commit
    /// (an `execute_kip_async` task cancelled) poisons the collection handles
    /// it held, and flushing or closing them would fail until they are
    /// reopened, which replays or discards the interrupted commit. The next
    /// engine write does this itself; flush and close must too. A no-op on a
    /// healthy store.
    async fn recover(&self) -> Result<(), StoreError> {
        self.nexus
            .recover()
            .await
            .map_err(|err| StoreError::Engine(format!("cannot recover the store: {err}")))
    }

    /// Flushes and closes the database. The directory lock is released when
    /// the store is dropped.
    pub async fn close(&self) -> Result<(), StoreError> {
        let closed = match self.recover().await {
            Ok(()) => self.nexus.close().await.map_err(|err| err.to_string()),
            Err(err) => Err(err.to_string()),
        };
        if let Some(journal) = &self.journal {
            // What the engine wrote before a failed close is kept as well.
            journal.close().await?;
        }
        let Some(lease) = &self.lease else {
            return closed.map_err(engine_error("close failed"));
        };
        let lost = lease.is_lost();
        lease.release().await;
        closed.map_err(if lost {
            engine_error(
                "close failed: this process no longer holds the lease on the store, so \
                 nothing more was written",
            )
        } else {
            engine_error("close failed")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anda_kip::TopLevelStatus;

    /// Builds tool arguments for one command.
    fn single_command(
        command: String,
        parameters: Option<serde_json::Map<String, serde_json::Value>>,
        dry_run: bool,
    ) -> KipArgs {
        KipArgs {
            command: Some(command),
            parameters,
            dry_run: Some(dry_run),
            ..KipArgs::default()
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_stack_size(16 << 20)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn versions_come_from_the_lock_file() {
        assert!(ANDA_ENGINE_VERSION.starts_with("0.17."));
        assert!(ANDA_KIP_VERSION.starts_with("0.14."));
        assert_eq!(KIP_VERSION, "2.0");
    }

    #[test]
    fn in_memory_store_answers_describe_primer() {
        runtime().block_on(async {
            let store = EmbeddedNexus::open(Location::InMemory, &OpenOptions::default())
                .await
                .unwrap();
            let response = store
                .execute(
                    single_command("DESCRIBE PRIMER".into(), None, false),
                    false,
                    &Principal::anonymous(),
                )
                .await;
            assert_eq!(response.status, TopLevelStatus::Succeeded, "{response:?}");
            store.close().await.unwrap();
        });
    }

    #[test]
    fn readonly_refuses_writes() {
        runtime().block_on(async {
            let store = EmbeddedNexus::open(Location::InMemory, &OpenOptions::default())
                .await
                .unwrap();
            let write = r#"UPSERT CONCEPT ?p { MATCH { type: "Person", key: "ro" } SET FIELDS { name: "R" } }"#;
            let response = store
                .execute(
                    single_command(write.into(), None, false),
                    true,
                    &Principal::anonymous(),
                )
                .await;
            assert_eq!(response.status, TopLevelStatus::Failed);
            let code = response.error.map(|e| e.code);
            assert_eq!(code.as_deref(), Some("ReadonlyViolation"));
        });
    }

    #[test]
    fn a_closed_directory_store_reads_back_through_the_stack_older_anda_used() {
        let dir = std::env::temp_dir().join(format!("anda-embedded-older-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rt = runtime();
        let write = r#"UPSERT CONCEPT ?p { MATCH { type: "Person", key: "old" } SET FIELDS { name: "Kept" } }"#;
        let find = r#"FIND(?p.name) WHERE { ?p {type: "Person", key: "old"} }"#;
        rt.block_on(async {
            let store =
                EmbeddedNexus::open(Location::Directory(dir.clone()), &OpenOptions::default())
                    .await
                    .unwrap();
            let written = store
                .execute(
                    single_command(write.into(), None, false),
                    false,
                    &Principal::anonymous(),
                )
                .await;
            assert_eq!(written.status, TopLevelStatus::Succeeded, "{written:?}");
            store.acknowledge().await.unwrap();
            store.close().await.unwrap();
        });
        assert!(!dir.join(journal::FILE_NAME).exists());
        // MetaStore straight over a file system that syncs each put: no journal.
        rt.block_on(async {
            let local = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                .unwrap()
                .with_fsync(true);
            let objects: Arc<dyn ObjectStore> =
                Arc::new(MetaStoreBuilder::new(local, META_CACHE_CAPACITY).build());
            let (memory, nexus) = EmbeddedNexus::connect(objects.clone(), &OpenOptions::default())
                .await
                .unwrap();
            let older = EmbeddedNexus {
                memory: Arc::new(memory),
                nexus,
                location: Location::Directory(dir.clone()),
                objects,
                name: DEFAULT_DB_NAME.to_string(),
                faults: None,
                lease: None,
                journal: None,
                _lock: None,
            };
            let found = older
                .execute(
                    single_command(find.into(), None, false),
                    true,
                    &Principal::anonymous(),
                )
                .await;
            let rows = serde_json::to_value(&found).unwrap()["results"][0]["result"].clone();
            assert_eq!(rows, serde_json::json!(["Kept"]), "{found:?}");
            older.release().await;
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_opens_once_and_reopens_after_drop() {
        let dir = std::env::temp_dir().join(format!("anda-embedded-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rt = runtime();
        rt.block_on(async {
            let first =
                EmbeddedNexus::open(Location::Directory(dir.clone()), &OpenOptions::default())
                    .await
                    .unwrap();
            let second =
                EmbeddedNexus::open(Location::Directory(dir.clone()), &OpenOptions::default())
                    .await;
            assert!(
                matches!(second, Err(StoreError::Locked { .. })),
                "{second:?}"
            );
            first.close().await.unwrap();
            drop(first);
            let again =
                EmbeddedNexus::open(Location::Directory(dir.clone()), &OpenOptions::default())
                    .await
                    .unwrap();
            again.close().await.unwrap();
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
