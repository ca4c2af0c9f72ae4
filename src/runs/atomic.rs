//! Write-then-rename, so a killed run never leaves a half-written file behind.

use std::io::Write;
use std::path::Path;

pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    })();
    // A full disk fails mid-write: leave the previous file, not a stray partial one.
    written.inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
