//! Every saved run under `runs/`: the filtered, sorted list, and the selected run's details.
//!
//! Narrow terminals drop decorations, never numbers: the result column always gets the width
//! of its longest value, and the algorithm, progress, seed-group and note columns go (or names
//! are elided in the middle) before it would be cut.

use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use crate::runs::RunStatus;
use crate::tui::app::App;
use crate::tui::run_groups::{self, Member, RunItem, SeedGroup};
use crate::tui::store::RunRow;
use crate::tui::text::plural;

use super::{layout, theme};

/// `s` in at most `w` characters, cut in the middle (`sinusoid-…-maml`), so both the start
/// and the end that tell two names apart stay.
pub fn elide_middle(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        return s.to_string();
    }
    if w <= 1 {
        return "…".chars().take(w).collect();
    }
    let head = (w - 1).div_ceil(2);
    let tail = w - 1 - head;
    let start: String = s.chars().take(head).collect();
    let end: String = s.chars().skip(n - tail).collect();
    format!("{start}…{end}")
}

/// `s` in at most `w` characters, cut at the end (`lr too hi…`): a note reads from its start.
pub fn elide_end(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_string();
    }
    let mut out: String = s.chars().take(w.saturating_sub(1)).collect();
    if w > 0 {
        out.push('…');
    }
    out
}

/// What a row says, before fitting it to the width.
struct Cells {
    mark: &'static str,
    status: String,
    started_unix: u64,
    experiment: String,
    arm: String,
    algorithm: String,
    progress: String,
    result: String,
    note: String,
}

/// A sweep's runs show as one group: the sweep and the variant's index.
fn shown_experiment(r: &RunRow) -> String {
    match r.variant.as_deref().and_then(crate::tui::store::sweep_of) {
        Some((sweep, i)) => format!("{sweep}#{i}"),
        None => r.experiment.clone(),
    }
}

fn cells(app: &App, item: &RunItem) -> Cells {
    match item {
        RunItem::Run { row, member } => run_cells(app, &app.runs[*row], member.as_ref()),
        RunItem::Group(g) => group_cells(app, g),
    }
}

fn run_cells(app: &App, r: &RunRow, member: Option<&Member>) -> Cells {
    let notes = &r.extra.notes;
    // Tags first: they are short, and what a filter finds runs by.
    let mut note: Vec<String> = notes.tags.iter().map(|t| format!("#{t}")).collect();
    if !notes.note.is_empty() {
        note.push(notes.note.clone());
    }
    Cells {
        mark: if app.marked.contains(&r.id) {
            "■"
        } else {
            " "
        },
        status: r.status.label().to_string(),
        started_unix: r.started_unix,
        // A seed of an open group is named by its seed, under the group's row.
        experiment: match member {
            Some(m) => format!("{} {}", if m.last { "└" } else { "├" }, m.label),
            None => shown_experiment(r),
        },
        arm: r.arm.clone(),
        algorithm: r.algorithm.clone(),
        progress: format!("{}/{}", r.iteration, r.total_iterations),
        result: r
            .headline
            .clone()
            .or_else(|| r.extra.last_validation.clone())
            .unwrap_or_else(|| "–".into()),
        note: note.join(" "),
    }
}

fn group_cells(app: &App, g: &SeedGroup) -> Cells {
    let rows: Vec<&RunRow> = g.members.iter().map(|&i| &app.runs[i]).collect();
    let marked = rows.iter().filter(|r| app.marked.contains(&r.id)).count();
    let first = rows[0];
    // A seed sweep's variants are its seeds: the group is the sweep, not one variant.
    let name = match first
        .variant
        .as_deref()
        .and_then(crate::tui::store::sweep_of)
    {
        Some((sweep, _)) => sweep.to_string(),
        None => first.experiment.clone(),
    };
    let reached = rows.iter().map(|r| r.iteration).min().unwrap_or(0);
    let total = rows.iter().map(|r| r.total_iterations).max().unwrap_or(0);
    Cells {
        mark: match marked {
            0 => " ",
            n if n == rows.len() => "■",
            _ => "▪",
        },
        status: run_groups::states(&app.runs, g),
        started_unix: rows.iter().map(|r| r.started_unix).max().unwrap_or(0),
        experiment: format!("{} {name}", if g.expanded { "▾" } else { "▸" }),
        arm: first.arm.clone(),
        algorithm: first.algorithm.clone(),
        progress: format!("{reached}/{total}"),
        result: g
            .result
            .map_or_else(|| format!("{} seeds: –", g.seeds), |r| r.label(g.seeds)),
        note: String::new(),
    }
}

