//! `cargo xtask images`: the keyhole-injector and keyhole-agent container images.
//!
//! Both images are `FROM scratch` (`images/*/Containerfile`): a static binary of this
//! machine's architecture, built here, plus the files staged beside it. Nothing runs inside
//! the build, so no base image is pulled and no emulator is needed. The same commit gives
//! the same image bytes: the binaries are built with paths remapped, and every timestamp in
//! the image is `SOURCE_DATE_EPOCH` (the commit's time unless set).

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Args;

/// The tools that vault-k8s users' `agent-inject-command` values call, and the few a
/// shell script around them needs. Each is a link to busybox in the agent image.
const AGENT_TOOLS: &[&str] = &[
    "[", "basename", "cat", "chmod", "cp", "cut", "date", "dirname", "echo", "env", "false",
    "grep", "head", "id", "kill", "killall", "ls", "mkdir", "mv", "pgrep", "pidof", "pkill",
    "printf", "ps", "rm", "sed", "sh", "sleep", "tail", "test", "touch", "tr", "true", "wc",
    "wget", "xargs",
];

/// Where Debian's ca-certificates keeps the bundle both images carry.
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// `cargo xtask images`.
#[derive(Debug, Args)]
pub(crate) struct Images {
    /// Container engine: podman or docker [default: podman if installed, else docker].
    #[arg(long)]
    engine: Option<String>,
    /// Registry and owner the image names start with.
    #[arg(long, default_value = "ghcr.io/keyhole-dev")]
    repository: String,
    /// Image tag [default: the workspace version, which the chart and the injector's
    /// --agent-image default to].
    #[arg(long)]
    tag: Option<String>,
    /// A statically linked busybox for the agent image (Debian: busybox-static).
    #[arg(long, default_value = "/bin/busybox")]
    busybox: PathBuf,
}

/// One image: its name and what goes into its root file system besides the binary.
struct Image {
    name: &'static str,
    busybox: bool,
}

const IMAGES: [Image; 2] = [
    Image {
        name: "keyhole-injector",
        busybox: false,
    },
    Image {
        name: "keyhole-agent",
        busybox: true,
    },
];

impl Images {
    /// Builds the static binaries, then both images, and prints their names and sizes.
    pub(crate) fn run(self, root: &Path) -> Result<()> {
        let Self {
            engine,
            repository,
            tag,
            busybox,
        } = self;
        let engine = match engine {
            Some(engine) => engine,
            None => ["podman", "docker"]
                .into_iter()
                .find(|engine| on_path(engine))
                .context("neither podman nor docker is installed")?
                .to_owned(),
        };
        let tag = tag.unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned());
        let epoch = source_date_epoch(root)?;
        let revision = git(root, &["rev-parse", "HEAD"])?;
        let target = host_target()?;

        println!("Building static keyhole binaries for {target} (release)");
        let bin_dir = build_static(root, &target)?;

        for image in IMAGES {
            let Image {
                name,
                busybox: with_busybox,
            } = image;
            let context = root.join("target/images").join(name);
            stage(
                root,
                &context,
                name,
                &bin_dir.join(name),
                with_busybox.then_some(busybox.as_path()),
            )?;
            let reference = format!("{repository}/{name}:{tag}");
            println!("Building {reference} with {engine}");
            let folder = name.trim_start_matches("keyhole-");
            let mut build = Command::new(&engine);
            build
                .arg("build")
                .arg("--file")
                .arg(root.join("images").join(folder).join("Containerfile"))
                .args(["--tag", &reference])
                .args([
                    "--build-arg",
                    &format!("SOURCE={}", env!("CARGO_PKG_REPOSITORY")),
                ])
                .args([
                    "--build-arg",
                    &format!("VERSION={}", env!("CARGO_PKG_VERSION")),
                ])
                .args(["--build-arg", &format!("REVISION={revision}")])
                .env("SOURCE_DATE_EPOCH", &epoch);
            if engine.ends_with("podman") {
                // Sets the image's creation time and every file time in its layer. No
                // cache: podman 4.3 reuses a cached LABEL step whose build args changed,
                // which would keep an old revision; a build takes a second anyway.
                build.args(["--timestamp", &epoch, "--no-cache"]);
            } else {
                build.args(["--build-arg", &format!("SOURCE_DATE_EPOCH={epoch}")]);
            }
            run(build.arg(&context))?;
            let size = output(Command::new(&engine).args([
                "image",
                "inspect",
                "--format",
                "{{.Size}}",
                &reference,
            ]))?;
            let bytes: u64 = size
                .parse()
                .with_context(|| format!("{engine} reported size {size:?}"))?;
            println!(
                "      {reference}: {:.1} MB uncompressed",
                bytes as f64 / 1e6
            );
        }
        Ok(())
    }
}

