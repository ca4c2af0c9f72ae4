//! Arms side by side: overlaid curves on shared axes with a legend under them, the results table
//! (sorted by the metric, best arm marked, overlapping intervals flagged, scrolling), and the
//! config fields that differ, side by side.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::Frame;

use crate::tasks::Split;
use crate::tui::app::App;
use crate::tui::results::{self, Metric, Ranking};
use crate::tui::series::index_at;
use crate::tui::session::{ArmView, Session};

use super::chart::{self, Curve, Panel, Title};
use super::monitor::{verdict_style, Budget};
use super::{layout, theme};

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let Some(s) = app.session() else {
        let p = Paragraph::new("Nothing to compare: launch an experiment, or mark runs with Space in Runs and press c.")
            .block(Block::default().borders(Borders::ALL).title("Compare"));
        return f.render_widget(p, area);
    };
    let ranking = results::rank(s, app.task_accuracy);
    let n = s.arms.len() as u16;
    let table_h = (n + 3)
        .clamp(5, (area.height * 2 / 5).max(5))
        .min(area.height);
    let [top, bottom] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(table_h)]).areas(area);
    // Seed groups need the table's width for the paired test; the diff stays a D away.
    let seeded = s.arms.iter().any(|a| a.seeds.len() > 1);
    let wide = area.width >= 110 && !s.diff.is_empty() && !seeded;
    if wide {
        let [t, d] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
            .areas(bottom);
        results_table(app, s, &ranking, f, t);
        diff_table(app, s, f, d);
    } else {
        results_table(app, s, &ranking, f, bottom);
    }
    if app.chart.diff {
        return diff_table(app, s, f, top);
    }
    if top.height < 6 {
        return; // Too short for a chart: the table is the comparison.
    }
    let legend = legend_lines(s, top.width as usize, if top.height >= 24 { 3 } else { 2 });
    let [charts, leg] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(legend.len() as u16)]).areas(top);
    overlays(app, s, ranking.metric, f, charts);
    f.render_widget(Paragraph::new(legend), leg);
}

/// `● maml  ● fomaml #3fa2 …` under the charts (never on top of the curves' ends), every arm in
/// at most `max_lines` lines, labels shortened (keeping their run id) only if they must be.
fn legend_lines(s: &Session, width: usize, max_lines: usize) -> Vec<Line<'static>> {
    let colors = theme::arm_colors(s);
    let n = s.arms.len().max(1);
    let longest = s
        .arms
        .iter()
        .map(|a| a.name.chars().count())
        .max()
        .unwrap_or(4);
    let mut lines = max_lines;
    for l in 1..=max_lines {
        let per = n.div_ceil(l);
        if width / per >= longest.min(22) + 4 {
            lines = l;
            break;
        }
    }
    let per = n.div_ceil(lines);
    let w = (width / per).saturating_sub(4).max(4).min(longest);
    s.arms
        .chunks(per)
        .enumerate()
        .map(|(row, arms)| {
            let spans: Vec<Span> = arms
                .iter()
                .enumerate()
                .map(|(k, a)| {
                    let i = row * per + k;
                    Span::styled(
                        format!(" ● {:<w$} ", layout::fit_label(&a.name, w)),
                        Style::default().fg(colors[i]),
                    )
                })
                .collect();
            Line::from(spans)
        })
        .collect()
}

