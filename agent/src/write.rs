//! Atomic replacement of destination files.
//!
//! Readers of a secret file must only ever see a complete render: never an
//! empty, truncated or half-written file, even if the agent is killed
//! mid-write. So a render is written to a temporary file in the destination's
//! own directory (rename is atomic only within one filesystem), flushed to
//! disk, given its mode, renamed over the destination, and the directory
//! entry is flushed too.
//!
//! The destination's directory is usually a volume the application can
//! write to, so whatever sits at the destination is not trusted: it is only
//! kept (and its mode corrected) when it is a regular file of its own,
//! opened without following a symbolic link. Anything else, such as a link
//! to a file elsewhere, is replaced by the rename, which replaces the link
//! itself and never touches what it points to.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tracing::warn;
use zeroize::Zeroizing;

/// Marks keyhole's temporary files, so that a restarted agent can remove the
/// ones a killed predecessor left behind.
const TEMP_MARKER: &str = ".keyhole-tmp-";

/// Errors replacing a destination file. The path is always named; the
/// contents never are.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The destination's directory is missing and `create_dest_dirs` is off.
    #[error("{}: directory {} does not exist (set create_dest_dirs to create it)", path.display(), dir.display())]
    MissingDirectory {
        /// The destination file.
        path: PathBuf,
        /// Its missing parent directory.
        dir: PathBuf,
    },
    /// A filesystem operation failed.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// What was being done, e.g. `rename`.
        action: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
}

/// Result of this module's functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What [`replace`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The file now holds the new contents.
    Written,
    /// The file already held exactly these bytes; it was not touched.
    Unchanged,
}

/// Atomically makes `path` hold `contents` with file mode `mode`.
///
/// If the destination is a regular file that already holds exactly
/// `contents`, nothing is written (only a differing mode is corrected) and
/// [`Outcome::Unchanged`] tells the caller not to run the template's
/// command. A symbolic link, a directory, a FIFO or a file with other hard
/// links is replaced instead, leaving whatever it leads to untouched.
pub fn replace(path: &Path, contents: &[u8], mode: u32, create_dirs: bool) -> Result<Outcome> {
    replace_with(path, contents, mode, create_dirs, false)
}

/// [`replace`] for a template with `backup = true`: when the contents
/// change, the file they replace is kept as `<path>.bak`, as consul-template
/// keeps it: a second name for the same file, so with its mode, and only the
/// latest one.
pub fn replace_keeping_backup(
    path: &Path,
    contents: &[u8],
    mode: u32,
    create_dirs: bool,
) -> Result<Outcome> {
    replace_with(path, contents, mode, create_dirs, true)
}

fn replace_with(
    path: &Path,
    contents: &[u8],
    mode: u32,
    create_dirs: bool,
    backup: bool,
) -> Result<Outcome> {
    let dir = parent(path);
    if !dir.is_dir() {
        if !create_dirs {
            return Err(Error::MissingDirectory {
                path: path.to_owned(),
                dir: dir.to_owned(),
            });
        }
        fs::create_dir_all(dir).map_err(io_error(dir, "create directory"))?;
    }

    if let Some(current) = open_own_file(path)
        && holds(&current, contents)
    {
        set_mode(&current, path, mode)?;
        return Ok(Outcome::Unchanged);
    }

    let temp = temp_path(path);
    let written = write_temp(&temp, contents, mode).and_then(|()| {
        if backup {
            keep_backup(path);
        }
        fs::rename(&temp, path).map_err(io_error(path, "rename temporary file over destination"))
    });
    if let Err(err) = written {
        // The destination still holds its previous contents; don't leave the
        // half-done temporary file beside it.
        let _ = fs::remove_file(&temp);
        return Err(err);
    }
    sync_dir(dir)?;
    Ok(Outcome::Written)
}

