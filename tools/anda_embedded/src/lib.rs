//! An embedded Anda Cognitive Nexus.
//!
//! [`EmbeddedNexus`] opens the same stack `anda_engine`'s `memory` module runs
//! on — an AndaDB, a Cognitive Nexus over it with the Cognitive Memory profile
//! active, and [`MemoryManagement`] on top — and executes KIP requests exactly
//! as the engine's `execute_kip` / `execute_kip_readonly` tools do. The Python
//! binding and the native benchmark both go through this crate, so what the
//! benchmark measures is the path the binding takes.
//!
//! This file only declares the modules and what the crate exports: `nexus`
//! (the open store and its calls), `storage` (where a store lives and taking
//! hold of it), `error` (why a store cannot be used), and one module per
//! store behaviour (`bulk`, `copy` and `store_copy`, `readonly`, `verify`,
//! `schema`, `journal`, `lease`, ...).

mod bucket;
mod bulk;
mod caller;
mod copy;
mod damage;
pub mod engine_log;
mod error;
mod journal;
mod layout;
mod lease;
mod lock;
mod nexus;
mod readonly;
mod schema;
mod storage;
mod store_copy;
mod tools;
mod verify;

pub use anda_engine::memory::Tenancy;
pub use candid::Principal;

pub use anda_engine::memory::KipOperation;
pub use anda_kip::{Execution, ExecutionMode, KIP_VERSION, Operation};
pub use bulk::{
    BulkError, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MAX_CHUNK_TEXT, WriteCommand,
    combine as combine_writes,
};
pub use caller::caller_principal;
pub use copy::{CopyDestination, StoredObject};
pub use error::{StoreError, describe};
pub use journal::{FILE_NAME as JOURNAL_FILE_NAME, unreplayed_bytes};
pub use nexus::{EmbeddedNexus, OpenOptions};
pub use readonly::{ReadonlyRefusal, StoreWrite, refuse_if_readonly};
pub use storage::Location;
pub(crate) use storage::Storage;
pub use store_copy::{COPY_BATCH_BYTES, CopyResult, StoreCopy};
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