fn overlays(app: &App, s: &Session, metric: Metric, f: &mut Frame, area: Rect) {
    let colors = theme::arm_colors(s);
    let o = &app.chart;
    let time = chart::x_is_time(o, s.arms.iter());
    let loss = if s.classification() { "loss" } else { "MSE" };
    let mut train = Panel::new(
        Title::default()
            .keep(format!("meta-train {loss}"))
            .keep(o.short())
            .opt("all arms")
            .opt(o.extra()),
    );
    train.x_time = time;
    if let Some(c) = results::train_caveat(s) {
        let panel = if area.width >= 70 {
            area.width / 2
        } else {
            area.width
        };
        let inner = panel.saturating_sub(2) as usize;
        let text = if c.chars().count() <= inner {
            c
        } else {
            "⚠ not comparable across algorithms"
        };
        train
            .notes
            .push(Line::styled(text, Style::default().fg(Color::Yellow)));
    }
    let acc = metric == Metric::Accuracy;
    let mut eval = Panel::new(
        Title::default()
            .keep(format!("eval {} mean", metric.name()))
            .opt(if s.arms.iter().any(|a| a.seeds.len() > 1) {
                "band: selected arm's 95% CI across seeds"
            } else {
                "band: selected arm's 95% CI"
            })
            .keep(if o.log_y { "log" } else { "" })
            .opt(o.extra()),
    );
    eval.percent = acc;
    eval.x_time = time;
    eval.empty_text = "no evaluation yet";
    for (i, a) in s.arms.iter().enumerate() {
        let c = colors[i];
        train
            .curves
            .push(Curve::train(a.name.clone(), a, &a.train_loss, c, time));
        let series = if acc { &a.eval_acc } else { &a.eval_loss };
        eval.curves.push(Curve::eval(
            a.name.clone(),
            a,
            series,
            c,
            i == app.arm_sel,
            time,
        ));
    }
    if area.width < 70 {
        return chart::render(f, area, eval, o);
    }
    let [l, r] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    chart::render(f, l, train, o);
    chart::render(f, r, eval, o);
}

fn value_text(v: &crate::stats::MeanCi, metric: Metric) -> String {
    if metric == Metric::Accuracy {
        theme::pct_ci(v)
    } else {
        theme::mean_ci(v)
    }
}

/// The eval value of `a` at the cursor (the evaluation at or before it), as the chart reads it.
fn at_cursor(a: &ArmView, metric: Metric, x: f64, time: bool) -> String {
    let s = if metric == Metric::Accuracy {
        &a.eval_acc
    } else {
        &a.eval_loss
    };
    let pts = chart::on_x(a, s.mean.points(), time);
    let (lo, hi) = (s.lo.points(), s.hi.points());
    let Some(i) = index_at(&pts, x) else {
        return "–".into();
    };
    // A run paused or stopped before the cursor has no value there.
    if chart::reached(a, time).is_some_and(|r| x > r + 1e-9) {
        return "–".into();
    }
    let m = crate::stats::MeanCi {
        mean: pts[i].1,
        ci95: match (lo.get(i), hi.get(i)) {
            (Some(l), Some(h)) => 0.5 * (h.1 - l.1),
            _ => f64::NAN,
        },
        n: 0,
    };
    value_text(&m, metric)
}

/// Where the value cursor stands on the evaluation curves, if shown.
fn cursor_at(app: &App, s: &Session, metric: Metric, time: bool) -> Option<f64> {
    app.chart.cursor_frac().and_then(|c| {
        let curves: Vec<Curve> = s
            .arms
            .iter()
            .map(|a| {
                let series = if metric == Metric::Accuracy {
                    &a.eval_acc
                } else {
                    &a.eval_loss
                };
                Curve::eval("", a, series, Color::White, false, time)
            })
            .collect();
        chart::cursor_x(&curves, &app.chart, c)
    })
}

/// Each row's paired difference to the best arm (by seed); `short` for narrow tables.
fn paired_texts(ranking: &Ranking, short: bool) -> Vec<String> {
    let metric = ranking.metric;
    ranking
        .rows
        .iter()
        .enumerate()
        .map(|(k, r)| match (&r.paired, k) {
            (_, 0) if r.value.is_some() => "(best)".into(),
            (Some(p), _) => {
                let d = match (metric == Metric::Accuracy, short) {
                    (true, _) => {
                        format!("{:+.1}% ± {:.1}", 100.0 * p.diff.mean, 100.0 * p.diff.ci95)
                    }
                    (false, false) => {
                        format!("{:+.4} ± {}", p.diff.mean, theme::num(p.diff.ci95))
                    }
                    (false, true) => format!("{:+.3} ± {:.3}", p.diff.mean, p.diff.ci95),
                };
                match (p.significant, short) {
                    (true, _) => d,
                    (false, false) => format!("{d} not significant"),
                    (false, true) => format!("{d} n.s."),
                }
            }
            _ => "–".into(),
        })
        .collect()
}

/// Each ranked row's value ± CI, `–` where it has none.
fn value_texts(ranking: &Ranking) -> Vec<String> {
    ranking
        .rows
        .iter()
        .map(|r| {
            r.value
                .as_ref()
                .map_or("–".into(), |v| value_text(v, ranking.metric))
        })
        .collect()
}

