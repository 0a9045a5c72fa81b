//! Tells the app that a secret file changed, by signalling its processes.
//!
//! The agent shares the pod's process namespace (`shareProcessNamespace:
//! true`), so it finds the app's processes by name under `/proc` and sends
//! them a signal such as `SIGHUP`. The lookup is done here, without a shell
//! or `pkill`, so it is exact and needs nothing from the image.
//!
//! A process matches a name when its `comm` equals it, or when the last path
//! component of its `argv[0]` does: the kernel truncates `comm` to 15 bytes,
//! so longer names are only found through the command line. Matching is
//! exact, so `nginx` never signals `nginx-exporter`, and the agent never
//! signals itself.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
pub use nix::sys::signal::Signal;
use nix::sys::signal::kill;
use nix::unistd::Pid;

/// The signals a reload can send, by their name without the `SIG` prefix.
const SIGNALS: [(&str, Signal); 10] = [
    ("HUP", Signal::SIGHUP),
    ("INT", Signal::SIGINT),
    ("QUIT", Signal::SIGQUIT),
    ("KILL", Signal::SIGKILL),
    ("USR1", Signal::SIGUSR1),
    ("USR2", Signal::SIGUSR2),
    ("ALRM", Signal::SIGALRM),
    ("TERM", Signal::SIGTERM),
    ("CONT", Signal::SIGCONT),
    ("WINCH", Signal::SIGWINCH),
];

/// Errors finding or signalling processes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configured signal is not one keyhole sends.
    #[error(
        "unknown signal {name:?}: expected one of SIGHUP, SIGINT, SIGQUIT, SIGKILL, SIGUSR1, \
         SIGUSR2, SIGALRM, SIGTERM, SIGCONT, SIGWINCH (the SIG prefix is optional)"
    )]
    UnknownSignal {
        /// What the configuration said.
        name: String,
    },
    /// The configured process name is empty.
    #[error("the name of the process to signal is empty")]
    EmptyName,
    /// The process table could not be listed.
    #[error("listing processes in {}: {source}", path.display())]
    ListProcesses {
        /// The `/proc` directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A matching process could not be signalled, e.g. because it belongs to
    /// another user and the agent lacks `CAP_KILL`.
    #[error("sending {} to process {pid} ({name}): {source}", signal.as_str())]
    Send {
        /// The signal.
        signal: Signal,
        /// The process id.
        pid: i32,
        /// The name it was matched by.
        name: String,
        /// The operating system's error.
        source: Errno,
    },
}

/// Result of this module's functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Parses a signal name: `SIGHUP` or `HUP`, in any case.
pub fn parse_signal(name: &str) -> Result<Signal> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS
        .iter()
        .find(|(known, _)| *known == bare)
        .map(|&(_, signal)| signal)
        .ok_or_else(|| Error::UnknownSignal {
            name: name.to_owned(),
        })
}

/// Sends `signal` to every process named `name` except the agent itself, and
/// returns how many were signalled.
///
/// Processes that exit while this runs are skipped. When some process cannot
/// be signalled, the others still are and the first failure is returned.
pub fn signal_processes(signal: Signal, name: &str) -> Result<usize> {
    let own_pid = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    let mut sent = 0;
    let mut failure = None;
    for pid in matching_pids(Path::new("/proc"), name, own_pid)? {
        match kill(Pid::from_raw(pid), signal) {
            Ok(()) => sent += 1,
            Err(Errno::ESRCH) => {}
            Err(source) => {
                failure.get_or_insert(Error::Send {
                    signal,
                    pid,
                    name: name.to_owned(),
                    source,
                });
            }
        }
    }
    failure.map_or(Ok(sent), Err)
}

