//! Route path patterns: literal segments, `:name` for exactly one segment, and a final `*` for the rest
//! (possibly empty). `/x` and `/x/` are one path: a pattern without `*` matches both, and captures never hold
//! the trailing slash. Literal segments are kept in canonical form ([`canonical_segment`]), the form request
//! paths are matched in, so `/café` and `/p%61id` are written either way. Matching allocates only for captures;
//! rewrite templates use the same placeholders.

use crate::canonical_path::canonical_segment;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Rest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    segments: Vec<Segment>,
}

/// A pattern's segment as the route index sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternSegment<'a> {
    Literal(&'a str),
    Param,
    Rest,
}

/// What a match captured: `:name` values and the `*` remainder.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Captures {
    params: Vec<(String, String)>,
    rest: Option<String>,
}

impl PathPattern {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let Some(body) = pattern.strip_prefix('/') else {
            return Err(format!("`{pattern}` must start with /"));
        };
        let mut segments = Vec::new();
        // `/x/` is `/x`: a trailing slash adds no segment.
        let body = body.strip_suffix('/').unwrap_or(body);
        let parts: Vec<&str> = if body.is_empty() {
            Vec::new()
        } else {
            body.split('/').collect()
        };
        for (i, part) in parts.iter().enumerate() {
            let segment = if *part == "*" {
                if i + 1 != parts.len() {
                    return Err(format!("`{pattern}`: `*` may only be the last segment"));
                }
                Segment::Rest
            } else if let Some(name) = part.strip_prefix(':') {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(format!("`{pattern}`: `:{name}` is not a parameter name"));
                }
                Segment::Param(name.to_owned())
            } else {
                let literal = canonical_segment(part).map_err(|e| format!("`{pattern}`: `{part}`: {e}"))?;
                if literal == "." || literal == ".." {
                    return Err(format!(
                        "`{pattern}`: a `{literal}` segment never matches a request path"
                    ));
                }
                Segment::Literal(literal)
            };
            segments.push(segment);
        }
        Ok(PathPattern { segments })
    }

    /// The segments, in order (a `*` only last).
    pub fn segments(&self) -> impl Iterator<Item = PatternSegment<'_>> {
        self.segments.iter().map(|s| match s {
            Segment::Literal(l) => PatternSegment::Literal(l),
            Segment::Param(_) => PatternSegment::Param,
            Segment::Rest => PatternSegment::Rest,
        })
    }

    /// The captures when `path` (no query) matches. One trailing slash is ignored unless the pattern ends in
    /// `*`: `/a/b` matches `/a/b/`, and `/w/:city` matches `/w/paris/` capturing `paris`; `/a/` matches `/a/*`
    /// with an empty rest, and `/a/b/` gives `/a/*` the rest `b/`.
    pub fn matches(&self, path: &str) -> Option<Captures> {
        let body = path.strip_prefix('/')?;
        if self.segments.is_empty() {
            return body.is_empty().then(Captures::default);
        }
        let body = match self.segments.last() {
            Some(Segment::Rest) => body,
            _ => body.strip_suffix('/').unwrap_or(body),
        };
        let mut captures = Captures::default();
        let mut offset = 0;
        let mut parts = body.split('/');
        for segment in &self.segments {
            if let Segment::Rest = segment {
                captures.rest = Some(body.get(offset..).unwrap_or("").to_owned());
                return Some(captures);
            }
            let part = parts.next()?;
            offset += part.len() + 1;
            match segment {
                Segment::Literal(literal) if literal == part => {}
                Segment::Param(name) if !part.is_empty() => captures.params.push((name.clone(), part.to_owned())),
                _ => return None,
            }
        }
        parts.next().is_none().then_some(captures)
    }

    /// A rewrite template may only name this pattern's parameters, and `*` only if the pattern has one.
    pub fn check_template(&self, template: &str) -> Result<(), String> {
        if !template.starts_with('/') {
            return Err(format!("`{template}` must start with /"));
        }
        for part in template.split('/') {
            if let Some(name) = part.strip_prefix(':')
                && !self.segments.contains(&Segment::Param(name.to_owned()))
            {
                return Err(format!("`:{name}` is not a parameter of the route's path"));
            }
            if part == "*" && !self.segments.contains(&Segment::Rest) {
                return Err("`*` is used but the route's path has none".into());
            }
        }
        Ok(())
    }
}

