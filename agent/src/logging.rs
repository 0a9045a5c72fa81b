//! The agent's log: level, format and `log_file`, as Vault Agent sets them.
//!
//! Logging starts before the config is read, so that its errors and warnings
//! are logged, with the level and format of the flags and `VAULT_LOG_*`
//! variables. Once the config is read, [`Logger::apply`] swaps in its
//! `log_level`, `log_format` and `log_file` where no flag or variable
//! overrides them, as Vault Agent's precedence is.
//!
//! With `log_file`, every line goes to stderr and to the file. The file
//! rotates as Vault Agent's does: once it holds `log_rotate_bytes` or is
//! `log_rotate_duration` old, it is renamed `<name>-<unix nanoseconds><ext>`
//! and a new one opened; `log_rotate_max_files` bounds the renamed ones kept.
//! Written here because tracing-appender rotates only by time and names the
//! files by date, while tools that collect Vault Agent's logs follow its
//! names.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

use crate::config::{self, Choice, LogFormat, LogLevel};

/// What writes the log lines: a filter and a formatter, swapped as a whole.
type Output = Box<dyn Layer<Registry> + Send + Sync>;

/// The process's logger, whose settings can change once.
pub struct Logger {
    handle: reload::Handle<Output, Registry>,
}

impl Logger {
    /// Starts logging to stderr at `level` in `format`.
    pub fn init(level: LogLevel, format: LogFormat) -> anyhow::Result<Self> {
        let (layer, handle) = reload::Layer::new(output(level, format, None)?);
        tracing_subscriber::registry()
            .with(layer)
            .try_init()
            .context("setting up logging")?;
        Ok(Self { handle })
    }

    /// Logs at `level` in `format` from now on, to stderr and, when `file`
    /// is given, to that file too.
    pub fn apply(
        &self,
        level: LogLevel,
        format: LogFormat,
        file: Option<&config::LogFile>,
    ) -> anyhow::Result<()> {
        let file = file
            .map(|settings| {
                RotatingFile::open(settings.clone())
                    .with_context(|| format!("log_file {}", settings.path.display()))
            })
            .transpose()?;
        let output = output(level, format, file.map(|f| Arc::new(Mutex::new(f))))?;
        self.handle
            .reload(output)
            .context("changing the log settings")
    }
}

fn output(
    level: LogLevel,
    format: LogFormat,
    file: Option<Arc<Mutex<RotatingFile>>>,
) -> anyhow::Result<Output> {
    let name = level.name();
    let filter = EnvFilter::try_new(name).with_context(|| format!("invalid log level {name:?}"))?;
    // Colours only on a terminal, and never into a file.
    let ansi = file.is_none() && io::stderr().is_terminal();
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(Lines { file });
    Ok(match format {
        LogFormat::Standard => Box::new(filter.and_then(lines)),
        LogFormat::Json => Box::new(filter.and_then(lines.json())),
    })
}

