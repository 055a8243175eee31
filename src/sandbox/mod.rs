//! Running the extractor on one document, away from everything else.
//!
//! The document came from the open internet, and poppler and tesseract are large C programs, so the extractor
//! runs in a bubblewrap jail: fresh namespaces with no network, read-only system directories, an empty private
//! /tmp, only the one input file visible, rlimits on memory, CPU time, file size and open files, and a wall-clock
//! limit after which the whole process tree is killed. The worker talks to it through one JSON line per result
//! on stdout, the same line `extract --json` prints.
//!
//! Backends: `local` (bubblewrap, the default) and `none` (the same process without a jail, for machines with no
//! user namespaces; it is loudly warned about). `e2b` runs the same extractor in an E2B cloud sandbox (see `e2b/`).

mod doctor;
pub mod e2b;
pub mod local;
pub mod selftest;
pub mod settings;

pub use doctor::{probe_lines, Probe};

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

pub use crate::extract::{CompanyConfig, ExtractOptions};
use crate::extract::{ErrorCode, Extraction};
pub use settings::{SandboxBackend, SandboxConfig};

/// Results are small; anything past this is a misbehaving extractor, not an invoice.
const MAX_STDOUT: u64 = 16 * 1024 * 1024;
const MAX_STDERR: u64 = 64 * 1024;
/// The input argument that makes the extractor read its document from stdin (see `document_header`).
pub const STDIN_INPUT: &str = "-";
/// The longest first line `receive_document` reads: a file name, JSON-quoted.
const MAX_NAME_LINE: u64 = 16 * 1024;

/// `sandbox-run` with `options`, reading its document from stdin.
fn stdin_args(options: &ExtractOptions) -> Vec<String> {
    let mut args = vec!["sandbox-run".to_string()];
    args.extend(options.to_args());
    args.push(STDIN_INPUT.to_string());
    args
}

/// Where the extractor runs. Each backend is a seam with its own implementation, chosen once from the config.
#[derive(Debug, Clone)]
enum Backend {
    /// A bubblewrap jail on this machine.
    Jail,
    /// This machine, without a jail (`backend = "none"`).
    Unjailed,
    /// An E2B cloud sandbox per document.
    E2b(e2b::E2bSandbox),
}

#[derive(Debug, Clone)]
pub struct Sandbox {
    backend: Backend,
    extractor: PathBuf,
    timeout: Duration,
    memory_bytes: u64,
    cpu_secs: u64,
    options: ExtractOptions,
    /// The OCR languages `doctor` checks (`sandbox.ocr_languages`).
    ocr_languages: Vec<String>,
    /// Jails started ahead of their documents; `None` when each starts on demand (and for E2B).
    standby: Option<std::sync::Arc<Standby>>,
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
            if let Some(uid) = self.lock_free_uid() {
                return uid;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A uid when one is free at once, else `None`.
    fn try_take(self: &std::sync::Arc<Self>) -> Option<JailUid> {
        self.available.try_acquire().ok()?.forget();
        let uid = self.lock_free_uid();
        if uid.is_none() {
            self.available.add_permits(1);
        }
        uid
    }

    /// Lock one of the free uids: a uid is ours when its lock file is, since another worker process may hold
    /// some of them. The caller holds a permit.
    fn lock_free_uid(self: &std::sync::Arc<Self>) -> Option<JailUid> {
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
                return Some(JailUid { uid, pool: self.clone(), _lock: file });
            }
        }
        None
    }
}

