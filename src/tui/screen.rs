//! The workbench's screens: the four tabs, the editor, the adaptation view and the two task
//! views (embedding scatter, affinity heatmap).

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
    /// The selected arm's task embeddings on their first two principal components; opened
    /// from the monitor, compare or runs screen (`TaskViews::from`).
    Embedding,
    /// The selected arm's task-affinity matrix as a heatmap ordered by clustering.
    Affinity,
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
            Screen::Embedding => "Task embedding",
            Screen::Affinity => "Task affinity",
        }
    }
}