/// Where each row's value comes from (`test @5000`, or `@5000` when compact).
fn evaluated_texts(ranking: &Ranking, compact: bool) -> Vec<String> {
    ranking
        .rows
        .iter()
        .map(|r| match (&r.value, r.split, compact) {
            (None, _, _) => "–".into(),
            (Some(_), _, true) => format!("@{}", r.iteration),
            (Some(_), Split::Test, _) => format!("test @{}", r.iteration),
            (Some(_), _, _) => format!("val @{}", r.iteration),
        })
        .collect()
}

/// Whether the full table (the split named, the verdict in words, seeds and the paired test in
/// full where `seeds` are given) is wider than `inner_w`: narrow, those words go, the numbers stay.
fn too_narrow(
    ranking: &Ranking,
    values: &[String],
    value_head: &str,
    seeds: Option<&Vec<String>>,
    inner_w: usize,
) -> bool {
    let wide_eval_w = maxw(&evaluated_texts(ranking, false), "evaluated");
    let paired_need = seeds.map_or(0, |seeds| {
        maxw(seeds, "seeds")
            + 1
            + maxw(&paired_texts(ranking, false), "vs best, paired by seed")
            + 1
    });
    3 + 10 + 1 + maxw(values, value_head) + 1 + wide_eval_w + 1 + 7 + paired_need > inner_w
}

/// The cursor column: each ranked arm's value where the cursor stands, and its header.
fn cursor_texts(
    s: &Session,
    ranking: &Ranking,
    cursor: Option<f64>,
    time: bool,
) -> (Vec<String>, String) {
    let Some(x) = cursor else {
        return (vec![], String::new());
    };
    let vals = ranking
        .rows
        .iter()
        .map(|r| at_cursor(&s.arms[r.arm], ranking.metric, x, time))
        .collect();
    let head = if time {
        format!("at {}", theme::duration(x))
    } else {
        format!("at {x:.0}")
    };
    (vals, head)
}

const TRANSFER_HEAD: &str = "transfer";

/// The `transfer` column: its texts ([`transfer_texts`]) and width, shown when some row has a
/// text and the table has room.
struct TransferColumn {
    txt: Vec<String>,
    w: usize,
    show: bool,
}

impl TransferColumn {
    fn fit(s: &Session, ranking: &Ranking, b: &mut Budget) -> TransferColumn {
        let txt = transfer_texts(s, ranking);
        let w = maxw(&txt, TRANSFER_HEAD);
        let show = txt.iter().any(|t| !t.is_empty()) && b.take(w + 1);
        TransferColumn { txt, w, show }
    }
}

/// Per ranked row, the negative-transfer flag of a multi-task run against the single-task
/// baseline among the compared runs (`transfer::against_baselines`): `⚠ 3/12 tasks` where
/// tasks are significantly worse than trained alone, `none` where none is, `baseline` for
/// the baseline itself, blank for runs with no per-task record.
fn transfer_texts(s: &Session, ranking: &Ranking) -> Vec<String> {
    use crate::transfer::{against_baselines, TaskLosses};
    let records: Vec<(String, TaskLosses)> = s
        .arms
        .iter()
        .enumerate()
        .filter_map(|(i, a)| Some((i.to_string(), TaskLosses::load(a.run_dir.as_ref()?).ok()??)))
        .collect();
    let compared = against_baselines(&records);
    ranking
        .rows
        .iter()
        .map(|r| {
            let id = r.arm.to_string();
            if let Some((_, _, rows)) = compared.iter().find(|(a, _, _)| *a == id) {
                let n = rows.iter().filter(|t| t.negative()).count();
                return match n {
                    0 => "none".into(),
                    n => format!("⚠ {n}/{} tasks", rows.len()),
                };
            }
            let baseline = compared.iter().any(|(_, b, _)| *b == id);
            if baseline {
                "baseline".into()
            } else {
                String::new()
            }
        })
        .collect()
}

/// The widest of `v` and `head`, in characters.
fn maxw(v: &[String], head: &str) -> usize {
    v.iter()
        .map(|x| x.chars().count())
        .chain([head.chars().count()])
        .max()
        .unwrap_or(1)
}

