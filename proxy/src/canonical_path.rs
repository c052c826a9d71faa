//! The one reading of a request's path and authority that route matching sees. A path that different servers
//! read differently (an encoded slash or backslash, a control byte, a dot segment hidden behind percent-encoding
//! or Tomcat-style `;` parameters, a broken `%`) is refused rather than guessed at; any other path becomes its
//! canonical form: unreserved characters percent-decoded, other percent-encodings kept with uppercase hex,
//! characters a path may not hold percent-encoded, dot segments removed (RFC 3986 §5.2.4), and, when the
//! upstream merges slashes, runs of `/` merged. The authority is the URI's (HTTP/2 `:authority` or an
//! absolute-form target) and the `Host` header's, which must agree. Pure: no I/O, no state.

use axum::http::uri::Authority;
use axum::http::{HeaderMap, Uri, header};

/// Why a path was refused: it can be read as more than one path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmbiguousPath {
    #[error("the path does not start with /")]
    NotAbsolute,
    #[error("the path holds an encoded slash (%2F)")]
    EncodedSlash,
    #[error("the path holds a backslash (\\ or %5C)")]
    Backslash,
    #[error("the path holds a NUL or another control byte (raw or percent-encoded)")]
    ControlByte,
    #[error("the path holds a segment that is `.` or `..` once percent-decoded")]
    EncodedDotSegment,
    #[error("the path holds a segment starting with `.;` or `..;` (a dot segment with path parameters)")]
    DotSemicolonSegment,
    #[error("the path holds a `%` not followed by two hex digits")]
    BadPercentEncoding,
}

/// Canonical form of a request path (the part of the request target before `?`).
///
/// `merge_slashes` says the upstream treats `//` as `/` (nginx's default, Python's `http.server`): empty
/// segments are dropped before dot segments are removed, as those servers do, so `/a//../b` is `/b`. Without it
/// the path is read as RFC 3986 says (`/a//../b` is `/a/b`) and `//` is kept. A trailing slash is kept either
/// way. The result is its own canonical form: `canonicalize(canonicalize(p)?) == canonicalize(p)`.
pub fn canonicalize(raw: &str, merge_slashes: bool) -> Result<String, AmbiguousPath> {
    let body = raw.strip_prefix('/').ok_or(AmbiguousPath::NotAbsolute)?;
    let mut out = String::with_capacity(raw.len());
    // Where, in `out`, the `/` before each kept segment is: `..` truncates back to the last one.
    let mut starts: Vec<usize> = Vec::new();
    let mut segment = String::new();
    let mut parts = body.split('/').peekable();
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        segment.clear();
        decode_segment(part, &mut segment)?;
        check_dots(part, &segment)?;
        match segment.as_str() {
            "" if merge_slashes && !last => {}
            "." => {}
            ".." => {
                if let Some(start) = starts.pop() {
                    out.truncate(start);
                }
            }
            _ => {
                starts.push(out.len());
                out.push('/');
                out.push_str(&segment);
                continue;
            }
        }
        // A final `.` or `..` leaves the path ending in a slash (`/a/b/..` is `/a/`).
        if last {
            out.push('/');
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// One path segment (text between two `/`) in the form [`canonicalize`] gives it, with the same refusals (a
/// `/` in it is an encoded slash). Route patterns compile their literal segments with it, so that a pattern
/// written `/café` or `/p%61id` compares equal to the canonical request paths that mean it.
pub fn canonical_segment(segment: &str) -> Result<String, AmbiguousPath> {
    if segment.contains('/') {
        return Err(AmbiguousPath::EncodedSlash);
    }
    let mut out = String::with_capacity(segment.len());
    decode_segment(segment, &mut out)?;
    check_dots(segment, &out)?;
    Ok(out)
}

/// Refuses the dot segments that servers disagree on; `segment` is `part` after [`decode_segment`].
fn check_dots(part: &str, segment: &str) -> Result<(), AmbiguousPath> {
    if (segment == "." || segment == "..") && part != segment {
        return Err(AmbiguousPath::EncodedDotSegment);
    }
    let params = segment
        .strip_prefix("..")
        .or_else(|| segment.strip_prefix('.'))
        .is_some_and(|after| after.starts_with(';') || after.starts_with("%3B"));
    if params {
        return Err(AmbiguousPath::DotSemicolonSegment);
    }
    Ok(())
}

/// One segment (no `/`) into `out`: unreserved characters decoded, other encodings with uppercase hex, and the
/// bytes a path may not hold raw encoded.
fn decode_segment(part: &str, out: &mut String) -> Result<(), AmbiguousPath> {
    let bytes = part.as_bytes();
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let high = bytes.get(i + 1).copied().and_then(hex_value);
            let low = bytes.get(i + 2).copied().and_then(hex_value);
            let (Some(high), Some(low)) = (high, low) else {
                return Err(AmbiguousPath::BadPercentEncoding);
            };
            let decoded = (high << 4) | low;
            refuse(decoded, true)?;
            if is_unreserved(decoded) {
                out.push(char::from(decoded));
            } else {
                push_encoded(out, decoded);
            }
            i += 3;
            continue;
        }
        refuse(byte, false)?;
        if is_unreserved(byte) || is_sub_delim(byte) || byte == b':' || byte == b'@' {
            out.push(char::from(byte));
        } else {
            push_encoded(out, byte);
        }
        i += 1;
    }
    Ok(())
}

