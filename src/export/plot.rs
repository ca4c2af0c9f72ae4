//! Drawing a [`Figure`] with plotters, once for both outputs: SVG (text stays text, for papers
//! and diffs) and PNG (for notes, issues and the README). The two panels sit side by side and the
//! legend gets its own rows below them, as many as the labels need, so it never covers a curve
//! and stays readable with ten runs. Text is drawn with the DejaVu Sans shipped in
//! `assets/fonts/`, registered with plotters at first use: no system font is looked up, so a
//! bare CI machine renders the same PNG as a desktop.

use std::sync::Once;

use plotters::coord::ranged1d::{KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use super::axis::Axis;
use super::figure::{Figure, Panel, X_TITLE};
use crate::palette;

/// The family name the shipped font is registered under, and what the SVG asks a viewer for.
pub(super) const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

pub const WIDTH: u32 = 1200;
const PANELS_HEIGHT: u32 = 460;
const LEGEND_ROW: u32 = 24;
const LEGEND_PAD: u32 = 14;
const SWATCH: i32 = 26;
const LEGEND_SIZE: f64 = 15.0;

/// Errors drawing into a backend, as text: plotters' error type is generic over the backend.
#[derive(Debug, thiserror::Error)]
#[error("drawing the plot: {0}")]
pub struct PlotError(pub String);

pub(super) fn fail<E: std::fmt::Debug>(e: E) -> PlotError {
    PlotError(format!("{e:?}"))
}

pub(super) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are compiled in and checked by the tests; a failure here is a broken build.
        if plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_err() {
            panic!("assets/fonts/DejaVuSans.ttf is not a font");
        }
    });
}