impl Captures {
    /// `template` with `:name` and `*` replaced by what was captured.
    pub fn fill(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 16);
        for (i, part) in template.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            if part == "*" {
                out.push_str(self.rest.as_deref().unwrap_or(""));
            } else if let Some(name) = part.strip_prefix(':') {
                let value = self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
                out.push_str(value.unwrap_or(""));
            } else {
                out.push_str(part);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> Option<Captures> {
        PathPattern::parse(pattern).unwrap().matches(path)
    }

    #[test]
    fn literals_params_and_rest() {
        assert!(m("/a/b", "/a/b").is_some());
        assert!(m("/a/b", "/a/b/c").is_none());
        assert!(m("/a/b", "/a").is_none());
        assert!(m("/a/b", "/a/b/").is_some());
        assert!(m("/", "/").is_some());
        assert!(m("/", "/x").is_none());
        let c = m("/w/:city/:day", "/w/paris/mon").unwrap();
        assert_eq!(c.fill("/v1/:day/:city"), "/v1/mon/paris");
        assert!(m("/w/:city", "/w/").is_none());
        assert!(m("/w/:city", "/w").is_none());
        let r = m("/files/*", "/files/a/b.txt").unwrap();
        assert_eq!(r.fill("/store/*"), "/store/a/b.txt");
        assert!(m("/files/*", "/files").is_some());
        assert!(m("/files/*", "/files/").is_some());
        assert!(m("/*", "/anything/at/all").is_some());
        assert!(m("/files/*", "/filesx").is_none());
    }

    #[test]
    fn a_trailing_slash_is_the_same_path() {
        assert!(m("/a/b", "/a/b/").is_some());
        assert!(m("/a/b/", "/a/b").is_some());
        assert!(m("/a/b/", "/a/b/").is_some());
        assert!(m("/a/b", "/a/b//").is_none());
        assert!(m("/a/b", "/a/b/c/").is_none());
        assert!(m("/a/b", "/a/").is_none());
        let c = m("/w/:city", "/w/paris/").unwrap();
        assert_eq!(c.fill("/v1/:city"), "/v1/paris");
        assert!(m("/w/:city", "/w//").is_none());
        assert!(m("/w/:city/:day", "/w/paris/mon/").is_some());
        assert!(m("/w/:city/:day", "/w/paris/").is_none());
        // `/` is only `/`; after `*` the slash belongs to the rest.
        assert!(m("/", "//").is_none());
        assert_eq!(m("/files/*", "/files/").unwrap().fill("*"), "");
        assert_eq!(m("/files/*", "/files/a/").unwrap().fill("*"), "a/");
        assert_eq!(m("/files/*", "/files/a/b/").unwrap().fill("*"), "a/b/");
    }

    #[test]
    fn literals_compare_in_canonical_form() {
        assert!(m("/café", "/caf%C3%A9").is_some());
        assert!(m("/caf%c3%a9", "/caf%C3%A9").is_some());
        assert!(m("/p%61id", "/paid").is_some());
        assert!(m("/a:b/c;d", "/a:b/c;d").is_some());
        for bad in [
            "/a%2Fb", "/a\\b", "/%2e%2e", "/a/..;", "/a%zz", "/a/../b", "/./a", "/a%00",
        ] {
            assert!(PathPattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_patterns_and_templates() {
        assert!(PathPattern::parse("a").is_err());
        assert!(PathPattern::parse("/*/a").is_err());
        assert!(PathPattern::parse("/:").is_err());
        let p = PathPattern::parse("/w/:city").unwrap();
        assert!(p.check_template("/x/:city").is_ok());
        assert!(p.check_template("/x/:town").is_err());
        assert!(p.check_template("/x/*").is_err());
        assert!(p.check_template("x").is_err());
    }
}
