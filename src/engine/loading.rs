//! Loading reports: the data loader's progress, fanned out to every arm as
//! [`EngineEvent::Loading`], never going back.

use std::sync::mpsc::Sender;

use super::messages::EngineEvent;

/// Forwards `(done, total)` counts to every arm. Decoding threads report concurrently, so a
/// count computed before another thread's larger one can arrive after it; such a stale count
/// is dropped, so a progress row only ever moves forward. A new total starts a new load.
pub(crate) struct LoadingReports {
    tx: Sender<EngineEvent>,
    arms: usize,
    last: Option<(usize, usize)>,
}

impl LoadingReports {
    pub(crate) fn new(tx: Sender<EngineEvent>, arms: usize) -> Self {
        LoadingReports {
            tx,
            arms,
            last: None,
        }
    }

    pub(crate) fn report(&mut self, done: usize, total: usize) {
        if matches!(self.last, Some((d, t)) if t == total && done <= d) {
            return;
        }
        self.last = Some((done, total));
        for arm in 0..self.arms {
            let _ = self.tx.send(EngineEvent::Loading { arm, done, total });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(reports: &[(usize, usize)]) -> Vec<(usize, usize, usize)> {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut l = LoadingReports::new(tx, 2);
        for &(d, t) in reports {
            l.report(d, t);
        }
        drop(l);
        rx.iter()
            .map(|e| match e {
                EngineEvent::Loading { arm, done, total } => (arm, done, total),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// The order CI saw (a thread's 6 arriving after another's 183): the late 6 is dropped.
    #[test]
    fn a_late_smaller_count_is_dropped_and_every_arm_hears_the_rest() {
        let got = sent(&[
            (3, 360),
            (9, 360),
            (183, 360),
            (6, 360),
            (186, 360),
            (360, 360),
        ]);
        let arm0: Vec<usize> = got.iter().filter(|r| r.0 == 0).map(|r| r.1).collect();
        assert_eq!(arm0, [3, 9, 183, 186, 360]);
        assert_eq!(got.len(), 10);
    }

    #[test]
    fn a_repeated_count_is_sent_once_and_a_new_total_starts_over() {
        let got = sent(&[(5, 10), (5, 10), (10, 10), (2, 4), (4, 4)]);
        let arm1: Vec<(usize, usize)> = got
            .iter()
            .filter(|r| r.0 == 1)
            .map(|r| (r.1, r.2))
            .collect();
        assert_eq!(arm1, [(5, 10), (10, 10), (2, 4), (4, 4)]);
    }
}
