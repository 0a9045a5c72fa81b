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
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt, fchown};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Group, Uid, User};
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
    /// The file's `user` or `group` names no one on this system.
    #[error("{}: {message}", path.display())]
    Owner {
        /// The destination file.
        path: PathBuf,
        /// consul-template's words for the failed lookup.
        message: String,
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

/// Who a written file belongs to. `None` leaves that part as the agent
/// creates files: its own user and group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owner {
    /// The file's user.
    pub uid: Option<Uid>,
    /// The file's group.
    pub gid: Option<Gid>,
}

impl Owner {
    /// A template's `user` and `group`, each a name or a numeric id; the
    /// error is consul-template's.
    pub fn lookup(user: Option<&str>, group: Option<&str>) -> std::result::Result<Self, String> {
        let failed = |what: &'static str| move |e| format!("failed looking up {what}: {e}");
        Ok(Self {
            uid: user.map(user_id).transpose().map_err(failed("user"))?,
            gid: group.map(group_id).transpose().map_err(failed("group"))?,
        })
    }
}

/// The id of the user `name`, or `name` itself when it is a number.
pub fn user_id(name: &str) -> std::result::Result<Uid, String> {
    match User::from_name(name) {
        Ok(Some(user)) => Ok(user.uid),
        _ => name
            .parse()
            .map(Uid::from_raw)
            .map_err(|_| format!("user: unknown user {name}")),
    }
}

/// The id of the group `name`, or `name` itself when it is a number.
pub fn group_id(name: &str) -> std::result::Result<Gid, String> {
    match Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid),
        _ => name
            .parse()
            .map(Gid::from_raw)
            .map_err(|_| format!("group: unknown group {name}")),
    }
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
    let destination = Destination {
        mode,
        owner: Owner::default(),
        create_dirs,
        backup: false,
    };
    destination.replace(path, contents)
}

/// How [`Destination::replace`] writes a file: a template's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination {
    /// The file's mode.
    pub mode: u32,
    /// The file's owner; it is set before the file takes the destination's
    /// name, and corrected on a file whose bytes are already right.
    pub owner: Owner,
    /// Create the destination's missing directories.
    pub create_dirs: bool,
    /// When the contents change, keep the file they replace as
    /// `<path>.bak`, as consul-template keeps it: a second name for the same
    /// file, so with its mode, and only the latest one.
    pub backup: bool,
}

impl Destination {
    /// [`replace`] with these settings.
    pub fn replace(&self, path: &Path, contents: &[u8]) -> Result<Outcome> {
        let dir = parent(path);
        if !dir.is_dir() {
            if !self.create_dirs {
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
            set_owner(&current, path, self.owner)?;
            set_mode(&current, path, self.mode)?;
            return Ok(Outcome::Unchanged);
        }

        let temp = temp_path(path);
        let written = write_temp(&temp, contents, self.mode, self.owner).and_then(|()| {
            if self.backup {
                keep_backup(path);
            }
            fs::rename(&temp, path)
                .map_err(io_error(path, "rename temporary file over destination"))
        });
        if let Err(err) = written {
            // The destination still holds its previous contents; don't leave
            // the half-done temporary file beside it.
            let _ = fs::remove_file(&temp);
            return Err(err);
        }
        sync_dir(dir)?;
        Ok(Outcome::Written)
    }
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

fn write_temp(temp: &Path, contents: &[u8], mode: u32, owner: Owner) -> Result<()> {
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
    set_owner(&file, temp, owner)?;
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

/// Gives the open `file` (at `path`) `owner` where it differs. Before the
/// mode: a change of owner clears the set-user-id and set-group-id bits.
fn set_owner(file: &File, path: &Path, owner: Owner) -> Result<()> {
    if owner == Owner::default() {
        return Ok(());
    }
    let meta = file.metadata().map_err(io_error(path, "read file owner"))?;
    let differs = owner.uid.is_some_and(|uid| uid.as_raw() != meta.uid())
        || owner.gid.is_some_and(|gid| gid.as_raw() != meta.gid());
    if differs {
        fchown(file, owner.uid.map(Uid::as_raw), owner.gid.map(Gid::as_raw))
            .map_err(io_error(path, "set file owner"))?;
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
    fn gives_the_file_its_owner_and_restores_it_on_unchanged_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let destination = Destination {
            mode: 0o640,
            owner: Owner {
                uid: Some(Uid::from_raw(1000)),
                gid: Some(Gid::from_raw(1001)),
            },
            create_dirs: false,
            backup: false,
        };
        if !Uid::effective().is_root() {
            let err = destination
                .replace(&path, b"x")
                .expect_err("only root gives files away");
            assert!(err.to_string().contains("set file owner"), "{err}");
            assert!(!path.exists(), "nothing is left at the destination");
            return;
        }
        let owner = |path: &Path| {
            let meta = fs::metadata(path).expect("stat");
            (meta.uid(), meta.gid(), meta.mode() & 0o7777)
        };
        assert_eq!(
            destination.replace(&path, b"x").expect("written"),
            Outcome::Written
        );
        assert_eq!(owner(&path), (1000, 1001, 0o640));
        std::os::unix::fs::chown(&path, Some(0), Some(0)).expect("chown");
        assert_eq!(
            destination.replace(&path, b"x").expect("kept"),
            Outcome::Unchanged
        );
        assert_eq!(owner(&path), (1000, 1001, 0o640));
        let agents_own = Destination {
            owner: Owner::default(),
            ..destination
        };
        assert_eq!(
            agents_own.replace(&path, b"y").expect("written"),
            Outcome::Written
        );
        assert_eq!(owner(&path), (0, 0, 0o640), "created by the agent, as root");
    }

    #[test]
    fn looks_up_owners_by_name_or_number_with_consul_templates_errors() {
        let root = Owner::lookup(Some("root"), Some("0")).expect("root exists");
        assert_eq!(root.uid, Some(Uid::from_raw(0)));
        assert_eq!(root.gid, Some(Gid::from_raw(0)));
        assert_eq!(
            Owner::lookup(Some("4242"), None).expect("a number"),
            Owner {
                uid: Some(Uid::from_raw(4242)),
                gid: None
            }
        );
        assert_eq!(
            Owner::lookup(None, Some("no-such-group")).expect_err("unknown"),
            "failed looking up group: group: unknown group no-such-group"
        );
        assert_eq!(
            Owner::lookup(Some("no-such-user"), None).expect_err("unknown"),
            "failed looking up user: user: unknown user no-such-user"
        );
    }

    #[test]
    fn a_backup_keeps_the_contents_replaced_last_with_their_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let bak = dir.path().join("db.bak");
        let replace_keeping_backup = |path: &Path, contents: &[u8], mode, create_dirs| {
            let destination = Destination {
                mode,
                owner: Owner::default(),
                create_dirs,
                backup: true,
            };
            destination.replace(path, contents)
        };
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