/// Writes each log line to stderr and to the log file, if any.
#[derive(Clone)]
struct Lines {
    file: Option<Arc<Mutex<RotatingFile>>>,
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Lines;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Write for Lines {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        if let Some(file) = &self.file {
            // A full disk must not stop the agent, nor its stderr log.
            let _ = file
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .write_line(line);
        }
        io::stderr().write_all(line)?;
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// `log_file`, rotated by size and age as Vault Agent rotates it.
struct RotatingFile {
    settings: config::LogFile,
    file: File,
    opened: Instant,
    written: u64,
}

impl RotatingFile {
    /// Removes the rotated files past `log_rotate_max_files` and opens the
    /// file for appending.
    fn open(settings: config::LogFile) -> io::Result<Self> {
        prune(&settings)?;
        let file = append(&settings.path)?;
        Ok(Self {
            settings,
            file,
            opened: Instant::now(),
            written: 0,
        })
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let full = self.settings.rotate_bytes > 0 && self.written >= self.settings.rotate_bytes;
        if full || self.opened.elapsed() >= self.settings.rotate_duration {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.written += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let (dir, stem, ext) = parts(&self.settings.path);
        std::fs::rename(
            &self.settings.path,
            dir.join(format!("{stem}-{nanos}{ext}")),
        )?;
        prune(&self.settings)?;
        self.file = append(&self.settings.path)?;
        self.opened = Instant::now();
        self.written = 0;
        Ok(())
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// The directory, the name without its extension, and the extension of
/// rotated files (`.log` when the log file has none).
fn parts(path: &Path) -> (PathBuf, String, String) {
    let dir = path.parent().map(Path::to_owned).unwrap_or_default();
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path.extension().map_or_else(
        || ".log".to_owned(),
        |e| format!(".{}", e.to_string_lossy()),
    );
    (dir, stem, ext)
}

/// Keeps the newest `log_rotate_max_files` rotated files: all of them when
/// it is 0, none when it is negative.
fn prune(settings: &config::LogFile) -> io::Result<()> {
    let keep = settings.rotate_max_files;
    if keep == 0 {
        return Ok(());
    }
    let (dir, stem, ext) = parts(&settings.path);
    let prefix = format!("{stem}-");
    let listed = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir.as_path()
    };
    let mut rotated: Vec<PathBuf> = match std::fs::read_dir(listed) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(&prefix) && name.ends_with(&ext))
            .map(|name| dir.join(name))
            .collect(),
        // The file and its directory are created at the first open.
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    // Names differ only in their nanoseconds: in name order, oldest first.
    rotated.sort();
    let excess = match usize::try_from(keep) {
        Ok(keep) => rotated.len().saturating_sub(keep),
        Err(_) => rotated.len(),
    };
    rotated[..excess].iter().try_for_each(std::fs::remove_file)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn settings(path: PathBuf, bytes: u64, max_files: i64) -> config::LogFile {
        config::LogFile {
            path,
            rotate_bytes: bytes,
            rotate_duration: Duration::from_secs(3600),
            rotate_max_files: max_files,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn rotates_by_size_into_named_files_and_keeps_the_newest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.log");
        let mut file = RotatingFile::open(settings(path.clone(), 10, 2)).expect("opens");
        for line in ["one 56789\n", "two 56789\n", "three 789\n", "four 6789\n"] {
            file.write_line(line.as_bytes()).expect("writes");
            // Rotated names carry nanoseconds; keep them apart.
            std::thread::sleep(Duration::from_millis(2));
        }
        let names = names(dir.path());
        assert_eq!(names.len(), 3, "{names:?}");
        assert_eq!(names[2], "agent.log");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "four 6789\n");
        for (name, expected) in names[..2].iter().zip(["two 56789\n", "three 789\n"]) {
            let nanos = name
                .strip_prefix("agent-")
                .and_then(|n| n.strip_suffix(".log"))
                .expect("agent-<nanos>.log");
            assert!(nanos.bytes().all(|b| b.is_ascii_digit()), "{name}");
            let text = std::fs::read_to_string(dir.path().join(name)).expect("read");
            assert_eq!(text, expected);
        }
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).expect("meta").permissions(),
        );
        assert_eq!(mode & 0o777, 0o640);
    }

    #[test]
    fn a_negative_max_files_keeps_no_rotated_file_and_zero_keeps_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent");
        std::fs::write(dir.path().join("agent-1.log"), "old").expect("write");
        std::fs::write(dir.path().join("other-1.log"), "not ours").expect("write");
        RotatingFile::open(settings(path.clone(), 0, 0)).expect("opens");
        assert_eq!(names(dir.path()), ["agent", "agent-1.log", "other-1.log"]);
        RotatingFile::open(settings(path, 0, -1)).expect("opens");
        assert_eq!(names(dir.path()), ["agent", "other-1.log"]);
    }
}
