//! The key table: every key, the panes it works on, the action it triggers, and the words the
//! help overlay and the footers show for it. Dispatch (`keys`), help (`view::modal`) and
//! footers (`view`) all read this one table, so a new key or pane is one entry here.

use std::sync::OnceLock;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::Screen;

/// What a key asks for. `keys::perform` carries each out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Help,
    AskQuit,
    /// Leave the monitor or compare screen for the pane it was opened from.
    Back,
    NextPane,
    PrevPane,
    Pane(Screen),
    Move(isize),
    EditExperiment,
    NewExperiment,
    DuplicateExperiment,
    LaunchExperiment,
    /// Open the selected run in the Monitor; on a group of seeds, open or close the group.
    OpenRun,
    /// Show a group's seeds, one row each.
    ExpandGroup,
    /// Fold a group's seeds back into its row.
    CollapseGroup,
    MarkRun,
    /// Mark every run of the selected run's sweep (or experiment): all its arms and seeds.
    MarkGroup,
    ClearMarks,
    CompareMarked,
    Rerun,
    Resume,
    ExportRuns,
    DeleteRun,
    ShowCompare,
    ShowMonitor,
    ToggleAccuracy,
    ToggleSource,
    ExportSession,
    PauseArm,
    PauseAll,
    StopArm,
    StopAll,
    Save,
    JumpToError,
    SaveAndLaunch,
    LeaveEditor,
    /// Esc on a list: clears the Runs filter; never quits.
    Escape,
    /// `/`: type a filter over the listed runs.
    FilterRuns,
    /// Cycle the Runs pane's order (date, result).
    SortRuns,
    /// Edit the selected run's note and tags.
    EditNotes,
    /// Show the selected run's frozen config.ron.
    ViewConfig,
    /// Chart smoothing up (+1) or down (-1).
    Smooth(isize),
    ToggleLogY,
    ToggleXAxis,
    ToggleHistory,
    /// Show the value cursor, or move it by this many steps.
    Cursor(isize),
    HideCursor,
    ToggleDiff,
    /// Open the adaptation screen (loss vs steps; fits for regression).
    ShowAdaptation,
    /// Leave it for the screen it was opened from.
    LeaveAdaptation,
    /// The next (+1) or previous (−1) tracked task's fit.
    SelectTask(isize),
    /// Open the task-embedding scatter (from Runs: the selected run).
    ShowEmbedding,
    /// Open the task-affinity heatmap (from Runs: the selected run).
    ShowAffinity,
    /// Leave a task view for the screen it was opened from.
    LeaveTaskView,
    /// Colour the embedding scatter by the next task property.
    CycleColouring,
    /// Show the heatmap's other affinity measure.
    SwitchMeasure,
    /// Handled by the editor widget itself (listed so help and footer can name it).
    EditorWidget,
}

/// Which part of the help overlay a binding is listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    General,
    Experiments,
    Editor,
    Monitor,
    Runs,
}

impl Section {
    const ORDER: [Section; 5] = [
        Section::General,
        Section::Experiments,
        Section::Editor,
        Section::Monitor,
        Section::Runs,
    ];

