//! The store's own tests: opening, executing, reopening.
use super::*;
use crate::{
    ANDA_ENGINE_VERSION, ANDA_KIP_VERSION, DEFAULT_DB_NAME, KIP_VERSION, journal,
    storage::META_CACHE_CAPACITY,
};
use anda_kip::TopLevelStatus;
use anda_object_store::MetaStoreBuilder;

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
        let write =
            r#"UPSERT CONCEPT ?p { MATCH { type: "Person", key: "ro" } SET FIELDS { name: "R" } }"#;
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
    let write =
        r#"UPSERT CONCEPT ?p { MATCH { type: "Person", key: "old" } SET FIELDS { name: "Kept" } }"#;
    let find = r#"FIND(?p.name) WHERE { ?p {type: "Person", key: "old"} }"#;
    rt.block_on(async {
        let store = EmbeddedNexus::open(Location::Directory(dir.clone()), &OpenOptions::default())
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
        let first = EmbeddedNexus::open(Location::Directory(dir.clone()), &OpenOptions::default())
            .await
            .unwrap();
        let second =
            EmbeddedNexus::open(Location::Directory(dir.clone()), &OpenOptions::default()).await;
        assert!(
            matches!(second, Err(StoreError::Locked { .. })),
            "{second:?}"
        );
        first.close().await.unwrap();
        drop(first);
        let again = EmbeddedNexus::open(Location::Directory(dir.clone()), &OpenOptions::default())
            .await
            .unwrap();
        again.close().await.unwrap();
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
