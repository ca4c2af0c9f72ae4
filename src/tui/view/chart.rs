//! One widget for every curve panel: braille curves on round-tick axes clamped to the metric's
//! range, EMA smoothing with the raw curve faint behind, filled 95% bands, a marker with
//! whiskers for a lone evaluation, log y, a recent-history window and a value cursor.
//! Drawn cell by cell (ratatui's `Chart` cannot fill a band or place a cursor), still a pure
//! function of its inputs.

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::tui::chart_opts::{ChartOpts, History, XAxis, RECENT_SHARE};
use crate::tui::series::{ema, fold_range, index_at, interpolate, Series};
use crate::tui::session::{ArmView, CiSeries};

use super::{theme, ticks};

pub struct Curve {
    /// Names the curve in the cursor readout; empty where the panel is of one arm.
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: Color,
    /// The 95% interval (lo, hi) at each point, drawn as a filled band.
    pub band: Option<Vec<(f64, f64)>>,
    /// EMA smoothing applies: training curves, not the few exact evaluations.
    pub smooth: bool,
    /// The furthest x the run got to: past it the cursor reads nothing, not the last value
    /// (a run paused at 2700 has no value "at 5000").
    pub reached: Option<f64>,
}

impl Curve {
    pub fn of(name: impl Into<String>, s: &Series, color: Color) -> Curve {
        Curve {
            name: name.into(),
            points: s.points(),
            color,
            band: None,
            smooth: false,
            reached: None,
        }
    }

    /// A training curve of `a`, on the x axis the options ask for.
    pub fn train(
        name: impl Into<String>,
        a: &ArmView,
        s: &Series,
        color: Color,
        time: bool,
    ) -> Curve {
        Curve {
            smooth: true,
            points: on_x(a, s.points(), time),
            reached: reached(a, time),
            ..Curve::of(name, s, color)
        }
    }

    /// An evaluation curve with its band (`band: false` draws the mean only).
    pub fn eval(
        name: impl Into<String>,
        a: &ArmView,
        s: &CiSeries,
        color: Color,
        band: bool,
        time: bool,
    ) -> Curve {
        let lo = s.lo.points();
        let hi = s.hi.points();
        Curve {
            name: name.into(),
            points: on_x(a, s.mean.points(), time),
            color,
            band: band.then(|| lo.iter().zip(&hi).map(|(l, h)| (l.1, h.1)).collect()),
            smooth: false,
            reached: reached(a, time),
        }
    }
}

/// The furthest x `a` reached: its iteration, or its training time there.
pub fn reached(a: &ArmView, time: bool) -> Option<f64> {
    let it = a.iteration as f64;
    if time && !a.clock.is_empty() {
        a.seconds_at(it)
    } else {
        Some(it)
    }
}

/// Iterations → training seconds when `time` (see [`x_is_time`]).
pub fn on_x(a: &ArmView, pts: Vec<(f64, f64)>, time: bool) -> Vec<(f64, f64)> {
    if !time || a.clock.is_empty() {
        return pts;
    }
    pts.into_iter()
        .filter_map(|(x, y)| a.seconds_at(x).map(|t| (t, y)))
        .collect()
}

/// A title made of parts; the `keep` ones (the numbers) stay, the others go first when narrow.
#[derive(Default)]
pub struct Title(Vec<(String, bool)>);

impl Title {
    pub fn keep(mut self, s: impl Into<String>) -> Title {
        self.0.push((s.into(), true));
        self
    }
    pub fn opt(mut self, s: impl Into<String>) -> Title {
        self.0.push((s.into(), false));
        self
    }

