//! Write-then-rename, so a killed run never leaves a half-written file behind. The temporary is
//! created fresh under a name of its own (never an existing file or a planted link), and the
//! rename replaces `path` itself, never a file a link at `path` points to.

use std::path::Path;

use super::files;

pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = files::write_temp(path, bytes)?;
    // A full disk fails mid-write (handled in write_temp) or here: leave the previous file,
    // not a stray partial one.
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_link_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let path = dir.path().join("run.json");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        // The old fixed temporary name, planted too.
        std::os::unix::fs::symlink(&victim, dir.path().join("run.json.tmp")).unwrap();
        write(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!files::is_link(&path));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    }

    #[test]
    fn writers_of_one_file_at_once_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.json");
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        write(&path, format!("writer {i}").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("writer "));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
