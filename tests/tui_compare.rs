//! Compare ranks like with like: arms are compared on one split at one iteration (issue 18 §2),
//! seeds are compared as seeds (§3), and the value cursor reads nothing where a run never got.

mod tui_common;

use metalab::tui::app::Screen;
use metalab::tui::dispatch as update;
use metalab::tui::{fixtures, Msg};
use tui_common::{project, screen, write_snapshot};

fn key(c: char) -> crossterm::event::KeyEvent {
    crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Char(c))
}

/// The table's row of `arm` (the line with `● arm ` in the results table).
fn row<'a>(s: &'a str, arm: &str) -> &'a str {
    s.lines()
        .rfind(|l| l.starts_with('│') && l.contains(&format!("● {arm} ")))
        .unwrap_or_else(|| panic!("no row for {arm}:\n{s}"))
}

#[test]
fn paused_arms_are_not_ranked_until_all_evaluated_at_one_iteration() {
    let p = project();
    let app = fixtures::paused_arms_app(p.path(), false);
    for (w, h) in [(120, 40), (80, 24)] {
        let s = screen(&app, w, h);
        write_snapshot(&format!("compare_paused_not_yet_{w}x{h}.txt"), &s);
        assert!(s.contains("not comparable yet"), "{s}");
        assert!(!s.contains('★') && !s.contains('≈'), "{s}");
    }
    let app = fixtures::paused_arms_app(p.path(), true);
    for (w, h) in [(120, 40), (80, 24)] {
        let s = screen(&app, w, h);
        write_snapshot(&format!("compare_paused_ranked_{w}x{h}.txt"), &s);
        assert!(s.contains("validation @500, 100 tasks"), "{s}");
        // Multi-task's 0.52 @1500 is the lowest number anywhere, but at 500 it is the worst.
        assert!(row(&s, "maml").contains('★'), "{s}");
        assert!(!row(&s, "multitask").contains('★'), "{s}");
        assert!(row(&s, "multitask").contains("1.62"), "{s}");
        assert!(!s.contains("0.5200"), "{s}");
    }
    // The monitor's arms table follows the same ranking.
    let mut app = app;
    app.screen = Screen::Monitor;
    let s = screen(&app, 120, 40);
    let star: Vec<&str> = s.lines().filter(|l| l.contains('★')).collect();
    assert_eq!(star.len(), 1, "{s}");
    assert!(star[0].contains("maml"), "{s}");
}

#[test]
fn the_cursor_reads_nothing_past_where_a_run_stopped() {
    let p = project();
    let mut app = fixtures::paused_arms_app(p.path(), true);
    // The cursor at the right end: iteration 1550, which only multi-task reached.
    update(&mut app, Msg::Key(key('.')));
    for (w, h) in [(120, 40), (80, 24)] {
        let s = screen(&app, w, h);
        write_snapshot(&format!("compare_paused_cursor_{w}x{h}.txt"), &s);
        let readout = s
            .lines()
            .find(|l| l.contains("at 1550"))
            .unwrap_or_else(|| panic!("no readout:\n{s}"));
        // Every arm is named (shortened at 80 columns); those paused before 1550 read `–`.
        for arm in ["maml", "fomaml", "multi"] {
            assert!(readout.contains(arm), "{readout}\n{s}");
        }
        assert!(readout.contains("maml –"), "{readout}");
        assert!(readout.contains("fomaml –"), "{readout}");
        assert!(row(&s, "fomaml").contains('–'), "{s}");
        assert!(!row(&s, "fomaml").contains("0.9500 ± 0.0500 0.95"), "{s}");
    }
}
