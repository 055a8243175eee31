//! The local jail: bubblewrap plus a seccomp filter, rlimits and, when we run as root, an unprivileged uid.
//!
//! What the extractor sees: `/usr` read-only (poppler, tesseract, the loader), the loader cache and fonts from
//! `/etc`, a private 256 MiB `/tmp`, and its own binary. The one document it reads arrives on its stdin and is
//! written, read-only, into that private `/tmp` (see `sandbox::receive_document`); nothing else of ours is
//! visible. Everything else of the root is read-only, and there is no network: all namespaces are new and the
//! seccomp filter refuses `socket()` outright, besides ptrace, mount, keyctl, bpf, new namespaces and the other
//! calls a document reader never needs.

use anyhow::{Context, Result};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use tokio::process::Command;

/// Where the extractor binary appears inside the jail.
pub const JAIL_EXTRACTOR: &str = "/run/invoice-intake/extractor";
/// Descriptor numbers the seccomp programs are handed to bubblewrap on.
const SECCOMP_FD: i32 = 3;
const SECCOMP_CLONE3_FD: i32 = 4;
/// The private /tmp: rendered pages of a 50-page PDF at 300 dpi fit; a disk-filling document does not.
const TMP_BYTES: u64 = 256 * 1024 * 1024;
/// Files the extractor may write (rendered pages, detached XML) stay below this.
const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;
const MAX_OPEN_FILES: u64 = 256;
/// Processes of the jail's uid: poppler and tesseract need a handful; a fork bomb hits this wall.
const MAX_PROCESSES: u64 = 64;
/// When the service runs as root (containers, CI), each jail runs under its own unprivileged uid from this
/// range instead: RLIMIT_NPROC then applies (root is exempt from it) per jail, a jail escape lands without
/// privileges, and when the run ends every process of that uid can be killed — bubblewrap's --die-with-parent
/// alone was seen to leave a fork bomb running after the outer bwrap was killed (bubblewrap 0.8, 2026-11).
pub const JAIL_UID_BASE: u32 = 61000;
pub const JAIL_UIDS: u32 = 32;

/// The system calls the jail refuses with EPERM. Everything else is allowed: an allow-list would break with each
/// new glibc or poppler, and these are the calls that reach the network, other processes or the kernel's
/// attack surface.
fn denied_syscalls() -> Vec<i64> {
    vec![
        libc::SYS_socket,
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_syslog,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_fanotify_init,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ]
}

/// The compiled filters, as the bytes bubblewrap reads from `--add-seccomp-fd FD` (`struct sock_filter` arrays).
/// Two programs, because one filter has one action: the denied calls get EPERM, and clone3 gets ENOSYS, which
/// is what makes glibc fall back to clone(), whose flags (unlike clone3's, passed in memory) a filter can see.
pub fn seccomp_programs() -> Result<[Vec<u8>; 2]> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in denied_syscalls() {
        rules.insert(nr, Vec::new());
    }
    // clone() with a namespace flag would be a way around the refused unshare(); refuse those flags.
    let ns_flags = [
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWNS,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWCGROUP,
    ];
    let mut clone_rules = Vec::new();
    for flag in ns_flags {
        let flag = flag as u64;
        let cond = SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(flag), flag)
            .context("building the clone() condition")?;
        clone_rules.push(SeccompRule::new(vec![cond]).context("building the clone() rule")?);
    }
    rules.insert(libc::SYS_clone, clone_rules);
    let denied = compile(rules, libc::EPERM)?;
    let clone3 = compile(BTreeMap::from([(libc::SYS_clone3, Vec::new())]), libc::ENOSYS)?;
    Ok([denied, clone3])
}

/// The two seccomp programs in memory files, ready to hand to bubblewrap. They are compiled once per process.
pub fn seccomp_memfds() -> Result<[OwnedFd; 2]> {
    static PROGRAMS: std::sync::OnceLock<[Vec<u8>; 2]> = std::sync::OnceLock::new();
    let [a, b] = match PROGRAMS.get() {
        Some(p) => p,
        None => {
            let p = seccomp_programs()?;
            PROGRAMS.get_or_init(|| p)
        }
    };
    Ok([memfd("seccomp", a)?, memfd("seccomp-clone3", b)?])
}

fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> Result<Vec<u8>> {
    let filter =
        SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(errno as u32), TargetArch::x86_64)
            .context("building a seccomp filter")?;
    let program: BpfProgram = filter.try_into().context("compiling a seccomp filter")?;
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for ins in &program {
        bytes.extend(ins.code.to_ne_bytes());
        bytes.push(ins.jt);
        bytes.push(ins.jf);
        bytes.extend(ins.k.to_ne_bytes());
    }
    Ok(bytes)
}

/// The bubblewrap command line: what the jail sees.
pub fn bwrap_args(extractor: &Path) -> Vec<String> {
    let mut a: Vec<String> = [
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--cap-drop",
        "ALL",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--setenv",
        "HOME",
        "/tmp",
        "--setenv",
        "LANG",
        "C.UTF-8",
        // One OpenMP thread per tesseract: parallelism comes from running one jail per core.
        "--setenv",
        "OMP_THREAD_LIMIT",
        "1",
        "--ro-bind",
        "/usr",
        "/usr",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(["--size".into(), TMP_BYTES.to_string(), "--tmpfs".into(), "/tmp".into()]);
    // Merged-/usr systems have /bin, /lib… as symlinks; older ones have real directories.
    for dir in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
        match std::fs::read_link(dir) {
            Ok(target) => a.extend(["--symlink".into(), target.display().to_string(), dir.into()]),
            Err(_) if Path::new(dir).is_dir() => a.extend(["--ro-bind".into(), dir.into(), dir.into()]),
            Err(_) => {}
        }
    }
    // Only what the tools need from /etc: the loader cache and fonts. Not the rest (no config, no passwd, no
    // secrets).
    for path in ["/etc/ld.so.cache", "/etc/fonts", "/etc/alternatives"] {
        if Path::new(path).exists() {
            a.extend(["--ro-bind".into(), path.into(), path.into()]);
        }
    }
    a.extend(["--ro-bind".into(), extractor.display().to_string(), JAIL_EXTRACTOR.into()]);
    // Everything not explicitly writable (only /tmp) becomes read-only.
    a.extend(["--remount-ro".into(), "/".into()]);
    a.extend(["--add-seccomp-fd".into(), SECCOMP_FD.to_string()]);
    a.extend(["--add-seccomp-fd".into(), SECCOMP_CLONE3_FD.to_string()]);
    a
}

/// Limits of the jail, applied between fork and exec.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub memory_bytes: u64,
    pub cpu_secs: u64,
}

