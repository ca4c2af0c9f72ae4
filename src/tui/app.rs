//! The whole UI state: a plain struct, changed only by `update`.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crossterm::event::{KeyEvent, MouseEvent};

use crate::engine::messages::{ArmIndex, Command, EngineEvent};
use crate::experiment::Experiment;

use super::catalog::{self, ExpEntry};
use super::chart_opts::ChartOpts;
use super::editor::{normalize, Editor};
use super::run_groups::{self, RunItem};
use super::runs_view::{self, RunFilter, RunSort};
use super::scanner::{Scanned, Scanner};
pub use super::screen::Screen;
use super::session::Session;
use super::store::RunRow;
use super::sweep_view::{SweepMsg, SweepView};
use super::task_views::TaskViews;
use super::worker::{Done, Worker};

/// Something that needs the user's yes before it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Pending {
    StopArm(Option<ArmIndex>),
    DeleteRun(String),
    /// Delete these marked runs (asked once, with the count).
    DeleteRuns(Vec<String>),
    DiscardEdits,
    Quit,
}

/// What a line typed into [`Modal::Input`] is for.
#[derive(Debug, Clone, PartialEq)]
pub enum InputFor {
    /// The note and `#tags` of these runs (one, or every seed of a group).
    Notes { dirs: Vec<PathBuf> },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Modal {
    Help,
    Confirm {
        prompt: String,
        then: Pending,
    },
    /// The open file changed on disk while the buffer has unsaved edits.
    Conflict {
        disk: String,
    },
    /// One line of text to type: Enter takes it, Esc leaves it unchanged.
    Input {
        prompt: String,
        text: String,
        then: InputFor,
    },
    /// A read-only text to scroll (a run's frozen config.ron).
    Text {
        title: String,
        text: String,
        scroll: u16,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Error,
}

/// Disk work that `update` asks for: the runtime carries it out (`actions::perform`), so
/// `update` and the key handlers never touch files.
#[derive(Debug, Clone, PartialEq)]
pub enum Io {
    /// Read an experiment file into the editor.
    OpenEditor(PathBuf),
    /// Read an experiment file and launch it.
    LaunchFile(PathBuf),
    /// Write a new experiment from the template, or a copy of the selected one, and edit it.
    NewExperiment {
        duplicate: bool,
    },
    /// Write the editor's buffer; then launch it if it validates and `then_launch`.
    SaveEditor {
        then_launch: bool,
    },
    /// Load saved runs' metrics and configs into the monitor (one) or compare screen.
    OpenRuns {
        rows: Vec<RunRow>,
        screen: Screen,
    },
    /// Load the selected runs' configs (one, or a group's seeds) and train them again.
    Rerun,
    /// Continue the selected runs (one, or a group's seeds) from their checkpoints.
    Resume,
    DeleteRun(String),
    /// Delete several runs, refusing (with the reason) those still training.
    DeleteRuns(Vec<String>),
    /// Write runs' `notes.json` from what the user typed.
    SaveNotes {
        dirs: Vec<PathBuf>,
        text: String,
    },
    /// Show the selected run's frozen config.ron.
    ViewConfig,
    /// Remove an experiment file the workbench created and the user discarded unsaved.
    DiscardNew(PathBuf),
    /// Export the marked runs (or the selected one).
    ExportChosen,
    /// Export what the monitor shows.
    ExportSession,
    RefreshRuns,
    /// A resumed live arm: load its metrics up to `until` so its curve starts at the beginning.
    LoadCurveSoFar {
        arm: ArmIndex,
        run_dir: PathBuf,
        until: usize,
    },
    /// Files in the experiments folder changed: rescan, and reconcile the open buffer.
    FilesChanged,
}

/// What `update` asks the runtime to do: disk work, and things that need the engine handle.
#[derive(Debug, Clone)]
pub enum Effect {
    Io(Io),
    Launch {
        exp: Box<Experiment>,
        source: Option<PathBuf>,
        /// The run a rerun reproduces, recorded in the new run.
        rerun_of: Option<String>,
    },
    Engine {
        arm: Option<ArmIndex>,
        cmd: Command,
    },
    /// Continue a stopped or interrupted run from its last checkpoint.
    Resume {
        dir: PathBuf,
    },
    /// Run a sweep file's variants on the local queue.
    StartSweep(PathBuf),
    /// Stop the running sweep's variants at a checkpoint.
    StopSweep,
}

#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    Engine(EngineEvent),
    /// The launch asked for by an `Effect::Launch` failed.
    LaunchFailed(String),
    /// Files in the experiments folder changed (debounced).
    FilesChanged(Vec<PathBuf>),
    /// The scanner's answer: the experiments folder or the runs folder as it is now.
    Scanned(Scanned),
    /// How the sweep launched from the workbench goes.
    Sweep(SweepMsg),
    /// The worker finished an action on runs.
    Done(Box<Done>),
    Tick(Instant),
}

/// The adaptation screen's own state: the arm is the monitor's `arm_sel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdaptationView {
    /// Which tracked task's fit is drawn (index into the arm's fits).
    pub task: usize,
    /// The screen it was opened from, where q/Esc return.
    pub from: Screen,
}

