//! Who may use `nerdcabal mcp --http`: every request carries the server's bearer token (`--http-token`,
//! `NERDCABAL_MCP_TOKEN`, or one generated at start, written with mode 0600 to a file and printed once), or it
//! is answered 401; and an `Origin` header, when present, must be one the server allows (its own origin, the
//! loopback origins on its port, and `--http-allow-origin`), or it is answered 403 — as the MCP specification
//! asks of servers, against DNS rebinding. A bind that is not loopback needs a token given explicitly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Env: the bearer token of `nerdcabal mcp --http`.
pub const ENV_MCP_TOKEN: &str = "NERDCABAL_MCP_TOKEN";
/// A given token must be at least this long.
pub const MIN_TOKEN_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum HttpAuthError {
    #[error(
        "{addr} is not a loopback address: give a bearer token with --http-token or {ENV_MCP_TOKEN} (one is generated only for loopback binds)"
    )]
    TokenRequired { addr: SocketAddr },
    #[error("the bearer token must be at least {MIN_TOKEN_LEN} characters")]
    WeakToken,
    #[error("cannot write the token file {path}: {source}")]
    TokenFile { path: String, source: std::io::Error },
    #[error("--http-allow-origin `{0}` is not an origin (`scheme://host[:port]`)")]
    BadOrigin(String),
}

/// The token the server accepts, and where it came from.
#[derive(Clone)]
pub struct Token {
    pub value: String,
    /// Set when it was generated here (and written to this file).
    pub generated_in: Option<PathBuf>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &"<redacted>")
            .field("generated_in", &self.generated_in)
            .finish()
    }
}

/// The default file for a generated token: `~/.nerdcabal/mcp-token`.
pub fn default_token_file() -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    Path::new(&home).join(".nerdcabal").join("mcp-token")
}

/// The given token, or a new one written to `file` (0600) when the bind is loopback.
pub fn resolve_token(given: Option<String>, file: Option<PathBuf>, addr: SocketAddr) -> Result<Token, HttpAuthError> {
    if let Some(value) = given.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) {
        if value.len() < MIN_TOKEN_LEN {
            return Err(HttpAuthError::WeakToken);
        }
        return Ok(Token {
            value,
            generated_in: None,
        });
    }
    if !addr.ip().is_loopback() {
        return Err(HttpAuthError::TokenRequired { addr });
    }
    let value = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let path = file.unwrap_or_else(default_token_file);
    write_private(&path, &value).map_err(|source| HttpAuthError::TokenFile {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Token {
        value,
        generated_in: Some(path),
    })
}

/// Writes `text` to `path`, readable by its owner only (created so: never a moment world-readable).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        // An existing file keeps its mode on open: set it.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")
    }
}

/// An origin as RFC 6454 compares them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

fn parse_origin(text: &str) -> Option<Origin> {
    let url = url::Url::parse(text.trim()).ok()?;
    if (url.path() != "/" && !url.path().is_empty()) || url.query().is_some() || !url.username().is_empty() {
        return None;
    }
    Some(Origin {
        scheme: url.scheme().to_owned(),
        host: url.host_str()?.to_ascii_lowercase(),
        port: url.port_or_known_default()?,
    })
}

/// What the middleware checks.
#[derive(Debug, Clone)]
pub struct HttpAccess {
    token: Arc<str>,
    origins: Arc<[Origin]>,
}

impl HttpAccess {
    /// Accepts `token`, and origins: the server's own, loopback ones on its port, and `extra`.
    pub fn new(token: &Token, addr: SocketAddr, extra: &[String]) -> Result<Self, HttpAuthError> {
        let port = addr.port();
        let mut origins = Vec::new();
        let own = |host: String| Origin {
            scheme: "http".into(),
            host,
            port,
        };
        if !addr.ip().is_unspecified() {
            origins.push(own(match addr {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            }));
        }
        for host in ["localhost", "127.0.0.1", "[::1]"] {
            origins.push(own(host.into()));
        }
        for text in extra {
            origins.push(parse_origin(text).ok_or_else(|| HttpAuthError::BadOrigin(text.clone()))?);
        }
        Ok(HttpAccess {
            token: token.value.as_str().into(),
            origins: origins.into(),
        })
    }

    fn origin_allowed(&self, value: &HeaderValue) -> bool {
        value
            .to_str()
            .ok()
            .and_then(parse_origin)
            .is_some_and(|origin| self.origins.contains(&origin))
    }

    fn token_matches(&self, value: Option<&HeaderValue>) -> bool {
        let Some(presented) = value
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        else {
            return false;
        };
        constant_time_eq(presented.trim().as_bytes(), self.token.as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The axum middleware: Origin first (403), then the bearer token (401).
pub async fn require(State(access): State<HttpAccess>, request: Request, next: Next) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN)
        && !access.origin_allowed(origin)
    {
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "error": {"code": -32600, "message": "Forbidden: this Origin may not use the server"}
        });
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    if !access.token_matches(request.headers().get(header::AUTHORIZATION)) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"nerdcabal-mcp\"")],
            "a bearer token is required (Authorization: Bearer <token>)",
        )
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_token_is_generated_0600_for_loopback_only_and_a_given_one_must_be_long() {
        let dir = std::env::temp_dir().join(format!("nerdcabal-mcp-token-{}", uuid::Uuid::new_v4()));
        let file = dir.join("token");
        let token = resolve_token(None, Some(file.clone()), addr("127.0.0.1:4040")).unwrap();
        assert_eq!(token.value.len(), 64);
        assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token.value);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(!format!("{token:?}").contains(&token.value));
        assert!(matches!(
            resolve_token(None, Some(file.clone()), addr("0.0.0.0:4040")),
            Err(HttpAuthError::TokenRequired { .. })
        ));
        assert!(matches!(
            resolve_token(Some("short".into()), None, addr("0.0.0.0:4040")),
            Err(HttpAuthError::WeakToken)
        ));
        let given = resolve_token(Some("a-long-enough-token-1".into()), None, addr("10.0.0.2:4040")).unwrap();
        assert_eq!(
            (given.value.as_str(), given.generated_in),
            ("a-long-enough-token-1", None)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn origins_are_compared_by_scheme_host_and_port() {
        let token = Token {
            value: "t".repeat(32),
            generated_in: None,
        };
        let access = HttpAccess::new(&token, addr("127.0.0.1:4040"), &["https://app.example".into()]).unwrap();
        let allowed = |o: &str| access.origin_allowed(&HeaderValue::from_str(o).unwrap());
        assert!(allowed("http://127.0.0.1:4040"));
        assert!(allowed("http://localhost:4040"));
        assert!(allowed("http://[::1]:4040"));
        assert!(allowed("https://app.example"));
        assert!(allowed("https://app.example:443"));
        assert!(!allowed("http://localhost:4041"));
        assert!(!allowed("https://127.0.0.1:4040"));
        assert!(!allowed("https://evil.example"));
        assert!(!allowed("null"));
        assert!(HttpAccess::new(&token, addr("127.0.0.1:1"), &["app.example".into()]).is_err());
        let bearer = |v: &str| access.token_matches(Some(&HeaderValue::from_str(v).unwrap()));
        assert!(bearer(&format!("Bearer {}", "t".repeat(32))));
        assert!(!bearer(&format!("Bearer {}", "t".repeat(31))));
        assert!(!bearer(&"t".repeat(32)));
        assert!(!access.token_matches(None));
    }
}
