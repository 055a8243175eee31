//! A local stand-in for E2B, implementing the documented subset the client uses, over real HTTP on 127.0.0.1:
//!
//! - the REST API: `POST /sandboxes` (checks `X-API-Key`, answers 401 to a wrong key, 404 to an unknown
//!   template, 400 to a lifetime (`timeout`) past the plan's limit with E2B's message, 429 with or without
//!   `Retry-After` when told to), `GET /sandboxes/{id}` and `DELETE /sandboxes/{id}`; every creation and deletion
//!   is recorded so tests can count leaks;
//! - envd, routed by the `E2b-Sandbox-Id` header as E2B's shared sandbox host does: `POST /files?path=` (multipart
//!   field `file`, checks `X-Access-Token`) and the Connect-RPC `POST /process.Process/Start` (JSON envelopes,
//!   server streaming: start, data, end events, then the end-of-stream frame). When told to, E2B's edge in front
//!   of envd answers 409 or 429 (without `Retry-After`) instead.
//!
//! Process start really runs the requested command on this machine: `/usr/local/bin/invoice-intake` is mapped
//! to the real extractor binary and sandbox paths under `/tmp/` to a private directory per sandbox, so a test
//! reads a real invoice end to end. As envd does (proto3 JSON), an exit code of 0 is left out of the end event,
//! and, as envd's `Wait` does, a process that did not exit 0 gets an end event carrying `error` (Go's
//! `exec.ExitError`: "exit status N", "signal: killed"). envd starts every command through
//! `/bin/sh -c '… exec /usr/bin/nice -n 0 "$@"'`, so a command the template lacks is not a refused RPC: the run
//! exits 127 with nice's message on stderr. A broken template is imitated with `template_env` (for example a
//! library path holding an unloadable libpoppler, or a tessdata directory without `spa`).
//!
//! Faults are chosen per document, so one batch can mix them:
//! - a document name (`--name=`) starting with `die` gets a start event and some output, then the connection
//!   is cut without an end event (the sandbox died mid-run);
//! - `eof`: a start event and some output, then the stream simply ends: no end event, no end-of-stream frame;
//! - `hang`: a start event, then nothing until the client goes away;
//! - `crash`: a panic message on stderr and exit code 101, without running anything;
//! - `killed`: the extractor starts and is killed with SIGKILL (as the OOM killer would);
//! - a document whose bytes start with `FAIL-UPLOAD` is refused by the upload with HTTP 500.

#![allow(dead_code)]

use axum::body::Body;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use invoice_intake::sandbox::e2b::E2bConfig;

/// The extractor path the template uses, which this server maps to the real binary.
pub const TEMPLATE_EXTRACTOR: &str = "/usr/local/bin/invoice-intake";
/// What the server calls the template an alias resolves to.
pub const TEMPLATE_ID: &str = "iitpl0e2bcontract";
pub const TEMPLATE_ALIAS: &str = "invoice-intake";
pub const UNKNOWN_TEMPLATE: &str = "no-such-template";

/// One process start, as received.
#[derive(Debug, Clone)]
pub struct Command {
    pub sandbox: String,
    pub cmd: String,
    pub args: Vec<String>,
    pub envs: BTreeMap<String, String>,
    pub stdin: Option<bool>,
}

#[derive(Debug, Default)]
pub struct Recorded {
    pub create_attempts: usize,
    pub create_bodies: Vec<Value>,
    pub create_times: Vec<Instant>,
    pub created: Vec<String>,
    pub deleted: Vec<String>,
    pub uploads: Vec<(String, String, usize)>,
    pub commands: Vec<Command>,
    /// The JSON of every end event sent.
    pub end_events: Vec<String>,
    /// The next this many creations answer 429 with `retry_after` (no header when empty).
    pub rate_limit_next: usize,
    pub retry_after: String,
    /// The next this many envd requests are answered by the edge with this status (409 or 429), no Retry-After.
    pub edge_refuse_next: usize,
    pub edge_status: u16,
    pub edge_refusals: usize,
    /// The plan's longest sandbox lifetime: a creation asking for more gets 400.
    pub max_lifetime_secs: u64,
    /// Added to the environment of every process: how a broken template is imitated.
    pub template_env: Vec<(String, String)>,
    /// Creations answer only after this long (the sandbox exists from the start, as on a slow cold start).
    pub create_delay: Duration,
    tokens: HashMap<String, String>,
    /// Sandboxes created with `allow_internet_access: false`: their processes run without network.
    offline: Vec<String>,
}