impl Default for AdaptationView {
    fn default() -> Self {
        AdaptationView {
            task: 0,
            from: Screen::Monitor,
        }
    }
}

/// Which session the monitor and compare screens show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Live,
    Saved,
}

/// A launch waiting for the current experiment to finish.
#[derive(Debug, Clone)]
pub struct Queued {
    /// What the queue shows: the experiment's name, or the run being rerun or resumed.
    pub label: String,
    /// The session the monitor shows once it starts.
    pub session: Session,
    /// `Effect::Launch` or `Effect::Resume`.
    pub effect: Effect,
}

pub struct App {
    pub experiments_dir: PathBuf,
    pub runs_dir: PathBuf,
    pub exports_dir: PathBuf,
    pub screen: Screen,
    /// Where q/Esc returns to from the monitor, compare and editor screens.
    pub back: Screen,
    pub size: (u16, u16),
    pub experiments: Vec<ExpEntry>,
    pub exp_sel: usize,
    /// The runs the Runs pane lists: `all_runs` filtered and sorted.
    pub runs: Vec<RunRow>,
    /// Every run in the runs folder, in the run store's order.
    pub all_runs: Vec<RunRow>,
    pub run_filter: RunFilter,
    pub run_sort: RunSort,
    /// The pane's lines: `runs` with each group of seeds as one row ([`run_groups::items`]).
    pub run_items: Vec<RunItem>,
    /// The seed groups shown open, by key.
    pub expanded: BTreeSet<String>,
    /// The selected line of `run_items`.
    pub run_sel: usize,
    pub marked: BTreeSet<String>,
    pub editor: Option<Editor>,
    pub live: Option<Session>,
    pub saved: Option<Session>,
    pub source: Source,
    pub arm_sel: usize,
    /// Per-task panels show accuracy (classification only) instead of loss.
    pub task_accuracy: bool,
    /// Smoothing, scales, history window and cursor of the Monitor and Compare charts.
    pub chart: ChartOpts,
    pub modal: Option<Modal>,
    /// First help row shown: the overlay scrolls when the terminal is short.
    pub help_scroll: u16,
    /// Launches waiting for the current experiment to finish, next first.
    pub queue: VecDeque<Queued>,
    pub status: Option<(String, Level)>,
    pub effects: Vec<Effect>,
    pub last_runs_scan: Option<Instant>,
    pub quit: bool,
    /// The command line's `--data`: the Omniglot folder every launch uses.
    pub data: Option<PathBuf>,
    pub adaptation: AdaptationView,
    /// The task-embedding and task-affinity screens' state.
    pub task_views: TaskViews,
    /// Reads the folders off the UI thread; without one (tests) they are read in place.
    pub scanner: Option<Scanner>,
    /// The experiments list asked for last; older answers update the list but never the editor.
    pub catalog_generation: u64,
    /// The first listing of the experiments folder has arrived.
    pub catalog_loaded: bool,
    /// The experiment to select when the next listing arrives (one just created).
    pub want_selected: Option<PathBuf>,
    /// The sweep launched from the workbench, running or last finished.
    pub sweep: Option<SweepView>,
    /// Carries out actions on runs off the UI thread; without one (tests) they run in place.
    pub worker: Option<Worker>,
    /// Actions handed to the worker and not yet answered.
    pub jobs: usize,
}

