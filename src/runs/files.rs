//! Opening the files of a run folder. A run folder may come from elsewhere (the README invites
//! copying them between machines), so any of its names may be a symbolic link to a file outside,
//! a FIFO that blocks `open`, or a device that never ends. Every open here refuses a link
//! (`O_NOFOLLOW`), never blocks on a FIFO (`O_NONBLOCK`, then only regular files are read), and
//! new files are only ever created, never reused (`O_EXCL`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;

#[cfg(unix)]
const NOFOLLOW: i32 = libc::O_NOFOLLOW;
#[cfg(not(unix))]
const NOFOLLOW: i32 = 0;

#[cfg(unix)]
const NONBLOCK: i32 = libc::O_NONBLOCK;
#[cfg(not(unix))]
const NONBLOCK: i32 = 0;

fn flags(o: &mut OpenOptions, f: i32) -> &mut OpenOptions {
    #[cfg(unix)]
    o.custom_flags(f);
    #[cfg(not(unix))]
    let _ = f;
    o
}

/// Was `e` an open refused because the path is a symbolic link (`O_NOFOLLOW`)?
pub fn is_link_refusal(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// The error for a path that is there but is not a regular file.
pub fn not_regular(kind: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("it is {kind}, not a regular file"),
    )
}

/// "a FIFO", "a directory", … for messages.
pub fn describe(ft: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ft.is_char_device() || ft.is_block_device() {
            return "a device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Open an existing regular file for reading: not through a link, and without blocking on a
/// FIFO (whose open waits for a writer that may never come).
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    let f = flags(OpenOptions::new().read(true), NOFOLLOW | NONBLOCK).open(path)?;
    let ft = f.metadata()?.file_type();
    if !ft.is_file() {
        return Err(not_regular(describe(ft)));
    }
    Ok(f)
}

/// At most `cap` bytes of a regular file; more is an error naming the size (a run's files are
/// bounded by what metalab writes; anything else was put there).
pub fn read_capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    let f = open_regular(path)?;
    let mut bytes = vec![];
    f.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the file is larger than the {cap} bytes metalab reads"),
        ));
    }
    Ok(bytes)
}

/// The most a run's text files (`run.json`, `notes.json`, `fits.json`, `evals.jsonl`) may hold.
pub const MAX_TEXT: u64 = 64 << 20;

/// A run folder's text file, read whole (up to [`MAX_TEXT`]).
pub fn read_text(path: &Path) -> std::io::Result<String> {
    let bytes = read_capped(path, MAX_TEXT)?;
    String::from_utf8(bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

/// Create a file that must not exist yet (not even as a dangling link).
pub fn create_new(path: &Path) -> std::io::Result<File> {
    flags(OpenOptions::new().write(true).create_new(true), NOFOLLOW).open(path)
}

/// Open a file to append to it, creating it when `create`; never through a link.
pub fn open_append(path: &Path, create: bool) -> std::io::Result<File> {
    let f = flags(
        OpenOptions::new().append(true).create(create),
        NOFOLLOW | NONBLOCK,
    )
    .open(path)?;
    let ft = f.metadata()?.file_type();
    if !ft.is_file() {
        return Err(not_regular(describe(ft)));
    }
    Ok(f)
}

/// Open (creating) a lock file, never through a link; a regular file only.
pub fn open_lock(path: &Path) -> std::io::Result<File> {
    let f = flags(
        OpenOptions::new().write(true).create(true).truncate(false),
        NOFOLLOW | NONBLOCK,
    )
    .open(path)?;
    let ft = f.metadata()?.file_type();
    if !ft.is_file() {
        return Err(not_regular(describe(ft)));
    }
    Ok(f)
}

/// A temporary name next to `path`, unique to this process and call: two processes writing one
/// file at once (two sweeps started together) must not share a temporary.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(
        "{name}.{}-{:08x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ))
}

/// Write `bytes` to a new temporary beside `path` and return the temporary's name.
pub fn write_temp(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let tmp = temp_path(path);
    let written = (|| {
        let mut f = create_new(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()
    })();
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Is `path` itself a symbolic link (not following it)?
pub fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}