pub struct Shared {
    api_key: String,
    extractor: PathBuf,
    root: PathBuf,
    rec: Mutex<Recorded>,
}

pub struct FakeE2b {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for FakeE2b {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl FakeE2b {
    /// Listen on 127.0.0.1 (a random port), accepting `api_key`, running `extractor` for the template's.
    pub async fn start(api_key: &str, extractor: impl Into<PathBuf>) -> FakeE2b {
        let dir = tempfile::tempdir().expect("temp dir");
        let shared = Arc::new(Shared {
            api_key: api_key.to_string(),
            extractor: extractor.into(),
            root: dir.path().to_path_buf(),
            rec: Mutex::new(Recorded { max_lifetime_secs: 3600, ..Recorded::default() }),
        });
        let app = Router::new()
            .route("/sandboxes", post(create_sandbox))
            .route("/sandboxes/{id}", delete(delete_sandbox).get(get_sandbox))
            .route("/files", post(upload_file))
            .route("/process.Process/Start", post(process_start))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        FakeE2b { addr, shared, stop: Some(stop), _dir: dir }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client config pointing both the API and envd at this server, with a fast creation rate.
    pub fn config(&self, api_key: &str) -> E2bConfig {
        let mut c = E2bConfig::new(api_key, TEMPLATE_ALIAS);
        c.api_url = self.url();
        c.envd_url_override = Some(self.url());
        c.creations_per_second = 1000.0;
        c.timeout_secs = 60;
        c
    }

    pub fn rate_limit_next(&self, n: usize, retry_after: &str) {
        let mut r = self.shared.rec.lock().unwrap();
        r.rate_limit_next = n;
        r.retry_after = retry_after.to_string();
    }

    /// The next `n` envd requests get `status` (409 or 429) from the edge, without `Retry-After`.
    pub fn edge_refuse_next(&self, n: usize, status: u16) {
        let mut r = self.shared.rec.lock().unwrap();
        r.edge_refuse_next = n;
        r.edge_status = status;
    }

    /// The plan's longest sandbox lifetime (3600 s, the hobby plan's, unless told).
    pub fn max_lifetime(&self, secs: u64) {
        self.shared.rec.lock().unwrap().max_lifetime_secs = secs;
    }

    /// Every process in every sandbox gets `key=value` in its environment, as if the template set it.
    pub fn template_env(&self, key: &str, value: &str) {
        self.shared.rec.lock().unwrap().template_env.push((key.to_string(), value.to_string()));
    }

    pub fn delay_creations(&self, by: Duration) {
        self.shared.rec.lock().unwrap().create_delay = by;
    }

    pub fn with<T>(&self, f: impl FnOnce(&Recorded) -> T) -> T {
        f(&self.shared.rec.lock().unwrap())
    }

    pub fn created(&self) -> Vec<String> {
        self.with(|r| r.created.clone())
    }

    pub fn deleted(&self) -> Vec<String> {
        self.with(|r| r.deleted.clone())
    }

    /// Sandboxes created and not deleted.
    pub fn live(&self) -> Vec<String> {
        self.with(|r| r.created.iter().filter(|id| !r.deleted.contains(id)).cloned().collect())
    }

    /// Wait (bounded) until every created sandbox has been deleted and no creation has come in for a while (a
    /// creation still in flight deletes its sandbox when it lands); the leftovers if some never are.
    pub async fn wait_until_all_deleted(&self, within: Duration) -> Vec<String> {
        let until = Instant::now() + within;
        let mut quiet_since = Instant::now();
        let mut attempts = self.with(|r| r.create_attempts);
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now_attempts = self.with(|r| r.create_attempts);
            if now_attempts != attempts {
                attempts = now_attempts;
                quiet_since = Instant::now();
            }
            let live = self.live();
            let quiet = quiet_since.elapsed() >= Duration::from_millis(300);
            if (live.is_empty() && quiet) || Instant::now() >= until {
                return live;
            }
        }
    }