impl App {
    /// The state with both folders read in place (tests, and callers that may block).
    pub fn new(project_root: &Path) -> App {
        let mut app = App::blank(project_root);
        app.refresh_experiments();
        app.refresh_runs();
        app
    }

    /// The state with nothing read yet: `scanner` reads both folders, and its answers arrive as
    /// [`Msg::Scanned`].
    pub fn with_scanner(project_root: &Path, data: Option<PathBuf>, scanner: Scanner) -> App {
        let mut app = App::blank(project_root);
        app.data = data;
        app.scanner = Some(scanner);
        app.refresh_experiments();
        app.refresh_runs();
        app
    }

    fn blank(project_root: &Path) -> App {
        let experiments_dir = project_root.join("experiments");
        App {
            runs_dir: project_root.join("runs"),
            exports_dir: project_root.join("exports"),
            experiments: Vec::new(),
            experiments_dir,
            screen: Screen::Experiments,
            back: Screen::Experiments,
            size: (120, 40),
            exp_sel: 0,
            runs: Vec::new(),
            all_runs: Vec::new(),
            run_filter: RunFilter::default(),
            run_sort: RunSort::default(),
            run_items: Vec::new(),
            expanded: BTreeSet::new(),
            run_sel: 0,
            marked: BTreeSet::new(),
            editor: None,
            live: None,
            saved: None,
            source: Source::Live,
            arm_sel: 0,
            task_accuracy: true,
            chart: ChartOpts::default(),
            modal: None,
            help_scroll: 0,
            queue: VecDeque::new(),
            status: None,
            effects: Vec::new(),
            last_runs_scan: None,
            quit: false,
            data: None,
            adaptation: AdaptationView::default(),
            task_views: TaskViews::default(),
            scanner: None,
            catalog_generation: 0,
            catalog_loaded: false,
            want_selected: None,
            sweep: None,
            worker: None,
            jobs: 0,
        }
    }

    pub fn session(&self) -> Option<&Session> {
        match self.source {
            Source::Live => self.live.as_ref().or(self.saved.as_ref()),
            Source::Saved => self.saved.as_ref().or(self.live.as_ref()),
        }
    }

    pub fn training(&self) -> bool {
        self.live.as_ref().is_some_and(|s| s.any_active())
    }

    pub fn sweeping(&self) -> bool {
        self.sweep.as_ref().is_some_and(SweepView::running)
    }

    pub fn info(&mut self, s: impl Into<String>) {
        self.status = Some((s.into(), Level::Info));
    }

    pub fn error(&mut self, s: impl Into<String>) {
        self.status = Some((s.into(), Level::Error));
    }

    pub fn io(&mut self, io: Io) {
        self.effects.push(Effect::Io(io));
    }

    /// Ask for the experiments folder as it is now; the answer goes through `update` as
    /// [`Msg::Scanned`], at once without a scanner.
    pub fn refresh_experiments(&mut self) {
        self.catalog_generation += 1;
        let generation = self.catalog_generation;
        match &self.scanner {
            Some(s) => s.experiments(generation, &self.experiments_dir, self.data.as_deref()),
            None => {
                let entries = catalog::scan(&self.experiments_dir, self.data.as_deref());
                self.apply_catalog(generation, entries);
            }
        }
    }

