//! Copying a store: whole and equal, refused over a store, removed when abandoned.
use super::*;
use anda_engine::memory::KipArgs;
use anda_kip::TopLevelStatus;
use candid::Principal;
use std::path::{Path, PathBuf};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(16 << 20)
        .enable_all()
        .build()
        .unwrap()
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("anda-store-copy-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn run(store: &EmbeddedNexus, command: &str, readonly: bool) -> anda_kip::Response {
    let args = KipArgs {
        command: Some(command.into()),
        ..KipArgs::default()
    };
    store.execute(args, readonly, &Principal::anonymous()).await
}

async fn open(dir: &Path, existing_only: bool) -> EmbeddedNexus {
    let options = OpenOptions {
        existing_only,
        ..OpenOptions::default()
    };
    EmbeddedNexus::open(Location::Directory(dir.into()), &options)
        .await
        .unwrap()
}

async fn source_with_ada(dir: &Path) -> EmbeddedNexus {
    let store = open(dir, false).await;
    let written = run(
        &store,
        r#"UPSERT CONCEPT ?p { MATCH { type: "Person", key: "ada" } SET FIELDS { name: "Ada" } }"#,
        false,
    )
    .await;
    assert_eq!(written.status, TopLevelStatus::Succeeded, "{written:?}");
    store.acknowledge().await.unwrap();
    store.close().await.unwrap();
    drop(store);
    open(dir, true).await
}

#[test]
fn a_copy_is_whole_equal_and_opens() {
    let (from, to) = (scratch("from"), scratch("to"));
    runtime().block_on(async {
        let source = source_with_ada(&from).await;
        let copy = StoreCopy::begin(
            &source,
            Location::Directory(to.clone()),
            OpenOptions::default(),
            false,
            to.display().to_string(),
        )
        .await
        .unwrap();
        let total = copy.total();
        let mut seen = Vec::new();
        let result = copy
            .run(&source, |copied, all| seen.push((copied, all)))
            .await
            .unwrap();
        assert!(result.files > 0);
        assert_eq!(seen.last(), Some(&(result.bytes, total)));
        assert_eq!(result.bytes, total);

        // A second copy over it is refused, and leaves it whole.
        let refused = StoreCopy::begin(
            &source,
            Location::Directory(to.clone()),
            OpenOptions::default(),
            false,
            to.display().to_string(),
        )
        .await;
        let message = refused.err().expect("refused").to_string();
        assert!(message.contains("already holds a store"), "{message}");
        source.close().await.unwrap();

        let copied = open(&to, true).await;
        let found = run(
            &copied,
            r#"FIND(?p.name) WHERE { ?p {type: "Person", key: "ada"} }"#,
            true,
        )
        .await;
        assert_eq!(found.status, TopLevelStatus::Succeeded, "{found:?}");
        assert!(serde_json::to_string(&found).unwrap().contains("Ada"));
        copied.close().await.unwrap();
    });
    let _ = std::fs::remove_dir_all(&from);
    let _ = std::fs::remove_dir_all(&to);
}

#[test]
fn an_abandoned_copy_is_removed() {
    let (from, to) = (scratch("abandon-from"), scratch("abandon-to"));
    runtime().block_on(async {
        let source = source_with_ada(&from).await;
        let mut copy = StoreCopy::begin(
            &source,
            Location::Directory(to.clone()),
            OpenOptions::default(),
            false,
            to.display().to_string(),
        )
        .await
        .unwrap();
        assert!(copy.step(&source).await.unwrap());
        copy.abandon().await.unwrap();
        copy.abandon().await.unwrap();
        assert!(copy.step(&source).await.is_err());
        source.close().await.unwrap();
        let refused = EmbeddedNexus::open(
            Location::Directory(to.clone()),
            &OpenOptions {
                existing_only: true,
                ..OpenOptions::default()
            },
        )
        .await;
        assert!(refused.is_err(), "the abandoned copy is gone");
    });
    let _ = std::fs::remove_dir_all(&from);
    let _ = std::fs::remove_dir_all(&to);
}