    /// Wait (bounded) until at least `n` sandboxes have been created.
    pub async fn wait_until_created(&self, n: usize, within: Duration) {
        let until = Instant::now() + within;
        while self.created().len() < n && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "code": status.as_u16(), "message": message }))).into_response()
}

// ----- REST API -----------------------------------------------------------------------------------------------

async fn create_sandbox(State(s): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    match record_creation(&s, &headers, &body) {
        Ok((created, delay)) => {
            tokio::time::sleep(delay).await;
            (StatusCode::CREATED, Json(created)).into_response()
        }
        Err(resp) => *resp,
    }
}

/// The creation itself (no await while the record is locked): the answer, and how long to wait before giving it.
fn record_creation(s: &Shared, headers: &HeaderMap, body: &str) -> Result<(Value, Duration), Box<Response>> {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(s.api_key.as_str()) {
        return Err(Box::new(error(StatusCode::UNAUTHORIZED, "Invalid API key")));
    }
    let mut rec = s.rec.lock().unwrap();
    rec.create_attempts += 1;
    if rec.rate_limit_next > 0 {
        rec.rate_limit_next -= 1;
        let mut resp = error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded, please try again later");
        if !rec.retry_after.is_empty() {
            resp.headers_mut().insert("retry-after", rec.retry_after.parse().unwrap());
        }
        return Err(Box::new(resp));
    }
    let Ok(req) = serde_json::from_str::<Value>(body) else {
        return Err(Box::new(error(StatusCode::BAD_REQUEST, "the body is not JSON")));
    };
    let Some(template) = req["templateID"].as_str().map(str::to_string) else {
        return Err(Box::new(error(StatusCode::BAD_REQUEST, "templateID is required")));
    };
    let Some(timeout) = req["timeout"].as_u64() else {
        return Err(Box::new(error(StatusCode::BAD_REQUEST, "timeout must be a whole number of seconds")));
    };
    // E2B's API: `if timeout > MaxLengthHours * time.Hour` → 400 "Timeout cannot be greater than %d hours".
    if timeout > rec.max_lifetime_secs {
        let hours = rec.max_lifetime_secs / 3600;
        return Err(Box::new(error(StatusCode::BAD_REQUEST, &format!("Timeout cannot be greater than {hours} hours"))));
    }
    if template != TEMPLATE_ALIAS && template != TEMPLATE_ID {
        return Err(Box::new(error(StatusCode::NOT_FOUND, &format!("template '{template}' not found"))));
    }
    let n = rec.created.len() + 1;
    let id = format!("sbx{n:04}c0ntract");
    let token = format!("envd-token-{n}-{}", std::process::id());
    std::fs::create_dir_all(s.root.join(&id).join("tmp")).unwrap();
    rec.create_bodies.push(req.clone());
    rec.create_times.push(Instant::now());
    rec.created.push(id.clone());
    // Only `secure: true` sandboxes get an access token (E2B's documented behaviour).
    let secure = req["secure"].as_bool() == Some(true);
    if secure {
        rec.tokens.insert(id.clone(), token.clone());
    }
    if req["allow_internet_access"] == json!(false) {
        rec.offline.push(id.clone());
    }
    let created = json!({
        "templateID": TEMPLATE_ID,
        "sandboxID": id,
        "clientID": "6532622b",
        "envdVersion": "0.4.2",
        "alias": TEMPLATE_ALIAS,
        "envdAccessToken": if secure { Value::String(token) } else { Value::Null },
        "trafficAccessToken": Value::Null,
        "domain": Value::Null,
    });
    Ok((created, rec.create_delay))
}