    /// The parts that fit `width` columns, joined with ` · `, in their order.
    pub fn fit(&self, width: usize) -> String {
        let mut on: Vec<bool> = self.0.iter().map(|p| p.1 && !p.0.is_empty()).collect();
        let text = |on: &[bool]| {
            let parts: Vec<&str> = self
                .0
                .iter()
                .zip(on)
                .filter(|(_, on)| **on)
                .map(|(p, _)| p.0.as_str())
                .collect();
            format!(" {} ", parts.join(" · "))
        };
        for i in 0..self.0.len() {
            if !on[i] && !self.0[i].0.is_empty() {
                on[i] = true;
                if text(&on).chars().count() > width {
                    on[i] = false;
                }
            }
        }
        text(&on)
    }
}

pub struct Panel<'a> {
    pub title: Title,
    pub curves: Vec<Curve>,
    /// Y values are fractions shown as percentages (accuracy), on a 0–100 % axis.
    pub percent: bool,
    pub highlight: bool,
    pub empty_text: &'a str,
    /// Lines under the axis (a caveat), dropped before the plot shrinks below three rows.
    pub notes: Vec<Line<'static>>,
    /// X values are training seconds (see [`x_is_time`]), labelled as durations.
    pub x_time: bool,
}

/// Whether `on_x` put seconds on x for all of `arms` (an arm without a clock stays on
/// iterations, and then so does the panel, so one axis never mixes the two).
pub fn x_is_time<'a>(o: &ChartOpts, mut arms: impl Iterator<Item = &'a ArmView>) -> bool {
    o.x == XAxis::WallTime && arms.all(|a| !a.clock.is_empty())
}

impl<'a> Panel<'a> {
    pub fn new(title: Title) -> Panel<'a> {
        Panel {
            title,
            curves: Vec::new(),
            percent: false,
            highlight: false,
            empty_text: "waiting for data…",
            notes: Vec::new(),
            x_time: false,
        }
    }
}

/// An arm colour faded toward black, for the raw curve behind a smoothed one and for bands.
pub fn fade(c: Color, f: f64) -> Color {
    match c {
        Color::Rgb(r, g, b) => {
            let s = |v: u8| (v as f64 * f) as u8;
            Color::Rgb(s(r), s(g), s(b))
        }
        _ => Color::DarkGray,
    }
}

/// A curve as drawn: transformed for the axis, the window applied.
struct Drawn {
    name: String,
    color: Color,
    /// (x, y shown, y original) after smoothing.
    line: Vec<(f64, f64, f64)>,
    /// The raw curve behind a smoothed one.
    raw: Vec<(f64, f64)>,
    /// (x, lo, hi) shown and the original half-width at each point.
    band: Vec<(f64, f64, f64, f64)>,
    reached: Option<f64>,
}

