//! What a computation read from an engine, so that the publisher can tell, without computing
//! it again, whether its inputs changed since an earlier publication.
//!
//! A report built inside [`tracked`] records every table its queries scan ([`Engine::sql`]
//! walks each plan), the key ranges of the computed views it scans (an [`IndexedTable`] scan
//! records the key values its equality filters fix, the comparisons every row it keeps
//! meets and the columns it projects), and the releases whose protection it
//! used. [`Engine::read_digest`] gives each such read's digest at an engine's snapshot; a
//! report whose every read has the same digest at two snapshots is the same report at both
//! (its queries are deterministic and read nothing else).
//!
//! [`Engine::sql`]: super::Engine::sql
//! [`Engine::read_digest`]: super::Engine::read_digest
//! [`IndexedTable`]: super::indexed::IndexedTable

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// One input a computation read.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Read {
    /// A table, whole (or, for a computed view, the rows its ranges select: see `Range`).
    Table(String),
    /// The rows of a computed view whose leading key columns equal these values and that
    /// meet these comparisons of text columns with text (`("period <=", "2026-06")`), and of
    /// them only these columns (every column when empty): what the query's scan projected.
    Range(String, Vec<String>, Vec<(String, String)>, Vec<String>),
    /// A county's protected release: (county, stored term), as a publication stores it.
    Release(String, String),
}

/// The reads of one computation.
#[derive(Debug, Default, Clone)]
pub struct Reads {
    pub reads: BTreeSet<Read>,
}

impl Reads {
    /// Every read, with a computed view's ranges standing for it: a view scanned with no
    /// range recorded was read whole.
    pub fn inputs(&self) -> Vec<Read> {
        let ranged: BTreeSet<&str> = self
            .reads
            .iter()
            .filter_map(|r| match r {
                Read::Range(t, ..) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        self.reads
            .iter()
            .filter(|r| !matches!(r, Read::Table(t) if ranged.contains(t.as_str())))
            .cloned()
            .collect()
    }
}

tokio::task_local! {
    static READS: Option<Arc<Mutex<Reads>>>;
}

/// Runs `f`, recording what it reads from engines (in this task: a query's planning, where
/// its scans are chosen, runs in the task that awaits it).
pub async fn tracked<F: Future>(f: F) -> (F::Output, Reads) {
    let reads = Arc::new(Mutex::new(Reads::default()));
    let out = READS.scope(Some(reads.clone()), f).await;
    let reads = reads.lock().expect("reads").clone();
    (out, reads)
}

/// Runs `f` without recording its reads (work shared by several computations, such as a
/// release's protection, is recorded as what it is: [`Read::Release`]).
pub async fn untracked<F: Future>(f: F) -> F::Output {
    READS.scope(None, f).await
}

/// Whether this task's reads are recorded.
pub fn active() -> bool {
    READS.try_with(|r| r.is_some()).unwrap_or(false)
}

/// Records a read in the computation running in this task, if one is tracked.
pub fn record(read: Read) {
    let _ = READS.try_with(|r| {
        if let Some(r) = r {
            r.lock().expect("reads").reads.insert(read);
        }
    });
}