async fn get_sandbox(State(s): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(s.api_key.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "Invalid API key");
    }
    let rec = s.rec.lock().unwrap();
    if !rec.created.contains(&id) || rec.deleted.contains(&id) {
        return error(StatusCode::NOT_FOUND, &format!("sandbox \"{id}\" doesn't exist or you don't have access to it"));
    }
    Json(json!({ "sandboxID": id, "templateID": TEMPLATE_ID, "state": "running" })).into_response()
}

async fn delete_sandbox(State(s): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(s.api_key.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "Invalid API key");
    }
    let mut rec = s.rec.lock().unwrap();
    if !rec.created.contains(&id) || rec.deleted.contains(&id) {
        return error(StatusCode::NOT_FOUND, &format!("sandbox '{id}' not found"));
    }
    rec.deleted.push(id);
    StatusCode::NO_CONTENT.into_response()
}

// ----- envd ---------------------------------------------------------------------------------------------------

/// The sandbox an envd request is for, if it is running and the access token is its own.
fn envd_sandbox(s: &Shared, headers: &HeaderMap) -> Result<String, (StatusCode, String)> {
    let id = headers.get("e2b-sandbox-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let port = headers.get("e2b-sandbox-port").and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut rec = s.rec.lock().unwrap();
    if rec.edge_refuse_next > 0 {
        rec.edge_refuse_next -= 1;
        rec.edge_refusals += 1;
        let status = StatusCode::from_u16(rec.edge_status).unwrap();
        return Err((status, format!("edge: sandbox {id:?} answered {status}, try again")));
    }
    if port != "49983" || !rec.created.contains(&id) || rec.deleted.contains(&id) {
        return Err((StatusCode::BAD_GATEWAY, format!("The sandbox {id:?} was not found")));
    }
    let token = headers.get("x-access-token").and_then(|v| v.to_str().ok());
    if rec.tokens.get(&id).map(String::as_str) != token {
        return Err((StatusCode::UNAUTHORIZED, "invalid access token".into()));
    }
    Ok(id)
}

/// A sandbox path (absolute, or relative to the user's home) inside this sandbox's private directory.
fn host_path(s: &Shared, sandbox: &str, path: &str) -> PathBuf {
    let rel = match path.strip_prefix('/') {
        Some(r) => r.to_string(),
        None => format!("home/user/{path}"),
    };
    s.root.join(sandbox).join(rel)
}

async fn upload_file(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Response {
    let id = match envd_sandbox(&s, &headers) {
        Ok(id) => id,
        Err((status, message)) => return error(status, &message),
    };
    let Some(path) = q.get("path").cloned() else {
        return error(StatusCode::BAD_REQUEST, "path is required");
    };
    let mut content = None;
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some("file") {
            content = field.bytes().await.ok();
        }
    }
    let Some(content) = content else {
        return error(StatusCode::BAD_REQUEST, "multipart field 'file' is missing");
    };
    if content.starts_with(b"FAIL-UPLOAD") {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "disk I/O error");
    }
    let dest = host_path(&s, &id, &path);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::write(&dest, &content).unwrap();
    s.rec.lock().unwrap().uploads.push((id, path.clone(), content.len()));
    let name = path.rsplit('/').next().unwrap_or("").to_string();
    Json(json!([{ "path": path, "name": name, "type": "file" }])).into_response()
}