pub fn render(f: &mut Frame, area: Rect, p: Panel, o: &ChartOpts) {
    let border = if p.highlight {
        Style::default().fg(Color::White)
    } else {
        theme::dim()
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(border)
        .title(Span::styled(
            p.title.fit(area.width.saturating_sub(2) as usize),
            theme::title(),
        ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let log = o.log_y && !p.percent;
    let drawn = prepare(&p, o, log);
    let xs = fold_range(drawn.iter().flat_map(|d| d.line.iter().map(|q| q.0)));
    let ys = fold_range(drawn.iter().flat_map(|d| {
        d.line
            .iter()
            .map(|q| q.1)
            .chain(d.raw.iter().map(|q| q.1))
            .chain(d.band.iter().flat_map(|b| [b.1, b.2]))
    }));
    let (Some((x0, x1)), Some((y0, y1))) = (xs, ys) else {
        return empty(f, inner, p.empty_text);
    };
    if inner.width < 12 || inner.height < 3 {
        return; // The title carries the number; there is no room for a plot.
    }
    let readout = o.cursor.is_some();
    let mut notes = p.notes.clone();
    let mut foot = notes.len() + usize::from(readout);
    while foot > 0 && (inner.height as usize) < foot + 5 {
        if notes.pop().is_none() {
            break;
        }
        foot = notes.len() + usize::from(readout);
    }
    let foot = foot.min(inner.height as usize - 3) as u16;
    // Very short panels give the x labels' row to the plot; one row of plot reads nothing.
    let x_labels = inner.height >= 6;
    let ph = inner.height - 1 - u16::from(x_labels) - foot;
    if ph < 2 {
        return;
    }
    let (ya, yb, yt, labels) = y_axis(y0, y1, ph, log, p.percent);
    let lw = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1) as u16;
    if inner.width <= lw + 8 {
        return;
    }
    let plot = Rect {
        x: inner.x + lw + 1,
        y: inner.y,
        width: inner.width - lw - 1,
        height: ph,
    };
    let (xa, xb, xt) = x_axis(x0, x1, plot.width);
    let view = View {
        plot,
        x: (xa, xb),
        y: (ya, yb),
    };
    let buf = f.buffer_mut();
    let mut g = Grid::new(plot.width as usize, plot.height as usize);
    draw_curves(&mut g, &view, &drawn, o.alpha() > 0.0);
    let cursor_x = o.cursor_frac().and_then(|c| cursor_x(&p.curves, o, c));
    if let Some(x) = cursor_x.filter(|x| (xa..=xb).contains(x)) {
        g.cursor((view.dot(x, ya).0 / 2.0).floor().max(0.0) as usize);
    }
    g.draw(buf, plot);
    axes(buf, &view, &yt, &labels, &xt, p.x_time, inner, lw, x_labels);
    let mut row = plot.bottom() + 1 + u16::from(x_labels);
    if let Some(cx) = cursor_x {
        let line = readout_line(&drawn, cx, p.percent, p.x_time, inner.width as usize);
        buf.set_line(inner.x, row, &line, inner.width);
        row += 1;
    }
    for n in &notes {
        if row < inner.bottom() {
            buf.set_line(inner.x, row, n, inner.width);
            row += 1;
        }
    }
}

/// A panel with nothing to draw: its message in the middle.
fn empty(f: &mut Frame, inner: Rect, text: &str) {
    if inner.height > 0 {
        let msg = Paragraph::new(text)
            .style(theme::dim())
            .alignment(Alignment::Center);
        let r = Rect {
            y: inner.y + inner.height / 2,
            height: 1,
            ..inner
        };
        f.render_widget(msg, r);
    }
}

/// The y axis over `y0..y1` for a plot `ph` rows high: its range, round ticks clamped to what
/// the metric can be, and their labels.
fn y_axis(
    y0: f64,
    y1: f64,
    ph: u16,
    log: bool,
    percent: bool,
) -> (f64, f64, Vec<f64>, Vec<String>) {
    let min_ticks = (ph as usize).clamp(2, 5);
    let (ya, yb, yt) = if log {
        ticks::log(y0, y1, min_ticks)
    } else {
        let (a, b, t) = ticks::linear(y0, y1, min_ticks);
        let (lo, hi) = if percent {
            (0.0, 100.0)
        } else {
            (0.0, f64::INFINITY)
        };
        let t: Vec<f64> = t.into_iter().filter(|v| *v >= lo && *v <= hi).collect();
        (a.max(lo), b.min(hi), t)
    };
    let dec = ticks::decimals(&yt);
    let log_dec = ticks::decimals(&yt.iter().map(|v| 10f64.powf(*v)).collect::<Vec<_>>());
    let y_label = |v: f64| {
        if log {
            short_num(10f64.powf(v), log_dec)
        } else if percent {
            format!("{v:.dec$}%")
        } else {
            format!("{v:.dec$}")
        }
    };
    let labels: Vec<String> = yt.iter().map(|v| y_label(*v)).collect();
    (ya, yb, yt, labels)
}

/// The x axis over `x0..x1` for a plot `width` columns wide: it ends where the data does
/// (from 0 when it starts near it), with round ticks inside; a lone point gets a padded,
/// round axis around it instead of `299 300 301`.
fn x_axis(x0: f64, x1: f64, width: u16) -> (f64, f64, Vec<f64>) {
    if x1 > x0 {
        let xa = if x0 > 0.0 && x0 <= 0.1 * x1 { 0.0 } else { x0 };
        let most = (width as usize / 8).max(2);
        let least = (width as usize / 14).clamp(2, 6);
        (xa, x1, ticks::within(xa, x1, least, most))
    } else {
        let (a, b, t) = ticks::linear(x0, x1, 5);
        if x0 >= 0.0 && a < 0.0 {
            (0.0, b, t.into_iter().filter(|v| *v >= 0.0).collect())
        } else {
            (a, b, t)
        }
    }
}

/// Bands first, then the faint raw curves behind smoothed ones (`faint`), then the curves.
fn draw_curves(g: &mut Grid, view: &View, drawn: &[Drawn], faint: bool) {
    for d in drawn {
        if d.band.len() >= 2 {
            g.band(view, &d.band, fade(d.color, 0.35));
        }
    }
    for d in drawn.iter().filter(|d| faint && !d.raw.is_empty()) {
        let pts: Vec<(f64, f64)> = d.raw.clone();
        g.polyline(view, &pts, fade(d.color, 0.45));
    }
    for d in drawn {
        let pts: Vec<(f64, f64)> = d.line.iter().map(|q| (q.0, q.1)).collect();
        if pts.len() == 1 {
            g.marker(view, pts[0], d.band.first().map(|b| (b.1, b.2)), d.color);
        } else {
            g.polyline(view, &pts, d.color);
        }
    }
}

/// The x range the curves span, with the recent window applied.
fn x_window(curves: &[Curve], o: &ChartOpts) -> Option<(f64, f64)> {
    let (xmin, xmax) = fold_range(curves.iter().flat_map(|c| c.points.iter().map(|q| q.0)))?;
    Some(match o.history {
        History::Recent if xmax > xmin => (xmax - RECENT_SHARE * (xmax - xmin), xmax),
        _ => (xmin, xmax),
    })
}

/// Where the cursor at fraction `frac` sits: across 0..the newest x (the recent window when
/// that is on), so panels whose curves start at different points (training at 10, the first
/// evaluation at 500) put it at the same iteration, and the tables read values there too.
pub fn cursor_x(curves: &[Curve], o: &ChartOpts, frac: f64) -> Option<f64> {
    let (a, b) = x_window(curves, o)?;
    let a = if o.history == History::Full {
        a.min(0.0)
    } else {
        a
    };
    Some(a + frac * (b - a))
}

fn prepare(p: &Panel, o: &ChartOpts, log: bool) -> Vec<Drawn> {
    let from = x_window(&p.curves, o).map_or(f64::NEG_INFINITY, |w| w.0);
    let ty = |y: f64| -> Option<f64> {
        let v = if p.percent {
            100.0 * y
        } else if log {
            if y > 0.0 {
                y.log10()
            } else {
                return None;
            }
        } else {
            y
        };
        v.is_finite().then_some(v)
    };
    // Bands are clamped to the metric's range: an MSE interval does not go below zero.
    let clamp = |y: f64| {
        if p.percent {
            y.clamp(0.0, 1.0)
        } else if log {
            y.max(1e-12)
        } else {
            y.max(0.0)
        }
    };
    p.curves
        .iter()
        .map(|c| {
            let smooth = c.smooth && o.alpha() > 0.0;
            let shown = if smooth {
                ema(&c.points, o.alpha())
            } else {
                c.points.clone()
            };
            let keep = |x: f64| x >= from;
            let line = shown
                .iter()
                .filter(|q| keep(q.0))
                .filter_map(|&(x, y)| ty(y).map(|v| (x, v, y)))
                .collect();
            let raw = if smooth {
                c.points
                    .iter()
                    .filter(|q| keep(q.0))
                    .filter_map(|&(x, y)| ty(y).map(|v| (x, v)))
                    .collect()
            } else {
                vec![]
            };
            let band = c
                .band
                .iter()
                .flat_map(|b| c.points.iter().zip(b))
                .filter(|(q, _)| keep(q.0))
                .filter_map(|(q, &(lo, hi))| {
                    Some((q.0, ty(clamp(lo))?, ty(clamp(hi))?, 0.5 * (hi - lo)))
                })
                .collect();
            Drawn {
                name: c.name.clone(),
                color: c.color,
                line,
                raw,
                band,
                reached: c.reached,
            }
        })
        .collect()
}

/// `0.002`, `0.05`, `2`, `1e-5`: log-axis labels.
fn short_num(v: f64, dec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e5).contains(&v.abs()) {
        return format!("{v:.0e}");
    }
    // Decades read `0.01 0.1 1`; ticks within one decade share the decimals that part them.
    let s = format!("{v:.dec$}");
    if dec > 0
        && s.parse::<f64>()
            .is_ok_and(|p| (p - v).abs() <= 1e-9 * v.abs())
    {
        return s;
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

struct View {
    plot: Rect,
    x: (f64, f64),
    y: (f64, f64),
}

impl View {
    /// Data → braille dot coordinates (2 × 4 dots per cell), y growing downward.
    fn dot(&self, x: f64, y: f64) -> (f64, f64) {
        let w = self.plot.width as f64 * 2.0 - 1.0;
        let h = self.plot.height as f64 * 4.0 - 1.0;
        let fx = (x - self.x.0) / (self.x.1 - self.x.0);
        let fy = (self.y.1 - y) / (self.y.1 - self.y.0);
        (fx * w, fy * h)
    }

    fn cell_row(&self, y: f64) -> i64 {
        (self.dot(0.0, y).1 / 4.0).floor() as i64
    }
}

struct Grid {
    w: usize,
    h: usize,
    bits: Vec<u8>,
    color: Vec<Option<Color>>,
    band: Vec<Option<Color>>,
    sym: Vec<Option<(char, Color)>>,
}

impl Grid {
    fn new(w: usize, h: usize) -> Grid {
        Grid {
            w,
            h,
            bits: vec![0; w * h],
            color: vec![None; w * h],
            band: vec![None; w * h],
            sym: vec![None; w * h],
        }
    }

    fn cell(&self, cx: i64, cy: i64) -> Option<usize> {
        (cx >= 0 && cy >= 0 && (cx as usize) < self.w && (cy as usize) < self.h)
            .then(|| cy as usize * self.w + cx as usize)
    }

    fn set_dot(&mut self, dx: i64, dy: i64, c: Color) {
        const BITS: [[u8; 4]; 2] = [[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]];
        let Some(i) = self.cell(dx.div_euclid(2), dy.div_euclid(4)) else {
            return;
        };
        self.bits[i] |= BITS[dx.rem_euclid(2) as usize][dy.rem_euclid(4) as usize];
        self.color[i] = Some(c);
    }

    fn polyline(&mut self, v: &View, pts: &[(f64, f64)], c: Color) {
        for w in pts.windows(2) {
            let a = v.dot(w[0].0, w[0].1);
            let b = v.dot(w[1].0, w[1].1);
            let steps = (b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil().max(1.0) as usize;
            for k in 0..=steps {
                let t = k as f64 / steps as f64;
                let x = a.0 + t * (b.0 - a.0);
                let y = a.1 + t * (b.1 - a.1);
                self.set_dot(x.round() as i64, y.round() as i64, c);
            }
        }
    }

    /// Cells whose centre lies inside the interval, column by column.
    fn band(&mut self, v: &View, band: &[(f64, f64, f64, f64)], c: Color) {
        let lo: Vec<(f64, f64)> = band.iter().map(|b| (b.0, b.1)).collect();
        let hi: Vec<(f64, f64)> = band.iter().map(|b| (b.0, b.2)).collect();
        let (first, last) = (band[0].0, band[band.len() - 1].0);
        for cx in 0..self.w {
            let x = v.x.0 + (cx as f64 + 0.5) / self.w as f64 * (v.x.1 - v.x.0);
            if x < first || x > last {
                continue;
            }
            let (Some(l), Some(h)) = (interpolate(&lo, x), interpolate(&hi, x)) else {
                continue;
            };
            for cy in 0..self.h {
                let y = v.y.1 - (cy as f64 + 0.5) / self.h as f64 * (v.y.1 - v.y.0);
                if y >= l && y <= h {
                    self.band[cy * self.w + cx] = Some(c);
                }
            }
        }
    }

    /// A lone evaluation: a dot, with whiskers to its interval's ends.
    fn marker(&mut self, v: &View, p: (f64, f64), ci: Option<(f64, f64)>, c: Color) {
        let cx = (v.dot(p.0, p.1).0 / 2.0).floor() as i64;
        let cy = v.cell_row(p.1);
        if let Some((lo, hi)) = ci {
            let (top, bottom) = (v.cell_row(hi), v.cell_row(lo));
            for y in top..=bottom {
                let ch = match y {
                    _ if y == top && top < cy => '┬',
                    _ if y == bottom && bottom > cy => '┴',
                    _ => '│',
                };
                if let Some(i) = self.cell(cx, y) {
                    self.sym[i] = Some((ch, c));
                }
            }
        }
        if let Some(i) = self.cell(cx, cy) {
            self.sym[i] = Some(('●', c));
        }
    }

    fn cursor(&mut self, cx: usize) {
        for cy in 0..self.h {
            let i = cy * self.w + cx.min(self.w - 1);
            if self.bits[i] == 0 && self.sym[i].is_none() {
                self.sym[i] = Some(('┊', Color::Gray));
            }
        }
    }

    fn draw(&self, buf: &mut Buffer, area: Rect) {
        for cy in 0..self.h {
            for cx in 0..self.w {
                let i = cy * self.w + cx;
                let cell = &mut buf[(area.x + cx as u16, area.y + cy as u16)];
                if let Some(bg) = self.band[i] {
                    cell.set_bg(bg);
                    cell.set_symbol("░").set_fg(fade(bg, 1.6));
                }
                if let Some((ch, c)) = self.sym[i] {
                    cell.set_char(ch).set_fg(c);
                } else if self.bits[i] != 0 {
                    let ch = char::from_u32(0x2800 + self.bits[i] as u32).unwrap_or(' ');
                    cell.set_char(ch)
                        .set_fg(self.color[i].unwrap_or(Color::White));
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn axes(
    buf: &mut Buffer,
    v: &View,
    yt: &[f64],
    labels: &[String],
    xt: &[f64],
    time: bool,
    inner: Rect,
    lw: u16,
    x_labels: bool,
) {
    let dim = theme::dim();
    let ax = v.plot.x - 1;
    for y in v.plot.y..v.plot.bottom() {
        buf[(ax, y)].set_char('│').set_style(dim);
    }
    let mut last_row = i64::MIN;
    for (t, l) in yt.iter().zip(labels) {
        let row = v.cell_row(*t);
        if row < 0 || row >= v.plot.height as i64 || row == last_row {
            continue;
        }
        last_row = row;
        let y = v.plot.y + row as u16;
        let pad = lw as usize - l.chars().count();
        buf.set_string(inner.x + pad as u16, y, l, dim);
        buf[(ax, y)].set_char('┤').set_style(dim);
    }
    let base = v.plot.bottom();
    buf[(ax, base)].set_char('└').set_style(dim);
    for x in v.plot.x..v.plot.right() {
        buf[(x, base)].set_char('─').set_style(dim);
    }
    let dec = ticks::decimals(xt);
    let mut free_from = inner.x;
    for t in xt {
        let frac = (t - v.x.0) / (v.x.1 - v.x.0);
        if !(-1e-9..=1.0 + 1e-9).contains(&frac) {
            continue;
        }
        let col = v.plot.x + (frac * (v.plot.width as f64 - 1.0)).round() as u16;
        let label = x_label(*t, time, dec);
        let w = label.chars().count() as u16;
        let start = col
            .saturating_sub(w / 2)
            .max(inner.x)
            .min(inner.right().saturating_sub(w));
        if start < free_from {
            continue;
        }
        buf[(col.min(v.plot.right() - 1), base)]
            .set_char('┬')
            .set_style(dim);
        if x_labels {
            buf.set_string(start, base + 1, &label, dim);
        }
        free_from = start + w + 1;
    }
}

fn x_label(t: f64, time: bool, dec: usize) -> String {
    if time && (dec > 0 || t < 60.0) {
        format!("{t:.dec$}s")
    } else if time {
        theme::duration(t)
    } else if t.abs() >= 100_000.0 && (t / 1000.0).fract() == 0.0 {
        format!("{}k", t / 1000.0)
    } else {
        format!("{t:.dec$}")
    }
}

/// `at 1250: maml 0.4321 ± 0.0211 · reptile 0.5…`: each curve's value at the cursor, whole
/// entries only (a number is never cut). When not every curve fits, the intervals go, then the
/// names shrink, so every arm is named before any is left out; a curve whose run never got to
/// the cursor reads `–`.
fn readout_line(d: &[Drawn], x: f64, percent: bool, time: bool, width: usize) -> Line<'static> {
    let at = if time {
        theme::duration(x)
    } else {
        format!("{x:.0}")
    };
    let smoothed = if d.iter().any(|c| !c.raw.is_empty()) {
        " (EMA)"
    } else {
        ""
    };
    let head = format!("at {at}{smoothed}:");
    let entry = |c: &Drawn, with_ci: bool, name_w: usize| -> String {
        let pts: Vec<(f64, f64)> = c.line.iter().map(|q| (q.0, q.2)).collect();
        let value = match index_at(&pts, x) {
            Some(_) if c.reached.is_some_and(|r| x > r + 1e-9) => "–".to_string(),
            None => "–".to_string(),
            Some(i) => {
                let y = pts[i].1;
                let half = c.band.get(i).map(|b| b.3).filter(|_| with_ci);
                match (percent, half) {
                    (true, Some(h)) => format!("{:.1}% ± {:.1}", 100.0 * y, 100.0 * h),
                    (true, None) => format!("{:.1}%", 100.0 * y),
                    (false, Some(h)) => format!("{} ± {}", theme::num(y), theme::num(h)),
                    (false, None) => theme::num(y),
                }
            }
        };
        let name = if c.name.is_empty() {
            String::new()
        } else {
            format!("{} ", super::layout::fit_label(&c.name, name_w))
        };
        format!(" {name}{value}")
    };
    let longest = d.iter().map(|c| c.name.chars().count()).max().unwrap_or(0);
    let tiers = [
        (true, longest),
        (false, longest),
        (false, 10),
        (false, 6),
        (false, 3),
    ];
    let fits = |&(ci, w): &(bool, usize)| {
        head.chars().count()
            + d.iter()
                .map(|c| entry(c, ci, w).chars().count())
                .sum::<usize>()
            <= width
    };
    let (ci, w) = tiers.iter().copied().find(|t| fits(t)).unwrap_or(tiers[4]);
    let mut spans = vec![Span::styled(head, theme::dim())];
    let mut used = spans[0].content.chars().count();
    for c in d {
        let e = entry(c, ci, w);
        let n = e.chars().count();
        if used + n > width {
            break;
        }
        used += n;
        spans.push(Span::styled(e, Style::default().fg(c.color)));
    }
    Line::from(spans)
}