/// Links `path` as `<path>.bak`, dropping the backup before it. A failure
/// only costs the backup, as in consul-template; there is none to keep
/// before the first render.
fn keep_backup(path: &Path) {
    let named = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let (bak, old) = (named(".bak"), named(".old.bak"));
    let _ = fs::rename(&bak, &old);
    match fs::hard_link(path, &bak) {
        Ok(()) => {
            let _ = fs::remove_file(&old);
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => warn!(path = %path.display(), "could not keep a backup: {err}"),
    }
}

/// Removes temporary files that a killed agent left in `dir`.
///
/// Returns how many were removed. A missing directory has none.
pub fn remove_stale_temp_files(dir: &Path) -> Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(io_error(dir, "list directory")(err)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(io_error(dir, "list directory"))?;
        if entry.file_name().to_string_lossy().contains(TEMP_MARKER) {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_error(&path, "remove stale temporary file"))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The destination opened for reading when it is a regular file with no
/// other name: `None` for a symbolic link (not followed), anything that is
/// not a regular file, a file also linked from elsewhere, or no file.
fn open_own_file(path: &Path) -> Option<File> {
    let file = OpenOptions::new()
        .read(true)
        // Non-blocking so that opening a FIFO someone put there returns at
        // once instead of waiting for a writer.
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    (meta.is_file() && meta.nlink() == 1).then_some(file)
}

/// Whether `file` holds exactly `contents`.
fn holds(mut file: &File, contents: &[u8]) -> bool {
    match file.metadata() {
        Ok(meta) if meta.len() == contents.len() as u64 => {}
        _ => return false,
    }
    let mut current = Zeroizing::new(Vec::with_capacity(contents.len()));
    file.read_to_end(&mut current).is_ok() && current.as_slice() == contents
}

fn write_temp(temp: &Path, contents: &[u8], mode: u32) -> Result<()> {
    // Created owner-only, so the secret is never readable by others while
    // it is being written, whatever the process umask.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temp)
        .map_err(io_error(temp, "create temporary file"))?;
    file.write_all(contents)
        .map_err(io_error(temp, "write temporary file"))?;
    file.sync_all()
        .map_err(io_error(temp, "flush temporary file"))?;
    // Set explicitly: `mode` above is filtered by the umask.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_error(temp, "set file mode"))
}

/// Corrects the mode of the open destination `file` (at `path`), through
/// its handle so that it is the file checked, not what the path names now.
fn set_mode(file: &File, path: &Path, mode: u32) -> Result<()> {
    let current = file
        .metadata()
        .map_err(io_error(path, "read file mode"))?
        .permissions()
        .mode();
    if current & 0o7777 != mode {
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_error(path, "set file mode"))?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir, "flush directory"))
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent(path).join(format!(
        ".{name}{TEMP_MARKER}{}-{:x}",
        std::process::id(),
        rand::random::<u32>()
    ))
}