/// Column widths; zero means the column is left out.
#[derive(Debug, Clone, Copy)]
struct Widths {
    status: usize,
    date: usize,
    experiment: usize,
    arm: usize,
    algorithm: usize,
    progress: usize,
    result: usize,
    note: usize,
}

const LONG_DATE: usize = 16; // 2026-12-02 00:37
const SHORT_DATE: usize = 11; // 12-02 00:37

impl Widths {
    fn total(&self) -> usize {
        let cols = [
            1,
            self.status,
            self.date,
            self.experiment,
            self.arm,
            self.algorithm,
            self.progress,
            self.result,
            self.note,
        ];
        let shown = cols.iter().filter(|w| **w > 0).count();
        cols.iter().sum::<usize>() + shown.saturating_sub(1)
    }

    /// Natural widths, then decorations dropped in order until the row fits `avail`.
    fn fit(all: &[Cells], avail: usize) -> Widths {
        let max = |f: fn(&Cells) -> &str, header: &str| {
            all.iter()
                .map(|c| f(c).chars().count())
                .chain([header.chars().count()])
                .max()
                .unwrap_or(0)
        };
        let mut w = Widths {
            status: max(|c| &c.status, "status"),
            date: LONG_DATE,
            experiment: max(|c| &c.experiment, "experiment"),
            arm: max(|c| &c.arm, "arm"),
            algorithm: max(|c| &c.algorithm, "algorithm"),
            progress: max(|c| &c.progress, "progress"),
            result: max(|c| &c.result, "result"),
            note: max(|c| &c.note, ""),
        };
        if w.note > 0 {
            w.note = w.note.max("note".len());
        }
        // The note takes what is left, down to a readable minimum.
        let note_natural = w.note;
        w.note = 0;
        let natural = w;
        let steps: [fn(&mut Widths); 8] = [
            |w| w.experiment = w.experiment.min(28),
            |w| w.arm = w.arm.min(16),
            |w| w.date = SHORT_DATE,
            |w| w.algorithm = 0,
            |w| w.experiment = w.experiment.min(16),
            |w| w.progress = 0,
            |w| {
                w.experiment = w.experiment.min(10);
                w.arm = w.arm.min(10)
            },
            |w| {
                w.experiment = w.experiment.min(6);
                w.arm = w.arm.min(6);
                w.status = w.status.min(7)
            },
        ];
        for step in steps {
            if w.total() <= avail {
                break;
            }
            step(&mut w);
        }
        // A step can free more than was needed: put columns back, then widen names.
        for restore in [
            |w: &mut Widths, n: &Widths| w.progress = n.progress,
            |w: &mut Widths, n: &Widths| w.algorithm = n.algorithm,
        ] {
            let mut more = w;
            restore(&mut more, &natural);
            if more.total() <= avail {
                w = more;
            }
        }
        let slack = avail.saturating_sub(w.total());
        let grow = slack.min(natural.experiment.min(28).saturating_sub(w.experiment));
        w.experiment += grow;
        let slack = slack - grow;
        w.arm += slack.min(natural.arm.min(16).saturating_sub(w.arm));
        if note_natural > 0 {
            let left = avail.saturating_sub(w.total() + 1);
            if left >= 8 {
                w.note = left.min(note_natural.max(8));
            }
        }
        w
    }
}

fn date(unix: u64, width: usize) -> String {
    let d = theme::date(unix);
    if width < LONG_DATE && d.len() == LONG_DATE {
        d[5..].to_string()
    } else {
        d
    }
}

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let [table, detail] = layout::runs(area);
    render_table(app, f, table);
    render_detail(app, f, detail);
}