/// A linear axis whose ticks are exactly the [`Axis`]'s: plotters' own would be its choice,
/// and its key-point wrapper has no label formatting to override.
pub(super) struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl From<&Axis> for Ticked {
    fn from(a: &Axis) -> Ticked {
        Ticked {
            lo: a.lo,
            hi: a.hi,
            ticks: a.ticks.clone(),
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, (a, b): (i32, i32)) -> i32 {
        let t = (v - self.lo) / (self.hi - self.lo);
        (a as f64 + t * (b - a) as f64).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // Bold lines at the ticks, no light ones between them.
        if hint.weight().allow_light_points() {
            vec![]
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// The `i`-th arm's colour: the figure's (from the arm's identity, as on screen), else the
/// palette's `i`-th.
fn colour(colours: &[palette::Rgb], i: usize) -> RGBColor {
    let palette::Rgb(r, g, b) = colours.get(i).copied().unwrap_or(palette::arm(i));
    RGBColor(r, g, b)
}

/// Legend columns and rows for `labels` across the figure's width.
fn legend_grid(labels: &[String]) -> (u32, u32, u32) {
    register_font();
    let font = FontDesc::new(FontFamily::Name(FONT), LEGEND_SIZE, FontStyle::Normal);
    let widest = labels
        .iter()
        .map(|l| {
            font.box_size(l)
                .map_or(8 * l.chars().count() as u32, |b| b.0)
        })
        .max()
        .unwrap_or(0);
    let col = widest + SWATCH as u32 + 30;
    let usable = WIDTH - 2 * LEGEND_PAD - 60;
    let cols = (usable / col.max(1)).clamp(1, labels.len().max(1) as u32);
    let rows = (labels.len() as u32).div_ceil(cols);
    (cols, rows, col)
}

/// Pixel size of the figure for these labels: the legend rows below the panels grow with them.
pub fn size(fig: &Figure) -> (u32, u32) {
    let (_, rows, _) = legend_grid(&fig.legend);
    (WIDTH, PANELS_HEIGHT + rows * LEGEND_ROW + 2 * LEGEND_PAD)
}

/// Draw `fig` on `root` (already sized by [`size`]).
pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    fig: &Figure,
) -> Result<(), PlotError> {
    register_font();
    root.fill(&WHITE).map_err(fail)?;
    let (panels, legend) = root.split_vertically(PANELS_HEIGHT);
    let (left, right) = panels.split_horizontally(WIDTH / 2);
    panel(&left, &fig.train, &fig.colours)?;
    panel(&right, &fig.eval, &fig.colours)?;
    draw_legend(&legend, &fig.legend, &fig.colours)?;
    root.present().map_err(fail)
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
    colours: &[palette::Rgb],
) -> Result<(), PlotError> {
    let area = area.margin(8, 4, 10, 16);
    let Some((x, y)) = &p.axes else {
        return no_data(&area, &p.title);
    };
    let mut chart = ChartBuilder::on(&area)
        .caption(&p.title, (FONT, 17))
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(Ticked::from(x), Ticked::from(y))
        .map_err(fail)?;
    draw_mesh(&mut chart, (x, y), (X_TITLE, &p.y_title))?;
    // Chance level under everything, where the axis reaches it.
    if let Some(c) = p.chance.filter(|c| (y.lo..=y.hi).contains(c)) {
        chart
            .draw_series(LineSeries::new(
                [(x.lo, c), (x.hi, c)],
                RGBColor(0x99, 0x99, 0x99).stroke_width(2),
            ))
            .map_err(fail)?;
    }
    draw_faint(&mut chart, p, colours)?;
    draw_lines(&mut chart, p, colours)
}

/// The axes in the house style of every exported figure: tick labels from the axes' own
/// formats, titles `desc` (x, y), a light grid at the major ticks and none between them.
pub(super) fn draw_mesh<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<Ticked, Ticked>>,
    (x, y): (&Axis, &Axis),
    desc: (&str, &str),
) -> Result<(), PlotError> {
    let fx = |v: &f64| x.format(*v);
    let fy = |v: &f64| y.format(*v);
    chart
        .configure_mesh()
        .x_desc(desc.0)
        .y_desc(desc.1)
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .bold_line_style(RGBColor(0xe4, 0xe4, 0xe4))
        .light_line_style(TRANSPARENT)
        .axis_style(RGBColor(0x55, 0x55, 0x55))
        .draw()
        .map_err(fail)
}

/// A panel no arm has a point in: its title and "no data".
fn no_data<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<(), PlotError> {
    let (w, h) = area.dim_in_pixel();
    area.draw_text(title, &(FONT, 17).into_font().color(&BLACK), (20, 10))
        .map_err(fail)?;
    area.draw_text(
        "no data",
        &(FONT, 15).into_font().color(&RGBColor(0x66, 0x66, 0x66)),
        (w as i32 / 2 - 30, h as i32 / 2),
    )
    .map_err(fail)
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Ticked, Ticked>>;

/// Bands first, then faint raw points: drawn before the lines, so no fill hides a line.
fn draw_faint<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    p: &Panel,
    colours: &[palette::Rgb],
) -> Result<(), PlotError> {
    for (i, c) in p.curves.iter().enumerate() {
        if c.band.len() > 1 {
            let upper = c.band.iter().map(|b| (b.0, b.2));
            let lower = c.band.iter().rev().map(|b| (b.0, b.1));
            chart
                .draw_series(std::iter::once(Polygon::new(
                    upper.chain(lower).collect::<Vec<_>>(),
                    colour(colours, i).mix(0.16).filled(),
                )))
                .map_err(fail)?;
        }
    }
    for (i, c) in p.curves.iter().enumerate() {
        if c.raw.len() > 1 {
            chart
                .draw_series(LineSeries::new(
                    c.raw.iter().copied(),
                    colour(colours, i).mix(0.22),
                ))
                .map_err(fail)?;
        }
    }
    Ok(())
}

/// Lines, validation dots and test whiskers, on top.
fn draw_lines<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    p: &Panel,
    colours: &[palette::Rgb],
) -> Result<(), PlotError> {
    for (i, c) in p.curves.iter().enumerate() {
        let col = colour(colours, i);
        if c.line.len() > 1 {
            chart
                .draw_series(LineSeries::new(c.line.iter().copied(), col.stroke_width(2)))
                .map_err(fail)?;
        }
        // Validation points marked, so a curve of three evaluations is not mistaken for data.
        if c.band.len() > 1 && c.line.len() <= 30 {
            chart
                .draw_series(
                    c.line
                        .iter()
                        .map(|&(px, py)| Circle::new((px, py), 3, col.filled())),
                )
                .map_err(fail)?;
        }
        for w in &c.whiskers {
            chart
                .draw_series([ErrorBar::new_vertical(
                    w.x,
                    w.lo,
                    w.mid,
                    w.hi,
                    col.stroke_width(2),
                    9,
                )])
                .map_err(fail)?;
            chart
                .draw_series([Circle::new((w.x, w.mid), 4, col.filled())])
                .map_err(fail)?;
        }
    }
    Ok(())
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    labels: &[String],
    colours: &[palette::Rgb],
) -> Result<(), PlotError> {
    let (cols, _, col_w) = legend_grid(labels);
    let font = (FONT, LEGEND_SIZE).into_font().color(&BLACK);
    let left = 60 + LEGEND_PAD as i32;
    for (i, label) in labels.iter().enumerate() {
        let (c, r) = (i as u32 % cols, i as u32 / cols);
        let x = left + (c * col_w) as i32;
        let y = (LEGEND_PAD + r * LEGEND_ROW) as i32 + LEGEND_ROW as i32 / 2;
        area.draw(&PathElement::new(
            vec![(x, y), (x + SWATCH, y)],
            colour(colours, i).stroke_width(4),
        ))
        .map_err(fail)?;
        area.draw_text(
            label,
            &font.pos(Pos::new(HPos::Left, VPos::Center)),
            (x + SWATCH + 8, y),
        )
        .map_err(fail)?;
    }
    Ok(())
}

/// The figure as SVG text.
pub fn to_svg(fig: &Figure) -> Result<String, PlotError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size(fig)).into_drawing_area();
        draw(&root, fig)?;
    }
    Ok(out)
}

/// The figure as PNG bytes (8-bit RGB), encoded with the `png` crate.
pub fn to_png(fig: &Figure) -> Result<Vec<u8>, PlotError> {
    raster_png(size(fig), |root| draw(root, fig))
}

/// A `w × h` drawing made by `paint` on the PNG backend (the shipped font, evenly spaced
/// text), as PNG bytes: every exported PNG is made here.
pub(super) fn raster_png(
    (w, h): (u32, u32),
    paint: impl FnOnce(&DrawingArea<super::raster::Raster<'_>, Shift>) -> Result<(), PlotError>,
) -> Result<Vec<u8>, PlotError> {
    register_font();
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let font = ab_glyph::FontRef::try_from_slice(FONT_BYTES).map_err(fail)?;
        let bitmap = BitMapBackend::with_buffer(&mut rgb, (w, h));
        let root = super::raster::Raster::new(bitmap, font).into_drawing_area();
        paint(&root)?;
    }
    let mut bytes = Vec::new();
    let mut enc = png::Encoder::new(&mut bytes, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(fail)?;
    writer.write_image_data(&rgb).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(bytes)
}
