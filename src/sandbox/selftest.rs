//! Checks that run INSIDE the jail and try to break out of it: `doctor` and the jail tests use them to prove,
//! from where a hostile document would stand, that each protection holds.

use serde_json::{json, Value};
use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

fn check(name: &str, blocked: bool, detail: String) -> Value {
    json!({ "name": name, "ok": blocked, "detail": detail })
}

/// Each attempt must fail. `secrets` are host paths that must not be readable (the config file, the Postgres
/// socket, …).
pub fn escape_attempts(secrets: &[String]) -> Vec<Value> {
    let mut out: Vec<Value> =
        ["127.0.0.1:5432", "1.1.1.1:443", "[::1]:5432"].into_iter().map(|a| tcp_blocked("no network", a)).collect();
    let udp = UdpSocket::bind("0.0.0.0:0");
    out.push(check(
        "no network: udp socket",
        udp.is_err(),
        udp.map(|_| "a UDP socket was created".to_string()).unwrap_or_else(|e| format!("refused ({e})")),
    ));
    let mut paths: Vec<String> = vec!["/etc/shadow".into(), "/etc/passwd".into(), "/root".into(), "/home".into()];
    paths.extend(secrets.iter().cloned());
    for p in paths {
        let readable = std::fs::read(&p).is_ok() || std::fs::read_dir(&p).is_ok();
        let unix = std::os::unix::net::UnixStream::connect(&p).is_ok();
        out.push(check(
            &format!("cannot read {p}"),
            !readable && !unix,
            if readable || unix { "READABLE from the jail".into() } else { "not visible in the jail".into() },
        ));
    }
    for p in ["/escape", "/usr/escape", "/run/invoice-intake/escape", "/etc/escape"] {
        let wrote = std::fs::File::create(p).and_then(|mut f| f.write_all(b"x")).is_ok();
        out.push(check(
            &format!("cannot write {p}"),
            !wrote,
            if wrote { "WRITABLE from the jail".into() } else { "read-only".into() },
        ));
    }
    let tmp_ok = std::fs::write("/tmp/probe", b"x").is_ok();
    out.push(check("private /tmp is writable", tmp_ok, if tmp_ok { "yes".into() } else { "no".into() }));
    out
}

/// No way out to the internet: what an E2B sandbox created with `allow_internet_access: false` promises.
/// (Loopback is not tried: inside a VM it is the VM's own.)
pub fn no_network() -> Vec<Value> {
    ["1.1.1.1:443", "[2606:4700:4700::1111]:443"].into_iter().map(|a| tcp_blocked("no internet", a)).collect()
}

fn tcp_blocked(what: &str, addr: &str) -> Value {
    let target: SocketAddr = addr.parse().expect("valid address");
    let res = TcpStream::connect_timeout(&target, Duration::from_millis(500));
    check(
        &format!("{what}: tcp {addr}"),
        res.is_err(),
        match res {
            Ok(_) => "connected: the sandbox has network".into(),
            Err(e) => format!("refused from inside ({e})"),
        },
    )
}

/// The jail's /tmp holds nothing when the extractor starts: no file of an earlier document, whoever's it was.
pub fn fresh_tmp() -> Value {
    let left: Vec<String> = std::fs::read_dir("/tmp")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    check(
        "a fresh /tmp, empty",
        left.is_empty(),
        if left.is_empty() { "empty".into() } else { format!("holds {left:?}") },
    )
}

/// The document handed over on stdin arrives whole, under its name, as a read-only file of the private /tmp.
pub fn document_arrives(dir: &std::path::Path) -> Value {
    let path = dir.join("document");
    let got = crate::sandbox::receive_document(std::io::stdin().lock(), &path)
        .and_then(|name| Ok((name, std::fs::read(&path)?, std::fs::metadata(&path)?)));
    match got {
        Ok((name, bytes, meta)) => check(
            "the document arrives on stdin",
            !bytes.is_empty() && meta.permissions().readonly(),
            format!("{name}: {} bytes, read-only: {}", bytes.len(), meta.permissions().readonly()),
        ),
        Err(e) => check("the document arrives on stdin", false, format!("{e:#}")),
    }
}

/// Misbehave on purpose, to prove the jail stops it: a fork bomb, a memory bomb or an endless loop.
pub fn bomb(kind: &str) -> ! {
    match kind {
        "fork" => loop {
            // SAFETY: fork in a single-threaded process that then only loops; the point is to exhaust processes.
            unsafe {
                libc::fork();
            }
        },
        "memory" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                let mut block = vec![0u8; 64 * 1024 * 1024];
                block.iter_mut().step_by(4096).for_each(|b| *b = 1);
                hoard.push(block);
            }
        }
        _ => {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
    }
}