fn io_error(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Io {
        path,
        action,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
    }

    #[test]
    fn writes_contents_with_exact_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        assert_eq!(
            replace(&path, b"user: app\n", 0o640, false).expect("replace"),
            Outcome::Written
        );
        assert_eq!(fs::read(&path).expect("read"), b"user: app\n");
        assert_eq!(mode_of(&path), 0o640);
    }

    #[test]
    fn a_backup_keeps_the_contents_replaced_last_with_their_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let bak = dir.path().join("db.bak");
        replace_keeping_backup(&path, b"one", 0o600, false).expect("first");
        assert!(!bak.exists(), "nothing to keep before the first render");
        replace_keeping_backup(&path, b"two", 0o640, false).expect("second");
        assert_eq!(fs::read(&bak).expect("backup"), b"one");
        assert_eq!(mode_of(&bak), 0o600);
        assert_eq!(
            replace_keeping_backup(&path, b"two", 0o640, false).expect("same"),
            Outcome::Unchanged
        );
        assert_eq!(fs::read(&bak).expect("backup"), b"one", "unchanged: kept");
        replace_keeping_backup(&path, b"three", 0o640, false).expect("third");
        assert_eq!(fs::read(&bak).expect("backup"), b"two");
        assert_eq!(fs::read(&path).expect("file"), b"three");
        assert!(!dir.path().join("db.old.bak").exists());
    }

    #[test]
    fn unchanged_bytes_leave_the_file_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        replace(&path, b"same", 0o644, false).expect("first");
        let inode = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&path).expect("meta"));
        assert_eq!(
            replace(&path, b"same", 0o644, false).expect("second"),
            Outcome::Unchanged
        );
        let after = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&path).expect("meta"));
        assert_eq!(
            inode, after,
            "an unchanged render must not replace the file"
        );
    }

    #[test]
    fn unchanged_bytes_still_correct_the_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        replace(&path, b"same", 0o644, false).expect("first");
        assert_eq!(
            replace(&path, b"same", 0o600, false).expect("second"),
            Outcome::Unchanged
        );
        assert_eq!(mode_of(&path), 0o600);
    }

    /// A destination that is a symbolic link, hard link or FIFO put in the
    /// shared volume, leading to an agent-owned file elsewhere: the render
    /// must replace the entry itself and leave that file as it was.
    #[test]
    fn links_at_the_destination_are_replaced_and_their_targets_untouched() {
        let outside = tempfile::tempdir().expect("tempdir");
        let volume = tempfile::tempdir().expect("tempdir");
        for kind in ["symlink", "hard link"] {
            let target = outside.path().join(format!("agent-owned {kind}"));
            fs::write(&target, "same").expect("write");
            fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).expect("chmod");
            let destination = volume.path().join(kind);
            match kind {
                "symlink" => std::os::unix::fs::symlink(&target, &destination),
                _ => fs::hard_link(&target, &destination),
            }
            .expect(kind);

            let outcome = replace(&destination, b"same", 0o666, false).expect(kind);

            assert_eq!(mode_of(&target), 0o600, "{kind} target's mode");
            assert_eq!(fs::read(&target).expect("read"), b"same", "{kind} target");
            assert_eq!(outcome, Outcome::Written, "{kind}");
            let meta = fs::symlink_metadata(&destination).expect("destination");
            assert!(meta.is_file(), "{kind} destination is now a regular file");
            assert_eq!(meta.nlink(), 1, "{kind} destination has no other name");
            assert_eq!(meta.permissions().mode() & 0o7777, 0o666, "{kind}");
            assert_eq!(fs::read(&destination).expect("read"), b"same", "{kind}");
        }
    }

    #[test]
    fn fifo_at_the_destination_is_replaced_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("run mkfifo");
        assert!(status.success(), "mkfifo failed");

        assert_eq!(
            replace(&path, b"user: app\n", 0o640, false).expect("replace"),
            Outcome::Written
        );
        assert!(fs::symlink_metadata(&path).expect("meta").is_file());
        assert_eq!(fs::read(&path).expect("read"), b"user: app\n");
        assert_eq!(mode_of(&path), 0o640);
    }

    #[test]
    fn replaces_changed_contents_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        replace(&path, b"old", 0o644, false).expect("first");
        replace(&path, b"new contents", 0o644, false).expect("second");
        assert_eq!(fs::read(&path).expect("read"), b"new contents");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("db")]);
    }

    #[test]
    fn missing_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/db");
        let err = replace(&path, b"x", 0o644, false).expect_err("must fail");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: directory {} does not exist (set create_dest_dirs to create it)",
                path.display(),
                dir.path().join("nested").display()
            )
        );
    }

    #[test]
    fn creates_missing_directories_when_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/db");
        replace(&path, b"x", 0o644, true).expect("replace");
        assert_eq!(fs::read(&path).expect("read"), b"x");
    }

    #[test]
    fn failed_rename_names_the_destination_and_cleans_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A non-empty directory cannot be renamed over, even by root.
        let path = dir.path().join("db");
        fs::create_dir(&path).expect("mkdir");
        fs::write(path.join("keep"), "last good").expect("write");
        let err = replace(&path, b"new", 0o644, false).expect_err("rename must fail");
        assert!(
            err.to_string().starts_with(&format!(
                "{}: rename temporary file over destination:",
                path.display()
            )),
            "{err}"
        );
        assert_eq!(fs::read(path.join("keep")).expect("read"), b"last good");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("db")]);
    }

    #[test]
    fn removes_only_keyholes_stale_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(".db.keyhole-tmp-12-ab"), "partial").expect("write");
        fs::write(dir.path().join("db"), "good").expect("write");
        assert_eq!(remove_stale_temp_files(dir.path()).expect("clean"), 1);
        assert!(dir.path().join("db").exists());
        assert!(!dir.path().join(".db.keyhole-tmp-12-ab").exists());
    }
}