    /// A listing of the experiments folder arrived: show it, keep the selection, and reconcile
    /// the open editor with what the file now holds. Only the newest listing may touch the
    /// editor: an older one can predate our own save.
    pub fn apply_catalog(&mut self, generation: u64, entries: Vec<ExpEntry>) {
        let keep = self
            .want_selected
            .clone()
            .or_else(|| self.experiments.get(self.exp_sel).map(|e| e.path.clone()));
        self.experiments = entries;
        self.catalog_loaded = true;
        if keep
            .as_ref()
            .is_some_and(|k| self.experiments.iter().any(|e| &e.path == k))
        {
            self.want_selected = None;
        }
        self.select_experiment(keep.as_deref());
        if generation != self.catalog_generation {
            return;
        }
        let Some(ed) = self.editor.as_mut() else {
            return;
        };
        let Some(entry) = self.experiments.iter().find(|e| e.path == ed.path) else {
            let msg = format!(
                "{} was removed on disk; Ctrl-S writes it back",
                ed.file_name()
            );
            return self.error(msg);
        };
        // Unreadable now (a FIFO put in its place, say): the entry says why; keep the buffer.
        let Some(disk) = entry.text.as_deref() else {
            return;
        };
        if normalize(disk) == ed.disk_text {
            return; // our own save, or a touch
        }
        if !ed.modified() {
            ed.reload(disk);
            let name = ed.file_name();
            self.info(format!("{name} changed on disk: reloaded"));
        } else if !matches!(self.modal, Some(Modal::Conflict { .. })) {
            self.modal = Some(Modal::Conflict {
                disk: disk.to_string(),
            });
        }
    }

    /// [`refresh_experiments`](Self::refresh_experiments), then select `path` in the new list.
    pub fn refresh_experiments_selecting(&mut self, path: &Path) {
        self.want_selected = Some(path.to_path_buf());
        self.refresh_experiments();
    }

    pub fn select_experiment(&mut self, path: Option<&Path>) {
        if let Some(i) = path.and_then(|p| self.experiments.iter().position(|e| e.path == p)) {
            self.exp_sel = i;
        }
        self.exp_sel = self.exp_sel.min(self.experiments.len().saturating_sub(1));
    }

    /// Ask for the runs folder as it is now, like [`refresh_experiments`](Self::refresh_experiments).
    pub fn refresh_runs(&mut self) {
        match &self.scanner {
            Some(s) => s.runs(&self.runs_dir),
            None => {
                let rows = super::store::list_runs(&self.runs_dir);
                self.set_runs(rows);
            }
        }
    }

    pub fn set_runs(&mut self, rows: Vec<RunRow>) {
        self.all_runs = rows;
        let ids: BTreeSet<String> = self.all_runs.iter().map(|r| r.id.clone()).collect();
        self.marked.retain(|m| ids.contains(m));
        self.apply_run_view();
    }

    /// Re-derive the listed runs after the filter, the sort or an open group changed, keeping
    /// the selected line selected when it is still listed (a run in a group now closed: the
    /// group's row).
    pub fn apply_run_view(&mut self) {
        let keep = self.selected_item().map(|it| it.selected(&self.runs));
        self.runs = runs_view::visible(&self.all_runs, &self.run_filter, self.run_sort);
        self.run_items = run_groups::items(&self.runs, self.run_sort, &self.expanded);
        if let Some(i) = keep.and_then(|k| run_groups::position(&self.run_items, &self.runs, &k)) {
            self.run_sel = i;
        }
        self.run_sel = self.run_sel.min(self.run_items.len().saturating_sub(1));
    }

    /// The selected line of the Runs pane.
    pub fn selected_item(&self) -> Option<&RunItem> {
        self.run_items.get(self.run_sel)
    }

    /// The selected run; none on a group's row.
    pub fn selected_run(&self) -> Option<&RunRow> {
        match self.selected_item()? {
            RunItem::Run { row, .. } => self.runs.get(*row),
            RunItem::Group(_) => None,
        }
    }

    /// The runs the selected line stands for: a group's seeds, or the run.
    pub fn selected_rows(&self) -> Vec<RunRow> {
        self.selected_item()
            .map(|it| {
                run_groups::rows_of(&self.runs, it)
                    .into_iter()
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The marked runs the Runs pane lists (a mark hidden by the filter is kept, not acted on).
    pub fn marked_visible(&self) -> Vec<&RunRow> {
        self.runs
            .iter()
            .filter(|r| self.marked.contains(&r.id))
            .collect()
    }
}

/// A selection `sel` moved by `by` rows in a list of `len`, kept inside it.
pub fn step(sel: usize, len: usize, by: isize) -> usize {
    if len == 0 {
        return 0;
    }
    (sel as isize + by).clamp(0, len as isize - 1) as usize
}