    fn title(self) -> &'static str {
        match self {
            Section::General => "",
            Section::Experiments => "Experiments",
            Section::Editor => "Editor",
            Section::Monitor => "Monitor / Compare",
            Section::Runs => "Runs",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

impl Key {
    const fn new(code: KeyCode) -> Key {
        Key { code, ctrl: false }
    }

    const fn ch(c: char) -> Key {
        Key::new(KeyCode::Char(c))
    }

    const fn ctrl(c: char) -> Key {
        Key {
            code: KeyCode::Char(c),
            ctrl: true,
        }
    }

    fn matches(&self, k: &KeyEvent) -> bool {
        self.code == k.code && self.ctrl == k.modifiers.contains(KeyModifiers::CONTROL)
    }
}

const PANES: &[Screen] = &[
    Screen::Experiments,
    Screen::Runs,
    Screen::Monitor,
    Screen::Compare,
];
const LISTS: &[Screen] = &[Screen::Experiments, Screen::Runs];
const CHARTS: &[Screen] = &[Screen::Monitor, Screen::Compare];
const EXPERIMENTS: &[Screen] = &[Screen::Experiments];
const RUNS: &[Screen] = &[Screen::Runs];
const MONITOR: &[Screen] = &[Screen::Monitor];
const COMPARE: &[Screen] = &[Screen::Compare];
const EDITOR: &[Screen] = &[Screen::Editor];
const ADAPTATION: &[Screen] = &[Screen::Adaptation];
const TASK_VIEWS: &[Screen] = &[Screen::Embedding, Screen::Affinity];
const EMBEDDING: &[Screen] = &[Screen::Embedding];
const AFFINITY: &[Screen] = &[Screen::Affinity];

pub struct Binding {
    /// The screens where the keys do this.
    pub on: &'static [Screen],
    pub keys: Vec<Key>,
    pub action: Action,
    pub section: Section,
    /// The keys as the help overlay writes them.
    pub keys_label: String,
    pub help: &'static str,
    /// The footer's words for it; none when the footer leaves it out.
    pub footer: Option<String>,
    /// The screens whose footer shows it (those of `on` unless narrowed).
    pub footer_on: &'static [Screen],
}

impl Binding {
    fn footer_only_on(mut self, screens: &'static [Screen]) -> Binding {
        self.footer_on = screens;
        self
    }
}

fn bind(
    on: &'static [Screen],
    keys: &[Key],
    action: Action,
    section: Section,
    keys_label: &str,
    help: &'static str,
    footer: Option<&str>,
) -> Binding {
    Binding {
        on,
        keys: keys.to_vec(),
        action,
        section,
        keys_label: keys_label.into(),
        help,
        footer: footer.map(Into::into),
        footer_on: on,
    }
}

/// The table, in the order lookups try it, help lists it and footers show it.
pub fn bindings() -> &'static [Binding] {
    static TABLE: OnceLock<Vec<Binding>> = OnceLock::new();
    TABLE.get_or_init(table)
}

#[rustfmt::skip]
fn table() -> Vec<Binding> {
    use Action::*;
    use KeyCode::*;
    use Section as S;
    let tabs = Screen::TABS.len();
    let mut t = vec![
        bind(PANES, &[Key::ch('?'), Key::new(F(1))], Help, S::General, "?  F1", "this help", None),
        bind(PANES, &[Key::ctrl('c')], AskQuit, S::General, "", "", None),
        bind(PANES, &[Key::new(Tab)], NextPane, S::General, &format!("Tab  1-{tabs}"), "switch pane (S-Tab back)", None),
        bind(PANES, &[Key::new(BackTab)], PrevPane, S::General, "", "", None),
    ];
    // The number keys follow the tab bar, so a new pane gets its key here.
    for (i, screen) in Screen::TABS.into_iter().enumerate() {
        let digit = char::from_digit(i as u32 + 1, 10).expect("fewer than ten panes");
        t.push(bind(PANES, &[Key::ch(digit)], Pane(screen), S::General, "", "", None));
    }
    t.extend([
        bind(PANES, &[Key::new(Up), Key::ch('k')], Move(-1), S::General, "↑↓  j k", "move (PgUp PgDn g G)", None),
        bind(PANES, &[Key::new(Down), Key::ch('j')], Move(1), S::General, "", "", None),
        bind(PANES, &[Key::new(PageUp)], Move(-10), S::General, "", "", None),
        bind(PANES, &[Key::new(PageDown)], Move(10), S::General, "", "", None),
        bind(PANES, &[Key::new(Home), Key::ch('g')], Move(-1_000_000), S::General, "", "", None),
        bind(PANES, &[Key::new(End), Key::ch('G')], Move(1_000_000), S::General, "", "", None),
        bind(LISTS, &[Key::ch('q')], AskQuit, S::General, "q", "quit (asks while training)", None),
        bind(LISTS, &[Key::new(Esc)], Escape, S::General, "Esc", "back; clears the filter", None),
        bind(CHARTS, &[Key::ch('q'), Key::new(Esc)], Back, S::General, "", "", None),
        // Experiments
        bind(EXPERIMENTS, &[Key::new(Enter), Key::ch('e')], EditExperiment, S::Experiments, "Enter  e", "edit", Some("Enter edit")),
        bind(EXPERIMENTS, &[Key::ch('r'), Key::ch('l')], LaunchExperiment, S::Experiments, "r", "launch (queued if busy)", Some("r launch")),
        bind(EXPERIMENTS, &[Key::ch('n')], NewExperiment, S::Experiments, "n  d", "new / duplicate", Some("n new")),
        bind(EXPERIMENTS, &[Key::ch('d')], DuplicateExperiment, S::Experiments, "", "", Some("d duplicate")),
        // Editor
        bind(EDITOR, &[Key::ctrl('s')], Save, S::Editor, "Ctrl-S", "save (jumps to an error)", Some("Ctrl-S save")),
        bind(EDITOR, &[Key::new(F(4))], JumpToError, S::Editor, "F4", "jump to the error", Some("F4 go to error")),
        bind(EDITOR, &[Key::new(F(5))], SaveAndLaunch, S::Editor, "F5", "save and launch", Some("F5 save+launch")),
        bind(EDITOR, &[Key::ctrl('u'), Key::ctrl('r')], EditorWidget, S::Editor, "Ctrl-U/R", "undo / redo", Some("Ctrl-U/Ctrl-R undo/redo")),
        bind(EDITOR, &[Key::new(F(1))], Help, S::Editor, "", "", Some("F1 help")),
        bind(EDITOR, &[Key::new(Esc)], LeaveEditor, S::Editor, "Esc", "back (asks if modified)", Some("Esc back")),
        // Monitor and compare
        bind(CHARTS, &[Key::new(Left), Key::ch('h')], Move(-1), S::Monitor, "← →  h l", "select arm", Some("←→ arm")),
        bind(CHARTS, &[Key::new(Right), Key::ch('l')], Move(1), S::Monitor, "", "", None),
        bind(CHARTS, &[Key::ch('p')], PauseArm, S::Monitor, "p  P", "pause/resume arm / all", Some("p pause/resume")).footer_only_on(MONITOR),
        bind(CHARTS, &[Key::ch('P')], PauseAll, S::Monitor, "", "", None),
        bind(CHARTS, &[Key::ch('s')], StopArm, S::Monitor, "s  S", "stop arm / all (asks)", Some("s/S stop")).footer_only_on(MONITOR),
        bind(CHARTS, &[Key::ch('S')], StopAll, S::Monitor, "", "", None),
        bind(CHARTS, &[Key::ch('c')], ShowCompare, S::Monitor, "c  m", "compare / monitor", Some("c compare")).footer_only_on(MONITOR),
        bind(CHARTS, &[Key::ch('m')], ShowMonitor, S::Monitor, "", "", Some("m monitor")).footer_only_on(COMPARE),
        bind(CHARTS, &[Key::ch('a')], ToggleAccuracy, S::Monitor, "a  A", "acc ↔ loss / adaptation", Some("a acc/loss")),
        bind(CHARTS, &[Key::ch('v')], ToggleSource, S::Monitor, "v", "live ↔ opened saved run", Some("v live/saved")).footer_only_on(MONITOR),
        bind(CHARTS, &[Key::ch('x')], ExportSession, S::Monitor, "x", "export CSV, SVG, PNG", Some("x export")),
        bind(CHARTS, &[Key::ch('e')], Smooth(1), S::Monitor, "e  E", "smooth more / less (EMA)", None),
        bind(CHARTS, &[Key::ch('E')], Smooth(-1), S::Monitor, "", "", None),
        bind(CHARTS, &[Key::ch('y')], ToggleLogY, S::Monitor, "y", "log ↔ linear y axis", None),
        bind(CHARTS, &[Key::ch('t')], ToggleXAxis, S::Monitor, "t", "x axis: iterations ↔ time", None),
        bind(CHARTS, &[Key::ch('f')], ToggleHistory, S::Monitor, "f", "full ↔ recent history", None),
        bind(CHARTS, &[Key::ch(',')], Cursor(-1), S::Monitor, ", .  < >", "value cursor ← → (0 hides)", None),
        bind(CHARTS, &[Key::ch('.')], Cursor(1), S::Monitor, "", "", None),
        bind(CHARTS, &[Key::ch('<')], Cursor(-10), S::Monitor, "", "", None),
        bind(CHARTS, &[Key::ch('>')], Cursor(10), S::Monitor, "", "", None),
        bind(CHARTS, &[Key::ch('0')], HideCursor, S::Monitor, "", "", None),
        bind(COMPARE, &[Key::ch('D')], ToggleDiff, S::Monitor, "D", "config diff ↔ charts", Some("D diff")),
        bind(CHARTS, &[Key::ch('A')], ShowAdaptation, S::Monitor, "", "", Some("A adaptation")),
        bind(CHARTS, &[Key::ch('T')], ShowEmbedding, S::Monitor, "T  H", "task embedding / affinity", Some("T embedding")).footer_only_on(MONITOR),
        bind(CHARTS, &[Key::ch('H')], ShowAffinity, S::Monitor, "", "", Some("H affinity")).footer_only_on(MONITOR),
        // Adaptation (opened with A)
        bind(ADAPTATION, &[Key::new(Left), Key::ch('h')], Move(-1), S::Monitor, "", "", Some("←→ arm")),
        bind(ADAPTATION, &[Key::new(Right), Key::ch('l')], Move(1), S::Monitor, "", "", None),
        bind(ADAPTATION, &[Key::new(Up), Key::ch('k')], SelectTask(-1), S::Monitor, "", "", Some("↑↓ task")),
        bind(ADAPTATION, &[Key::new(Down), Key::ch('j')], SelectTask(1), S::Monitor, "", "", None),
        bind(ADAPTATION, &[Key::ch('y')], ToggleLogY, S::Monitor, "", "", None),
        bind(ADAPTATION, &[Key::ch('a')], ToggleAccuracy, S::Monitor, "", "", Some("a acc/loss")),
        bind(ADAPTATION, &[Key::ch('A'), Key::ch('q'), Key::new(Esc)], LeaveAdaptation, S::Monitor, "", "", None),
        bind(ADAPTATION, &[Key::ch('?'), Key::new(F(1))], Help, S::Monitor, "", "", None),
        bind(ADAPTATION, &[Key::ctrl('c')], AskQuit, S::Monitor, "", "", None),
        // Runs
        bind(RUNS, &[Key::new(Enter)], OpenRun, S::Runs, "Enter", "open; on a group: its seeds", Some("Enter open")),
        bind(RUNS, &[Key::new(Right), Key::ch('l')], ExpandGroup, S::Runs, "→ ←  l h", "show / fold a group's seeds", None),
        bind(RUNS, &[Key::new(Left), Key::ch('h')], CollapseGroup, S::Runs, "", "", None),
        bind(RUNS, &[Key::ch(' ')], MarkRun, S::Runs, "Space", "mark for comparison", Some("Space mark")),
        bind(RUNS, &[Key::ch('M')], MarkGroup, S::Runs, "M", "mark its sweep / all seeds", None),
        bind(RUNS, &[Key::ch('u')], ClearMarks, S::Runs, "u", "clear the marks", None),
        bind(RUNS, &[Key::ch('c')], CompareMarked, S::Runs, "c", "compare marked runs", Some("c compare")),
        bind(RUNS, &[Key::ch('r')], Rerun, S::Runs, "r", "rerun (queued if busy)", Some("r rerun")),
        bind(RUNS, &[Key::ch('R')], Resume, S::Runs, "R", "resume a stopped run", Some("R resume")),
        bind(RUNS, &[Key::ch('x')], ExportRuns, S::Runs, "x", "export CSV, SVG, PNG", Some("x export")),
        bind(RUNS, &[Key::ch('d'), Key::new(Delete)], DeleteRun, S::Runs, "d", "delete marked, else this (y/n)", Some("d delete")),
        bind(RUNS, &[Key::ch('/')], FilterRuns, S::Runs, "/", "filter (Esc clears)", None),
        bind(RUNS, &[Key::ch('o')], SortRuns, S::Runs, "o", "sort by date / result", None),
        bind(RUNS, &[Key::ch('t')], EditNotes, S::Runs, "t", "note and #tags", None),
        bind(RUNS, &[Key::ch('v')], ViewConfig, S::Runs, "v", "view its frozen config", None),
        bind(RUNS, &[Key::ch('T')], ShowEmbedding, S::Runs, "T  H", "open its task embedding / affinity heatmap", None),
        bind(RUNS, &[Key::ch('H')], ShowAffinity, S::Runs, "", "", None),
    ]);
    t.extend(task_view_table());
    t
}

/// The task views' own keys (opened with T and H).
#[rustfmt::skip]
fn task_view_table() -> Vec<Binding> {
    use Action::*;
    use KeyCode::*;
    use Section as S;
    vec![
        bind(TASK_VIEWS, &[Key::new(Left), Key::ch('h')], Move(-1), S::Monitor, "", "", Some("←→ arm")),
        bind(TASK_VIEWS, &[Key::new(Right), Key::ch('l')], Move(1), S::Monitor, "", "", None),
        bind(EMBEDDING, &[Key::ch('p')], CycleColouring, S::Monitor, "p  m", "in them: colour / measure", Some("p colour by")),
        bind(AFFINITY, &[Key::ch('m')], SwitchMeasure, S::Monitor, "", "", Some("m cosine/lookahead")),
        bind(EMBEDDING, &[Key::ch('H')], ShowAffinity, S::Monitor, "", "", Some("H affinity")),
        bind(AFFINITY, &[Key::ch('T')], ShowEmbedding, S::Monitor, "", "", Some("T embedding")),
        bind(EMBEDDING, &[Key::ch('T'), Key::ch('q'), Key::new(Esc)], LeaveTaskView, S::Monitor, "", "", None),
        bind(AFFINITY, &[Key::ch('H'), Key::ch('q'), Key::new(Esc)], LeaveTaskView, S::Monitor, "", "", None),
        bind(TASK_VIEWS, &[Key::ch('?'), Key::new(F(1))], Help, S::Monitor, "", "", None),
        bind(TASK_VIEWS, &[Key::ctrl('c')], AskQuit, S::Monitor, "", "", None),
    ]
}

/// The action `k` triggers on `screen`, if any. The first matching binding wins.
pub fn lookup(screen: Screen, k: &KeyEvent) -> Option<Action> {
    bindings()
        .iter()
        .find(|b| b.on.contains(&screen) && b.keys.iter().any(|key| key.matches(k)))
        .map(|b| b.action)
}

/// The help overlay's rows: `(keys, what they do)`, a section title as `(title, "")`, and a
/// blank row `("", "")` between sections.
pub fn help_rows() -> Vec<(String, String)> {
    let mut rows = vec![];
    for section in Section::ORDER {
        if !rows.is_empty() {
            rows.push((String::new(), String::new()));
        }
        if !section.title().is_empty() {
            rows.push((section.title().to_string(), String::new()));
        }
        for b in bindings()
            .iter()
            .filter(|b| b.section == section && !b.help.is_empty())
        {
            rows.push((b.keys_label.clone(), b.help.to_string()));
        }
        if section == Section::General {
            rows.push(("Mouse".into(), "click tabs/rows; wheel".into()));
        }
    }
    rows
}

/// The footer line for `screen`: its own keys from the table, then how to move, switch panes,
/// get help and leave.
pub fn footer(screen: Screen) -> String {
    footer_parts(screen).join(" · ")
}

/// The footer's entries, most useful first; `? help` and `q quit`/`q back` last.
pub fn footer_parts(screen: Screen) -> Vec<String> {
    let mut parts: Vec<String> = vec![];
    match screen {
        Screen::Experiments | Screen::Runs => parts.push("↑↓ select".into()),
        _ => {}
    }
    parts.extend(
        bindings()
            .iter()
            .filter(|b| b.footer_on.contains(&screen))
            .filter_map(|b| b.footer.clone()),
    );
    match screen {
        Screen::Experiments => parts.extend(["Tab panes", "? help", "q quit"].map(String::from)),
        Screen::Runs => parts.extend(["? help", "q quit"].map(String::from)),
        Screen::Monitor
        | Screen::Compare
        | Screen::Adaptation
        | Screen::Embedding
        | Screen::Affinity => parts.extend(["? help", "q back"].map(String::from)),
        Screen::Editor => {}
    }
    parts
}

/// The footer in `width` columns: entries are left out whole (from the end of the middle,
/// keeping help and quit), never cut mid-word.
pub fn footer_fit(screen: Screen, width: usize) -> String {
    let mut parts = footer_parts(screen);
    let len = |p: &[String]| {
        p.iter().map(|s| s.chars().count()).sum::<usize>() + 3 * p.len().saturating_sub(1)
    };
    let tail = if screen == Screen::Editor { 0 } else { 2 }.min(parts.len());
    while len(&parts) > width && parts.len() > tail {
        parts.remove(parts.len() - tail - 1);
    }
    while len(&parts) > width {
        parts.pop();
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn footers_leave_entries_out_whole() {
        for screen in [
            Screen::Experiments,
            Screen::Runs,
            Screen::Monitor,
            Screen::Compare,
        ] {
            for w in [40, 60, 80, 120] {
                let f = footer_fit(screen, w);
                assert!(f.chars().count() <= w, "{f}");
                let all = footer_parts(screen);
                for part in f.split(" · ") {
                    assert!(all.iter().any(|p| p == part), "{part:?} cut in {f:?}");
                }
                assert!(f.contains("? help"), "{screen:?} {w}: {f}");
            }
        }
    }

    #[test]
    fn number_keys_follow_the_tab_bar() {
        for (i, s) in Screen::TABS.into_iter().enumerate() {
            let c = char::from_digit(i as u32 + 1, 10).unwrap();
            assert_eq!(
                lookup(Screen::Experiments, &key(KeyCode::Char(c))),
                Some(Action::Pane(s))
            );
        }
    }

    #[test]
    fn no_key_means_two_things_on_one_screen() {
        for screen in Screen::TABS.into_iter().chain([
            Screen::Editor,
            Screen::Adaptation,
            Screen::Embedding,
            Screen::Affinity,
        ]) {
            let mut seen: Vec<(Key, Action)> = vec![];
            for b in bindings().iter().filter(|b| b.on.contains(&screen)) {
                for k in &b.keys {
                    if let Some((_, first)) = seen.iter().find(|(s, _)| s == k) {
                        panic!("{k:?} on {screen:?} is both {first:?} and {:?}", b.action);
                    }
                    seen.push((*k, b.action));
                }
            }
        }
    }

    #[test]
    fn every_footer_entry_is_a_key_of_that_screen_and_help_lists_every_section() {
        let help = help_rows();
        for s in ["Experiments", "Editor", "Monitor / Compare", "Runs"] {
            assert!(help.iter().any(|(k, _)| k == s), "{s} missing from help");
        }
        assert!(footer(Screen::Runs).contains("R resume"));
        assert!(footer(Screen::Editor).contains("F5 save+launch"));
        assert!(!footer(Screen::Compare).contains("pause"));
        assert_eq!(
            footer(Screen::Monitor),
            "←→ arm · p pause/resume · s/S stop · c compare · a acc/loss · v live/saved · x export · A adaptation · T embedding · H affinity · ? help · q back"
        );
    }
}