/// Build the bubblewrap command for one jail. The `seccomp` programs are handed to bubblewrap on fixed
/// descriptor numbers; they must stay open until the command is spawned.
pub fn command(extractor: &Path, seccomp: &[OwnedFd; 2], limits: Limits, uid: Option<u32>) -> Command {
    let mut cmd = Command::new("bwrap");
    cmd.args(bwrap_args(extractor));
    let sources = [seccomp[0].as_raw_fd(), seccomp[1].as_raw_fd()];
    let targets = [SECCOMP_FD, SECCOMP_CLONE3_FD];
    // SAFETY: between fork and exec we only call async-signal-safe functions (fcntl, dup2, setrlimit,
    // setgroups, setgid, setuid), on values computed before the fork.
    unsafe {
        cmd.pre_exec(move || {
            // Move the descriptors out of the way first, so dup2 onto 3 and 4 cannot clobber one with the other.
            let mut high = [0; 2];
            for (h, src) in high.iter_mut().zip(sources) {
                *h = libc::fcntl(src, libc::F_DUPFD, 100);
                if *h < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (h, target) in high.into_iter().zip(targets) {
                // dup2 leaves the new descriptor without FD_CLOEXEC, so bubblewrap inherits it.
                if libc::dup2(h, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(h);
            }
            set_rlimit(libc::RLIMIT_AS, limits.memory_bytes)?;
            set_rlimit(libc::RLIMIT_CPU, limits.cpu_secs)?;
            set_rlimit(libc::RLIMIT_FSIZE, MAX_FILE_BYTES)?;
            set_rlimit(libc::RLIMIT_NOFILE, MAX_OPEN_FILES)?;
            set_rlimit(libc::RLIMIT_CORE, 0)?;
            if let Some(uid) = uid {
                set_rlimit(libc::RLIMIT_NPROC, MAX_PROCESSES)?;
                if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(uid) != 0 || libc::setuid(uid) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd
}

/// Kill every process running under `uid` (a jail's own uid): a forked child takes that uid and sends SIGKILL
/// to -1, which reaches exactly the processes of that uid (kill(2)), however they were forked or re-parented,
/// and never the sender itself. No exec: this runs twice per document, and starting `/usr/bin/kill` cost a
/// process load each time.
pub fn kill_uid(uid: u32) {
    // SAFETY: the child only calls async-signal-safe functions (setgroups, setgid, setuid, kill, _exit) before
    // it exits, as a pre_exec hook would; the parent reaps exactly the pid it forked.
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            if libc::setgroups(0, std::ptr::null()) == 0 && libc::setgid(uid) == 0 && libc::setuid(uid) == 0 {
                libc::kill(-1, libc::SIGKILL);
            }
            libc::_exit(0);
        }
        if pid > 0 {
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
        }
    }
}

/// Whether jails get their own uids (we run as root) or share ours (an unprivileged service user).
pub fn own_uids() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn set_rlimit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let lim = libc::rlimit { rlim_cur: value, rlim_max: value };
    // SAFETY: plain syscall with a valid pointer.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// An anonymous in-memory file holding `bytes`, positioned at the start, for handing to bubblewrap.
fn memfd(name: &str, bytes: &[u8]) -> Result<OwnedFd> {
    use std::io::{Seek, Write};
    use std::os::fd::FromRawFd;
    let cname = std::ffi::CString::new(name).context("memfd name")?;
    // SAFETY: memfd_create with a valid C string; the returned descriptor is owned by the File below.
    let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("memfd_create");
    }
    // SAFETY: fd is a fresh descriptor we own.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(bytes).context("writing the memfd")?;
    file.rewind().context("rewinding the memfd")?;
    Ok(OwnedFd::from(file))
}

/// The protections in force, for `doctor`.
pub fn protections() -> Vec<String> {
    let mut p = vec![
        "namespaces: user, mount, pid, net, ipc, uts, cgroup (no network)".to_string(),
        format!("seccomp: {} system calls refused, clone() with namespace flags refused", denied_syscalls().len()),
        "filesystem: / read-only, /usr read-only, private /tmp (256 MiB), only the one document visible".to_string(),
        "rlimits: address space, CPU time, file size, open files".to_string(),
        "no new privileges, all capabilities dropped, cleared environment, killed with the worker".to_string(),
    ];
    if own_uids() {
        p.push(format!(
            "running as root: each jail runs as its own uid ({JAIL_UID_BASE}–{}) with at most {MAX_PROCESSES} processes, all killed when it ends",
            JAIL_UID_BASE + JAIL_UIDS - 1
        ));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seccomp_programs_compile_to_whole_instructions() {
        for bytes in seccomp_programs().unwrap() {
            assert!(!bytes.is_empty());
            assert_eq!(bytes.len() % 8, 0, "struct sock_filter is 8 bytes");
        }
    }

    #[test]
    fn the_jail_has_a_read_only_root_and_no_host_files_but_the_system_ones() {
        let args = bwrap_args(Path::new("/usr/local/bin/invoice-intake")).join(" ");
        assert!(args.contains("--remount-ro /"), "{args}");
        assert!(args.contains("--add-seccomp-fd 3") && args.contains("--add-seccomp-fd 4"), "{args}");
        assert!(!args.contains("/etc/passwd") && !args.contains("--bind /"), "{args}");
    }
}
