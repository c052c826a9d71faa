//! The local deny/allow file: one entry a line, `deny 0x…` or `allow 0x…` (a bare address is a deny), `#`
//! starts a comment, blank lines are ignored; any other line is an error at load (a typo must not silently
//! clear an address). An `allow` entry overrides *only* this file's denies — it never clears another
//! source's `Blocked`. The file is read when the screener is built.

use std::collections::HashSet;
use std::path::Path;

use alloy::primitives::Address;

use crate::compliance::screener::{ScreenFuture, Screener, SourceAnswer, parse_evm, source_name};

#[derive(Debug, thiserror::Error)]
pub enum LocalListError {
    #[error("cannot read the local compliance list {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("local compliance list line {line}: {message}")]
    Line { line: usize, message: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalList {
    deny: HashSet<Address>,
    allow: HashSet<Address>,
}

impl LocalList {
    pub fn parse(text: &str) -> Result<Self, LocalListError> {
        let mut list = LocalList::default();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (verb, address) = match (words.next(), words.next(), words.next()) {
                (Some(address), None, None) => ("deny", address),
                (Some(verb), Some(address), None) => (verb, address),
                _ => {
                    return Err(LocalListError::Line {
                        line: index + 1,
                        message: format!("expected `deny 0x…`, `allow 0x…` or an address, found `{line}`"),
                    });
                }
            };
            let parsed = parse_evm(address).ok_or_else(|| LocalListError::Line {
                line: index + 1,
                message: format!("`{address}` is not an EVM address (0x and 40 hex digits)"),
            })?;
            match verb.to_ascii_lowercase().as_str() {
                "deny" => list.deny.insert(parsed),
                "allow" => list.allow.insert(parsed),
                other => {
                    return Err(LocalListError::Line {
                        line: index + 1,
                        message: format!("`{other}` is neither `deny` nor `allow`"),
                    });
                }
            };
        }
        Ok(list)
    }

    pub fn read(path: &Path) -> Result<Self, LocalListError> {
        let text = std::fs::read_to_string(path).map_err(|source| LocalListError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// This file's own answer: denied unless also allowed.
    pub fn answer(&self, address: Address) -> SourceAnswer {
        if self.deny.contains(&address) && !self.allow.contains(&address) {
            SourceAnswer::Blocked {
                reason: "denied".into(),
                detail: "on the local deny list".into(),
            }
        } else {
            SourceAnswer::Clear
        }
    }
}

impl Screener for LocalList {
    fn name(&self) -> &'static str {
        source_name::LOCAL_LIST
    }

    fn screen(&self, address: Address) -> ScreenFuture<'_> {
        let answer = self.answer(address);
        Box::pin(async move { answer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0x1111111111111111111111111111111111111111";
    const B: &str = "0x2222222222222222222222222222222222222222";
    const C: &str = "0xAbCdEf0123456789abcdef0123456789ABCDEF01";

    #[test]
    fn denies_bare_and_deny_entries_allow_overrides_only_this_files_deny() {
        let text = format!("# our own list\n{A}\ndeny {C}   # mixed case\n\nallow {A}\nallow {B}\n");
        let list = LocalList::parse(&text).unwrap();
        // A is denied and allowed: the allow wins inside this file.
        assert_eq!(list.answer(A.parse().unwrap()), SourceAnswer::Clear);
        assert_eq!(list.answer(B.parse().unwrap()), SourceAnswer::Clear);
        let c = parse_evm(C).unwrap();
        assert!(matches!(list.answer(c), SourceAnswer::Blocked { ref reason, .. } if reason == "denied"));
        assert_eq!(
            list.answer("0x3333333333333333333333333333333333333333".parse().unwrap()),
            SourceAnswer::Clear
        );
    }

    #[test]
    fn a_line_that_is_not_an_entry_is_refused_with_its_number() {
        let err = LocalList::parse(&format!("{A}\nblock {B}\n")).unwrap_err();
        assert!(matches!(err, LocalListError::Line { line: 2, .. }), "{err}");
        let err = LocalList::parse("deny 1BoatSLRHtKNngkdXEeobR76b53LETtpyT\n").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        let err = LocalList::parse(&format!("deny {A} {B}\n")).unwrap_err();
        assert!(matches!(err, LocalListError::Line { line: 1, .. }));
    }
}