/// The ids of the processes under `proc_root` named `name`, in ascending
/// order, leaving out `own_pid`.
fn matching_pids(proc_root: &Path, name: &str, own_pid: i32) -> Result<Vec<i32>> {
    if name.is_empty() {
        return Err(Error::EmptyName);
    }
    let entries = fs::read_dir(proc_root).map_err(|source| Error::ListProcesses {
        path: proc_root.to_owned(),
        source,
    })?;
    let mut pids: Vec<i32> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            (pid != own_pid && is_named(&entry.path(), name)).then_some(pid)
        })
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Whether the process whose `/proc` entry is `dir` is named `name`. A
/// process that is gone, or whose files cannot be read, is not.
fn is_named(dir: &Path, name: &str) -> bool {
    let comm = fs::read(dir.join("comm")).unwrap_or_default();
    if comm.strip_suffix(b"\n").unwrap_or(&comm) == name.as_bytes() {
        return true;
    }
    let cmdline = fs::read(dir.join("cmdline")).unwrap_or_default();
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let basename = argv0.rsplit(|&b| b == b'/').next().unwrap_or_default();
    basename == name.as_bytes()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    use super::*;

    /// A fake `/proc` entry for `pid` with the given `comm` and `cmdline`.
    fn mk_proc(root: &Path, pid: i32, comm: &str, cmdline: &[&str]) {
        let dir = root.join(pid.to_string());
        fs::create_dir_all(&dir).expect("create proc dir");
        fs::write(dir.join("comm"), format!("{comm}\n")).expect("write comm");
        let mut args = cmdline.join("\0");
        if !cmdline.is_empty() {
            args.push('\0');
        }
        fs::write(dir.join("cmdline"), args).expect("write cmdline");
    }

    /// Starts `sleep` under the name `name` (a symlink), which becomes its
    /// `comm` and `argv[0]`. The name is unique to this test process, so no
    /// other process on the machine is signalled.
    fn spawn_named_sleep(dir: &Path, name: &str) -> Child {
        let sleep = which("sleep");
        let link = dir.join(name);
        symlink(sleep, &link).expect("symlink sleep");
        let child = Command::new(&link).arg("30").spawn().expect("spawn sleep");
        // `spawn` returns once the child has switched to its new image, a
        // moment before the kernel sets its `comm` and command line.
        let proc_dir = PathBuf::from(format!("/proc/{}", child.id()));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !is_named(&proc_dir, name) {
            assert!(Instant::now() < deadline, "{name} never showed in /proc");
            std::thread::sleep(Duration::from_millis(1));
        }
        child
    }

    fn which(program: &str) -> PathBuf {
        ["/usr/bin", "/bin"]
            .iter()
            .map(|dir| Path::new(dir).join(program))
            .find(|path| path.exists())
            .expect("program installed")
    }

    #[test]
    fn parses_signal_names_with_or_without_sig_prefix() {
        let cases = [
            ("SIGHUP", Signal::SIGHUP),
            ("HUP", Signal::SIGHUP),
            ("sighup", Signal::SIGHUP),
            ("SIGUSR1", Signal::SIGUSR1),
            ("USR2", Signal::SIGUSR2),
            ("SIGTERM", Signal::SIGTERM),
            ("INT", Signal::SIGINT),
            ("SIGQUIT", Signal::SIGQUIT),
            ("WINCH", Signal::SIGWINCH),
        ];
        for (name, signal) in cases {
            assert_eq!(parse_signal(name).expect(name), signal, "{name}");
        }
    }

    #[test]
    fn unknown_signal_error_names_what_was_written() {
        let err = parse_signal("SIGHOP").expect_err("not a signal");
        assert_eq!(
            err.to_string(),
            "unknown signal \"SIGHOP\": expected one of SIGHUP, SIGINT, SIGQUIT, SIGKILL, \
             SIGUSR1, SIGUSR2, SIGALRM, SIGTERM, SIGCONT, SIGWINCH (the SIG prefix is optional)"
        );
        assert!(parse_signal("1").is_err());
        assert!(parse_signal("").is_err());
    }

    #[test]
    fn matches_processes_by_comm_exactly() {
        let root = tempfile::tempdir().expect("tempdir");
        mk_proc(
            root.path(),
            10,
            "nginx",
            &["nginx: master process /usr/sbin/nginx"],
        );
        mk_proc(root.path(), 11, "nginx", &["nginx: worker process"]);
        mk_proc(root.path(), 12, "nginx-exporter", &["/bin/nginx-exporter"]);
        mk_proc(root.path(), 13, "ngin", &["ngin"]);
        mk_proc(root.path(), 2, "kthreadd", &[]);
        let pids = matching_pids(root.path(), "nginx", 1).expect("list");
        assert_eq!(pids, [10, 11]);
    }

    #[test]
    fn matches_long_names_by_argv0_since_comm_is_truncated() {
        let root = tempfile::tempdir().expect("tempdir");
        mk_proc(
            root.path(),
            40,
            "payment-gateway",
            &["/usr/local/bin/payment-gateway-server", "--port", "8080"],
        );
        mk_proc(
            root.path(),
            41,
            "payment-gateway",
            &["/usr/local/bin/payment-gateway"],
        );
        let pids = matching_pids(root.path(), "payment-gateway-server", 1).expect("list");
        assert_eq!(pids, [40]);
    }

    #[test]
    fn never_matches_its_own_process() {
        let root = tempfile::tempdir().expect("tempdir");
        mk_proc(root.path(), 7, "keyhole-agent", &["/keyhole-agent"]);
        mk_proc(root.path(), 8, "keyhole-agent", &["/keyhole-agent"]);
        let pids = matching_pids(root.path(), "keyhole-agent", 7).expect("list");
        assert_eq!(pids, [8]);
    }

    #[test]
    fn skips_entries_that_are_not_processes_or_are_gone() {
        let root = tempfile::tempdir().expect("tempdir");
        mk_proc(root.path(), 5, "app", &["app"]);
        fs::create_dir(root.path().join("6")).expect("process that exited");
        fs::create_dir(root.path().join("sys")).expect("non-process entry");
        fs::write(root.path().join("uptime"), "1.0 2.0\n").expect("file entry");
        let pids = matching_pids(root.path(), "app", 1).expect("list");
        assert_eq!(pids, [5]);
    }

    #[test]
    fn empty_name_is_an_error() {
        let err = matching_pids(Path::new("/proc"), "", 1).expect_err("empty name");
        assert_eq!(
            err.to_string(),
            "the name of the process to signal is empty"
        );
    }

    #[test]
    fn missing_proc_is_an_error_naming_the_directory() {
        let err = matching_pids(Path::new("/nonexistent/proc"), "app", 1).expect_err("no proc");
        assert!(
            err.to_string()
                .starts_with("listing processes in /nonexistent/proc: "),
            "{err}"
        );
    }

    #[test]
    fn signals_a_real_process_found_by_comm() {
        let dir = tempfile::tempdir().expect("tempdir");
        let name = format!("kh-hup-{}", std::process::id());
        let mut child = spawn_named_sleep(dir.path(), &name);

        let sent = signal_processes(Signal::SIGHUP, &name).expect("signal");

        let status = child.wait().expect("wait");
        assert_eq!(sent, 1);
        assert_eq!(status.signal(), Some(Signal::SIGHUP as i32));
    }

    #[test]
    fn signals_a_real_process_with_a_long_name_found_by_argv0() {
        let dir = tempfile::tempdir().expect("tempdir");
        let name = format!("keyhole-reload-test-{}", std::process::id());
        let mut child = spawn_named_sleep(dir.path(), &name);

        let sent = signal_processes(Signal::SIGUSR1, &name).expect("signal");

        let status = child.wait().expect("wait");
        assert_eq!(sent, 1);
        assert_eq!(status.signal(), Some(Signal::SIGUSR1 as i32));
    }

    #[test]
    fn real_proc_lookup_leaves_out_its_own_process() {
        let own_pid = i32::try_from(std::process::id()).expect("pid fits");
        let comm = fs::read_to_string("/proc/self/comm").expect("read comm");
        let comm = comm.trim_end();

        let with_self = matching_pids(Path::new("/proc"), comm, 0).expect("list");
        let without_self = matching_pids(Path::new("/proc"), comm, own_pid).expect("list");

        assert!(with_self.contains(&own_pid), "{with_self:?}");
        assert!(!without_self.contains(&own_pid), "{without_self:?}");
    }

    #[test]
    fn no_matching_process_signals_nothing() {
        let name = format!("kh-none-{}", std::process::id());
        assert_eq!(signal_processes(Signal::SIGHUP, &name).expect("signal"), 0);
    }
}
