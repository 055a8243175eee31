//! envd, the daemon inside each sandbox: where it is, the document upload and the process RPC.

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::client::{EndInfo, Inner, Live, ProcessOutput};
use super::helpers::*;
use super::wire::*;
use super::*;

impl Inner {
    pub(super) fn envd_url(&self, id: &str, domain: Option<&str>) -> String {
        if let Some(u) = &self.envd_override {
            return u.clone();
        }
        let domain = domain.map(str::trim).filter(|d| !d.is_empty()).map(str::to_string).unwrap_or_else(|| {
            let host = reqwest::Url::parse(&self.api_url).ok().and_then(|u| u.host_str().map(str::to_string));
            match host {
                Some(h) if h.starts_with("api.") => h["api.".len()..].to_string(),
                _ => "e2b.app".to_string(),
            }
        });
        format!("https://{ENVD_PORT}-{id}.{domain}")
    }

    pub(super) fn envd_request(&self, live: &Live, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let mut b = builder
            .header("E2b-Sandbox-Id", &live.id)
            .header("E2b-Sandbox-Port", ENVD_PORT.to_string())
            .header("Authorization", SANDBOX_USER_BASIC);
        if let Some(t) = &live.access_token {
            b = b.header("X-Access-Token", t.expose());
        }
        b
    }

