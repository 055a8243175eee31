//! Running the extractor on one document, away from everything else.
//!
//! The document came from the open internet, and poppler and tesseract are large C programs, so the extractor
//! runs in a bubblewrap jail: fresh namespaces with no network, read-only system directories, an empty private
//! /tmp, only the one input file visible, rlimits on memory, CPU time, file size and open files, and a wall-clock
//! limit after which the whole process tree is killed. The worker talks to it through one JSON line per result
//! on stdout, the same line `extract --json` prints.
//!
//! Backends: `local` (bubblewrap, the default) and `none` (the same process without a jail, for machines with no
//! user namespaces; it is loudly warned about). `e2b` runs the same extractor in an E2B cloud sandbox (see `e2b.rs`).

pub mod e2b;
pub mod local;
pub mod selftest;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::config::{CompanyConfig, SandboxBackend, SandboxConfig};
use crate::extract::{ErrorCode, Extraction};

/// Results are small; anything past this is a misbehaving extractor, not an invoice.
const MAX_STDOUT: u64 = 16 * 1024 * 1024;
const MAX_STDERR: u64 = 64 * 1024;

/// Options the extractor needs besides the document.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    pub no_embedded: bool,
    pub max_pages: u32,
    pub max_image_pixels: u64,
    pub own_names: Vec<String>,
    pub own_tax_ids: Vec<String>,
}

impl ExtractOptions {
    /// The command-line arguments of `invoice-intake sandbox-run` that carry these options.
    pub fn to_args(&self) -> Vec<String> {
        // `--flag=value` in one argument, so a value that starts with '-' (a supplier's file name, say) is never
        // taken for a flag.
        let mut args =
            vec![format!("--max-pages={}", self.max_pages), format!("--max-pixels={}", self.max_image_pixels)];
        if self.no_embedded {
            args.push("--no-embedded".into());
        }
        args.extend(self.own_names.iter().map(|n| format!("--own-name={n}")));
        args.extend(self.own_tax_ids.iter().map(|t| format!("--own-tax-id={t}")));
        args
    }
}

#[derive(Debug, Clone)]
pub struct Sandbox {
    backend: SandboxBackend,
    extractor: PathBuf,
    timeout: Duration,
    memory_bytes: u64,
    cpu_secs: u64,
    options: ExtractOptions,
    /// Private directory (mode 0700) where each document is written before it is bound into the jail; removed
    /// when the last clone of the sandbox goes.
    workdir: std::sync::Arc<tempfile::TempDir>,
    /// The E2B client when `backend = "e2b"`.
    e2b: Option<e2b::E2bSandbox>,
    /// Free jail uids, when we run as root and give each jail its own (see `local::JAIL_UID_BASE`).
    uids: Option<std::sync::Arc<UidPool>>,
}

/// A fixed set of uids handed out one per running jail. The pool is one per process, and a lock file per uid
/// keeps several worker processes on one machine from lending the same uid at once.
#[derive(Debug)]
struct UidPool {
    /// Least recently returned first. A jail's processes can outlive it briefly as zombies until init reaps them
    /// (a slow init took seconds here), and they still count against that uid's RLIMIT_NPROC; lending the uid
    /// that rested longest keeps those leftovers from filling the next jail's process budget.
    free: std::sync::Mutex<std::collections::VecDeque<u32>>,
    available: tokio::sync::Semaphore,
    lock_dir: PathBuf,
}

impl UidPool {
    /// The process-wide pool.
    fn shared() -> std::sync::Arc<UidPool> {
        static POOL: std::sync::OnceLock<std::sync::Arc<UidPool>> = std::sync::OnceLock::new();
        POOL.get_or_init(|| {
            let free: std::collections::VecDeque<u32> =
                (local::JAIL_UID_BASE..local::JAIL_UID_BASE + local::JAIL_UIDS).collect();
            let lock_dir = std::env::temp_dir().join("invoice-intake-jail-uids");
            let _ = std::fs::create_dir_all(&lock_dir);
            std::sync::Arc::new(UidPool {
                available: tokio::sync::Semaphore::new(free.len()),
                free: std::sync::Mutex::new(free),
                lock_dir,
            })
        })
        .clone()
    }

