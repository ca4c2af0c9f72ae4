//! Colours and number formats shared by every panel, so an arm looks the same everywhere.

use ratatui::style::{Color, Modifier, Style};

use crate::stats::MeanCi;

/// The `i`-th palette colour: for lists of arms not yet run (an experiment file's arms).
pub fn arm_color(i: usize) -> Color {
    let c = crate::palette::arm(i);
    Color::Rgb(c.0, c.1, c.2)
}

/// The colours of arms named `names` (before they run: an experiment file's arms), as
/// [`arm_colors`] will give them once they do.
pub fn colors_for(names: &[&str]) -> Vec<Color> {
    crate::palette::assign(names)
        .into_iter()
        .map(|c| Color::Rgb(c.0, c.1, c.2))
        .collect()
}

/// Every arm's colour in `s`, from its identity (`palette::assign`): MAML is the same blue
/// live, opened from Runs and in an exported figure, wherever it sits in the list.
pub fn arm_colors(s: &crate::tui::session::Session) -> Vec<Color> {
    let ids: Vec<&str> = s.arms.iter().map(|a| a.identity.as_str()).collect();
    crate::palette::assign(&ids)
        .into_iter()
        .map(|c| Color::Rgb(c.0, c.1, c.2))
        .collect()
}

pub fn title() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

pub fn dim() -> Style {
    Style::default().fg(Color::DarkGray)
}

pub fn selected() -> Style {
    Style::default()
        .bg(Color::DarkGray)
        .add_modifier(Modifier::BOLD)
}

pub fn error() -> Style {
    Style::default().fg(Color::LightRed)
}

pub fn ok() -> Style {
    Style::default().fg(Color::Green)
}

/// Loss-like numbers span orders of magnitude: keep four significant digits.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
    }
}

pub fn mean_ci(m: &MeanCi) -> String {
    format!("{} ± {}", num(m.mean), num(m.ci95))
}

pub fn pct_ci(m: &MeanCi) -> String {
    format!("{:.1}% ± {:.1}", 100.0 * m.mean, 100.0 * m.ci95)
}

pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "–".into();
    }
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// `YYYY-MM-DD HH:MM` UTC from Unix seconds (civil-from-days, so no date crate is needed).
pub fn date(unix: u64) -> String {
    if unix == 0 {
        return "–".into();
    }
    let days = (unix / 86_400) as i64;
    let rem = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// A text progress bar: terminals without block glyph support still read it.
pub fn bar(frac: f64, width: usize) -> String {
    let filled = ((frac.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::date(1_700_000_000), "2023-11-14 22:13");
    }
}