    /// Send one envd request, built afresh for each attempt. E2B's edge, in front of every envd, answers 429
    /// when a sandbox gets too many requests and 409 while a sandbox is changing state (starting, pausing); the
    /// request never reached envd, so it is sent again after the same backoff as the API's 429, as long as the
    /// wait ends before `deadline`; after that it is a transient [`E2bError::Edge`].
    async fn send_envd(
        &self,
        what: &'static str,
        deadline: Instant,
        request: impl Fn() -> Result<reqwest::RequestBuilder, E2bError>,
    ) -> Result<reqwest::Response, E2bError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let resp = request()?.send().await.map_err(|e| connection_error(what, e))?;
            let status = resp.status().as_u16();
            if status != 409 && status != 429 {
                return Ok(resp);
            }
            let retry_after = retry_after(resp.headers());
            let message = error_message(resp).await;
            let pause = backoff(retry_after);
            if attempt >= CREATE_ATTEMPTS || Instant::now() + pause >= deadline {
                return Err(E2bError::Edge { what, status, retry_after, message });
            }
            tracing::info!(what, status, attempt, wait_ms = pause.as_millis() as u64, "E2B's edge asked us to wait");
            tokio::time::sleep(pause).await;
        }
    }

    /// envd `POST /files?path=/tmp/document` (multipart, field `file`).
    pub(super) async fn upload(&self, live: &Live, bytes: &[u8], deadline: Instant) -> Result<(), E2bError> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/files", live.envd_url),
            &[("path", SANDBOX_DOCUMENT), ("username", SANDBOX_USER)],
        )
        .map_err(|e| E2bError::Config(format!("bad envd URL {}: {e}", live.envd_url)))?;
        let resp = self
            .send_envd("upload the document", deadline, || {
                let part = reqwest::multipart::Part::bytes(bytes.to_vec())
                    .file_name("document")
                    .mime_str("application/octet-stream")
                    .map_err(|e| E2bError::Protocol(e.to_string()))?;
                let form = reqwest::multipart::Form::new().part("file", part);
                Ok(self.envd_request(live, self.http.post(url.clone())).multipart(form))
            })
            .await?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => Ok(()),
            404 | 502 | 503 | 504 => {
                Err(E2bError::SandboxDied(format!("upload answered HTTP {status}: {}", error_message(resp).await)))
            }
            _ => Err(E2bError::Http { what: "upload the document", status, message: error_message(resp).await }),
        }
    }

    /// envd `process.Process/Start`: run the extractor with `args`, collect its output until its end event.
    pub(super) async fn run(
        &self,
        live: &Live,
        args: Vec<String>,
        deadline: Instant,
    ) -> Result<ProcessOutput, E2bError> {
        let envs: BTreeMap<&str, &str> = EXTRACTOR_ENV.iter().copied().collect();
        let mut request = serde_json::json!({
            "process": { "cmd": self.extractor, "args": args, "envs": envs, "cwd": "/tmp" },
        });
        if envd_at_least(&live.envd_version, ENVD_COMMANDS_STDIN) {
            request["stdin"] = serde_json::Value::Bool(false);
        }
        let body = encode_frame(0, &serde_json::to_vec(&request).expect("JSON of plain values"));
        let url = format!("{}/process.Process/Start", live.envd_url);
        let mut resp = self
            .send_envd("start the extractor", deadline, || {
                let remaining_ms = deadline.saturating_duration_since(Instant::now()).as_millis().max(1);
                Ok(self
                    .envd_request(live, self.http.post(&url))
                    .header("Content-Type", "application/connect+json")
                    .header("Connect-Protocol-Version", "1")
                    .header("Connect-Timeout-Ms", remaining_ms.to_string())
                    .header("Keepalive-Ping-Interval", KEEPALIVE_SECS)
                    .body(body.clone()))
            })
            .await?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(match status {
                404 | 502 | 503 | 504 => E2bError::SandboxDied(format!(
                    "process start answered HTTP {status}: {}",
                    error_message(resp).await
                )),
                _ => {
                    let text = resp.text().await.unwrap_or_default();
                    match serde_json::from_str::<ConnectError>(&text) {
                        Ok(ce) if !ce.code.is_empty() => rpc_error(ce, self.timeout.as_secs()),
                        _ => E2bError::Http { what: "start the extractor", status, message: truncate(&text, 300) },
                    }
                }
            });
        }
        let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        if !content_type.starts_with("application/connect+json") {
            return Err(E2bError::Protocol(format!("process start answered content-type {content_type:?}")));
        }

        let mut out = ProcessOutput::default();
        let mut decoder = FrameDecoder::default();
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) if out.end.is_some() => {
                    tracing::debug!(error = %e, "the process stream broke after its end event");
                    return Ok(out);
                }
                Err(e) => {
                    return Err(E2bError::SandboxDied(format!("the process stream broke before its end event: {e}")))
                }
            };
            decoder.push(&chunk);
            while let Some((flags, data)) = decoder.next_frame()? {
                if flags & FLAG_END_STREAM != 0 {
                    let end: EndStream = serde_json::from_slice(&data)
                        .map_err(|e| E2bError::Protocol(format!("bad end-of-stream frame: {e}")))?;
                    if let Some(err) = end.error {
                        return Err(rpc_error(err, self.timeout.as_secs()));
                    }
                    return match out.end {
                        Some(_) => Ok(out),
                        None => Err(E2bError::SandboxDied("the process stream ended without an end event".into())),
                    };
                }
                if flags & FLAG_COMPRESSED != 0 {
                    return Err(E2bError::Protocol("a compressed frame, though no compression was offered".into()));
                }
                let msg: StartResponse = serde_json::from_slice(&data).map_err(|e| {
                    E2bError::Protocol(format!(
                        "bad process event ({e}): {}",
                        truncate(&String::from_utf8_lossy(&data), 200)
                    ))
                })?;
                let Some(event) = msg.event else { continue };
                if let Some(start) = event.start {
                    out.pid = start.pid;
                }
                if let Some(d) = event.data {
                    if let Some(s) = d.stdout {
                        let bytes = decode_b64(&s)?;
                        let room = MAX_STDOUT.saturating_sub(out.stdout.len());
                        out.stdout.extend_from_slice(&bytes[..bytes.len().min(room)]);
                    }
                    if let Some(s) = d.stderr {
                        out.stderr.extend_from_slice(&decode_b64(&s)?);
                        if out.stderr.len() > MAX_STDERR {
                            let cut = out.stderr.len() - MAX_STDERR;
                            out.stderr.drain(..cut);
                        }
                    }
                }
                if let Some(end) = event.end {
                    out.end = Some(EndInfo {
                        // proto3 JSON leaves out a zero exit code: absent means 0.
                        exit_code: end.exit_code.as_ref().and_then(json_int).unwrap_or(0),
                        status: end.status.unwrap_or_default(),
                        error: end.error.filter(|e| !e.is_empty()),
                    });
                }
            }
        }
        if decoder.has_partial() {
            return Err(E2bError::SandboxDied("the process stream stopped in the middle of a frame".into()));
        }
        match out.end {
            Some(_) => Ok(out),
            None => Err(E2bError::SandboxDied("the process stream ended without an end event".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envd_is_addressed_by_port_and_sandbox_id() {
        let client = E2bSandbox::new(&E2bConfig::new("e2b_00", "tmpl")).unwrap();
        assert_eq!(client.inner.envd_url("sbx1", None), "https://49983-sbx1.e2b.app");
        assert_eq!(client.inner.envd_url("sbx1", Some("e2b.dev")), "https://49983-sbx1.e2b.dev");
    }
}
