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
    let _w = watch_dir(dir.path(), tx).unwrap();
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
