//! [`EmbeddedNexus`]: one open store — AndaDB, the Cognitive Nexus with its
//! schema, and the engine's memory — over the objects [`Storage`] holds, and
//! the calls it executes.
use crate::{
    BulkError, DEFAULT_DB_NAME, FaultHandle, Location, PackageSource, StoreError, ToolName,
    VerifyReport, WriteCommand, bulk, damage, error::engine_error, journal, lease,
    lock::DirectoryLock, schema, storage::Storage, tools, verify,
};
use anda_cognitive_nexus::{CognitiveNexus, nexus::DEFAULT_SPACE, profiles};
use anda_db::database::{AndaDB, DBConfig};
use anda_engine::memory::{KipArgs, MemoryManagement, Tenancy};
use anda_kip::{KipError, Request, Response, execute_request, execute_request_readonly};
use anda_object_store::fault::FaultStore;
use candid::Principal;
use object_store::ObjectStore;
use std::{fmt, sync::Arc, time::Duration};

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
    pub(crate) location: Location,
    /// What AndaDB reads and writes: for copying the store as it is.
    pub(crate) objects: Arc<dyn ObjectStore>,
    /// The database name inside the store.
    pub(crate) name: String,
    faults: Option<FaultHandle>,
    lease: Option<lease::Lease>,
    /// A directory store's held writes and journal: passed down and synced
    /// at every acknowledgement.
    journal: Option<journal::Staged>,
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
        } = Storage::acquire_store(&location, options).await?;
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
    /// capsule imports). On a directory store the writes held since the
    /// last one pass into its journal, and it is synced once, shared by the
    /// calls that arrive meanwhile; other stores have
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
            Some(journal) => journal.checkpoint().await,
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
mod tests;
