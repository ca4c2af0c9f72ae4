//! The workbench's screens: the four tabs, the editor and the adaptation view.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Experiments,
    Runs,
    Monitor,
    Compare,
    Editor,
    /// Loss against adaptation steps, and for regression the tracked tasks' fits; opened from
    /// the monitor or compare screen (`AdaptationView::from`).
    Adaptation,
}

impl Screen {
    /// The tab bar, in Tab order; the editor is reached from the experiments list.
    pub const TABS: [Screen; 4] = [
        Screen::Experiments,
        Screen::Runs,
        Screen::Monitor,
        Screen::Compare,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Experiments => "Experiments",
            Screen::Runs => "Runs",
            Screen::Monitor => "Monitor",
            Screen::Compare => "Compare",
            Screen::Editor => "Editor",
            Screen::Adaptation => "Adaptation",
        }
    }
}