fn frame(flags: u8, v: &Value) -> Vec<u8> {
    let json = serde_json::to_vec(v).unwrap();
    let mut f = vec![flags];
    f.extend_from_slice(&(json.len() as u32).to_be_bytes());
    f.extend_from_slice(&json);
    f
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

type Chunk = Result<Vec<u8>, std::io::Error>;

async fn process_start(State(s): State<Arc<Shared>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let id = match envd_sandbox(&s, &headers) {
        Ok(id) => id,
        Err((status, message)) => return error(status, &message),
    };
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if ct != "application/connect+json" {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "use application/connect+json").into_response();
    }
    // One enveloped request message.
    if body.len() < 5 || body[0] != 0 {
        return error(StatusCode::BAD_REQUEST, "expected one uncompressed envelope");
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let Some(Ok(req)) = body.get(5..5 + len).map(serde_json::from_slice::<Value>) else {
        return error(StatusCode::BAD_REQUEST, "bad envelope");
    };
    let process = &req["process"];
    let cmd = process["cmd"].as_str().unwrap_or("").to_string();
    let args: Vec<String> =
        process["args"].as_array().into_iter().flatten().filter_map(|a| a.as_str().map(String::from)).collect();
    let envs: BTreeMap<String, String> = process["envs"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect();
    s.rec.lock().unwrap().commands.push(Command {
        sandbox: id.clone(),
        cmd: cmd.clone(),
        args: args.clone(),
        envs: envs.clone(),
        stdin: req["stdin"].as_bool(),
    });

    let (tx, rx) = mpsc::channel::<Chunk>(64);
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let shared = s.clone();
    tokio::spawn(async move { run_process(shared, id, cmd, args, envs, tx).await });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/connect+json")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn document_name(args: &[String]) -> String {
    for (i, a) in args.iter().enumerate() {
        if let Some(v) = a.strip_prefix("--name=") {
            return v.to_string();
        }
        if a == "--name" {
            return args.get(i + 1).cloned().unwrap_or_default();
        }
    }
    String::new()
}

async fn run_process(
    s: Arc<Shared>,
    id: String,
    cmd: String,
    args: Vec<String>,
    envs: BTreeMap<String, String>,
    tx: mpsc::Sender<Chunk>,
) {
    let send = |v: Value| {
        let tx = tx.clone();
        async move { tx.send(Ok(frame(0, &v))).await.is_ok() }
    };
    let end_stream_error =
        |code: &str, message: &str| frame(2, &json!({ "error": { "code": code, "message": message } }));
    if !cmd.starts_with('/') {
        let _ = tx.send(Ok(end_stream_error("invalid_argument", "cmd must be an absolute path in this test"))).await;
        return;
    }
    let name = document_name(&args);
    let record_end = |end: &Value| s.rec.lock().unwrap().end_events.push(end.to_string());
    let finish = |end: Value| {
        let tx = tx.clone();
        let end = json!({ "event": { "end": end } });
        record_end(&end);
        async move {
            let _ = tx.send(Ok(frame(0, &end))).await;
            let _ = tx.send(Ok(frame(2, &json!({})))).await;
        }
    };
    if cmd != TEMPLATE_EXTRACTOR {
        // envd's shell wrapper started; nice then found no such command: exit 127, as `sh` and `nice` report it.
        send(json!({ "event": { "start": { "pid": 4241 } } })).await;
        let msg = format!("/usr/bin/nice: '{cmd}': No such file or directory\n");
        send(json!({ "event": { "data": { "stderr": b64(msg.as_bytes()) } } })).await;
        finish(exit_end(127)).await;
        return;
    }

    if name.starts_with("hang") {
        send(json!({ "event": { "start": { "pid": 4242 } } })).await;
        // Nothing more until the client hangs up.
        while !tx.is_closed() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        return;
    }
    if name.starts_with("crash") {
        send(json!({ "event": { "start": { "pid": 4243 } } })).await;
        send(json!({ "event": { "data": { "stderr": b64(b"thread 'main' panicked at src/extract/pdf.rs:1:1\nbad things\n") } } }))
            .await;
        finish(exit_end(101)).await;
        return;
    }

    // Run it for real: the template's extractor is the real binary, sandbox paths live in a private directory.
    let mapped: Vec<String> = args
        .iter()
        .map(|a| {
            if a.starts_with("/tmp/") || a == "/tmp" {
                host_path(&s, &id, a).display().to_string()
            } else {
                a.clone()
            }
        })
        .collect();
    let cwd = host_path(&s, &id, "/tmp");
    // Without internet access, as E2B creates it: the process gets a network namespace of its own.
    let offline = s.rec.lock().unwrap().offline.contains(&id);
    let mut command = if offline {
        let mut c = tokio::process::Command::new("bwrap");
        c.args(["--dev-bind", "/", "/", "--unshare-net", "--die-with-parent", "--"]).arg(&s.extractor);
        c
    } else {
        tokio::process::Command::new(&s.extractor)
    };
    let child = command
        .args(&mapped)
        .env_clear()
        .envs(&envs)
        .envs(s.rec.lock().unwrap().template_env.clone())
        .current_dir(&cwd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            let _ = tx.send(Ok(end_stream_error("internal", &format!("error starting process: {e}")))).await;
            return;
        }
    };
    send(json!({ "event": { "start": { "pid": child.id().unwrap_or(0) } } })).await;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    if name.starts_with("killed") {
        let _ = child.kill().await;
        // Go's ProcessState for a killed process: exit code -1, not exited, "signal: killed".
        finish(json!({ "exitCode": -1, "status": "signal: killed", "error": "signal: killed" })).await;
        return;
    }
    let dies = name.starts_with("die");
    let vanishes = name.starts_with("eof");
    let out_task = {
        let tx = tx.clone();
        async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let n = stdout.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                let ev = json!({ "event": { "data": { "stdout": b64(&buf[..n]) } } });
                if tx.send(Ok(frame(0, &ev))).await.is_err() {
                    break;
                }
                if dies {
                    // The sandbox goes away: cut the connection with no end event.
                    let _ =
                        tx.send(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "sandbox died"))).await;
                    break;
                }
            }
        }
    };
    let err_task = {
        let tx = tx.clone();
        async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let n = stderr.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                let ev = json!({ "event": { "data": { "stderr": b64(&buf[..n]) } } });
                if tx.send(Ok(frame(0, &ev))).await.is_err() {
                    break;
                }
            }
        }
    };
    tokio::join!(out_task, err_task);
    if dies || vanishes {
        // Dropping every sender ends the body: after `die` the connection was already cut, after `eof` the
        // response ends cleanly with neither an end event nor an end-of-stream frame.
        let _ = child.kill().await;
        return;
    }
    let status = child.wait().await;
    let code = status.ok().and_then(|s| s.code()).unwrap_or(-1);
    finish(exit_end(code)).await;
}