    async fn take(self: &std::sync::Arc<Self>) -> JailUid {
        let permit = self.available.acquire().await.expect("the semaphore is never closed");
        permit.forget();
        loop {
            // A uid is ours when its lock file is: another worker process may hold some of them.
            let candidates: Vec<u32> = self.free.lock().expect("uid pool lock").iter().copied().collect();
            for uid in candidates {
                let Ok(file) = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(self.lock_dir.join(uid.to_string()))
                else {
                    continue;
                };
                // SAFETY: flock on a descriptor we own.
                if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                    self.free.lock().expect("uid pool lock").retain(|u| *u != uid);
                    // Whatever a crashed earlier holder left under this uid goes before we lend it.
                    local::kill_uid(uid);
                    return JailUid { uid, pool: self.clone(), _lock: file };
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A jail uid on loan. Dropping it kills whatever still runs under that uid and returns it to the pool.
struct JailUid {
    uid: u32,
    pool: std::sync::Arc<UidPool>,
    /// The held lock file; closing it releases the uid to other processes.
    _lock: std::fs::File,
}

impl Drop for JailUid {
    fn drop(&mut self) {
        // Synchronous on purpose (a short process, about a millisecond): the uid must be empty before it is
        // lent again, and nothing may outlive the worker because a background task never ran.
        local::kill_uid(self.uid);
        self.pool.free.lock().expect("uid pool lock").push_back(self.uid);
        self.pool.available.add_permits(1);
    }
}

impl Sandbox {
    pub fn new(cfg: &SandboxConfig, company: &CompanyConfig) -> Result<Sandbox> {
        let extractor = match &cfg.extractor {
            Some(p) => p.clone(),
            None => std::env::current_exe().context("cannot find our own executable to use as the extractor")?,
        };
        if !extractor.is_file() {
            bail!("sandbox.extractor {} does not exist", extractor.display());
        }
        let e2b = match cfg.backend {
            SandboxBackend::E2b => {
                let c = cfg.e2b.as_ref().context("sandbox.backend = \"e2b\" needs a [sandbox.e2b] section")?;
                Some(e2b::E2bSandbox::new(c)?)
            }
            _ => None,
        };
        let workdir = tempfile::Builder::new()
            .prefix("invoice-intake-")
            .tempdir()
            .context("creating the sandbox work directory")?;
        set_private(workdir.path());
        Ok(Sandbox {
            backend: cfg.backend,
            extractor,
            timeout: Duration::from_secs(cfg.timeout_secs),
            memory_bytes: cfg.memory_mb * 1024 * 1024,
            cpu_secs: cfg.cpu_secs,
            options: ExtractOptions {
                no_embedded: false,
                max_pages: cfg.max_pages,
                max_image_pixels: cfg.max_image_pixels,
                own_names: company.names.clone(),
                own_tax_ids: company.tax_ids.clone(),
            },
            workdir: std::sync::Arc::new(workdir),
            e2b,
            uids: local::own_uids().then(UidPool::shared),
        })
    }

    pub fn backend(&self) -> SandboxBackend {
        self.backend
    }

    pub fn with_no_embedded(mut self, no_embedded: bool) -> Self {
        self.options.no_embedded = no_embedded;
        self
    }

    /// Extract one document. Never fails: a crash, a timeout or garbage output becomes an error result with the
    /// matching code, so the caller always has something to store and to tell the supplier.
    pub async fn extract(&self, filename: &str, bytes: &[u8]) -> Vec<Extraction> {
        if let Some(e2b) = &self.e2b {
            return e2b.extract(filename, bytes, &self.options).await;
        }
        let mut results = self.run(filename, bytes).await;
        let digest = crate::extract::sha256_hex(bytes);
        for r in &mut results {
            r.file = filename.to_string();
            r.sha256 = Some(digest.clone());
        }
        results
    }

    /// The command that runs the extractor with `args` on `bytes`, in the configured backend. The returned
    /// guard holds what the command reads (descriptors, a work file) until the child has done with it.
    async fn prepare(&self, args: &[String], bytes: &[u8]) -> Result<(Command, Keep)> {
        match self.backend {
            SandboxBackend::Local => {
                let uid = match &self.uids {
                    Some(pool) => Some(pool.take().await),
                    None => None,
                };
                let doc = local::memfd("document", bytes)?;
                let [a, b] = local::seccomp_programs()?;
                let filters = [local::memfd("seccomp", &a)?, local::memfd("seccomp-clone3", &b)?];
                let limits = local::Limits { memory_bytes: self.memory_bytes, cpu_secs: self.cpu_secs };
                let mut c = local::command(&self.extractor, &doc, &filters, limits, uid.as_ref().map(|u| u.uid));
                c.arg(local::JAIL_EXTRACTOR).args(args).arg(local::JAIL_INPUT);
                Ok((c, Keep::Jail(Box::new((doc, filters, uid)))))
            }
            SandboxBackend::E2b => bail!("the E2B backend has no local command"),
            SandboxBackend::None => {
                let input = tempfile::Builder::new().prefix("doc-").tempfile_in(self.workdir.path())?;
                std::fs::write(input.path(), bytes)?;
                let mut c = Command::new(&self.extractor);
                c.args(args).arg(input.path());
                c.env_clear().env("PATH", "/usr/bin:/bin").env("OMP_THREAD_LIMIT", "1").env("LANG", "C.UTF-8");
                let limits = (self.memory_bytes, self.cpu_secs);
                // SAFETY: only async-signal-safe setrlimit calls between fork and exec.
                unsafe {
                    c.pre_exec(move || {
                        set_rlimit(libc::RLIMIT_AS, limits.0)?;
                        set_rlimit(libc::RLIMIT_CPU, limits.1)?;
                        set_rlimit(libc::RLIMIT_CORE, 0)?;
                        Ok(())
                    });
                }
                Ok((c, Keep::File(input)))
            }
        }
    }

    /// Refuse to start when the jail cannot run (no bubblewrap, no user namespaces): reading documents from the
    /// internet without it is only ever an explicit choice (`backend = "none"`), never a silent fallback.
    pub async fn ensure_usable(&self) -> Result<()> {
        if self.backend != SandboxBackend::Local {
            return Ok(());
        }
        let out = self.run_raw(&["--version".to_string()]).await.context("the sandbox cannot start")?;
        if !out.status.success() {
            bail!(
                "bubblewrap cannot run here ({}): install the Debian package bubblewrap and allow unprivileged user \
                 namespaces, or set [sandbox] backend = \"none\" to read documents without isolation",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Run the extractor binary with `args` in the jail and return what it printed, killing it at the timeout.
    /// `doctor` and the jail tests use it for the in-jail checks.
    pub async fn run_raw(&self, args: &[String]) -> Result<std::process::Output> {
        let (mut cmd, keep) = self.prepare(args, b"").await?;
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        cmd.process_group(0);
        let child = cmd.spawn().context("starting the jail")?;
        let pid = child.id();
        let out = tokio::time::timeout(self.timeout, child.wait_with_output()).await;
        drop(keep);
        match out {
            Ok(o) => Ok(o?),
            Err(_) => {
                if let Some(pid) = pid {
                    // SAFETY: not reaped yet, so the group is ours.
                    unsafe {
                        libc::killpg(pid as i32, libc::SIGKILL);
                    }
                }
                bail!("timed out after {}s and was killed", self.timeout.as_secs())
            }
        }
    }

    async fn run(&self, filename: &str, bytes: &[u8]) -> Vec<Extraction> {
        let mut args = vec!["sandbox-run".to_string(), format!("--name={filename}")];
        args.extend(self.options.to_args());
        let (mut cmd, keep) = match self.prepare(&args, bytes).await {
            Ok(p) => p,
            Err(e) => {
                return vec![failure(
                    filename,
                    ErrorCode::SandboxFailure,
                    &format!("cannot prepare the sandbox: {e:#}"),
                )]
            }
        };
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        // Its own process group, so a timeout kills every tool it started, not just the top process.
        cmd.process_group(0);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return vec![failure(filename, ErrorCode::SandboxFailure, &format!("cannot start the sandbox: {e}"))]
            }
        };
        let pid = child.id();
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let work = async {
            let mut out = Vec::new();
            let mut err = Vec::new();
            let mut limited_out = (&mut stdout).take(MAX_STDOUT);
            let mut limited_err = (&mut stderr).take(MAX_STDERR);
            let (r1, r2) = tokio::join!(limited_out.read_to_end(&mut out), limited_err.read_to_end(&mut err));
            r1?;
            r2?;
            let status = child.wait().await?;
            Ok::<_, std::io::Error>((status, out, err))
        };
        let outcome = tokio::time::timeout(self.timeout, work).await;
        drop(keep);
        if outcome.is_err() {
            if let Some(pid) = pid {
                // SAFETY: the group leader has not been reaped (we timed out waiting), so the group is ours.
                // With bubblewrap the jail's pid namespace dies with it, taking every tool inside along.
                unsafe {
                    libc::killpg(pid as i32, libc::SIGKILL);
                }
            }
        }
        match outcome {
            Err(_) => vec![failure(
                filename,
                ErrorCode::Timeout,
                &format!("reading the document took longer than {}s", self.timeout.as_secs()),
            )],
            Ok(Err(e)) => vec![failure(filename, ErrorCode::SandboxFailure, &format!("sandbox I/O error: {e}"))],
            Ok(Ok((status, out, err))) => parse_output(filename, status, &out, &err),
        }
    }
}

fn parse_output(filename: &str, status: std::process::ExitStatus, out: &[u8], err: &[u8]) -> Vec<Extraction> {
    let text = String::from_utf8_lossy(out);
    let parsed: Vec<Extraction> =
        text.lines().filter(|l| !l.trim().is_empty()).filter_map(|l| serde_json::from_str(l).ok()).collect();
    if status.success() && !parsed.is_empty() {
        return parsed;
    }
    let tail = String::from_utf8_lossy(err);
    let tail: String = tail.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
    use std::os::unix::process::ExitStatusExt;
    let why = match status.signal() {
        Some(libc::SIGXCPU) => {
            return vec![failure(filename, ErrorCode::Timeout, "the extractor used up its CPU time")]
        }
        Some(libc::SIGKILL) => "the extractor was killed (out of memory or time)".to_string(),
        Some(libc::SIGABRT) if tail.contains("memory allocation") => "the extractor ran out of memory".to_string(),
        Some(sig) => format!("the extractor crashed with signal {sig}"),
        None => format!("the extractor exited with {status}"),
    };
    vec![failure(filename, ErrorCode::SandboxFailure, &format!("{why}: {tail}"))]
}

fn failure(filename: &str, code: ErrorCode, message: &str) -> Extraction {
    tracing::warn!(file = filename, code = code.as_str(), message, "sandbox failure");
    Extraction::failed(filename, code, message)
}

fn set_rlimit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let lim = libc::rlimit { rlim_cur: value, rlim_max: value };
    // SAFETY: plain syscall with a valid pointer.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn set_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}

/// What a prepared command reads from while it runs.
enum Keep {
    /// The document and the seccomp filters, as descriptors bubblewrap inherits.
    /// The jail's uid goes with them: dropping it kills what is left of the jail.
    Jail(#[allow(dead_code)] Box<(std::os::fd::OwnedFd, [std::os::fd::OwnedFd; 2], Option<JailUid>)>),
    /// The document as a work file (backend = "none").
    File(#[allow(dead_code)] tempfile::NamedTempFile),
}

/// One line of `doctor`: what was checked, whether it holds, and what to do when it does not.
#[derive(Debug, Clone)]
pub struct Probe {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl Sandbox {
    /// Check, from inside the jail, that every tool and language pack the extractor needs is there.
    pub async fn probe(&self, secrets: &[String]) -> Vec<Probe> {
        if let Some(e2b) = &self.e2b {
            return e2b.probe().await.into_iter().map(|(name, ok, detail)| Probe { name, ok, detail }).collect();
        }
        let mut probes = Vec::new();
        if self.backend == SandboxBackend::Local {
            let ok = Command::new("bwrap").arg("--version").output().await.map(|o| o.status.success()).unwrap_or(false);
            probes.push(Probe {
                name: "bubblewrap".into(),
                ok,
                detail: if ok { "bwrap runs".into() } else { "install the Debian package bubblewrap".into() },
            });
            for (i, p) in local::protections().into_iter().enumerate() {
                probes.push(Probe { name: format!("protection {}", i + 1), ok: true, detail: p });
            }
        } else {
            probes.push(Probe {
                name: "sandbox".into(),
                ok: true,
                detail: "WARNING: backend = \"none\": documents are read without isolation".into(),
            });
        }
        let mut cmd_args = vec!["sandbox-probe".to_string()];
        cmd_args.extend(self.options.to_args());
        cmd_args.extend(secrets.iter().map(|s| format!("--secret={s}")));
        let output = match self.prepare(&cmd_args, b"probe").await {
            Ok((mut cmd, keep)) => {
                let out = tokio::time::timeout(Duration::from_secs(60), cmd.output()).await;
                drop(keep);
                out
            }
            Err(e) => {
                probes.push(Probe { name: "jail".into(), ok: false, detail: format!("{e:#}") });
                return probes;
            }
        };
        match output {
            Ok(Ok(o)) if o.status.success() => {
                for line in String::from_utf8_lossy(&o.stdout).lines() {
                    if let Ok(p) = serde_json::from_str::<serde_json::Value>(line) {
                        probes.push(Probe {
                            name: p["name"].as_str().unwrap_or("?").to_string(),
                            ok: p["ok"].as_bool().unwrap_or(false),
                            detail: p["detail"].as_str().unwrap_or("").to_string(),
                        });
                    }
                }
            }
            Ok(Ok(o)) => probes.push(Probe {
                name: "jail".into(),
                ok: false,
                detail: format!(
                    "the extractor does not run in the jail ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            }),
            Ok(Err(e)) => probes.push(Probe { name: "jail".into(), ok: false, detail: format!("cannot start: {e}") }),
            Err(_) => probes.push(Probe { name: "jail".into(), ok: false, detail: "the probe timed out".into() }),
        }
        probes
    }
}