/// A jail uid on loan. Dropping it kills whatever still runs under that uid and returns it to the pool.
#[derive(Debug)]
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
        let backend = match cfg.backend {
            SandboxBackend::Local => Backend::Jail,
            SandboxBackend::None => Backend::Unjailed,
            SandboxBackend::E2b => {
                let c = cfg.e2b.as_ref().context("sandbox.backend = \"e2b\" needs a [sandbox.e2b] section")?;
                Backend::E2b(e2b::E2bSandbox::new(c)?)
            }
        };
        let standby = match cfg.backend {
            SandboxBackend::E2b => 0,
            _ => cfg.standby.unwrap_or(if cfg.concurrency > 0 {
                cfg.concurrency
            } else {
                std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
            }),
        };
        Ok(Sandbox {
            backend,
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
                ..Default::default()
            },
            ocr_languages: cfg.ocr_languages.clone(),
            standby: Standby::new(standby),
            uids: local::own_uids().then(UidPool::shared),
        })
    }

    pub fn backend(&self) -> SandboxBackend {
        match self.backend {
            Backend::Jail => SandboxBackend::Local,
            Backend::Unjailed => SandboxBackend::None,
            Backend::E2b(_) => SandboxBackend::E2b,
        }
    }

    pub fn with_no_embedded(mut self, no_embedded: bool) -> Self {
        self.options.no_embedded = no_embedded;
        // Standby jails were started with the old options.
        self.standby = self.standby.as_ref().and_then(|s| Standby::new(s.target));
        self
    }

    /// Extract one document. Never fails: a crash, a timeout or garbage output becomes an error result with the
    /// matching code, so the caller always has something to store and to tell the supplier.
    pub async fn extract(&self, filename: &str, bytes: &[u8]) -> Vec<Extraction> {
        if let Backend::E2b(e2b) = &self.backend {
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

    /// Extract one document with supplier-memory hints and learning requests on top of the configured options.
    /// Such a document needs a jail started with them, not a standby one; without any it is `extract`.
    pub async fn extract_with_memory(
        &self,
        filename: &str,
        bytes: &[u8],
        hints: Vec<crate::extract::memory::FieldHint>,
        learn: Vec<crate::extract::memory::LearnRequest>,
    ) -> Vec<Extraction> {
        if hints.is_empty() && learn.is_empty() {
            return self.extract(filename, bytes).await;
        }
        let options = ExtractOptions { hints, learn, ..self.options.clone() };
        if let Backend::E2b(e2b) = &self.backend {
            return e2b.extract(filename, bytes, &options).await;
        }
        let outcome = match self.start_now(&stdin_args(&options)).await {
            Ok(started) => started.finish(Some((filename, bytes)), self.timeout).await,
            Err(e) => Err(e),
        };
        let mut results = self.results_of(filename, outcome);
        let digest = crate::extract::sha256_hex(bytes);
        for r in &mut results {
            r.file = filename.to_string();
            r.sha256 = Some(digest.clone());
        }
        results
    }

    /// The arguments of the extractor that reads one document from its stdin (see `receive_document`).
    fn run_args(&self) -> Vec<String> {
        stdin_args(&self.options)
    }

    /// Start the extractor with `args`, in the configured backend, with its stdin, stdout and stderr piped. It
    /// reads its one document from stdin, so it can be started before the document is known. `uid` is the jail
    /// uid lent for it, when we run as root.
    fn start(&self, args: &[String], uid: Option<JailUid>) -> Result<Started> {
        // The seccomp programs, which bubblewrap inherits: open until the spawn.
        let mut filters = None;
        let mut cmd = match &self.backend {
            Backend::Jail => {
                let filters = filters.insert(local::seccomp_memfds()?);
                let limits = local::Limits { memory_bytes: self.memory_bytes, cpu_secs: self.cpu_secs };
                let mut c = local::command(&self.extractor, filters, limits, uid.as_ref().map(|u| u.uid));
                c.arg(local::JAIL_EXTRACTOR).args(args);
                c
            }
            Backend::E2b(_) => bail!("the E2B backend has no local command"),
            Backend::Unjailed => {
                let mut c = Command::new(&self.extractor);
                c.args(args);
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
                c
            }
        };
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        // Its own process group, so a timeout kills every tool it started, not just the top process.
        cmd.process_group(0);
        let child = cmd.spawn().context("starting the jail")?;
        drop(filters);
        Ok(Started { child, _uid: uid })
    }

    /// Start the extractor with `args` now, waiting for a jail uid when all are lent.
    async fn start_now(&self, args: &[String]) -> Result<Started> {
        let uid = match &self.uids {
            Some(pool) => Some(pool.take().await),
            None => None,
        };
        self.start(args, uid)
    }

    /// Refuse to start when the jail cannot run (no bubblewrap, no user namespaces): reading documents from the
    /// internet without it is only ever an explicit choice (`backend = "none"`), never a silent fallback. Then
    /// start the standby jails, so the first document does not wait for one.
    pub async fn ensure_usable(&self) -> Result<()> {
        if !matches!(self.backend, Backend::Jail) {
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
        self.refill_standby();
        Ok(())
    }

    /// Run the extractor binary with `args` in a fresh jail and return what it printed, killing it at the
    /// timeout. `doctor` and the jail tests use it for the in-jail checks.
    pub async fn run_raw(&self, args: &[String]) -> Result<std::process::Output> {
        let started = self.start_now(args).await?;
        Ok(started.finish(None, self.timeout).await?.output)
    }

    /// Read one document in a jail that reads nothing else: a standby jail when one is waiting, else one
    /// started now.
    async fn run(&self, filename: &str, bytes: &[u8]) -> Vec<Extraction> {
        let document = Some((filename, bytes));
        let outcome = match self.take_standby() {
            Some(waiting) => {
                self.refill_standby();
                match waiting.finish(document, self.timeout).await {
                    // It died between the check and the handover (killed from outside): the document never
                    // reached it, so it goes to a jail started now.
                    Ok(f) if !f.fed => {
                        tracing::warn!(
                            file = filename,
                            "a standby jail was gone when its document came; starting another"
                        );
                        self.read_in_new_jail(document).await
                    }
                    other => other,
                }
            }
            None => self.read_in_new_jail(document).await,
        };
        self.results_of(filename, outcome)
    }

    /// The results of a jail's run, or the error result that says why there are none.
    fn results_of(&self, filename: &str, outcome: Result<Finished>) -> Vec<Extraction> {
        match outcome {
            Ok(f) => parse_output(filename, f.output.status, &f.output.stdout, &f.output.stderr),
            Err(e) if e.is::<TimedOut>() => vec![failure(
                filename,
                ErrorCode::Timeout,
                &format!("reading the document took longer than {}s", self.timeout.as_secs()),
            )],
            Err(e) => vec![failure(filename, ErrorCode::SandboxFailure, &format!("cannot run the sandbox: {e:#}"))],
        }
    }

    /// Start a jail now and hand it `document`.
    async fn read_in_new_jail(&self, document: Option<(&str, &[u8])>) -> Result<Finished> {
        let started = self.start_now(&self.run_args()).await;
        self.refill_standby();
        started?.finish(document, self.timeout).await
    }

    /// How many jails are started and waiting for a document.
    pub fn standby_ready(&self) -> usize {
        self.standby.as_ref().map_or(0, |s| s.ready.lock().expect("standby lock").len())
    }

    /// A standby jail that is still alive, if any is waiting. One that died while it waited (killed from
    /// outside, say) is dropped here, so a document never goes to a jail that cannot read it.
    fn take_standby(&self) -> Option<Started> {
        let standby = self.standby.as_ref()?;
        let mut ready = standby.ready.lock().expect("standby lock");
        while let Some(mut s) = ready.pop_front() {
            if matches!(s.child.try_wait(), Ok(None)) {
                return Some(s);
            }
        }
        None
    }

    /// Start jails in the background until `standby` of them wait. A jail uid is only taken when one is free
    /// at once: standby jails never hold back a document that needs a uid now.
    fn refill_standby(&self) {
        let Some(standby) = &self.standby else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let args = self.run_args();
        loop {
            {
                let ready = standby.ready.lock().expect("standby lock").len();
                let starting = standby.starting.load(std::sync::atomic::Ordering::SeqCst);
                if ready + starting >= standby.target {
                    return;
                }
                standby.starting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            let this = self.clone();
            let args = args.clone();
            runtime.spawn(async move {
                let Some(standby) = &this.standby else { return };
                let started = match this.uids.as_ref().map(|pool| pool.try_take()) {
                    // Every uid is lent: no standby jail this time.
                    Some(None) => None,
                    uid => this.start(&args, uid.flatten()).ok(),
                };
                if let Some(s) = started {
                    standby.ready.lock().expect("standby lock").push_back(s);
                }
                standby.starting.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
    }
}

/// Jails started ahead of their document (`[sandbox] standby`). Each reads exactly one document and is gone,
/// like a jail started on demand: starting it early changes when the cost is paid, not what is shared.
#[derive(Debug)]
struct Standby {
    target: usize,
    ready: std::sync::Mutex<std::collections::VecDeque<Started>>,
    /// Jails being started in the background.
    starting: std::sync::atomic::AtomicUsize,
}

impl Standby {
    fn new(target: usize) -> Option<std::sync::Arc<Standby>> {
        (target > 0).then(|| {
            std::sync::Arc::new(Standby {
                target,
                ready: std::sync::Mutex::new(std::collections::VecDeque::new()),
                starting: std::sync::atomic::AtomicUsize::new(0),
            })
        })
    }
}

/// An extractor process started and waiting for its document on stdin.
#[derive(Debug)]
struct Started {
    child: tokio::process::Child,
    /// The jail's uid on loan; dropping it kills whatever is left of the jail.
    _uid: Option<JailUid>,
}

#[derive(Debug, thiserror::Error)]
#[error("timed out")]
struct TimedOut;

/// How a started extractor ended.
struct Finished {
    output: std::process::Output,
    /// Whether it took the whole document: `false` when it was gone before reading it all.
    fed: bool,
}

impl Started {
    /// Hand the document over (name and bytes; `None` closes stdin at once) and wait for the extractor to end,
    /// killing its whole process group at `timeout`. Taking `self` makes each jail read one document at most.
    async fn finish(mut self, document: Option<(&str, &[u8])>, timeout: Duration) -> Result<Finished> {
        let mut stdin = self.child.stdin.take().expect("stdin is piped");
        let mut stdout = self.child.stdout.take().expect("stdout is piped");
        let mut stderr = self.child.stderr.take().expect("stderr is piped");
        let pid = self.child.id();
        let child = &mut self.child;
        let work = async {
            let feed = async {
                if let Some((name, bytes)) = document {
                    stdin.write_all(&document_header(name)).await?;
                    stdin.write_all(bytes).await?;
                }
                drop(stdin);
                Ok::<_, std::io::Error>(())
            };
            let mut out = Vec::new();
            let mut err = Vec::new();
            let mut limited_out = (&mut stdout).take(MAX_STDOUT);
            let mut limited_err = (&mut stderr).take(MAX_STDERR);
            let (fed, r1, r2) =
                tokio::join!(feed, limited_out.read_to_end(&mut out), limited_err.read_to_end(&mut err));
            // An extractor that ended before taking it all (a command that reads no document, a jail that
            // died) closed the pipe; the caller decides what that means.
            let fed = match fed {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
                Err(e) => return Err(e),
            };
            r1?;
            r2?;
            let status = child.wait().await?;
            Ok::<_, std::io::Error>(Finished { output: std::process::Output { status, stdout: out, stderr: err }, fed })
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(out) => Ok(out?),
            Err(_) => {
                if let Some(pid) = pid {
                    // SAFETY: the group leader has not been reaped (we timed out waiting), so the group is ours.
                    // With bubblewrap the jail's pid namespace dies with it, taking every tool inside along.
                    unsafe {
                        libc::killpg(pid as i32, libc::SIGKILL);
                    }
                }
                Err(TimedOut.into())
            }
        }
    }
}

/// How a started extractor receives its document on stdin: the file name as one JSON string on the first line
/// (JSON, so a name holding a newline cannot end the line), then the document's bytes to the end.
pub fn document_header(name: &str) -> Vec<u8> {
    let mut line = serde_json::to_vec(name).expect("a string always serialises");
    line.push(b'\n');
    line
}

/// The extractor's side of `document_header`: read the name and write the document to `path`, read-only.
/// What the file may hold is bounded by the jail's RLIMIT_FSIZE and its /tmp.
pub fn receive_document(input: impl std::io::Read, path: &Path) -> Result<String> {
    use std::io::BufRead;
    let mut input = std::io::BufReader::new(input);
    let mut line = Vec::new();
    std::io::Read::take(&mut input, MAX_NAME_LINE)
        .read_until(b'\n', &mut line)
        .context("reading the document's name")?;
    let name: String = serde_json::from_slice(&line).context("the document's name is not a JSON string line")?;
    let mut file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    std::io::copy(&mut input, &mut file).context("receiving the document")?;
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o444)).context("making the document read-only")?;
    Ok(name)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_handed_over_on_stdin_arrives_whole_under_its_name_and_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("document");
        // A hostile name: a newline would end a plain header line, and quotes and a leading dash are legal.
        let name = "-factura \"1\"\nrm -rf.pdf";
        let body: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
        let mut wire = document_header(name);
        wire.extend(&body);
        let got = receive_document(wire.as_slice(), &path).unwrap();
        assert_eq!(got, name);
        assert_eq!(std::fs::read(&path).unwrap(), body);
        assert!(std::fs::metadata(&path).unwrap().permissions().readonly());
    }

    #[test]
    fn a_header_that_is_not_a_json_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for wire in [&b"factura.pdf\n%PDF-1.4"[..], b"", b"\"unterminated"] {
            let err = receive_document(wire, &dir.path().join("document")).unwrap_err();
            assert!(format!("{err:#}").contains("name"), "{err:#}");
        }
    }
}
