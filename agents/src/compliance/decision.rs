//! The merge: every configured source is asked about an address concurrently, and the decision is
//! `blocked` when any source says blocked, else `unavailable` when a non-advisory source could not answer,
//! else `clear` (an advisory source that could not answer is noted in the answers, not a refusal). Answers
//! are cached per source with moka for that source's TTL; `Unavailable` is never cached, so a source that
//! comes back is asked again at once.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use serde::Serialize;

use crate::compliance::screener::{Screener, SourceAnswer};

/// The merged decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Clear,
    Blocked,
    Unavailable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Clear => "clear",
            Verdict::Blocked => "blocked",
            Verdict::Unavailable => "unavailable",
        }
    }
}

/// What one source said, as the decision records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceReport {
    pub source: String,
    pub advisory: bool,
    #[serde(flatten)]
    pub answer: SourceAnswer,
    /// The list version the answer came from (the OFAC publication date).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Answered from the cache.
    pub cached: bool,
}

/// One screening decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub address: Address,
    pub decision: Verdict,
    pub sources: Vec<SourceReport>,
    /// Unix seconds.
    pub at: i64,
}

impl Decision {
    /// The first source that blocked, for a refusal message.
    pub fn blocking(&self) -> Option<&SourceReport> {
        self.sources
            .iter()
            .find(|s| matches!(s.answer, SourceAnswer::Blocked { .. }))
    }

    /// The first non-advisory source that could not answer.
    pub fn unavailable(&self) -> Option<&SourceReport> {
        self.sources
            .iter()
            .find(|s| !s.advisory && matches!(s.answer, SourceAnswer::Unavailable { .. }))
    }

    /// The list versions the answers came from, `source=version` joined by `,`.
    pub fn list_version(&self) -> Option<String> {
        let versions: Vec<String> = self
            .sources
            .iter()
            .filter_map(|s| s.version.as_ref().map(|v| format!("{}={v}", s.source)))
            .collect();
        (!versions.is_empty()).then(|| versions.join(","))
    }
}

/// The merge rule on its own (pure): blocked beats unavailable beats clear; advisory sources cannot make a
/// decision unavailable.
pub fn merge(answers: &[(bool, &SourceAnswer)]) -> Verdict {
    if answers.iter().any(|(_, a)| matches!(a, SourceAnswer::Blocked { .. })) {
        Verdict::Blocked
    } else if answers
        .iter()
        .any(|(advisory, a)| !advisory && matches!(a, SourceAnswer::Unavailable { .. }))
    {
        Verdict::Unavailable
    } else {
        Verdict::Clear
    }
}

/// One configured source.
pub struct Source {
    pub screener: Arc<dyn Screener>,
    pub advisory: bool,
    cache: Option<moka::future::Cache<Address, SourceAnswer>>,
}

impl Source {
    /// `ttl` zero: not cached.
    pub fn new(screener: Arc<dyn Screener>, advisory: bool, ttl: Duration) -> Self {
        let cache = (!ttl.is_zero()).then(|| {
            moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build()
        });
        Source {
            screener,
            advisory,
            cache,
        }
    }

    async fn ask(&self, address: Address) -> SourceReport {
        let cached = match &self.cache {
            Some(cache) => cache.get(&address).await,
            None => None,
        };
        let (answer, was_cached) = match cached {
            Some(answer) => (answer, true),
            None => {
                let answer = self.screener.screen(address).await;
                if let (Some(cache), false) = (&self.cache, matches!(answer, SourceAnswer::Unavailable { .. })) {
                    cache.insert(address, answer.clone()).await;
                }
                (answer, false)
            }
        };
        SourceReport {
            source: self.screener.name().to_owned(),
            advisory: self.advisory,
            answer,
            version: self.screener.version(),
            cached: was_cached,
        }
    }
}

/// Every configured source, asked together.
pub struct ComplianceScreen {
    sources: Vec<Source>,
}

