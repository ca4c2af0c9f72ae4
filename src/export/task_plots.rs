//! The task-embedding scatter and the task-affinity heatmaps drawn with plotters, from the
//! data `task_figures` builds (the same the workbench draws), on the PNG backend `plot` uses.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{self, Domain};
use super::plot::{draw_mesh, fail, raster_png, PlotError, Ticked, FONT};
use super::task_figures::{short, ColourKey, Heatmap, Scatter};
use crate::palette::Rgb;

const SCATTER_SIZE: (u32, u32) = (1000, 720);
const HEATMAP_SIZE: (u32, u32) = (1200, 700);
const GREY: RGBColor = RGBColor(0x55, 0x55, 0x55);

fn rgb(c: Rgb) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

/// The scatter as PNG bytes; `title` names the run.
pub fn scatter_png(s: &Scatter, title: &str) -> Result<Vec<u8>, PlotError> {
    raster_png(SCATTER_SIZE, |root| draw_scatter(root, s, title))
}

/// The heatmaps (one panel each, side by side) as PNG bytes.
pub fn heatmaps_png(maps: &[Heatmap], title: &str) -> Result<Vec<u8>, PlotError> {
    raster_png(HEATMAP_SIZE, |root| draw_heatmaps(root, maps, title))
}

fn text_style(size: f64, colour: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    (FONT, size).into_font().color(&colour).pos(Pos::new(h, v))
}

fn draw_scatter<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &Scatter,
    title: &str,
) -> Result<(), PlotError> {
    root.fill(&WHITE).map_err(fail)?;
    let (w, _) = root.dim_in_pixel();
    root.draw_text(
        &format!("{title} · task embeddings at iteration {}", s.iteration),
        &text_style(19.0, BLACK, HPos::Left, VPos::Top),
        (24, 14),
    )
    .map_err(fail)?;
    root.draw_text(
        &format!(
            "{} validation tasks' {}-value embeddings after {} adaptation step{}, on their first two principal components; colour: {}",
            s.tasks,
            s.width,
            s.steps,
            if s.steps == 1 { "" } else { "s" },
            s.colour_name
        ),
        &text_style(14.0, GREY, HPos::Left, VPos::Top),
        (24, 42),
    )
    .map_err(fail)?;
    let body = root.margin(70, 10, 10, 10);
    let (plot, legend) = body.split_horizontally(w - 230);
    let xs = s.points.iter().map(|p| p.0);
    let ys = s.points.iter().map(|p| p.1);
    let (Some(x), Some(y)) = (
        axis::fit(xs, Domain::Real, 6),
        axis::fit(ys, Domain::Real, 6),
    ) else {
        return plot
            .draw_text(
                "no tasks",
                &text_style(16.0, GREY, HPos::Center, VPos::Center),
                (300, 250),
            )
            .map_err(fail);
    };
    let mut chart = ChartBuilder::on(&plot)
        .x_label_area_size(52)
        .y_label_area_size(76)
        .build_cartesian_2d(Ticked::from(&x), Ticked::from(&y))
        .map_err(fail)?;
    let pc = |i: usize| {
        format!(
            "PC{} ({:.1} % of the variance)",
            i + 1,
            100.0 * s.explained[i]
        )
    };
    draw_mesh(&mut chart, (&x, &y), (&pc(0), &pc(1)))?;
    chart
        .draw_series(
            s.points
                .iter()
                .enumerate()
                .map(|(i, &p)| Circle::new(p, 5, rgb(s.colour(i)).filled())),
        )
        .map_err(fail)?;
    chart
        .draw_series(
            s.points
                .iter()
                .map(|&p| Circle::new(p, 5, RGBColor(0x33, 0x33, 0x33).stroke_width(1))),
        )
        .map_err(fail)?;
    draw_key(&legend, s)
}

/// The colour key beside the scatter: a vertical bar from low to high, or a swatch per group.
fn draw_key<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &Scatter,
) -> Result<(), PlotError> {
    area.draw_text(
        s.colour_name,
        &text_style(15.0, BLACK, HPos::Left, VPos::Top),
        (20, 20),
    )
    .map_err(fail)?;
    match &s.key {
        ColourKey::Scale { lo, hi } => {
            let (top, bottom, left) = (56, 456, 20);
            let steps = 100;
            for k in 0..steps {
                let t = 1.0 - k as f64 / (steps - 1) as f64;
                let y0 = top + (bottom - top) * k / steps;
                let y1 = top + (bottom - top) * (k + 1) / steps;
                area.draw(&Rectangle::new(
                    [(left, y0), (left + 28, y1)],
                    rgb(crate::palette::sequential(t)).filled(),
                ))
                .map_err(fail)?;
            }
            for (y, v) in [
                (top, *hi),
                ((top + bottom) / 2, (lo + hi) / 2.0),
                (bottom, *lo),
            ] {
                area.draw_text(
                    &short(v),
                    &text_style(13.0, BLACK, HPos::Left, VPos::Center),
                    (left + 36, y),
                )
                .map_err(fail)?;
            }
        }
        ColourKey::Groups(groups) => {
            for (i, (name, c)) in groups.iter().enumerate() {
                let y = 60 + 26 * i as i32;
                area.draw(&Circle::new((28, y), 6, rgb(*c).filled()))
                    .map_err(fail)?;
                area.draw_text(
                    name,
                    &text_style(14.0, BLACK, HPos::Left, VPos::Center),
                    (44, y),
                )
                .map_err(fail)?;
            }
        }
    }
    Ok(())
}

