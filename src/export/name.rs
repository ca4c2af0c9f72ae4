//! Export file names a person can read in a folder listing — `sinusoid-compare-2026-12-02-0135`,
//! `compare-3-runs-2026-12-02-0135`, or the run's own id for one run — and never the name of a
//! file already there, so a second export of the same runs sits beside the first.

use std::path::Path;
use std::time::SystemTime;

use crate::runs::label::Subject;

/// `YYYY-MM-DD-HHMM` (UTC, as run ids are stamped).
pub fn minute_stamp(t: SystemTime) -> String {
    // `2026-12-02T01:35:07Z`
    let s = humantime::format_rfc3339_seconds(t).to_string();
    format!("{}-{}{}", &s[..10], &s[11..13], &s[14..16])
}

/// The stem for an export of `subjects`: one run's id; the experiment's name and the minute
/// when every subject is of one experiment; `compare-N-runs` and the minute otherwise.
pub fn stem(subjects: &[Subject], now: SystemTime) -> String {
    let stamp = minute_stamp(now);
    match subjects {
        [] => format!("export-{stamp}"),
        [one] => match &one.run {
            Some(id) => file_safe(id),
            None => format!(
                "{}-{}-{stamp}",
                file_safe(&one.experiment),
                file_safe(&one.arm)
            ),
        },
        [first, rest @ ..] if rest.iter().all(|s| s.experiment == first.experiment) => {
            format!("{}-{stamp}", file_safe(&first.experiment))
        }
        many => format!("compare-{}-runs-{stamp}", many.len()),
    }
}

/// `s` with anything but ASCII letters, digits, `-`, `_` and `.` made `_`: a name that needs no
/// quoting in a shell and is the same file on every file system.
pub fn file_safe(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match out.trim_start_matches('.') {
        "" => "export".into(),
        t => t.to_string(),
    }
}

/// `stem`, or `stem-2`, `stem-3`, … : the first whose files (any of `extensions`) are not in `dir`.
pub fn free_stem(dir: &Path, stem: &str, extensions: &[&str]) -> String {
    let taken = |s: &str| {
        extensions
            .iter()
            .any(|e| dir.join(format!("{s}.{e}")).exists())
    };
    if !taken(stem) {
        return stem.to_string();
    }
    (2..)
        .map(|n| format!("{stem}-{n}"))
        .find(|s| !taken(s))
        .expect("an unbounded range has a free name")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const AT: u64 = 1_796_175_300; // 2026-12-02 01:35 UTC

    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(AT)
    }

    #[test]
    fn names_say_what_and_when() {
        assert_eq!(minute_stamp(at()), "2026-12-02-0135");
        let s = |e: &str, a: &str, r: &str| Subject::new(e, a, Some(r));
        let one = [s("sine", "maml", "2026-12-02-003512-sine-maml-box3fa2")];
        assert_eq!(stem(&one, at()), "2026-12-02-003512-sine-maml-box3fa2");
        let same = [
            s("sinusoid-compare", "maml", "a"),
            s("sinusoid-compare", "fomaml", "b"),
        ];
        assert_eq!(stem(&same, at()), "sinusoid-compare-2026-12-02-0135");
        let mixed = [
            s("x", "maml", "a"),
            s("y", "maml", "b"),
            s("y", "anil", "c"),
        ];
        assert_eq!(stem(&mixed, at()), "compare-3-runs-2026-12-02-0135");
        assert_eq!(file_safe("../a b/c"), "_a_b_c");
    }

    #[test]
    fn an_existing_export_is_never_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let ext = ["csv", "svg", "png"];
        assert_eq!(free_stem(d.path(), "x", &ext), "x");
        std::fs::write(d.path().join("x.png"), "").unwrap();
        assert_eq!(free_stem(d.path(), "x", &ext), "x-2");
        std::fs::write(d.path().join("x-2.csv"), "").unwrap();
        assert_eq!(free_stem(d.path(), "x", &ext), "x-3");
    }
}
