use super::*;
use crate::journal::tests::{Scratch, runtime};
use object_store::UpdateVersion;

async fn open(dir: &std::path::Path) -> (Arc<Journal>, Staged) {
    let journal = Journal::open(dir, false).await.unwrap();
    let layout =
        anda_object_store::MetaStoreBuilder::new(JournalStore(journal.clone()), 1_000).build();
    (journal.clone(), Staged::new(layout, journal))
}

/// MetaStore's files (`gen/`, `meta/`) as the journal beneath it holds them.
async fn journaled(journal: &Arc<Journal>) -> Vec<String> {
    let below = JournalStore(journal.clone());
    let mut paths = Vec::new();
    for prefix in ["gen", "meta"] {
        let found: Vec<String> = below
            .list(Some(&Path::from(prefix)))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .unwrap();
        paths.extend(found);
    }
    paths.sort();
    paths
}

async fn read(store: &Staged, key: &str) -> Option<Bytes> {
    match store.get(&Path::from(key)).await {
        Ok(result) => Some(result.bytes().await.unwrap()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(err) => panic!("{err}"),
    }
}

async fn listed(store: &Staged) -> Vec<(String, Option<String>)> {
    let mut found: Vec<_> = store
        .list(None)
        .map_ok(|meta| (meta.location.to_string(), meta.e_tag))
        .try_collect()
        .await
        .unwrap();
    found.sort();
    found
}

fn update(e_tag: &Option<String>) -> PutOptions {
    PutOptions::from(PutMode::Update(UpdateVersion {
        e_tag: e_tag.clone(),
        version: None,
    }))
}

#[test]
fn writes_pass_below_only_at_the_acknowledgement_and_survive_a_reopen() {
    let scratch = Scratch::new("staged-pass");
    runtime().block_on(async {
        let (journal, store) = open(&scratch.0).await;
        store.put(&Path::from("a"), "one".into()).await.unwrap();
        store.put(&Path::from("a"), "two".into()).await.unwrap();
        assert_eq!(read(&store, "a").await.as_deref(), Some(&b"two"[..]));
        assert!(journaled(&journal).await.is_empty());
        store.sync().await.unwrap();
        // One generation and its metadata: the first put never passed.
        let below = journaled(&journal).await;
        assert_eq!(below.len(), 2, "{below:?}");
        assert!(below.contains(&"meta/a".to_string()), "{below:?}");
        assert_eq!(read(&store, "a").await.as_deref(), Some(&b"two"[..]));
        store.close().await.unwrap();
    });
    runtime().block_on(async {
        let (_, store) = open(&scratch.0).await;
        assert_eq!(read(&store, "a").await.as_deref(), Some(&b"two"[..]));
    });
}

#[test]
fn conditional_writes_keep_their_meaning_across_the_acknowledgement() {
    let scratch = Scratch::new("staged-conditional");
    let create = PutOptions::from(PutMode::Create);
    let path = Path::from("c");
    runtime().block_on(async {
        let (_, store) = open(&scratch.0).await;
        let first = store
            .put_opts(&path, "1".into(), create.clone())
            .await
            .unwrap()
            .e_tag;
        assert!(matches!(
            store.put_opts(&path, "x".into(), create.clone()).await,
            Err(object_store::Error::AlreadyExists { .. })
        ));
        let second = store
            .put_opts(&path, "2".into(), update(&first))
            .await
            .unwrap()
            .e_tag;
        assert_ne!(first, second);
        assert!(matches!(
            store.put_opts(&path, "x".into(), update(&first)).await,
            Err(object_store::Error::Precondition { .. })
        ));
        store.sync().await.unwrap();
        // Passed below, the object keeps the ETag its writer was given.
        assert_eq!(store.head(&path).await.unwrap().e_tag, second);
        assert_eq!(listed(&store).await, [("c".to_string(), second.clone())]);
        let matched = GetOptions {
            if_match: second.clone(),
            ..Default::default()
        };
        assert!(store.get_opts(&path, matched).await.is_ok());
        let stale = GetOptions {
            if_match: first.clone(),
            ..Default::default()
        };
        assert!(store.get_opts(&path, stale).await.is_err());
        assert!(matches!(
            store.put_opts(&path, "x".into(), create.clone()).await,
            Err(object_store::Error::AlreadyExists { .. })
        ));
        store
            .put_opts(&path, "3".into(), update(&second))
            .await
            .unwrap();
        store.close().await.unwrap();
    });
    runtime().block_on(async {
        // After a reopen the ETag is MetaStore's, and it decides.
        let (_, store) = open(&scratch.0).await;
        let below = store.head(&path).await.unwrap().e_tag;
        assert!(below.is_some());
        assert!(matches!(
            store.put_opts(&path, "x".into(), create).await,
            Err(object_store::Error::AlreadyExists { .. })
        ));
        let next = store
            .put_opts(&path, "4".into(), update(&below))
            .await
            .unwrap()
            .e_tag;
        assert!(matches!(
            store.put_opts(&path, "x".into(), update(&below)).await,
            Err(object_store::Error::Precondition { .. })
        ));
        assert!(
            store
                .put_opts(&path, "5".into(), update(&next))
                .await
                .is_ok()
        );
    });
}

#[test]
fn deletes_are_held_too_and_an_object_created_and_deleted_between_never_passes() {
    let scratch = Scratch::new("staged-delete");
    runtime().block_on(async {
        let (journal, store) = open(&scratch.0).await;
        store.put(&Path::from("kept"), "k".into()).await.unwrap();
        store.put(&Path::from("gone"), "g".into()).await.unwrap();
        store.sync().await.unwrap();
        let before = journaled(&journal).await;

        store
            .put_opts(&Path::from("brief"), "b".into(), PutMode::Create.into())
            .await
            .unwrap();
        store.delete(&Path::from("brief")).await.unwrap();
        store.delete(&Path::from("gone")).await.unwrap();
        assert!(matches!(
            store.delete(&Path::from("gone")).await,
            Err(object_store::Error::NotFound { .. })
        ));
        assert!(matches!(
            store.delete(&Path::from("never")).await,
            Err(object_store::Error::NotFound { .. })
        ));
        assert_eq!(read(&store, "gone").await, None);
        let names: Vec<String> = listed(&store).await.into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["kept"]);
        // Not passed yet: the layout still holds `gone`.
        assert_eq!(journaled(&journal).await, before);
        store.sync().await.unwrap();
        let after = journaled(&journal).await;
        assert!(
            after.iter().all(|path| !path.contains("brief")),
            "{after:?}"
        );
        assert!(!after.contains(&"meta/gone".to_string()), "{after:?}");
        assert!(after.contains(&"meta/kept".to_string()), "{after:?}");
    });
}

