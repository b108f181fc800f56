//! Output files: a failed command never leaves half a file, and a special file is
//! never replaced.
//!
//! [`write_atomic`] decides by what the path names:
//!
//! | path | how it is written |
//! | --- | --- |
//! | `-` | to standard output |
//! | a new path, or a regular file | a temporary file beside it, synced, then renamed over it (atomic); an existing file keeps its permissions, a new one is 0644 |
//! | a symbolic link | as its target (the link stays a link) |
//! | a character device, FIFO or socket (`/dev/null`, `/dev/stdout`, a pipe) | written through, in place: atomic replacement means nothing there, and renaming over it would destroy it |
//! | a directory | refused |

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` (see the module doc): atomically where replacement is
/// meaningful, through to the device or pipe otherwise.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        return out.write_all(bytes).and_then(|()| out.flush()).context("-: cannot write to standard output");
    }
    let target = resolve_links(path)?;
    match std::fs::metadata(&target) {
        Ok(meta) if meta.is_dir() => bail!("{}: is a directory", path.display()),
        Ok(meta) if !meta.is_file() => {
            // A device, FIFO or socket: write through, never replace.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(&target)
                .with_context(|| format!("{}: cannot open for writing", path.display()))?;
            file.write_all(bytes)
                .and_then(|()| file.flush())
                .with_context(|| format!("{}: write failed", path.display()))
        }
        Ok(meta) => replace(&target, path, bytes, Some(meta.permissions())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => replace(&target, path, bytes, None),
        Err(e) => Err(e).with_context(|| format!("{}: cannot inspect", path.display())),
    }
}

/// Follows symbolic links (also dangling ones, whose target is created) to the path
/// to write; gives up after 40 links, as the kernel does.
fn resolve_links(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link =
                    std::fs::read_link(&current).with_context(|| format!("{}: cannot read link", path.display()))?;
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(current),
        }
    }
    bail!("{}: too many levels of symbolic links", path.display())
}

/// The atomic path: temporary file in `target`'s folder, synced, renamed over it.
fn replace(target: &Path, shown: &Path, bytes: &[u8], keep: Option<std::fs::Permissions>) -> Result<()> {
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("{}: cannot create a file in {}", shown.display(), dir.display()))?;
    // Temporary files are created private (0600): an existing file keeps its mode, a
    // new output is an ordinary file (0644).
    let permissions = match keep {
        Some(p) => p,
        #[cfg(unix)]
        None => std::os::unix::fs::PermissionsExt::from_mode(0o644),
        #[cfg(not(unix))]
        None => tmp
            .as_file()
            .metadata()
            .map(|m| m.permissions())
            .with_context(|| format!("{}: cannot stat", shown.display()))?,
    };
    let _ = tmp.as_file().set_permissions(permissions);
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("{}: write failed", shown.display()))?;
    tmp.persist(target).map_err(|e| e.error).with_context(|| format!("{}: cannot write", shown.display()))?;
    Ok(())
}

/// Validates the `.mcnn` blob read from `path`; the error names the file, and says
/// how to convert a TFLite file given where a blob was expected.
pub fn model_from_bytes<'a>(path: &Path, bytes: &'a [u8]) -> Result<microcnn_core::Model<'a>> {
    microcnn_core::Model::from_bytes(bytes).map_err(|e| {
        if bytes.get(4..8) == Some(b"TFL3") {
            anyhow::anyhow!(
                "{}: a TFLite model, not a .mcnn blob: convert it with `microcnn import {} -o MODEL.mcnn`",
                path.display(),
                path.display()
            )
        } else {
            anyhow::anyhow!("{}: invalid model: {e}", path.display())
        }
    })
}

/// Reads a whole file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    // (No test writes /dev/null: run as root against a regressed writer, it would
    // replace the machine's /dev/null. The FIFO test covers the same path.)

    #[test]
    fn a_fifo_is_written_through_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(status.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(&fifo).unwrap())
        };
        write_atomic(&fifo, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO was replaced");
    }

    #[test]
    fn a_symlink_is_followed_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.bin");
        std::fs::write(&real, b"old").unwrap();
        let link = dir.path().join("link.bin");
        std::os::unix::fs::symlink("real.bin", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&real).unwrap(), b"new");
        // A dangling link creates its target.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink("made.bin", &dangling).unwrap();
        write_atomic(&dangling, b"made").unwrap();
        assert_eq!(std::fs::read(dir.path().join("made.bin")).unwrap(), b"made");
        assert!(std::fs::symlink_metadata(&dangling).unwrap().file_type().is_symlink());
    }

    #[test]
    fn an_existing_file_keeps_its_mode_and_a_new_one_is_0644() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private.bin");
        std::fs::write(&private, b"old").unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&private, b"new").unwrap();
        assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&private).unwrap(), b"new");
        let fresh = dir.path().join("fresh.bin");
        write_atomic(&fresh, b"x").unwrap();
        assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o644);
    }

    #[test]
    fn a_directory_or_a_link_loop_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_atomic(dir.path(), b"x").unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let err = write_atomic(&a, b"x").unwrap_err().to_string();
        assert!(err.contains("too many levels of symbolic links"), "{err}");
    }
}