/// envd's end event for a process that exited with `code`: proto3 JSON leaves a zero exit code out, and Go's
/// `cmd.Wait()` error ("exit status N") is the event's `error` whenever the code is not 0.
fn exit_end(code: i32) -> Value {
    let mut end = serde_json::Map::new();
    if code != 0 {
        end.insert("exitCode".into(), json!(code));
        end.insert("error".into(), json!(format!("exit status {code}")));
    }
    end.insert("exited".into(), json!(true));
    end.insert("status".into(), json!(format!("exit status {code}")));
    Value::Object(end)
}

/// A template whose poppler cannot load its library: a library path holding an unloadable `libpoppler.so.N`
/// for every poppler this machine has. Keep the directory while the server runs.
pub fn broken_poppler() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    for lib_dir in ["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"] {
        for e in std::fs::read_dir(lib_dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("libpoppler.so.") {
                std::fs::write(dir.path().join(&name), b"not a library").unwrap();
            }
        }
    }
    let path = dir.path().display().to_string();
    (dir, path)
}

/// A template without the Spanish language pack: a tessdata directory with every pack of this machine's but
/// `spa`. Keep the directory while the server runs.
pub fn tessdata_without(lang: &str) -> (tempfile::TempDir, String) {
    let out = std::process::Command::new("tesseract").arg("--list-langs").output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    // `List of available languages in "/usr/share/tesseract-ocr/5/tessdata/" (9):`
    let from = listing.split('"').nth(1).expect("tesseract names its tessdata directory").to_string();
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&from).unwrap().flatten() {
        if e.file_name().to_string_lossy() != format!("{lang}.traineddata") {
            std::os::unix::fs::symlink(e.path(), dir.path().join(e.file_name())).unwrap();
        }
    }
    let path = dir.path().display().to_string();
    (dir, path)
}

/// The real invoice the end-to-end test reads.
pub fn corpus_invoice() -> (String, Vec<u8>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/einvoice/en16931-cen/ubl/examples/ubl-tc434-example1.xml");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = FsPath::new(&path).file_name().unwrap().to_string_lossy().to_string();
    (name, bytes)
}