/// The commit's time, unless `SOURCE_DATE_EPOCH` is set.
fn source_date_epoch(root: &Path) -> Result<String> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(epoch) => Ok(epoch),
        Err(_) => git(root, &["log", "-1", "--format=%ct"]),
    }
}

/// This machine's target triple: the one target whose standard library is installed.
fn host_target() -> Result<String> {
    let version = output(Command::new("rustc").arg("-vV"))?;
    version
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV printed no host line")
}

/// Builds both binaries statically linked, and returns the directory they are in.
///
/// An explicit `--target` keeps the static flags away from build scripts and proc
/// macros, which must stay dynamic, and keeps this build apart from the debug one in
/// `target/debug`.
fn build_static(root: &Path, target: &str) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    // Paths compiled into panic messages name the checkout and the registry; remapped,
    // the binary is the same wherever the commit is checked out.
    let flags = [
        "-Ctarget-feature=+crt-static".to_owned(),
        format!("--remap-path-prefix={}=/keyhole", root.display()),
        format!("--remap-path-prefix={}=/cargo", cargo_home.display()),
    ]
    .join("\x1f");
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--locked", "--bins"])
        .args(["--target", target])
        .args(["-p", "keyhole-agent", "-p", "keyhole-injector"])
        .env("CARGO_ENCODED_RUSTFLAGS", flags)
        .env_remove("RUSTFLAGS")
        .current_dir(root);
    crate::clear_cargo_run_env(&mut command);
    run(&mut command)?;
    Ok(root.join("target").join(target).join("release"))
}

/// Fills `context` with `rootfs/`: the binary in `/bin`, busybox and its links when
/// given, the CA bundle, and the files of `images/<folder>/` other than the Containerfile
/// in `/etc`. Modes are set here, so the umask of the build machine does not matter.
fn stage(
    root: &Path,
    context: &Path,
    name: &str,
    binary: &Path,
    busybox: Option<&Path>,
) -> Result<()> {
    if context.exists() {
        std::fs::remove_dir_all(context)
            .with_context(|| format!("removing {}", context.display()))?;
    }
    let rootfs = context.join("rootfs");
    let bin = rootfs.join("bin");
    let certs = rootfs.join("etc/ssl/certs");
    std::fs::create_dir_all(&bin)?;
    std::fs::create_dir_all(&certs)?;
    install(binary, &bin.join(name), 0o755)?;
    if let Some(busybox) = busybox {
        install(busybox, &bin.join("busybox"), 0o755).with_context(|| {
            format!("the agent image needs a static busybox at {} (Debian: apt-get install busybox-static)", busybox.display())
        })?;
        for tool in AGENT_TOOLS {
            symlink("busybox", bin.join(tool))?;
        }
    }
    install(
        Path::new(CA_BUNDLE),
        &certs.join("ca-certificates.crt"),
        0o644,
    )
    .context("the images carry the CA bundle (Debian: apt-get install ca-certificates)")?;
    let folder = root
        .join("images")
        .join(name.trim_start_matches("keyhole-"));
    for file in ["passwd", "group"] {
        install(&folder.join(file), &rootfs.join("etc").join(file), 0o644)?;
    }
    for dir in [
        &rootfs,
        &rootfs.join("etc"),
        &rootfs.join("etc/ssl"),
        &certs,
        &bin,
    ] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

fn install(from: &Path, to: &Path, mode: u32) -> Result<()> {
    std::fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn git(root: &Path, args: &[&str]) -> Result<String> {
    output(Command::new("git").args(args).current_dir(root))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

fn run(command: &mut Command) -> Result<()> {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .with_context(|| format!("cannot run {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

/// Runs `command` and returns its standard output, trimmed.
fn output(command: &mut Command) -> Result<String> {
    let shown = format!("{command:?}");
    let out = command
        .output()
        .with_context(|| format!("cannot run {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}
