//! Reading at most so many bytes of an HTTP answer: the buyer never holds more of a body than it was told it
//! may (`max_response_bytes`, 10 MiB by default; the MCP tool asks only for what it returns), stops reading
//! there — the rest is never downloaded — and says that it cut.

/// The buyer's default `max_response_bytes`.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;

/// What was read of a body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    pub bytes: Vec<u8>,
    /// The answer had more than `bytes`; the rest was not read.
    pub truncated: bool,
}

/// Reads `response`'s body up to `limit` bytes. A failure mid-body returns what was read, marked truncated.
pub async fn read(mut response: reqwest::Response, limit: usize) -> Result<Body, reqwest::Error> {
    let expected = response.content_length().and_then(|n| usize::try_from(n).ok());
    let mut bytes = Vec::with_capacity(expected.unwrap_or(0).min(limit).min(1024 * 1024));
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                return Ok(Body {
                    bytes,
                    truncated: false,
                });
            }
            Err(e) if bytes.is_empty() => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, read = bytes.len(), "the answer broke off mid-body");
                return Ok(Body { bytes, truncated: true });
            }
        };
        let room = limit - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            // Dropping the response here closes the connection: nothing more is downloaded.
            return Ok(Body { bytes, truncated: true });
        }
        bytes.extend_from_slice(&chunk);
    }
}