/// The results table's texts and columns, fitted to its width: the rank, a short name, the
/// value and where it comes from always; seeds and the paired test, the cursor's values, the
/// algorithm and the status as room allows.
struct TableFit {
    compact: bool,
    values: Vec<String>,
    value_head: String,
    value_w: usize,
    evaluated: Vec<String>,
    eval_head: &'static str,
    eval_w: usize,
    verdict_w: usize,
    name_w: usize,
    seeds_txt: Vec<String>,
    seeds_head: &'static str,
    seeds_w: usize,
    paired_txt: Vec<String>,
    paired_head: &'static str,
    paired_w: usize,
    show_paired: bool,
    cursor_vals: Vec<String>,
    cursor_head: String,
    cursor_w: usize,
    show_cursor: bool,
    algo_w: usize,
    show_algo: bool,
    show_status: bool,
    transfer: TransferColumn,
}

impl TableFit {
    fn new(
        s: &Session,
        ranking: &Ranking,
        cursor: Option<f64>,
        time: bool,
        inner_w: usize,
    ) -> TableFit {
        let metric = ranking.metric;
        let values = value_texts(ranking);
        // Arms over seeds: how many, and the paired difference to the best arm (by seed).
        let seeded = s.arms.iter().any(|a| a.seeds.len() > 1);
        let seeds_txt: Vec<String> = ranking
            .rows
            .iter()
            .map(|r| s.arms[r.arm].seeds.len().max(1).to_string())
            .collect();
        let value_head = |compact: bool| {
            if seeded && !compact {
                format!("{} ± 95% CI over seeds", metric.name())
            } else {
                format!("{} ± 95% CI", metric.name())
            }
        };
        let compact = too_narrow(
            ranking,
            &values,
            &value_head(false),
            seeded.then_some(&seeds_txt),
            inner_w,
        );
        let value_head = value_head(compact);
        let value_w = maxw(&values, &value_head);
        let paired_txt = paired_texts(ranking, compact);
        let paired_head = if compact {
            "Δ vs best, paired"
        } else {
            "vs best, paired by seed"
        };
        let seeds_head = if compact { "n" } else { "seeds" };
        let evaluated = evaluated_texts(ranking, compact);
        let eval_head = if compact { "@" } else { "evaluated" };
        let verdict_w = if compact { 1 } else { 6 };
        let min_name = if compact { 6 } else { 10 };
        let (cursor_vals, cursor_head) = cursor_texts(s, ranking, cursor, time);
        let eval_w = maxw(&evaluated, eval_head);
        let widest = |f: fn(&ArmView) -> &str| s.arms.iter().map(|a| f(a).chars().count()).max();
        let name_full = widest(|a| &a.name).unwrap_or(4) + 2;
        // Rank, a short name, the value and where it comes from: always. The rest if room.
        let mut b = Budget {
            used: 3 + min_name + 1 + value_w + 1 + eval_w + 1 + verdict_w,
            width: inner_w,
        };
        let name_w = if b.take(name_full.saturating_sub(min_name)) {
            name_full
        } else {
            let room = inner_w.saturating_sub(b.used);
            b.used += room;
            min_name + room.min(name_full.saturating_sub(min_name))
        };
        let cursor_w = maxw(&cursor_vals, &cursor_head);
        let seeds_w = maxw(&seeds_txt, seeds_head);
        let paired_w = maxw(&paired_txt, paired_head);
        let show_paired = seeded && b.take(seeds_w + 1 + paired_w + 1);
        let transfer = TransferColumn::fit(s, ranking, &mut b);
        let show_cursor = cursor.is_some() && b.take(cursor_w + 1);
        let algo_w = widest(|a| &a.algorithm)
            .unwrap_or(0)
            .clamp("algorithm".len(), 18);
        let show_algo = b.take(algo_w + 1);
        let show_status = b.take(10);
        TableFit {
            compact,
            values,
            value_head,
            value_w,
            evaluated,
            eval_head,
            eval_w,
            verdict_w,
            name_w,
            seeds_txt,
            seeds_head,
            seeds_w,
            paired_txt,
            paired_head,
            paired_w,
            show_paired,
            cursor_vals,
            cursor_head,
            cursor_w,
            show_cursor,
            algo_w,
            show_algo,
            show_status,
            transfer,
        }
    }