/// The bytes never allowed, raw or encoded (`encoded`: it came from a `%XX`).
fn refuse(byte: u8, encoded: bool) -> Result<(), AmbiguousPath> {
    match byte {
        b'/' if encoded => Err(AmbiguousPath::EncodedSlash),
        b'\\' => Err(AmbiguousPath::Backslash),
        0x00..=0x1F | 0x7F => Err(AmbiguousPath::ControlByte),
        _ => Ok(()),
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

fn push_encoded(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0x0F)]));
}

/// RFC 3986 `unreserved`: ALPHA / DIGIT / `-` / `.` / `_` / `~`.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 `sub-delims`.
fn is_sub_delim(byte: u8) -> bool {
    matches!(
        byte,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// Why a request's authority was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmbiguousAuthority {
    #[error("the request target names `{uri}` but the Host header names `{host}`")]
    Disagree { uri: String, host: String },
    #[error("the Host header is not visible ASCII")]
    NotText,
    #[error("the request has more than one Host header")]
    MultipleHosts,
    #[error("`{0}` is not a host[:port]")]
    Invalid(String),
}

/// The request's authority (host[:port], lowercased), from the URI's authority (HTTP/2 `:authority` or an
/// absolute-form target) and/or the Host header; both present and different (case-insensitively) is an error.
/// None when neither is present.
///
/// More than one Host header, or an authority with user information (`user@host`) or a port that is not a
/// number, is refused. An empty Host header (what HTTP/1.1 asks for when the target has no authority) counts as
/// none; beside a URI authority it disagrees with it.
pub fn request_authority(uri: &Uri, headers: &HeaderMap) -> Result<Option<String>, AmbiguousAuthority> {
    let from_uri = uri.authority().map(host_and_port).transpose()?;
    let mut values = headers.get_all(header::HOST).iter();
    let from_header = match (values.next(), values.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => return Err(AmbiguousAuthority::MultipleHosts),
        (Some(value), None) => {
            let text = value.to_str().map_err(|_| AmbiguousAuthority::NotText)?;
            if text.is_empty() {
                Some(String::new())
            } else {
                let authority = Authority::try_from(text).map_err(|_| AmbiguousAuthority::Invalid(text.to_owned()))?;
                Some(host_and_port(&authority)?)
            }
        }
    };
    match (from_uri, from_header) {
        (Some(uri), Some(host)) if uri != host => Err(AmbiguousAuthority::Disagree { uri, host }),
        (Some(uri), _) => Ok(Some(uri)),
        (None, host) => Ok(host.filter(|h| !h.is_empty())),
    }
}

/// `host[:port]`, lowercased. User information, an empty host, and a port that is not a number up to 65535 are
/// refused (rather than dropped).
fn host_and_port(authority: &Authority) -> Result<String, AmbiguousAuthority> {
    let mut out = authority.host().to_ascii_lowercase();
    if let Some(port) = authority.port() {
        out.push(':');
        out.push_str(port.as_str());
    }
    if authority.host().is_empty() || out.len() != authority.as_str().len() {
        return Err(AmbiguousAuthority::Invalid(authority.as_str().to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use AmbiguousPath::*;

    fn c(path: &str) -> Result<String, AmbiguousPath> {
        let merged = canonicalize(path, true);
        let kept = canonicalize(path, false);
        assert_eq!(merged.is_ok(), kept.is_ok(), "{path}: {merged:?} vs {kept:?}");
        merged
    }

    fn ok(path: &str) -> String {
        c(path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn must_start_with_a_slash() {
        assert_eq!(c(""), Err(NotAbsolute));
        assert_eq!(c("paid"), Err(NotAbsolute));
        assert_eq!(c("*"), Err(NotAbsolute));
        assert_eq!(c("http://a/paid"), Err(NotAbsolute));
        assert_eq!(ok("/"), "/");
    }

    #[test]
    fn encoded_slashes_and_backslashes_are_refused() {
        assert_eq!(c("/a%2Fb"), Err(EncodedSlash));
        assert_eq!(c("/a%2fb"), Err(EncodedSlash));
        assert_eq!(c("/a\\b"), Err(Backslash));
        assert_eq!(c("/a%5Cb"), Err(Backslash));
        assert_eq!(c("/a%5cb"), Err(Backslash));
        // Encoded twice is data, not a slash: the upstream decodes once.
        assert_eq!(ok("/a%252Fb"), "/a%252Fb");
    }

    #[test]
    fn control_bytes_are_refused_raw_and_encoded() {
        for path in ["/a\0b", "/a\tb", "/a\nb", "/a\rb", "/a\x7fb", "/a\x1bb"] {
            assert_eq!(c(path), Err(ControlByte), "{path:?}");
        }
        for path in ["/a%00b", "/a%09", "/a%0a", "/a%0D", "/a%1f", "/a%1F", "/a%7f", "/a%7F"] {
            assert_eq!(c(path), Err(ControlByte), "{path:?}");
        }
        assert_eq!(ok("/a%20b"), "/a%20b");
    }

    #[test]
    fn a_percent_needs_two_hex_digits() {
        for path in ["/a%", "/a%2", "/a%zz", "/a%2g", "/%%41", "/a%u002e", "/a%-1"] {
            assert_eq!(c(path), Err(BadPercentEncoding), "{path:?}");
        }
    }

    #[test]
    fn only_unreserved_characters_are_decoded() {
        assert_eq!(ok("/p%61id"), "/paid");
        assert_eq!(ok("/%41%5a%30%39%2D%2e%5F%7E"), "/AZ09-._~");
        assert_eq!(ok("/caf%c3%a9"), "/caf%C3%A9");
        assert_eq!(ok("/a%3bb%3F%23%25"), "/a%3Bb%3F%23%25");
        assert_eq!(ok("/a%2ehidden"), "/a.hidden");
        assert_eq!(ok("/%2ehidden"), "/.hidden");
        assert_eq!(ok("/.%2e."), "/...");
    }

    #[test]
    fn characters_a_path_cannot_hold_are_encoded() {
        assert_eq!(ok("/café"), "/caf%C3%A9");
        assert_eq!(ok("/a b"), "/a%20b");
        assert_eq!(ok("/{\"a\"}"), "/%7B%22a%22%7D");
        assert_eq!(ok("/a#b?c"), "/a%23b%3Fc");
        assert_eq!(ok("/!$&'()*+,;=:@-._~"), "/!$&'()*+,;=:@-._~");
    }

    #[test]
    fn encoded_dot_segments_are_refused() {
        for path in [
            "/a/%2e",
            "/a/%2E",
            "/a/%2e%2e",
            "/a/%2E%2E",
            "/a/.%2e",
            "/a/%2e.",
            "/a/.%2E/b",
            "/a/%2e/b",
            "/%2e%2e",
        ] {
            assert_eq!(c(path), Err(EncodedDotSegment), "{path:?}");
        }
    }

    #[test]
    fn dot_segments_with_parameters_are_refused() {
        for path in [
            "/a/..;/b",
            "/a/.;/b",
            "/a/..;jsessionid=1/b",
            "/a/.;x",
            "/..;",
            "/a/%2e%2e;/b",
            "/a/..%3b/b",
        ] {
            assert_eq!(c(path), Err(DotSemicolonSegment), "{path:?}");
        }
        assert_eq!(ok("/a/b;c"), "/a/b;c");
        assert_eq!(ok("/a/...;/b"), "/a/...;/b");
        assert_eq!(ok("/a/x..;/b"), "/a/x..;/b");
    }

    #[test]
    fn dot_segments_are_removed() {
        assert_eq!(ok("/a/./b"), "/a/b");
        assert_eq!(ok("/a/../b"), "/b");
        assert_eq!(ok("/a/b/.."), "/a/");
        assert_eq!(ok("/a/b/."), "/a/b/");
        assert_eq!(ok("/.."), "/");
        assert_eq!(ok("/../../a"), "/a");
        assert_eq!(ok("/a/b/../../../c/./d/"), "/c/d/");
        assert_eq!(ok("/..."), "/...");
        assert_eq!(ok("/a/.b/c."), "/a/.b/c.");
    }

    #[test]
    fn slashes_merge_only_when_asked() {
        assert_eq!(canonicalize("//a///b//", true).as_deref(), Ok("/a/b/"));
        assert_eq!(canonicalize("//a///b//", false).as_deref(), Ok("//a///b//"));
        assert_eq!(canonicalize("//", true).as_deref(), Ok("/"));
        assert_eq!(canonicalize("//", false).as_deref(), Ok("//"));
        // Merging first, as nginx and http.server do; RFC 3986 pops the empty segment instead.
        assert_eq!(canonicalize("/a//../b", true).as_deref(), Ok("/b"));
        assert_eq!(canonicalize("/a//../b", false).as_deref(), Ok("/a/b"));
        assert_eq!(canonicalize("/..//a", false).as_deref(), Ok("//a"));
    }

    #[test]
    fn a_trailing_slash_is_kept() {
        assert_eq!(ok("/a/"), "/a/");
        assert_eq!(ok("/a"), "/a");
        assert_eq!(ok("/a/b/"), "/a/b/");
    }

    #[test]
    fn attacks_on_a_priced_route() {
        let refused = [
            ("/free/%2e%2e/paid", EncodedDotSegment),
            ("/free/..%2fpaid", EncodedSlash),
            ("/free/.%2e/paid", EncodedDotSegment),
            ("/free/%2E%2E/paid", EncodedDotSegment),
            ("/free/..;/paid", DotSemicolonSegment),
            ("/free/.;/paid", DotSemicolonSegment),
            ("/free/..\\paid", Backslash),
            ("/free/..%5cpaid", Backslash),
            ("/free/%00/x", ControlByte),
        ];
        for (path, why) in refused {
            assert_eq!(c(path), Err(why), "{path:?}");
        }
        let read_as = [
            ("/free/../paid", "/paid", "/paid"),
            ("/free//../paid", "/paid", "/free/paid"),
            ("//paid", "/paid", "//paid"),
            ("/./paid", "/paid", "/paid"),
            ("/paid/.", "/paid/", "/paid/"),
            ("/p%61id", "/paid", "/paid"),
        ];
        for (path, merged, kept) in read_as {
            assert_eq!(canonicalize(path, true).as_deref(), Ok(merged), "{path:?}");
            assert_eq!(canonicalize(path, false).as_deref(), Ok(kept), "{path:?}");
        }
    }

    #[test]
    fn canonical_is_a_fixed_point() {
        for path in ["/a/../b/./c//d/", "/..//a", "/p%61id/%c3%a9", "/café/", "/a%252e%252e/"] {
            for merge in [true, false] {
                let once = canonicalize(path, merge).unwrap();
                assert_eq!(canonicalize(&once, merge).as_ref(), Ok(&once), "{path:?}");
            }
        }
    }

    #[test]
    fn a_segment_alone_reads_as_in_a_path() {
        assert_eq!(canonical_segment("p%61id").as_deref(), Ok("paid"));
        assert_eq!(canonical_segment("café").as_deref(), Ok("caf%C3%A9"));
        assert_eq!(canonical_segment("caf%c3%a9").as_deref(), Ok("caf%C3%A9"));
        assert_eq!(canonical_segment("..").as_deref(), Ok(".."));
        assert_eq!(canonical_segment("%2e"), Err(EncodedDotSegment));
        assert_eq!(canonical_segment("a/b"), Err(EncodedSlash));
        assert_eq!(canonical_segment("a%2fb"), Err(EncodedSlash));
        assert_eq!(canonical_segment("..;"), Err(DotSemicolonSegment));
    }

    fn headers(hosts: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for host in hosts {
            map.append(header::HOST, host.parse().unwrap());
        }
        map
    }

    #[test]
    fn authority_from_either_place_lowercased() {
        let origin: Uri = "/paid".parse().unwrap();
        let absolute: Uri = "http://API.Example.com:8080/paid".parse().unwrap();
        assert_eq!(request_authority(&origin, &headers(&[])), Ok(None));
        assert_eq!(
            request_authority(&origin, &headers(&["API.example.COM"])),
            Ok(Some("api.example.com".into()))
        );
        assert_eq!(
            request_authority(&absolute, &headers(&[])),
            Ok(Some("api.example.com:8080".into()))
        );
        assert_eq!(
            request_authority(&absolute, &headers(&["api.example.com:8080"])),
            Ok(Some("api.example.com:8080".into()))
        );
        let v6: Uri = "http://[::1]:9/".parse().unwrap();
        assert_eq!(request_authority(&v6, &headers(&[])), Ok(Some("[::1]:9".into())));
    }

    #[test]
    fn authorities_that_disagree_or_cannot_be_read_are_refused() {
        let origin: Uri = "/paid".parse().unwrap();
        let absolute: Uri = "http://free.example.com/paid".parse().unwrap();
        assert_eq!(
            request_authority(&absolute, &headers(&["paid.example.com"])),
            Err(AmbiguousAuthority::Disagree {
                uri: "free.example.com".into(),
                host: "paid.example.com".into()
            })
        );
        assert!(matches!(
            request_authority(&absolute, &headers(&["free.example.com:80"])),
            Err(AmbiguousAuthority::Disagree { .. })
        ));
        assert!(matches!(
            request_authority(&absolute, &headers(&[""])),
            Err(AmbiguousAuthority::Disagree { .. })
        ));
        assert_eq!(request_authority(&origin, &headers(&[""])), Ok(None));
        assert_eq!(
            request_authority(&origin, &headers(&["a.com", "a.com"])),
            Err(AmbiguousAuthority::MultipleHosts)
        );
        let mut map = HeaderMap::new();
        map.insert(
            header::HOST,
            axum::http::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        );
        assert_eq!(request_authority(&origin, &map), Err(AmbiguousAuthority::NotText));
        for bad in [
            "a b",
            "a/b",
            "user@a.com",
            "a.com:port",
            "a.com:",
            "a.com:99999",
            ":80",
            "a.com:80:80",
        ] {
            assert!(
                matches!(
                    request_authority(&origin, &headers(&[bad])),
                    Err(AmbiguousAuthority::Invalid(_))
                ),
                "{bad:?}"
            );
        }
        let with_user: Uri = "http://user@a.com/".parse().unwrap();
        assert!(matches!(
            request_authority(&with_user, &headers(&[])),
            Err(AmbiguousAuthority::Invalid(_))
        ));
    }
}
