//! Secrets out of URLs before they reach a log, a `Debug` or an error message: the one redaction helper every
//! crate uses for database URLs (their password) and JSON-RPC URLs (API keys carried as a password, a query
//! parameter or a path segment, as Infura, Alchemy and QuickNode do).

/// What a redacted secret is replaced with.
pub const MASK: &str = "***";

/// Query parameters whose value is a secret (matched case-insensitively, by substring).
const SECRET_PARAMS: &[&str] = &["key", "token", "secret", "pass", "auth", "sig", "credential"];

/// `url` without its secrets: the password (and a user name that is a bare token), secret-looking query
/// values, and path segments that look like API keys. Text that is not a URL comes back unchanged.
pub fn redact_url(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        return text.to_owned();
    };
    if url.cannot_be_a_base() {
        return text.to_owned();
    }
    if url.password().is_some() {
        let _ = url.set_password(Some(MASK));
    } else if looks_like_key(url.username()) {
        let _ = url.set_username(MASK);
    }
    let segments: Option<Vec<String>> = url.path_segments().map(|segments| {
        segments
            .map(|s| {
                if looks_like_key(s) {
                    MASK.to_owned()
                } else {
                    s.to_owned()
                }
            })
            .collect()
    });
    if let Some(segments) = segments {
        url.set_path(&segments.join("/"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                let secret = SECRET_PARAMS.iter().any(|p| lower.contains(p)) || looks_like_key(&v);
                (k.into_owned(), if secret { MASK.to_owned() } else { v.into_owned() })
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// Replaces every occurrence of `url` in `text` by its redacted form (for error messages that quote it).
pub fn redact_in(text: &str, url: &str) -> String {
    if url.is_empty() {
        return text.to_owned();
    }
    let redacted = redact_url(url);
    let mut out = text.replace(url, &redacted);
    // Libraries often print the URL in its normalised form (a trailing slash added).
    if let Ok(parsed) = url::Url::parse(url) {
        let normalised = parsed.as_str();
        if normalised != url {
            out = out.replace(normalised, &redact_url(normalised));
        }
    }
    out
}

/// A path segment or value that is probably an API key: 20 or more characters of letters, digits, `-` and `_`,
/// with both letters and digits.
fn looks_like_key(text: &str) -> bool {
    text.len() >= 20
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && text.bytes().any(|b| b.is_ascii_digit())
        && text.bytes().any(|b| b.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_api_keys_are_masked_and_the_rest_kept() {
        assert_eq!(
            redact_url("postgres://buyer:s3cret@db.example:5432/spend?sslmode=require"),
            "postgres://buyer:***@db.example:5432/spend?sslmode=require"
        );
        assert_eq!(
            redact_url("sqlite:///home/me/.nerdcabal/spend.db"),
            "sqlite:///home/me/.nerdcabal/spend.db"
        );
        assert_eq!(
            redact_url("https://arb-mainnet.g.alchemy.com/v2/Ab3dEf9hIjKlMn0pQrStUvWx"),
            "https://arb-mainnet.g.alchemy.com/v2/***"
        );
        assert_eq!(
            redact_url("https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef"),
            "https://mainnet.infura.io/v3/***"
        );
        assert_eq!(
            redact_url("https://rpc.example/?apikey=abc&chain=arc"),
            "https://rpc.example/?apikey=***&chain=arc"
        );
        assert_eq!(
            redact_url("https://0123456789abcdef0123@rpc.example/"),
            "https://***@rpc.example/"
        );
        assert_eq!(
            redact_url("https://rpc.testnet.arc.network"),
            "https://rpc.testnet.arc.network/"
        );
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(
            redact_in(
                "error sending request for url (https://x.example/v2/Ab3dEf9hIjKlMn0pQrStUvWx)",
                "https://x.example/v2/Ab3dEf9hIjKlMn0pQrStUvWx"
            ),
            "error sending request for url (https://x.example/v2/***)"
        );
    }
}
