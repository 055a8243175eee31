//! Wire formats: E2B's REST answers and envd's Connect-RPC envelopes, in proto3 JSON.

use base64::Engine as _;
use serde::Deserialize;

use super::{E2bError, MAX_FRAME};

/// `POST /sandboxes` answer (`Sandbox` in E2B's OpenAPI spec). Only `sandboxID` is needed; the rest is used when
/// present. `envdAccessToken` is only returned for `secure: true` sandboxes.
#[derive(Debug, Deserialize)]
pub(super) struct CreatedSandbox {
    #[serde(rename = "sandboxID")]
    pub(super) sandbox_id: String,
    #[serde(rename = "templateID", default)]
    pub(super) template_id: Option<String>,
    #[serde(default)]
    pub(super) alias: Option<String>,
    #[serde(rename = "envdVersion", default)]
    pub(super) envd_version: Option<String>,
    #[serde(rename = "envdAccessToken", default)]
    pub(super) envd_access_token: Option<String>,
    #[serde(default)]
    pub(super) domain: Option<String>,
}

/// Connect-RPC envelope flags.
pub(super) const FLAG_COMPRESSED: u8 = 0x01;
pub(super) const FLAG_END_STREAM: u8 = 0x02;

pub(super) fn encode_frame(flags: u8, json: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(5 + json.len());
    f.push(flags);
    f.extend_from_slice(&(json.len() as u32).to_be_bytes());
    f.extend_from_slice(json);
    f
}

/// Splits a byte stream into Connect envelopes, whatever the chunking.
#[derive(Default)]
pub(super) struct FrameDecoder {
    pub(super) buf: Vec<u8>,
}

impl FrameDecoder {
    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub(super) fn next_frame(&mut self) -> Result<Option<(u8, Vec<u8>)>, E2bError> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_FRAME {
            return Err(E2bError::Protocol(format!("a {len}-byte frame, more than the {MAX_FRAME} allowed")));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let flags = self.buf[0];
        let data = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        Ok(Some((flags, data)))
    }

    pub(super) fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }
}

/// `process.StartResponse` in proto3 JSON.
#[derive(Debug, Deserialize)]
pub(super) struct StartResponse {
    #[serde(default)]
    pub(super) event: Option<ProcessEvent>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ProcessEvent {
    #[serde(default)]
    pub(super) start: Option<StartEvent>,
    #[serde(default)]
    pub(super) data: Option<DataEvent>,
    #[serde(default)]
    pub(super) end: Option<EndEvent>,
}

#[derive(Debug, Deserialize)]
pub(super) struct StartEvent {
    #[serde(default)]
    pub(super) pid: Option<u32>,
}

/// `bytes` fields are base64 in proto3 JSON.
#[derive(Debug, Deserialize)]
pub(super) struct DataEvent {
    #[serde(default)]
    pub(super) stdout: Option<String>,
    #[serde(default)]
    pub(super) stderr: Option<String>,
}

/// Every field may be absent: proto3 JSON omits defaults (`exitCode: 0`, `exited: false`, `status: ""`).
#[derive(Debug, Deserialize)]
pub(super) struct EndEvent {
    #[serde(rename = "exitCode", alias = "exit_code", default)]
    pub(super) exit_code: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) status: Option<String>,
    #[serde(default)]
    pub(super) error: Option<String>,
}

/// The end-of-stream frame: `{}` or `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Deserialize)]
pub(super) struct EndStream {
    #[serde(default)]
    pub(super) error: Option<ConnectError>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ConnectError {
    #[serde(default)]
    pub(super) code: String,
    #[serde(default)]
    pub(super) message: String,
}

/// A Connect error from envd; its own deadline (we send `Connect-Timeout-Ms`) is our timeout.
pub(super) fn rpc_error(e: ConnectError, timeout_secs: u64) -> E2bError {
    match e.code.as_str() {
        "deadline_exceeded" => E2bError::Timeout { secs: timeout_secs },
        _ => E2bError::Rpc { code: e.code, message: e.message },
    }
}

/// proto3 JSON writes 32-bit integers as numbers but parsers must accept strings too.
pub(super) fn json_int(v: &serde_json::Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

pub(super) fn decode_b64(s: &str) -> Result<Vec<u8>, E2bError> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let t = s.trim_end_matches('=');
    let padded = |e: &base64::engine::GeneralPurpose| {
        e.decode(s).or_else(|_| {
            let mut p = t.to_string();
            while p.len() % 4 != 0 {
                p.push('=');
            }
            e.decode(p)
        })
    };
    padded(&STANDARD)
        .or_else(|_| padded(&URL_SAFE))
        .map_err(|e| E2bError::Protocol(format!("output is not base64: {e}")))
}

pub(super) fn envd_at_least(version: &str, min: (u32, u32, u32)) -> bool {
    let mut parts = version.trim_start_matches('v').split(['.', '-', '+']).map(|p| p.parse::<u32>().unwrap_or(0));
    let v = (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    // An unknown version is taken as current: templates built today have a recent envd.
    version.is_empty() || v >= min
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_found_whatever_the_chunking() {
        let mut bytes = encode_frame(0, br#"{"event":{"start":{"pid":7}}}"#);
        bytes.extend(encode_frame(0, br#"{"event":{"end":{"exited":true,"status":"exit status 0"}}}"#));
        bytes.extend(encode_frame(FLAG_END_STREAM, b"{}"));
        let mut d = FrameDecoder::default();
        let mut frames = Vec::new();
        for b in bytes.chunks(3) {
            d.push(b);
            while let Some(f) = d.next_frame().unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[2].0, FLAG_END_STREAM);
        assert!(!d.has_partial());
        let end: StartResponse = serde_json::from_slice(&frames[1].1).unwrap();
        let e = end.event.unwrap().end.unwrap();
        assert_eq!(e.exit_code.as_ref().and_then(json_int).unwrap_or(0), 0);
    }

    #[test]
    fn base64_output_is_decoded_with_or_without_padding() {
        assert_eq!(decode_b64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_b64("aGk").unwrap(), b"hi");
        assert_eq!(decode_b64("_-8=").unwrap(), vec![0xff, 0xef]);
    }
}
