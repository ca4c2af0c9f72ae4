//! The folder watcher sees plain writes and editors' write-temp-then-rename saves.

use std::time::Duration;

use metalab::tui::watch::watch_dir;

fn wait_for(rx: &std::sync::mpsc::Receiver<Vec<std::path::PathBuf>>, name: &str) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Ok(paths) = rx.recv_timeout(Duration::from_millis(100)) {
            if paths
                .iter()
                .any(|p| p.file_name().is_some_and(|f| f == name))
            {
                return true;
            }
        }
    }
    false
}

#[test]
fn sees_writes_and_rename_saves() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let _w = watch_dir(dir.path(), move |p| {
        let _ = tx.send(p);
    })
    .unwrap();
    std::fs::write(dir.path().join("a.ron"), "x").unwrap();
    assert!(wait_for(&rx, "a.ron"), "plain write not seen");
    // Like vim's backupcopy=no: write elsewhere, rename over the original.
    std::fs::write(dir.path().join(".a.ron.swp"), "y").unwrap();
    std::fs::rename(dir.path().join(".a.ron.swp"), dir.path().join("a.ron")).unwrap();
    assert!(wait_for(&rx, "a.ron"), "rename-over not seen");
    // Temporaries and other files are not reported on their own.
    std::fs::write(dir.path().join("notes.txt"), "z").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert!(rx
        .try_iter()
        .all(|b| b.iter().all(|p| p.extension().is_some_and(|e| e == "ron"))));
}

/// Opening and reading files is not a change: the workbench's own rescans read every file,
/// and a watcher that reported reads made it rescan forever.
#[test]
fn reads_are_not_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.ron");
    std::fs::write(&file, "x").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let _w = watch_dir(dir.path(), move |p| {
        let _ = tx.send(p);
    })
    .unwrap();
    let until = std::time::Instant::now() + Duration::from_millis(800);
    let mut reads = 0;
    while std::time::Instant::now() < until {
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
        let _ = std::fs::metadata(&file).unwrap();
        reads += 1;
    }
    std::thread::sleep(Duration::from_millis(500));
    let batches: Vec<_> = rx.try_iter().collect();
    assert!(
        batches.is_empty(),
        "{reads} reads were reported as changes: {batches:?}"
    );
    // A write still is, once, however many events it makes.
    std::fs::write(&file, "y").unwrap();
    assert!(wait_for(&rx, "a.ron"), "write after reads not seen");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rx.try_iter().count(), 0, "one write, several batches");
}
