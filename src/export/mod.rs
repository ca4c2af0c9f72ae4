//! Curves out of metalab: CSV for analysis, SVG for papers and PNG for notes, written together
//! by [`write`] from every export path (Runs pane, Monitor, `metalab export`).
//!
//! - `curves`: [`ArmCurves`], one run's curves: what every export is made from;
//! - [`csv`]: the one long-format table (the `csv` crate quotes and escapes);
//! - [`figure`]: what a plot shows — panels, axes, legend labels — as plain data;
//! - [`axis`]: round ticks and ranges kept inside a metric's domain;
//! - [`plot`]: drawing a figure with plotters (SVG and PNG backends, shipped font);
//! - `raster`: the PNG backend, plotters' bitmap with evenly spaced text;
//! - [`name`]: readable export names that never overwrite an earlier export;
//! - [`transfer`]: the negative-transfer table (CSV) of multi-task runs against their baseline.
//! - [`task_figures`]: what the task-embedding scatter and the affinity heatmap show (shared
//!   with the workbench), drawn by `task_plots`; [`write_task_figures`] writes them for a run.

pub mod axis;
pub mod csv;
mod curves;
pub mod figure;
pub mod name;
pub mod plot;
mod raster;
pub mod task_figures;
mod task_plots;
pub mod transfer;

use std::path::{Path, PathBuf};

pub use self::csv::to_csv;
pub use curves::ArmCurves;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing CSV: {0}")]
    Csv(#[from] ::csv::Error),
    #[error(transparent)]
    Plot(#[from] plot::PlotError),
}

/// The two-panel plot of `arms` as SVG text.
pub fn to_svg(arms: &[ArmCurves], classification: bool) -> Result<String, ExportError> {
    Ok(plot::to_svg(&figure::build(arms, classification))?)
}

/// The same plot as PNG bytes.
pub fn to_png(arms: &[ArmCurves], classification: bool) -> Result<Vec<u8>, ExportError> {
    Ok(plot::to_png(&figure::build(arms, classification))?)
}

/// The files one export wrote: `<dir>/<stem>.{csv,svg,png}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub dir: PathBuf,
    pub stem: String,
}

pub const EXTENSIONS: [&str; 3] = ["csv", "svg", "png"];

impl Exported {
    pub fn paths(&self) -> Vec<PathBuf> {
        EXTENSIONS
            .iter()
            .map(|e| self.dir.join(format!("{}.{e}", self.stem)))
            .collect()
    }

    /// `exported exports/NAME.{csv,svg,png}`: every path whole, in a line short enough for a
    /// status bar (and one a shell expands back to the three files). The folder is shown
    /// relative to the working directory when it is below it.
    pub fn summary(&self) -> String {
        let cwd = std::env::current_dir().ok();
        let dir = cwd
            .as_deref()
            .and_then(|c| self.dir.strip_prefix(c).ok())
            .or_else(|| self.dir.strip_prefix(".").ok())
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(&self.dir);
        format!(
            "exported {}.{{{}}}",
            dir.join(&self.stem).display(),
            EXTENSIONS.join(",")
        )
    }
}

/// Write `<dir>/<stem>.csv`, `.svg` and `.png` — or, when any of those exists already, under
/// `<stem>-2`, `<stem>-3`, …: an export never replaces an earlier one. Each file is written
/// whole or not at all.
pub fn write(
    dir: &Path,
    stem: &str,
    arms: &[ArmCurves],
    classification: bool,
) -> Result<Exported, ExportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let fig = figure::build(arms, classification);
    let csv = to_csv(arms)?;
    let svg = plot::to_svg(&fig)?;
    let png = plot::to_png(&fig)?;
    let stem = name::free_stem(dir, &name::file_safe(stem), &EXTENSIONS);
    let out = Exported {
        dir: dir.to_path_buf(),
        stem,
    };
    for (path, bytes) in out
        .paths()
        .iter()
        .zip([csv.as_bytes(), svg.as_bytes(), &png])
    {
        crate::runs::atomic::write(path, bytes).map_err(io(path))?;
    }
    Ok(out)
}

/// A run's task views, when it recorded them: its validation tasks' embeddings as
/// `<stem>-embedding.csv` and a scatter on their first two principal components
/// (`<stem>-embedding.png`, coloured by the first parameter, or the group), and its task
/// affinities as heatmaps of both measures (`<stem>-affinity.png`). Never replaces a file
/// (`-2`, `-3`, … as [`write`]). Returns the files written: none for a run without either.
pub fn write_task_figures(
    dir: &Path,
    stem: &str,
    run_dir: &Path,
    title: &str,
) -> Result<Vec<PathBuf>, ExportError> {
    use task_figures::{Heatmap, Measure, Scatter};
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Io { path, source }
    };
    let embeddings = crate::runs::load_embeddings(run_dir).filter(|r| !r.tasks.is_empty());
    let affinity = crate::runs::load_affinity(run_dir).filter(|r| !r.cosine.is_empty());
    let mut written = vec![];
    if embeddings.is_none() && affinity.is_none() {
        return Ok(written);
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let safe = name::file_safe(stem);
    if let Some(r) = &embeddings {
        let stem = name::free_stem(dir, &format!("{safe}-embedding"), &["csv", "png"]);
        let colouring = r.colourings().first().copied();
        let csv = dir.join(format!("{stem}.csv"));
        crate::runs::atomic::write(&csv, r.to_csv().as_bytes()).map_err(io(&csv))?;
        written.push(csv);
        if let Some(c) = colouring {
            let png = task_plots::scatter_png(&Scatter::build(r, c), title)?;
            let path = dir.join(format!("{stem}.png"));
            crate::runs::atomic::write(&path, &png).map_err(io(&path))?;
            written.push(path);
        }
    }
    if let Some(r) = &affinity {
        let names = crate::runs::load_config(run_dir)
            .map(|c| crate::runs::embeddings::group_names(&c.family))
            .unwrap_or_default();
        let maps: Vec<Heatmap> = Measure::ALL
            .iter()
            .map(|&m| Heatmap::build(r, m, &names))
            .collect();
        let stem = name::free_stem(dir, &format!("{safe}-affinity"), &["png"]);
        let path = dir.join(format!("{stem}.png"));
        let png = task_plots::heatmaps_png(&maps, title)?;
        crate::runs::atomic::write(&path, &png).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}
