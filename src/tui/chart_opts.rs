//! How the Monitor and Compare charts are drawn: smoothing, scales, history window and the value
//! cursor. Plain state changed by `update` (keys), read by the pure renderers.

/// EMA weights of the past that `e`/`E` step through (0 = raw curve only).
pub const SMOOTHING: [f64; 6] = [0.0, 0.6, 0.8, 0.9, 0.95, 0.99];

/// Cursor steps across the x axis: `,`/`.` move one, `<`/`>` ten.
pub const CURSOR_STEPS: isize = 100;

/// The recent window is this share of the iterations shown.
pub const RECENT_SHARE: f64 = 0.2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    Iteration,
    /// Training seconds (from the engine's rate live, from `metrics.jsonl`'s clock when saved).
    WallTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    Full,
    /// The last `RECENT_SHARE` of the x range, so late training's detail is not flattened.
    Recent,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartOpts {
    /// Index into [`SMOOTHING`].
    pub smoothing: usize,
    pub log_y: bool,
    pub x: XAxis,
    pub history: History,
    /// The value cursor, in steps of `1 / CURSOR_STEPS` across the x axis; `None` = hidden.
    pub cursor: Option<isize>,
    /// Compare: the config diff in place of the charts (narrow terminals have no room for both).
    pub diff: bool,
}

impl Default for ChartOpts {
    fn default() -> Self {
        ChartOpts {
            smoothing: 0,
            log_y: false,
            x: XAxis::Iteration,
            history: History::Full,
            cursor: None,
            diff: false,
        }
    }
}

impl ChartOpts {
    pub fn alpha(&self) -> f64 {
        SMOOTHING[self.smoothing.min(SMOOTHING.len() - 1)]
    }

    /// Step the smoothing up or down, staying within the table.
    pub fn smooth(&mut self, by: isize) {
        let max = SMOOTHING.len() as isize - 1;
        self.smoothing = (self.smoothing as isize + by).clamp(0, max) as usize;
    }

    /// Show the cursor (at the right end, where the newest values are) or move it.
    pub fn move_cursor(&mut self, by: isize) {
        let at = self.cursor.unwrap_or(CURSOR_STEPS);
        let at = if self.cursor.is_none() { at } else { at + by };
        self.cursor = Some(at.clamp(0, CURSOR_STEPS));
    }

    /// The cursor as a fraction of the x axis.
    pub fn cursor_frac(&self) -> Option<f64> {
        self.cursor.map(|c| c as f64 / CURSOR_STEPS as f64)
    }

    /// A line for the status bar and the charts' corner: what is in effect besides the defaults.
    pub fn describe(&self) -> String {
        let mut parts = vec![];
        if self.alpha() > 0.0 {
            parts.push(format!("EMA {}", self.alpha()));
        }
        if self.log_y {
            parts.push("log y".into());
        }
        if self.x == XAxis::WallTime {
            parts.push("x: time".into());
        }
        if self.history == History::Recent {
            parts.push("recent".into());
        }
        parts.join(" · ")
    }

    /// What [`describe`](Self::describe) says besides [`short`](Self::short): the x axis and
    /// the history window.
    pub fn extra(&self) -> String {
        let mut parts = vec![];
        if self.x == XAxis::WallTime {
            parts.push("x: time");
        }
        if self.history == History::Recent {
            parts.push("recent");
        }
        parts.join(" · ")
    }

    /// The smoothing and log flags in few columns (`EMA .8 log`): what a narrow chart title
    /// keeps, since they change how every curve under it reads.
    pub fn short(&self) -> String {
        let mut parts = vec![];
        if self.alpha() > 0.0 {
            parts.push(format!(
                "EMA {}",
                self.alpha().to_string().trim_start_matches('0')
            ));
        }
        if self.log_y {
            parts.push("log".into());
        }
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_and_cursor_stay_in_range() {
        let mut o = ChartOpts::default();
        o.smooth(-1);
        assert_eq!(o.alpha(), 0.0);
        o.smooth(100);
        assert_eq!(o.alpha(), 0.99);
        o.move_cursor(-1);
        assert_eq!(
            o.cursor,
            Some(CURSOR_STEPS),
            "first press shows it at the end"
        );
        o.move_cursor(-10);
        assert_eq!(o.cursor, Some(CURSOR_STEPS - 10));
        o.move_cursor(1000);
        assert_eq!(o.cursor, Some(CURSOR_STEPS));
        assert_eq!(o.describe(), "EMA 0.99");
    }
}
