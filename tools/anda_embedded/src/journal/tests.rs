use super::*;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A directory of its own for one test, removed when the test ends.
pub(super) struct Scratch(pub(super) PathBuf);

impl Scratch {
    pub(super) fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("anda-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn open(dir: &std::path::Path) -> (Arc<Journal>, JournalStore) {
    let journal = Journal::open(dir, false).await.unwrap();
    (journal.clone(), JournalStore(journal))
}

async fn read(store: &JournalStore, key: &str) -> Option<Bytes> {
    match store.get(&Path::from(key)).await {
        Ok(result) => Some(result.bytes().await.unwrap()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(err) => panic!("{err}"),
    }
}

async fn listed(store: &JournalStore, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = store
        .list(Some(&Path::from(prefix)))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}

#[test]
fn writes_are_seen_at_once_and_reach_the_directory_only_at_a_checkpoint() {
    let scratch = Scratch::new("visible");
    runtime().block_on(async {
        let (journal, store) = open(&scratch.0).await;
        store
            .put(&Path::from("meta/a"), "one".into())
            .await
            .unwrap();
        store
            .put(&Path::from("gen/a/1"), "payload".into())
            .await
            .unwrap();
        assert_eq!(read(&store, "meta/a").await.as_deref(), Some(&b"one"[..]));
        assert_eq!(listed(&store, "gen").await, ["gen/a/1"]);
        let range = store.get_range(&Path::from("gen/a/1"), 1..4).await.unwrap();
        assert_eq!(&range[..], b"ayl");

        journal.sync().await.unwrap();
        assert!(unreplayed_bytes(&scratch.0) > 0);
        assert!(!scratch.0.join("meta/a").exists());

        journal.checkpoint().await.unwrap();
        assert_eq!(std::fs::read(scratch.0.join("meta/a")).unwrap(), b"one");
        assert!(!scratch.0.join(FILE_NAME).exists());
        // Now read from the directory.
        assert_eq!(
            read(&store, "gen/a/1").await.as_deref(),
            Some(&b"payload"[..])
        );
    });
}

#[test]
fn an_object_replaced_or_deleted_before_a_checkpoint_never_reaches_the_directory() {
    let scratch = Scratch::new("transient");
    runtime().block_on(async {
        let (journal, store) = open(&scratch.0).await;
        store
            .put(&Path::from("gen/b/1"), "old".into())
            .await
            .unwrap();
        store.delete(&Path::from("gen/b/1")).await.unwrap();
        store
            .put(&Path::from("gen/b/2"), "new".into())
            .await
            .unwrap();
        assert!(read(&store, "gen/b/1").await.is_none());
        assert!(matches!(
            store.delete(&Path::from("gen/b/1")).await,
            Err(object_store::Error::NotFound { .. })
        ));
        // Forgotten, not held as a delete: the overlay keeps live objects.
        assert!(journal.lookup(&Path::from("gen/b/1")).is_none());
        journal.close().await.unwrap();
        assert!(!scratch.0.join("gen/b/1").exists());
        assert_eq!(std::fs::read(scratch.0.join("gen/b/2")).unwrap(), b"new");
    });
}

#[test]
fn a_generation_retired_while_a_checkpoint_writes_it_leaves_the_directory_too() {
    let scratch = Scratch::new("retired-while-written");
    runtime().block_on(async {
        let (journal, store) = open(&scratch.0).await;
        let path = Path::from("gen/c/1");
        store.put(&path, "first".into()).await.unwrap();
        // A checkpoint takes it in its snapshot; it is retired meanwhile,
        // then the checkpoint's thread puts the snapshot's copy in place.
        let taken = journal.lock().taken;
        journal.lock().checkpointing_through = taken;
        store.delete(&path).await.unwrap();
        journal.disk.put(path.as_ref(), b"first").unwrap();
        journal.files.added(path.as_ref());
        journal.lock().checkpointing_through = 0;
        assert!(read(&store, "gen/c/1").await.is_none());
        journal.close().await.unwrap();
        assert!(!scratch.0.join("gen/c").exists());
    });
}

#[test]
fn a_retired_generation_takes_its_directory_with_it() {
    let scratch = Scratch::new("cleanup");
    runtime().block_on(async {
        let (journal, store) = open(&scratch.0).await;
        store
            .put(&Path::from("gen/db/bucket_7/g1"), "x".into())
            .await
            .unwrap();
        journal.checkpoint().await.unwrap();
        assert!(scratch.0.join("gen/db/bucket_7").is_dir());
        store
            .delete(&Path::from("gen/db/bucket_7/g1"))
            .await
            .unwrap();
        journal.checkpoint().await.unwrap();
        assert!(!scratch.0.join("gen/db").exists());
    });
    // And the empty directories an older anda left are swept at open.
    std::fs::create_dir_all(scratch.0.join("gen/db/bucket_8")).unwrap();
    std::fs::write(scratch.0.join("gen/kept"), "k").unwrap();
    runtime().block_on(async { open(&scratch.0).await });
    assert!(!scratch.0.join("gen/db").exists());
    assert!(scratch.0.join("gen/kept").exists());
}

#[test]
fn a_journal_left_behind_is_replayed_at_open() {
    let scratch = Scratch::new("replay");
    runtime().block_on(async {
        let (journal, store) = open(&scratch.0).await;
        store
            .put(&Path::from("meta/a"), "kept".into())
            .await
            .unwrap();
        store
            .put(&Path::from("meta/b"), "gone".into())
            .await
            .unwrap();
        store.delete(&Path::from("meta/b")).await.unwrap();
        journal.sync().await.unwrap();
        // Taken after the last sync: never acknowledged, not replayed.
        store
            .put(&Path::from("meta/c"), "lost".into())
            .await
            .unwrap();
        journal.abandon();
    });
    assert!(!scratch.0.join("meta/a").exists());
    let refused = runtime().block_on(Journal::open(&scratch.0, true));
    assert!(
        matches!(refused, Err(StoreError::Unreplayed { .. })),
        "{refused:?}"
    );

    runtime().block_on(async {
        let (_, store) = open(&scratch.0).await;
        assert_eq!(read(&store, "meta/a").await.as_deref(), Some(&b"kept"[..]));
        assert!(read(&store, "meta/b").await.is_none());
        assert!(read(&store, "meta/c").await.is_none());
    });
    assert!(!scratch.0.join(FILE_NAME).exists());
    assert_eq!(std::fs::read(scratch.0.join("meta/a")).unwrap(), b"kept");
}

fn journal_of_two_syncs(scratch: &Scratch) -> Vec<u8> {
    runtime().block_on(async {
        let (journal, store) = open(&scratch.0).await;
        store
            .put(&Path::from("meta/a"), "first".into())
            .await
            .unwrap();
        journal.sync().await.unwrap();
        store
            .put(&Path::from("meta/b"), "second".into())
            .await
            .unwrap();
        journal.sync().await.unwrap();
        journal.abandon();
    });
    std::fs::read(scratch.0.join(FILE_NAME)).unwrap()
}

#[test]
fn a_torn_tail_is_cut_and_damage_before_a_sound_record_is_refused() {
    let scratch = Scratch::new("damage");
    let file = journal_of_two_syncs(&scratch);

    std::fs::write(scratch.0.join(FILE_NAME), &file[..file.len() - 3]).unwrap();
    runtime().block_on(async {
        let (_, store) = open(&scratch.0).await;
        assert!(read(&store, "meta/a").await.is_some());
        assert!(read(&store, "meta/b").await.is_none());
    });

    let scratch = Scratch::new("damage-middle");
    let mut file = journal_of_two_syncs(&scratch);
    // A byte of the first record's payload (its header is 24 bytes).
    file[30] ^= 0xff;
    std::fs::write(scratch.0.join(FILE_NAME), &file).unwrap();
    let refused = runtime().block_on(Journal::open(&scratch.0, false));
    assert!(
        matches!(refused, Err(StoreError::Corrupt(_))),
        "{refused:?}"
    );
    // Nothing was replayed or removed.
    assert!(!scratch.0.join("meta/a").exists());
    assert_eq!(std::fs::read(scratch.0.join(FILE_NAME)).unwrap(), file);
}

#[test]
fn a_failed_sync_is_an_unknown_outcome_and_refuses_what_follows() {
    let scratch = Scratch::new("failed");
    runtime().block_on(async {
        let (journal, store) = open(&scratch.0).await;
        store
            .put(&Path::from("meta/a"), "first".into())
            .await
            .unwrap();
        journal.sync().await.unwrap();
        // A handle that cannot write stands in for a disk that fails.
        journal.writer.lock().await.file = Some(File::open(scratch.0.join(FILE_NAME)).unwrap());
        store
            .put(&Path::from("meta/b"), "second".into())
            .await
            .unwrap();
        let failed = journal.sync().await;
        assert!(
            matches!(failed, Err(StoreError::OutcomeUnknown(_))),
            "{failed:?}"
        );
        assert!(store.put(&Path::from("meta/c"), "x".into()).await.is_err());
        assert!(matches!(
            journal.sync().await,
            Err(StoreError::OutcomeUnknown(_))
        ));
        assert!(journal.checkpoint().await.is_err());
    });
    runtime().block_on(async {
        let (_, store) = open(&scratch.0).await;
        assert!(read(&store, "meta/a").await.is_some());
    });
}

#[test]
fn create_mode_and_copies_see_the_journal() {
    let scratch = Scratch::new("create");
    runtime().block_on(async {
        let (journal, store) = open(&scratch.0).await;
        let create = PutOptions::from(PutMode::Create);
        store
            .put_opts(&Path::from("meta/a"), "1".into(), create.clone())
            .await
            .unwrap();
        assert!(matches!(
            store
                .put_opts(&Path::from("meta/a"), "2".into(), create.clone())
                .await,
            Err(object_store::Error::AlreadyExists { .. })
        ));
        journal.checkpoint().await.unwrap();
        assert!(matches!(
            store
                .put_opts(&Path::from("meta/a"), "2".into(), create)
                .await,
            Err(object_store::Error::AlreadyExists { .. })
        ));
        store
            .copy(&Path::from("meta/a"), &Path::from("meta/b"))
            .await
            .unwrap();
        store
            .rename(&Path::from("meta/a"), &Path::from("meta/c"))
            .await
            .unwrap();
        assert_eq!(listed(&store, "meta").await, ["meta/b", "meta/c"]);
        let top = store.list_with_delimiter(None).await.unwrap();
        assert_eq!(top.common_prefixes, [Path::from("meta")]);
        store.delete(&Path::from("meta/b")).await.unwrap();
        store.delete(&Path::from("meta/c")).await.unwrap();
        let top = store.list_with_delimiter(None).await.unwrap();
        assert!(top.common_prefixes.is_empty(), "{top:?}");
    });
}

#[test]
fn concurrent_syncs_all_become_durable() {
    let scratch = Scratch::new("group");
    runtime().block_on(async {
        let (journal, store) = open(&scratch.0).await;
        let writers = (0..8).map(|writer| {
            let (journal, store) = (journal.clone(), store.clone());
            tokio::spawn(async move {
                for i in 0..20 {
                    let key = Path::from(format!("meta/{writer}-{i}"));
                    store.put(&key, "v".into()).await.unwrap();
                    journal.sync().await.unwrap();
                }
            })
        });
        for writer in writers.collect::<Vec<_>>() {
            writer.await.unwrap();
        }
        journal.abandon();
    });
    let replayed = format::read(Bytes::from(
        std::fs::read(scratch.0.join(FILE_NAME)).unwrap(),
    ))
    .unwrap();
    assert_eq!(replayed.operations.len(), 160);
}

#[test]
fn a_checkpoint_that_fails_loses_nothing_and_succeeds_once_the_disk_allows() {
    let scratch = Scratch::new("checkpoint-fails");
    runtime().block_on(async {
        let (journal, store) = open(&scratch.0).await;
        // A file where the checkpoint needs a directory stands in for a full disk.
        std::fs::create_dir_all(scratch.0.join("gen")).unwrap();
        std::fs::write(scratch.0.join("gen/blocked"), "in the way").unwrap();
        store
            .put(&Path::from("gen/blocked/1"), "kept".into())
            .await
            .unwrap();
        journal.sync().await.unwrap();
        let failed = journal.checkpoint().await;
        assert!(matches!(failed, Err(StoreError::Engine(_))), "{failed:?}");
        // Still usable: reads, writes and syncs go on, the journal keeps all.
        assert_eq!(
            read(&store, "gen/blocked/1").await.as_deref(),
            Some(&b"kept"[..])
        );
        store
            .put(&Path::from("meta/after"), "x".into())
            .await
            .unwrap();
        journal.sync().await.unwrap();
        assert!(unreplayed_bytes(&scratch.0) > 0);

        std::fs::remove_file(scratch.0.join("gen/blocked")).unwrap();
        journal.checkpoint().await.unwrap();
        assert!(!scratch.0.join(FILE_NAME).exists());
        assert_eq!(
            std::fs::read(scratch.0.join("gen/blocked/1")).unwrap(),
            b"kept"
        );
        assert!(scratch.0.join("meta/after").exists());
    });
}

#[test]
fn a_path_with_encoded_characters_replays_as_it_was_written() {
    let scratch = Scratch::new("encoded");
    let key = Path::from_iter(["meta", "a%b#c d"]);
    runtime().block_on(async {
        let (journal, store) = open(&scratch.0).await;
        store.put(&key, "odd".into()).await.unwrap();
        journal.sync().await.unwrap();
        journal.abandon();
    });
    runtime().block_on(async {
        let (_, store) = open(&scratch.0).await;
        let data = store.get(&key).await.unwrap().bytes().await.unwrap();
        assert_eq!(&data[..], b"odd");
    });
}

#[test]
fn a_stop_during_a_checkpoint_replays_the_set_aside_journal_then_the_new_one() {
    let scratch = Scratch::new("set-aside");
    runtime().block_on(async {
        let (journal, store) = open(&scratch.0).await;
        store
            .put(&Path::from("meta/a"), "old".into())
            .await
            .unwrap();
        store.put(&Path::from("meta/b"), "b".into()).await.unwrap();
        journal.sync().await.unwrap();
        // What a checkpoint does first; the process stops before it ends.
        journal.disk.rename_top(FILE_NAME, SET_ASIDE_NAME).unwrap();
        journal.writer.lock().await.file = None;
        journal.writer.lock().await.len = 0;
        store
            .put(&Path::from("meta/a"), "new".into())
            .await
            .unwrap();
        store.delete(&Path::from("meta/b")).await.unwrap();
        journal.sync().await.unwrap();
        journal.abandon();
    });
    assert!(scratch.0.join(SET_ASIDE_NAME).exists() && scratch.0.join(FILE_NAME).exists());
    runtime().block_on(async {
        let (_, store) = open(&scratch.0).await;
        assert_eq!(read(&store, "meta/a").await.as_deref(), Some(&b"new"[..]));
        assert!(read(&store, "meta/b").await.is_none());
    });
    assert_eq!(unreplayed_bytes(&scratch.0), 0);
    assert_eq!(std::fs::read(scratch.0.join("meta/a")).unwrap(), b"new");
}

#[test]
fn a_journal_that_grew_leaves_a_prepared_successor_that_the_next_batches_fill() {
    let scratch = Scratch::new("prepared");
    runtime().block_on(async {
        let (journal, store) = open(&scratch.0).await;
        let big = Bytes::from(vec![7u8; 2 << 20]);
        store
            .put(&Path::from("gen/big/1"), big.clone().into())
            .await
            .unwrap();
        journal.sync().await.unwrap();
        journal.checkpoint().await.unwrap();
        let next = scratch.0.join(NEXT_NAME);
        let prepared = checkpoint::PREPARED_MIN;
        assert_eq!(std::fs::metadata(&next).unwrap().len(), prepared);

        // The next batch goes into it: the file keeps its length, and what
        // is left to replay is that batch alone.
        store
            .put(&Path::from("meta/after"), "after".into())
            .await
            .unwrap();
        journal.sync().await.unwrap();
        assert!(!next.exists());
        let file = scratch.0.join(FILE_NAME);
        assert_eq!(std::fs::metadata(&file).unwrap().len(), prepared);
        let left = unreplayed_bytes(&scratch.0);
        assert!(left > 0 && left < 4096, "{left}");

        // A process that stops here: the reopen replays the batch (the
        // zeros after it are no torn batch) and leaves no journal behind.
        journal.abandon();
        drop((journal, store));
        let (journal, store) = open(&scratch.0).await;
        assert_eq!(
            read(&store, "meta/after").await.as_deref(),
            Some(&b"after"[..])
        );
        assert_eq!(read(&store, "gen/big/1").await, Some(big));
        journal.close().await.unwrap();
        for name in [FILE_NAME, SET_ASIDE_NAME, NEXT_NAME] {
            assert!(!scratch.0.join(name).exists(), "{name} is left");
        }
    });
}

#[test]
fn a_prepared_journal_that_holds_nothing_is_no_unreplayed_journal() {
    let scratch = Scratch::new("prepared-empty");
    std::fs::write(scratch.0.join(FILE_NAME), vec![0u8; 1 << 16]).unwrap();
    std::fs::write(scratch.0.join(NEXT_NAME), vec![0u8; 1 << 16]).unwrap();
    assert_eq!(unreplayed_bytes(&scratch.0), 0);
    runtime().block_on(async {
        // A reader takes it; a writer removes both files.
        Journal::open(&scratch.0, true).await.unwrap().abandon();
        assert!(scratch.0.join(FILE_NAME).exists());
        let (journal, _store) = open(&scratch.0).await;
        assert!(!scratch.0.join(FILE_NAME).exists());
        assert!(!scratch.0.join(NEXT_NAME).exists());
        journal.close().await.unwrap();
    });
}

#[test]
fn a_checkpoint_waits_for_a_pass_to_end_before_it_takes_the_batch() {
    let scratch = Scratch::new("passing");
    runtime().block_on(async {
        let (journal, store) = open(&scratch.0).await;
        // A pass in progress: its first writes taken, the rest to come.
        let passing = journal.passing.lock().await;
        store
            .put(&Path::from("meta/a"), "half".into())
            .await
            .unwrap();
        let checkpoint = tokio::spawn({
            let journal = journal.clone();
            async move { journal.checkpoint().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!checkpoint.is_finished());
        assert!(!scratch.0.join(FILE_NAME).exists());
        assert!(!scratch.0.join("meta/a").exists());
        store
            .put(&Path::from("meta/b"), "whole".into())
            .await
            .unwrap();
        drop(passing);
        checkpoint.await.unwrap().unwrap();
        assert!(scratch.0.join("meta/a").exists());
        assert!(scratch.0.join("meta/b").exists());
    });
}