impl ComplianceScreen {
    pub fn new(sources: Vec<Source>) -> Self {
        ComplianceScreen { sources }
    }

    pub fn source_names(&self) -> Vec<&'static str> {
        self.sources.iter().map(|s| s.screener.name()).collect()
    }

    pub async fn decide(&self, address: Address) -> Decision {
        let reports = futures_util::future::join_all(self.sources.iter().map(|s| s.ask(address))).await;
        let decision = if reports.is_empty() {
            // No source at all cannot clear anybody.
            Verdict::Unavailable
        } else {
            merge(&reports.iter().map(|r| (r.advisory, &r.answer)).collect::<Vec<_>>())
        };
        Decision {
            address,
            decision,
            sources: reports,
            at: crate::buyer::spend_ledger::unix_now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::compliance::screener::ScreenFuture;

    fn blocked() -> SourceAnswer {
        SourceAnswer::Blocked {
            reason: "sanctions".into(),
            detail: "listed".into(),
        }
    }

    fn down() -> SourceAnswer {
        SourceAnswer::Unavailable { error: "down".into() }
    }

    #[test]
    fn blocked_beats_unavailable_beats_clear_and_advisory_cannot_refuse() {
        let clear = SourceAnswer::Clear;
        let cases: [(&[(bool, &SourceAnswer)], Verdict); 8] = [
            (&[], Verdict::Clear),
            (&[(false, &clear), (false, &clear)], Verdict::Clear),
            (&[(false, &clear), (false, &blocked())], Verdict::Blocked),
            (&[(true, &blocked()), (false, &clear)], Verdict::Blocked),
            (&[(false, &down()), (false, &blocked())], Verdict::Blocked),
            (&[(false, &down()), (false, &clear)], Verdict::Unavailable),
            (&[(true, &down()), (false, &clear)], Verdict::Clear),
            (&[(true, &down()), (false, &down())], Verdict::Unavailable),
        ];
        for (answers, expected) in cases {
            assert_eq!(merge(answers), expected, "{answers:?}");
        }
    }

    /// A source that answers what it is told and counts how often it was asked.
    struct Scripted {
        answer: std::sync::Mutex<SourceAnswer>,
        asked: AtomicUsize,
    }

    impl Screener for Scripted {
        fn name(&self) -> &'static str {
            "circle"
        }
        fn screen(&self, _address: Address) -> ScreenFuture<'_> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            let answer = self.answer.lock().unwrap().clone();
            Box::pin(async move { answer })
        }
    }

    #[tokio::test]
    async fn answers_are_cached_but_unavailable_is_asked_again() {
        let scripted = Arc::new(Scripted {
            answer: std::sync::Mutex::new(down()),
            asked: AtomicUsize::new(0),
        });
        let screening = ComplianceScreen::new(vec![Source::new(scripted.clone(), false, Duration::from_secs(600))]);
        let who = Address::repeat_byte(9);
        assert_eq!(screening.decide(who).await.decision, Verdict::Unavailable);
        assert_eq!(screening.decide(who).await.decision, Verdict::Unavailable);
        assert_eq!(scripted.asked.load(Ordering::SeqCst), 2, "unavailable is not cached");
        *scripted.answer.lock().unwrap() = blocked();
        let first = screening.decide(who).await;
        assert_eq!(first.decision, Verdict::Blocked);
        assert!(!first.sources[0].cached);
        *scripted.answer.lock().unwrap() = SourceAnswer::Clear;
        let second = screening.decide(who).await;
        assert_eq!(second.decision, Verdict::Blocked, "answered from the cache");
        assert!(second.sources[0].cached);
        assert_eq!(scripted.asked.load(Ordering::SeqCst), 3);
        assert_eq!(first.blocking().map(|s| s.source.as_str()), Some("circle"));
    }

    #[tokio::test]
    async fn no_source_at_all_is_unavailable() {
        let decision = ComplianceScreen::new(Vec::new()).decide(Address::ZERO).await;
        assert_eq!(decision.decision, Verdict::Unavailable);
    }
}