fn render_table(app: &App, f: &mut Frame, table: Rect) {
    let height = table.height.saturating_sub(3) as usize;
    let off = layout::scroll_offset(app.run_sel, app.run_items.len(), height);
    let all: Vec<Cells> = app.run_items.iter().map(|it| cells(app, it)).collect();
    let w = Widths::fit(&all, table.width.saturating_sub(2) as usize);
    let rows: Vec<Row> = app
        .run_items
        .iter()
        .zip(&all)
        .enumerate()
        .skip(off)
        .take(height)
        .map(|(i, (item, c))| {
            let status_style = match item {
                RunItem::Run { row, .. } => match app.runs[*row].status {
                    RunStatus::Failed(_) | RunStatus::Damaged(_) => theme::error(),
                    RunStatus::Running => theme::ok(),
                    _ => Default::default(),
                },
                RunItem::Group(_) => Default::default(),
            };
            let name_style = match item {
                RunItem::Group(_) => theme::title(),
                RunItem::Run { .. } => Default::default(),
            };
            let mut cols = vec![
                Line::raw(c.mark),
                Line::styled(elide_middle(&c.status, w.status), status_style),
                Line::raw(date(c.started_unix, w.date)),
                Line::styled(elide_middle(&c.experiment, w.experiment), name_style),
                Line::raw(elide_middle(&c.arm, w.arm)),
            ];
            if w.algorithm > 0 {
                cols.push(Line::raw(elide_middle(&c.algorithm, w.algorithm)));
            }
            if w.progress > 0 {
                cols.push(Line::raw(c.progress.clone()));
            }
            cols.push(Line::raw(c.result.clone()));
            if w.note > 0 {
                cols.push(Line::styled(elide_end(&c.note, w.note), theme::title()));
            }
            let row = Row::new(cols);
            if i == app.run_sel {
                row.style(theme::selected())
            } else {
                row
            }
        })
        .collect();
    let len = |n: usize| Constraint::Length(n as u16);
    let mut widths = vec![
        len(1),
        len(w.status),
        len(w.date),
        len(w.experiment),
        len(w.arm),
    ];
    let date_header = if w.date >= LONG_DATE {
        "started (UTC)"
    } else {
        "started UTC"
    };
    let mut header = vec!["", "status", date_header, "experiment", "arm"];
    if w.algorithm > 0 {
        widths.push(len(w.algorithm));
        header.push("algorithm");
    }
    if w.progress > 0 {
        widths.push(len(w.progress));
        header.push("progress");
    }
    widths.push(len(w.result));
    header.push("result");
    if w.note > 0 {
        widths.push(len(w.note));
        header.push("note");
    }
    let header = Row::new(header).style(theme::title());
    let t = Table::new(rows, widths)
        .header(header)
        .block(table_block(app));
    f.render_widget(t, table);
}

/// The table's frame: how many runs (of how many), the filter, the order, marks and queue.
fn table_block(app: &App) -> Block<'static> {
    let mut parts = vec![if app.run_filter.active() {
        format!("{} of {}", app.runs.len(), app.all_runs.len())
    } else {
        plural(app.runs.len(), "run")
    }];
    parts.push(format!("by {}", app.run_sort.label()));
    let marked = app.marked_visible().len();
    if marked > 0 {
        parts.push(format!("{marked} marked"));
    }
    if !app.queue.is_empty() {
        parts.push(format!("{} queued", app.queue.len()));
    }
    let mut block = Block::default().borders(Borders::ALL).title(Span::styled(
        format!(" runs/ · {} ", parts.join(" · ")),
        theme::title(),
    ));
    if app.run_filter.active() {
        let cursor = if app.run_filter.editing { "█" } else { "" };
        block = block.title_bottom(Line::from(vec![
            Span::styled(" / ", theme::title()),
            Span::styled(format!("{}{cursor} ", app.run_filter.text), theme::ok()),
        ]));
    }
    block
}

fn field(name: &str, value: String) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{name:<7}"), theme::dim()),
        Span::raw(value),
    ])
}

/// How a run ran (seed, device, threads, host, training time): one `ran` line, if known.
fn ran(r: &RunRow) -> Option<Line<'static>> {
    let mut ran = vec![];
    if let Some(seed) = r.seed {
        ran.push(format!("seed {seed}"));
    }
    if !r.extra.device.is_empty() {
        ran.push(r.extra.device.clone());
    }
    if r.extra.threads > 0 {
        ran.push(plural(r.extra.threads, "thread"));
    }
    if !r.extra.host.is_empty() {
        ran.push(format!("on {}", r.extra.host));
    }
    if r.extra.seconds > 0.0 {
        ran.push(format!("{} of training", theme::duration(r.extra.seconds)));
    }
    (!ran.is_empty()).then(|| field("ran", ran.join(" · ")))
}