    /// The header's cells and the columns' widths.
    fn columns(&self, first: &'static str) -> (Vec<Cell<'static>>, Vec<Constraint>) {
        let len = |n: usize| Constraint::Length(n as u16);
        let mut header = vec![
            Cell::from("#"),
            Cell::from(first),
            Cell::from(self.value_head.clone()),
            Cell::from(self.eval_head),
            Cell::from(""),
        ];
        let mut widths = vec![
            len(2),
            len(self.name_w),
            len(self.value_w),
            len(self.eval_w),
            len(self.verdict_w),
        ];
        if self.show_paired {
            header.push(Cell::from(self.seeds_head));
            widths.push(len(self.seeds_w));
            header.push(Cell::from(self.paired_head));
            widths.push(len(self.paired_w));
        }
        if self.transfer.show {
            header.push(Cell::from(TRANSFER_HEAD));
            widths.push(len(self.transfer.w));
        }
        if self.show_cursor {
            header.push(Cell::from(self.cursor_head.clone()));
            widths.push(len(self.cursor_w));
        }
        if self.show_algo {
            header.push(Cell::from("algorithm"));
            widths.push(len(self.algo_w));
        }
        if self.show_status {
            header.push(Cell::from("status"));
            widths.push(len(9));
        }
        (header, widths)
    }

    /// The cells of the `k`-th ranked row, arm `a`, in its colour.
    fn cells(
        &self,
        k: usize,
        r: &results::Ranked,
        a: &ArmView,
        color: Color,
    ) -> Vec<Cell<'static>> {
        let mut cells = vec![
            Cell::from(format!("{}", k + 1)),
            Cell::from(Span::styled(
                format!("● {}", layout::fit_label(&a.name, self.name_w - 2)),
                Style::default().fg(color),
            )),
            Cell::from(self.values[k].clone()),
            Cell::from(Span::styled(self.evaluated[k].clone(), theme::dim())),
            Cell::from(Span::styled(
                if self.compact {
                    r.verdict.short_mark()
                } else {
                    r.verdict.mark()
                },
                verdict_style(r.verdict),
            )),
        ];
        if self.show_paired {
            cells.push(Cell::from(self.seeds_txt[k].clone()));
            let style = match r.paired {
                Some(p) if !p.significant => Style::default().fg(Color::Yellow),
                _ => Style::default(),
            };
            cells.push(Cell::from(Span::styled(self.paired_txt[k].clone(), style)));
        }
        if self.transfer.show {
            let t = &self.transfer.txt[k];
            let style = if t.starts_with('⚠') {
                Style::default().fg(Color::Yellow)
            } else {
                theme::dim()
            };
            cells.push(Cell::from(Span::styled(t.clone(), style)));
        }
        if self.show_cursor {
            cells.push(Cell::from(self.cursor_vals[k].clone()));
        }
        if self.show_algo {
            cells.push(Cell::from(a.algorithm.clone()));
        }
        if self.show_status {
            cells.push(Cell::from(a.status.label()));
        }
        cells
    }
}

fn results_table(app: &App, s: &Session, ranking: &Ranking, f: &mut Frame, area: Rect) {
    let colors = theme::arm_colors(s);
    let metric = ranking.metric;
    let time = chart::x_is_time(&app.chart, s.arms.iter());
    let cursor = cursor_at(app, s, metric, time);
    let fit = TableFit::new(
        s,
        ranking,
        cursor,
        time,
        area.width.saturating_sub(2) as usize,
    );
    let seeded = s.arms.iter().any(|a| a.seeds.len() > 1);
    let (header, widths) = fit.columns(if s.live || seeded { "arm" } else { "run" });
    let height = area.height.saturating_sub(3) as usize;
    let pos = ranking.position(app.arm_sel).unwrap_or(0);
    let off = layout::scroll_offset(pos, ranking.rows.len(), height);
    let rows: Vec<Row> = ranking
        .rows
        .iter()
        .enumerate()
        .skip(off)
        .take(height)
        .map(|(k, r)| {
            let cells = fit.cells(k, r, &s.arms[r.arm], colors[r.arm]);
            let style = if r.arm == app.arm_sel {
                theme::selected()
            } else {
                Style::default()
            };
            Row::new(cells).style(style)
        })
        .collect();
    let better = if metric.higher_is_better() {
        "higher"
    } else {
        "lower"
    };
    let n = ranking.rows.len();
    let mut title = Title::default()
        .keep(ranking.title(s))
        .opt(format!("{better} {} is better", metric.name()));
    if n > height {
        title = title.keep(format!("{}–{} of {n}", off + 1, (off + height).min(n)));
    }
    let t = Table::new(rows, widths)
        .header(Row::new(header).style(theme::title()))
        .column_spacing(1)
        .block(Block::default().borders(Borders::ALL).title(Span::styled(
            title.fit(area.width.saturating_sub(2) as usize),
            theme::title(),
        )));
    f.render_widget(t, area);
}

