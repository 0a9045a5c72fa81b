//! consul-template's functions on the agent's files: `file` reads one,
//! `writeToFile` writes one. Relative paths are against the agent's
//! working directory.

use std::fs::{self, OpenOptions, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _, chown};
use std::path::{Component, Path, PathBuf};

use nix::unistd::{getgid, getuid};

use super::super::value::Value;
use super::args::{FnResult, owned, string_arg};
use crate::write::{group_id, user_id};

/// `file path`: the file's content; an empty path gives an empty string.
/// With a `sandbox`, the path, its symbolic links followed, must lie inside
/// it, and the file found there is the one read.
pub(super) fn file<'a>(sandbox: Option<&Path>, args: &[Value<'a>]) -> FnResult<'a> {
    let path = string_arg(&args[0])?;
    if path.is_empty() {
        return Ok(owned(String::new()));
    }
    let bytes = match sandbox {
        None => fs::read(path),
        Some(sandbox) => {
            let resolved = fs::canonicalize(path).map_err(|e| format!("file({path}): {e}"))?;
            if !resolved.starts_with(absolute(sandbox)) {
                return Err(format!("'{path}' is outside of sandbox"));
            }
            fs::read(resolved)
        }
    }
    .map_err(|e| format!("file({path}): {e}"))?;
    Ok(owned(String::from_utf8_lossy(&bytes).into_owned()))
}

/// `dir` made absolute against the working directory and without `.` or
/// `..` components, by its text alone as Go's `filepath.Rel` compares it:
/// consul-template does not follow the sandbox's own symbolic links.
fn absolute(dir: &Path) -> PathBuf {
    let joined = std::env::current_dir().unwrap_or_default().join(dir);
    let mut clean = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    clean
}

/// `writeToFile path owner group mode [flags] content`: writes `content` to
/// `path` and renders nothing. `flags` may hold `append` (add to the end
/// instead of replacing) and `newline` (end with a newline). An empty owner
/// or group keeps the agent's own; either is a name or a numeric id. The
/// file gets `mode` (octal); a replaced file's directories are created.
pub(super) fn write_to_file<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let [path, owner, group, mode, rest @ ..] = args else {
        return Err("writeToFile: too few arguments".into());
    };
    let (path, owner, group) = (string_arg(path)?, string_arg(owner)?, string_arg(group)?);
    // Go's quirk: flags count only when exactly two arguments follow the
    // mode; the content is always the last.
    let flags = match rest {
        [flags, _] => string_arg(flags)?,
        _ => "",
    };
    let content = string_arg(rest.last().unwrap_or(&Value::Nil))?;
    let mode = string_arg(mode)?;
    let mode = u32::from_str_radix(mode, 8)
        .map_err(|_| format!("strconv.ParseUint: parsing {mode:?}: invalid syntax"))?;

    let failed = |e: std::io::Error| format!("writeToFile {path}: {e}");
    let mut file = if flags.contains("append") {
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(mode)
            .open(path)
    } else {
        if let Some(dir) = Path::new(path).parent()
            && !dir.as_os_str().is_empty()
        {
            fs::create_dir_all(dir).map_err(failed)?;
        }
        fs::File::create(path)
    }
    .map_err(failed)?;
    file.write_all(content.as_bytes()).map_err(failed)?;
    if flags.contains("newline") {
        file.write_all(b"\n").map_err(failed)?;
    }
    if !owner.is_empty() || !group.is_empty() {
        let uid = if owner.is_empty() {
            getuid()
        } else {
            user_id(owner)?
        };
        let gid = if group.is_empty() {
            getgid()
        } else {
            group_id(group)?
        };
        chown(path, Some(uid.as_raw()), Some(gid.as_raw())).map_err(failed)?;
    }
    fs::set_permissions(path, Permissions::from_mode(mode)).map_err(failed)?;
    Ok(owned(String::new()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::super::super::value::Value;
    use super::write_to_file;

    fn write(args: &[&'static str]) -> String {
        let args: Vec<Value<'_>> = args.iter().map(|s| Value::Str(s)).collect();
        match write_to_file(&args) {
            Ok(v) => v.as_str().unwrap_or_default().into_owned(),
            Err(e) => panic!("writeToFile failed: {e}"),
        }
    }

    #[test]
    fn write_to_file_replaces_appends_and_sets_the_mode() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("new/dir/out.txt");
        let path: &'static str = path.to_str().expect("utf-8").to_owned().leak();
        assert_eq!(write(&[path, "", "", "0600", "first"]), "");
        write(&[path, "", "", "0640", "append,newline", "second"]);
        write(&[path, "", "", "0640", "append", "third"]);
        assert_eq!(
            std::fs::read_to_string(path).expect("read"),
            "firstsecond\nthird"
        );
        let mode = std::fs::metadata(path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        write(&[path, "", "", "0600", "replaced"]);
        assert_eq!(std::fs::read_to_string(path).expect("read"), "replaced");
    }
}
