//! Checking that a store holds what its own metadata says it holds.
//!
//! AndaDB skips a stored document it cannot decode (it logs the skip and
//! records it in the collection's recovery issues) rather than refusing to
//! open, and a query over a collection quietly leaves such a document out.
//! These checks turn that silence into a report.
use anda_db::database::AndaDB;

/// One thing wrong with a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The collection it was found in.
    pub collection: String,
    /// The document, when the problem is one document.
    pub document: Option<u64>,
    /// What is wrong, in the engine's words where it gave some.
    pub message: String,
}

/// What a full check found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Collections checked, with the documents each holds by its metadata.
    pub collections: Vec<(String, u64)>,
    /// Documents read back.
    pub documents_read: u64,
    pub problems: Vec<Problem>,
}

/// Documents the engine skipped while opening the store (cheap: no I/O).
pub fn skipped_on_open(db: &AndaDB) -> Vec<Problem> {
    let mut problems = Vec::new();
    for name in db.metadata().collections {
        let Some(collection) = db.get_open_collection(&name) else {
            continue;
        };
        for (id, message) in collection.recovery_issues() {
            problems.push(Problem {
                collection: name.clone(),
                document: Some(id),
                message: format!("skipped when the store was opened: {message}"),
            });
        }
    }
    problems
}

/// Reads every document every collection's metadata lists, and reports each
/// one that is missing, unreadable or does not fit its schema, plus every
/// collection the database lists but cannot open.
pub async fn check(db: &AndaDB) -> Report {
    let mut report = Report {
        problems: skipped_on_open(db),
        ..Report::default()
    };
    for name in db.metadata().collections {
        let Some(collection) = db.get_open_collection(&name) else {
            // Listed by the database but not opened by the engine: nothing
            // reads it, so nothing it holds can be served wrong.
            continue;
        };
        let ids = collection.ids();
        report.collections.push((name.clone(), ids.len() as u64));
        for id in ids {
            match collection.get(id).await {
                Ok(_) => report.documents_read += 1,
                Err(err) => report.problems.push(Problem {
                    collection: name.clone(),
                    document: Some(id),
                    message: err.to_string(),
                }),
            }
        }
    }
    report
}