/// `arm.algorithm.Reptile.epsilon` → `Reptile.epsilon`; `train.meta_lr` stays (eval has one too).
fn short_key(k: &str) -> &str {
    k.strip_prefix("arm.algorithm.")
        .or_else(|| k.strip_prefix("arm."))
        .unwrap_or(k)
}

/// The fields that differ, one column per arm (as many as fit, scrolled to the selected one).
fn diff_table(app: &App, s: &Session, f: &mut Frame, area: Rect) {
    let colors = theme::arm_colors(s);
    let block = |title: String| {
        Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(title, theme::title()))
    };
    if s.diff.is_empty() {
        let text = if s.arms.len() < 2 {
            "one arm: nothing to diff"
        } else {
            "no config field differs (besides the arm's name)"
        };
        let p = Paragraph::new(text)
            .style(theme::dim())
            .block(block(" config diff ".into()));
        return f.render_widget(p, area);
    }
    let inner_w = area.width.saturating_sub(2) as usize;
    let key_w = s
        .diff
        .iter()
        .map(|(k, _)| short_key(k).chars().count())
        .max()
        .unwrap_or(5)
        .min(inner_w / 2)
        .max(5);
    let col_w = s
        .arms
        .iter()
        .map(|a| a.name.chars().count())
        .chain(
            s.diff
                .iter()
                .flat_map(|(_, v)| v.iter().map(|x| x.chars().count())),
        )
        .max()
        .unwrap_or(6)
        .clamp(6, 18);
    let n = s.arms.len();
    // Narrower columns before fewer arms, down to ten characters.
    let room = inner_w.saturating_sub(key_w + 1);
    let col_w = if room / (col_w + 1) >= n {
        col_w
    } else {
        (room / n).saturating_sub(1).clamp(10.min(col_w), col_w)
    };
    let fit = (room / (col_w + 1)).max(1);
    let off = layout::scroll_offset(app.arm_sel.min(n.saturating_sub(1)), n, fit);
    let shown: Vec<usize> = (off..n).take(fit).collect();
    let mut header = vec![Cell::from("field")];
    let mut widths = vec![Constraint::Length(key_w as u16)];
    for &i in &shown {
        header.push(Cell::from(Span::styled(
            layout::fit_label(&s.arms[i].name, col_w),
            Style::default().fg(colors[i]),
        )));
        widths.push(Constraint::Length(col_w as u16));
    }
    let height = area.height.saturating_sub(3) as usize;
    let rows: Vec<Row> = s
        .diff
        .iter()
        .take(height)
        .map(|(k, v)| {
            let mut cells = vec![Cell::from(Span::styled(
                layout::fit_label(short_key(k), key_w),
                theme::dim(),
            ))];
            for &i in &shown {
                let val = v.get(i).map_or("–", String::as_str);
                cells.push(Cell::from(layout::fit_label(val, col_w)));
            }
            let style = if shown.contains(&app.arm_sel) {
                Style::default()
            } else {
                theme::dim()
            };
            Row::new(cells).style(style)
        })
        .collect();
    let mut title = Title::default().keep("config diff").opt(format!(
        "{} differ{}",
        crate::tui::text::plural(s.diff.len(), "field"),
        if s.diff.len() == 1 { "s" } else { "" }
    ));
    if shown.len() < n {
        title = title.keep(format!("arms {}–{} of {n}", off + 1, off + shown.len()));
    }
    if s.diff.len() > height {
        title = title.opt(format!("{} more below", s.diff.len() - height));
    }
    let title = title.opt("D full view");
    let t = Table::new(rows, widths)
        .header(Row::new(header).style(theme::title()))
        .column_spacing(1)
        .block(block(title.fit(inner_w)));
    f.render_widget(t, area);
}