#[test]
fn listings_lay_held_writes_over_the_layout() {
    let scratch = Scratch::new("staged-list");
    runtime().block_on(async {
        let (_, store) = open(&scratch.0).await;
        for key in ["d/a", "d/b", "e/x"] {
            store.put(&Path::from(key), "below".into()).await.unwrap();
        }
        store.sync().await.unwrap();
        store.put(&Path::from("d/c"), "held".into()).await.unwrap();
        store.put(&Path::from("d/b"), "held".into()).await.unwrap();
        store.delete(&Path::from("d/a")).await.unwrap();
        store.delete(&Path::from("e/x")).await.unwrap();
        let names: Vec<String> = listed(&store).await.into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["d/b", "d/c"]);
        let after_b: Vec<String> = store
            .list_with_offset(Some(&Path::from("d")), &Path::from("d/b"))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(after_b, ["d/c"]);
        let top = store.list_with_delimiter(None).await.unwrap();
        assert_eq!(top.common_prefixes, [Path::from("d")]);
        let d = store
            .list_with_delimiter(Some(&Path::from("d")))
            .await
            .unwrap();
        let mut objects: Vec<_> = d.objects.iter().map(|m| m.location.to_string()).collect();
        objects.sort();
        assert_eq!(objects, ["d/b", "d/c"]);
        assert_eq!(
            store.get_range(&Path::from("d/c"), 1..3).await.unwrap(),
            Bytes::from("el")
        );
        store
            .copy(&Path::from("d/c"), &Path::from("d/copy"))
            .await
            .unwrap();
        assert_eq!(read(&store, "d/copy").await.as_deref(), Some(&b"held"[..]));
    });
}

#[test]
fn a_failed_journal_refuses_writes_before_they_are_held() {
    let scratch = Scratch::new("staged-failed");
    runtime().block_on(async {
        let (journal, store) = open(&scratch.0).await;
        store.put(&Path::from("a"), "1".into()).await.unwrap();
        journal.fail("the disk went away".into());
        assert!(store.put(&Path::from("b"), "2".into()).await.is_err());
        assert!(matches!(
            store.sync().await,
            Err(StoreError::OutcomeUnknown(_))
        ));
    });
}
