//! A sweep's local queue, run from the workbench on a thread of its own: the same queue as
//! `metalab sweep FILE` (each variant a `metalab sweep --task` child process, resumable, its
//! runs in `runs/`), reporting through typed events instead of progress bars.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::sweep_view::SweepMsg;
use crate::sweep::{self, queue};

pub struct SweepJob {
    interrupts: Arc<AtomicUsize>,
    rx: Receiver<SweepMsg>,
    thread: JoinHandle<()>,
}

/// What a sweep launched from the workbench runs with.
#[derive(Debug, Clone)]
pub struct SweepLaunch {
    /// The `metalab` binary the variants run in.
    pub exe: PathBuf,
    pub runs_root: PathBuf,
    /// Threads for the variant that runs (one at a time).
    pub threads: usize,
    pub data: Option<PathBuf>,
}

impl SweepJob {
    pub fn start(path: &Path, launch: SweepLaunch) -> SweepJob {
        let (tx, rx) = channel();
        let interrupts = Arc::new(AtomicUsize::new(0));
        let (path, stop) = (path.to_path_buf(), Arc::clone(&interrupts));
        let thread = std::thread::Builder::new()
            .name("metalab-sweep".into())
            .spawn(move || {
                let result = run(&path, &launch, stop, &tx);
                let _ = tx.send(SweepMsg::Done(result));
            })
            .expect("spawn the sweep thread");
        SweepJob {
            interrupts,
            rx,
            thread,
        }
    }

    pub fn events(&self) -> std::sync::mpsc::TryIter<'_, SweepMsg> {
        self.rx.try_iter()
    }

    /// Ask running variants to checkpoint and stop (a second call kills them), as Ctrl-C does
    /// to `metalab sweep`.
    pub fn stop(&self) {
        self.interrupts.fetch_add(1, Ordering::SeqCst);
    }

    pub fn is_done(&self) -> bool {
        self.thread.is_finished()
    }
}

fn run(
    path: &Path,
    launch: &SweepLaunch,
    interrupts: Arc<AtomicUsize>,
    tx: &Sender<SweepMsg>,
) -> Result<queue::QueueReport, String> {
    let sw = sweep::load(path).map_err(|e| e.to_string())?;
    let _ = tx.send(SweepMsg::Loaded {
        name: sw.spec.name.clone(),
        labels: sw.variants.iter().map(|v| v.label()).collect(),
    });
    sweep::write_manifest(&sw, &launch.runs_root).map_err(|e| {
        format!(
            "writing the sweep's folder in {}: {e}",
            launch.runs_root.display()
        )
    })?;
    // The queue's events, forwarded in order; joined before `Done` so none comes after it.
    let (qtx, qrx) = channel();
    let forward = {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for ev in qrx {
                let _ = tx.send(SweepMsg::Queue(ev));
            }
        })
    };
    let report = queue::run(
        &sw,
        &queue::QueueOptions {
            exe: launch.exe.clone(),
            runs_root: launch.runs_root.clone(),
            jobs: 1,
            threads: launch.threads,
            data: launch.data.clone(),
            output: queue::Output::Events(qtx),
            interrupts,
        },
    );
    let _ = forward.join();
    report.map_err(|e| e.to_string())
}