fn draw_heatmaps<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    maps: &[Heatmap],
    title: &str,
) -> Result<(), PlotError> {
    root.fill(&WHITE).map_err(fail)?;
    let iteration = maps.first().map_or(0, |m| m.iteration);
    root.draw_text(
        &format!("{title} · task affinities at iteration {iteration}"),
        &text_style(19.0, BLACK, HPos::Left, VPos::Top),
        (24, 14),
    )
    .map_err(fail)?;
    root.draw_text(
        "rows and columns ordered by average-linkage clustering on 1 − affinity (each panel its own); cell (i, j): task i's affinity to task j",
        &text_style(14.0, GREY, HPos::Left, VPos::Top),
        (24, 42),
    )
    .map_err(fail)?;
    let body = root.margin(70, 0, 0, 0);
    let panels = body.split_evenly((1, maps.len().max(1)));
    for (m, area) in maps.iter().zip(&panels) {
        draw_heatmap(area, m)?;
    }
    Ok(())
}

fn draw_heatmap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    m: &Heatmap,
) -> Result<(), PlotError> {
    let (w, h) = area.dim_in_pixel();
    let n = m.order.len().max(1) as i32;
    let label_w = 120;
    let top = 60;
    let side = ((w as i32 - label_w - 30).min(h as i32 - top - 110)).max(n);
    let cell = (side / n).max(1);
    let (x0, y0) = (label_w, top);
    area.draw_text(
        m.measure.name(),
        &text_style(17.0, BLACK, HPos::Left, VPos::Top),
        (x0, 4),
    )
    .map_err(fail)?;
    let cluster_note = match m.matches_groups {
        Some(true) => format!("cut at {} clusters = the task groups", m.cluster_count()),
        Some(false) => format!("cut at {} clusters ≠ the task groups", m.cluster_count()),
        None => String::new(),
    };
    area.draw_text(
        &cluster_note,
        &text_style(13.0, GREY, HPos::Left, VPos::Top),
        (x0, 26),
    )
    .map_err(fail)?;
    let font = (cell as f64 * 0.75).clamp(7.0, 13.0);
    for (r, row) in m.values.iter().enumerate() {
        let y = y0 + cell * r as i32;
        for (c, v) in row.iter().enumerate() {
            let x = x0 + cell * c as i32;
            let colour = match v {
                Some(v) if v.is_finite() => rgb(m.colour(*v)),
                _ => RGBColor(0xdd, 0xdd, 0xdd),
            };
            area.draw(&Rectangle::new(
                [(x, y), (x + cell, y + cell)],
                colour.filled(),
            ))
            .map_err(fail)?;
        }
        area.draw_text(
            &m.label(r),
            &text_style(font, BLACK, HPos::Right, VPos::Center),
            (x0 - 6, y + cell / 2),
        )
        .map_err(fail)?;
        // Column ids above, where there is room for them.
        if cell >= 12 {
            area.draw_text(
                &m.order[r].to_string(),
                &text_style(font, GREY, HPos::Center, VPos::Bottom),
                (x0 + cell * r as i32 + cell / 2, y0 - 3),
            )
            .map_err(fail)?;
        }
    }
    // Lines between clusters of the cut.
    for k in 1..m.clusters.len() {
        if m.clusters[k] != m.clusters[k - 1] {
            let p = cell * k as i32;
            let end = cell * n;
            for line in [
                [(x0 + p, y0), (x0 + p, y0 + end)],
                [(x0, y0 + p), (x0 + end, y0 + p)],
            ] {
                area.draw(&PathElement::new(line.to_vec(), BLACK.stroke_width(2)))
                    .map_err(fail)?;
            }
        }
    }
    colour_bar(area, m, x0, y0 + cell * n + 28, cell * n)
}

/// The diverging scale from −scale to +scale, `bar_w` wide at (`x0`, `bar_y`).
fn colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    m: &Heatmap,
    x0: i32,
    bar_y: i32,
    bar_w: i32,
) -> Result<(), PlotError> {
    let steps = 100;
    for k in 0..steps {
        let t = -1.0 + 2.0 * k as f64 / (steps - 1) as f64;
        let xa = x0 + bar_w * k / steps;
        let xb = x0 + bar_w * (k + 1) / steps;
        area.draw(&Rectangle::new(
            [(xa, bar_y), (xb, bar_y + 16)],
            rgb(crate::palette::diverging(t)).filled(),
        ))
        .map_err(fail)?;
    }
    for (x, v, hpos) in [
        (x0, -m.scale, HPos::Left),
        (x0 + bar_w / 2, 0.0, HPos::Center),
        (x0 + bar_w, m.scale, HPos::Right),
    ] {
        area.draw_text(
            &short(v),
            &text_style(13.0, BLACK, hpos, VPos::Top),
            (x, bar_y + 20),
        )
        .map_err(fail)?;
    }
    area.draw_text(
        "grey: not measured (a task with itself)",
        &text_style(12.0, GREY, HPos::Left, VPos::Top),
        (x0, bar_y + 40),
    )
    .map_err(fail)
}
