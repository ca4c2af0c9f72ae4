//! The workbench's disk reader: lists the experiments folder and the runs folder on its own
//! thread, so the UI thread never waits on a disk (an Omniglot data check lists ~20,000 files;
//! a FIFO among the experiments would block an `open` forever).
//!
//! Requests are coalesced: a burst of "rescan" asks costs one scan. Entries are cached by
//! (path, size, modification time), and data checks by (family, seed, data folder times), so a
//! rescan after one file changed reads that file only and checks no data folder again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::SystemTime;

use super::catalog::{self, DataCheck, ExpEntry};
use super::store::{self, RunRow};

/// What the scanner has done, for tests and the bench: the workbench's disk work in numbers.
#[derive(Debug, Default)]
pub struct ScanStats {
    /// Scans of the experiments folder.
    pub rescans: AtomicUsize,
    /// Experiment files opened and parsed (cache misses).
    pub files_read: AtomicUsize,
    /// Data folder checks run (cache misses).
    pub data_checks: AtomicUsize,
    /// Listings of the runs folder.
    pub run_listings: AtomicUsize,
}

impl ScanStats {
    pub fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }
}

/// A scan's answer. `generation` is the request's, so the UI can tell a stale answer from
/// the latest.
#[derive(Debug, Clone, PartialEq)]
pub enum Scanned {
    /// The experiments folder. Sent once with data checks still running (`checking_data`), and
    /// again when they are done.
    Experiments {
        generation: u64,
        entries: Vec<ExpEntry>,
    },
    Runs(Vec<RunRow>),
}

enum Request {
    Experiments {
        generation: u64,
        dir: PathBuf,
        data: Option<PathBuf>,
    },
    Runs(PathBuf),
}

/// The handle the app keeps; the thread ends when it drops.
#[derive(Debug)]
pub struct Scanner {
    tx: Sender<Request>,
    pub stats: Arc<ScanStats>,
}

impl Scanner {
    /// Start the thread; `reply` is called on it with every answer.
    pub fn spawn(reply: impl Fn(Scanned) + Send + 'static) -> Scanner {
        let (tx, rx) = channel();
        let stats = Arc::new(ScanStats::default());
        let s = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("metalab-scanner".into())
            .spawn(move || serve(&rx, &s, &reply))
            .expect("spawn the scanner thread");
        Scanner { tx, stats }
    }

    pub fn experiments(&self, generation: u64, dir: &Path, data: Option<&Path>) {
        let _ = self.tx.send(Request::Experiments {
            generation,
            dir: dir.to_path_buf(),
            data: data.map(Path::to_path_buf),
        });
    }

    pub fn runs(&self, dir: &Path) {
        let _ = self.tx.send(Request::Runs(dir.to_path_buf()));
    }
}

/// A file's identity for the cache: a change of either means it was written.
type Stamp = (u64, Option<SystemTime>);

struct Cached {
    stamp: Stamp,
    data: Option<PathBuf>,
    entry: ExpEntry,
    check: Option<DataCheck>,
}

/// A data check's identity: the family and seed as text, and the data folder's own times.
type DataKey = (String, Vec<Option<SystemTime>>);

#[derive(Default)]
struct Cache {
    entries: HashMap<PathBuf, Cached>,
    data: HashMap<DataKey, Result<(), String>>,
}

fn serve(rx: &Receiver<Request>, stats: &ScanStats, reply: &dyn Fn(Scanned)) {
    let mut cache = Cache::default();
    while let Ok(first) = rx.recv() {
        // Only the newest ask of each kind matters.
        let (mut exps, mut runs) = (None, None);
        for r in std::iter::once(first).chain(rx.try_iter()) {
            match r {
                Request::Experiments { .. } => exps = Some(r),
                Request::Runs(dir) => runs = Some(dir),
            }
        }
        if let Some(Request::Experiments {
            generation,
            dir,
            data,
        }) = exps
        {
            stats.rescans.fetch_add(1, Ordering::SeqCst);
            scan_experiments(&mut cache, stats, generation, &dir, data.as_deref(), reply);
        }
        if let Some(dir) = runs {
            stats.run_listings.fetch_add(1, Ordering::SeqCst);
            reply(Scanned::Runs(store::list_runs(&dir)));
        }
    }
}

fn stamp(path: &Path) -> Stamp {
    match std::fs::metadata(path) {
        Ok(m) => (m.len(), m.modified().ok()),
        Err(_) => (0, None),
    }
}

fn scan_experiments(
    cache: &mut Cache,
    stats: &ScanStats,
    generation: u64,
    dir: &Path,
    data: Option<&Path>,
    reply: &dyn Fn(Scanned),
) {
    let paths = catalog::list(dir);
    cache.entries.retain(|p, _| paths.contains(p));
    let mut entries = Vec::with_capacity(paths.len());
    let mut checks = Vec::new();
    for path in &paths {
        let st = stamp(path);
        let hit = cache
            .entries
            .get(path)
            // A sweep's entry also depends on its base experiment: read it every time (two small files).
            .filter(|c| c.entry.kind == catalog::EntryKind::Experiment)
            .filter(|c| c.stamp == st && c.data.as_deref() == data);
        let (entry, check) = match hit {
            Some(c) => (c.entry.clone(), c.check.clone()),
            None => {
                stats.files_read.fetch_add(1, Ordering::SeqCst);
                let (entry, check) = catalog::read_file(path, data);
                cache.entries.insert(
                    path.clone(),
                    Cached {
                        stamp: st,
                        data: data.map(Path::to_path_buf),
                        entry: entry.clone(),
                        check: check.clone(),
                    },
                );
                (entry, check)
            }
        };
        let mut entry = entry;
        if let Some(check) = check {
            let key = data_key(&check);
            match cache.data.get(&key) {
                Some(result) => catalog::finish_data_check(&mut entry, result.clone()),
                None => checks.push((entries.len(), check, key)),
            }
        }
        entries.push(entry);
    }
    if checks.is_empty() {
        return reply(Scanned::Experiments {
            generation,
            entries,
        });
    }
    // The list now, the data verdicts when they are in.
    reply(Scanned::Experiments {
        generation,
        entries: entries.clone(),
    });
    for (i, check, key) in checks {
        let result = match cache.data.get(&key) {
            Some(r) => r.clone(),
            None => {
                stats.data_checks.fetch_add(1, Ordering::SeqCst);
                let r = catalog::run_data_check(&check);
                cache.data.insert(key, r.clone());
                r
            }
        };
        catalog::finish_data_check(&mut entries[i], result);
    }
    reply(Scanned::Experiments {
        generation,
        entries,
    });
}

/// The data folder's own modification time and its sets' (`images_background`, …): adding or
/// removing an alphabet changes them, and so the check runs again.
fn data_key(check: &DataCheck) -> DataKey {
    let mut times = Vec::new();
    if let crate::experiment::FamilySpec::Omniglot(o) = &check.family {
        times.push(stamp(&o.root).1);
        if let Ok(rd) = std::fs::read_dir(&o.root) {
            let mut sets: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            sets.sort();
            times.extend(sets.iter().map(|p| stamp(p).1));
        }
    }
    (format!("{:?} seed {}", check.family, check.seed), times)
}