fn render_detail(app: &App, f: &mut Frame, detail: Rect) {
    let block = Block::default().borders(Borders::ALL).title(" run ");
    if let Some(RunItem::Group(g)) = app.selected_item() {
        let text = group_detail(app, g);
        let block = Block::default().borders(Borders::ALL).title(" seeds ");
        return f.render_widget(
            Paragraph::new(text).block(block).wrap(Wrap { trim: false }),
            detail,
        );
    }
    let text = match app.selected_run() {
        None if app.run_filter.active() && !app.all_runs.is_empty() => vec![Line::raw(format!(
            "No run matches `{}`: Esc clears the filter.",
            app.run_filter.text
        ))],
        None => vec![Line::raw(
            "No saved runs yet: launch an experiment from the Experiments pane.",
        )],
        Some(r) => {
            // Relative to the project, as the user launched it (`runs/<id>`).
            let root = app.runs_dir.parent().unwrap_or(&app.runs_dir);
            let dir = r.dir.strip_prefix(root).unwrap_or(&r.dir);
            let mut v = vec![field("dir", dir.display().to_string())];
            let mut origin = vec![];
            if let Some(of) = &r.extra.rerun_of {
                origin.push(format!("rerun of {of}"));
            }
            if !r.extra.resumed_at.is_empty() {
                let at: Vec<String> = r.extra.resumed_at.iter().map(|i| i.to_string()).collect();
                origin.push(format!(
                    "resumed from the checkpoint at iteration {}",
                    at.join(", then ")
                ));
            }
            if !origin.is_empty() {
                v.push(field("from", origin.join(" · ")));
            }
            let notes = &r.extra.notes;
            if !notes.is_empty() {
                let tags: Vec<String> = notes.tags.iter().map(|t| format!("#{t}")).collect();
                v.push(Line::from(vec![
                    Span::styled(format!("{:<7}", "note"), theme::dim()),
                    Span::raw(notes.note.clone()),
                    Span::raw(if notes.note.is_empty() { "" } else { "  " }),
                    Span::styled(tags.join(" "), theme::title()),
                ]));
            }
            if let Some(h) = &r.headline {
                v.push(field("result", format!("{h} (95% CI, final test)")));
            } else if let Some(h) = &r.extra.last_validation {
                v.push(field(
                    "result",
                    format!(
                        "{h} (95% CI, last validation: {} before its test)",
                        r.status.label()
                    ),
                ));
            }
            v.extend(ran(r));
            if let Some(variant) = &r.variant {
                v.push(field(
                    "sweep",
                    format!("variant {variant} of {}", r.experiment),
                ));
            }
            if let RunStatus::Failed(reason) = &r.status {
                v.push(Line::styled(format!("failed: {reason}"), theme::error()));
            }
            if let RunStatus::Damaged(reason) = &r.status {
                for line in format!("damaged: {reason}").lines() {
                    v.push(Line::styled(line.to_string(), theme::error()));
                }
            }
            v.push(Line::styled(
                // The footer names the other keys; these are the ones it has no room for.
                "v frozen config · t note/#tags · / filter · o sort by date/result · ? all keys",
                theme::dim(),
            ));
            v
        }
    };
    f.render_widget(
        Paragraph::new(text).block(block).wrap(Wrap { trim: false }),
        detail,
    );
}

/// A group's details: what it is, its result over seeds, its states, each seed's result.
fn group_detail(app: &App, g: &SeedGroup) -> Vec<Line<'static>> {
    let rows: Vec<&RunRow> = g.members.iter().map(|&i| &app.runs[i]).collect();
    let first = rows[0];
    let mut v = vec![field(
        "group",
        format!(
            "{} of {}: {}, its runs differing only in seed",
            first.arm,
            first.experiment,
            plural(g.seeds, "seed")
        ),
    )];
    if let Some(r) = &g.result {
        v.push(field(
            "result",
            format!(
                "{} (final test; mean over seeds, 95% t-interval, {} df)",
                r.label(g.seeds),
                r.summary.n.saturating_sub(1)
            ),
        ));
    }
    v.push(field("states", run_groups::states(&app.runs, g)));
    let each: Vec<String> = rows
        .iter()
        .map(|r| {
            let seed = r.seed.map_or("s?".into(), |s| format!("s{s}"));
            let value = r
                .headline
                .clone()
                .or_else(|| r.extra.last_validation.clone())
                .unwrap_or_else(|| r.status.label().to_string());
            format!("{seed} {value}")
        })
        .collect();
    v.push(field("seeds", each.join(" · ")));
    v.push(Line::styled(
        if g.expanded {
            "← folds its seeds · c compares them as one arm · d deletes all its seeds (y)"
        } else {
            "Enter/→ shows its seeds · c compares them as one arm · d deletes all its seeds (y)"
        },
        theme::dim(),
    ));
    v
}

#[cfg(test)]
mod tests {
    use super::{elide_end, elide_middle};

    #[test]
    fn elides_in_the_middle_keeping_both_ends() {
        assert_eq!(
            elide_middle("sinusoid-compare-seeds", 30),
            "sinusoid-compare-seeds"
        );
        assert_eq!(elide_middle("sinusoid-compare-seeds", 11), "sinus…seeds");
        assert_eq!(elide_middle("abcdef", 4), "ab…f");
        assert_eq!(elide_middle("abcdef", 1), "…");
        assert_eq!(elide_middle("abcdef", 0), "");
        assert_eq!(elide_end("lr too high", 7), "lr too…");
        assert_eq!(elide_end("lr", 7), "lr");
    }
}
