//! The OFAC SDN list as a screening source, from its published machine-readable file `SDN_ADVANCED.XML`
//! (read with a streaming XML parser, never a whole DOM): the `ReferenceValueSets/FeatureTypeValues/FeatureType`
//! entries named `Digital Currency Address - <ASSET>` for the EVM-shaped assets (ETH, USDC, USDT, ARB, BSC,
//! ETC) give feature-type ids; every `DistinctParties//Feature[@FeatureTypeID=id]//VersionDetail` text is one
//! address. Addresses are normalised (`0x` + 40 hex, any case); entries that are not EVM addresses (a Tron
//! USDT address) are counted and ignored. The file's `DateOfIssue` (Year/Month/Day) is the list version.
//!
//! The list loads from a path or an http(s) URL (at most [`MAX_LIST_BYTES`]), and is refreshed every
//! `refresh` when one is set; a failed refresh keeps the last good list (and logs its age). Until a list has
//! loaded, the source answers `Unavailable`.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use quick_xml::events::{BytesStart, Event};

use crate::compliance::screener::{ScreenFuture, Screener, SourceAnswer, parse_evm, source_name};

/// The largest list file read (the real one is tens of MiB).
pub const MAX_LIST_BYTES: usize = 512 * 1024 * 1024;

/// The assets whose addresses are EVM-shaped.
pub const EVM_ASSETS: [&str; 6] = ["ETH", "USDC", "USDT", "ARB", "BSC", "ETC"];
const FEATURE_PREFIX: &str = "Digital Currency Address - ";

#[derive(Debug, thiserror::Error)]
pub enum OfacError {
    #[error("SDN XML: {0}")]
    Xml(String),
    #[error("cannot read the SDN list {location}: {message}")]
    Read { location: String, message: String },
    #[error("the SDN list at {location} is larger than {limit} bytes")]
    TooLarge { location: String, limit: usize },
    #[error("the SDN list has no Digital Currency Address feature types (not an SDN_ADVANCED file?)")]
    NoFeatureTypes,
    /// A file that parses but lists no EVM address would clear every address: refused, so a refresh keeps the
    /// last good list (OFAC renamed its features, or the file is cut short).
    #[error("the SDN list names no EVM digital currency address (ETH/USDC/… features missing or empty)")]
    NoEvmAddresses,
}

/// The addresses of one publication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdnList {
    pub addresses: HashSet<Address>,
    /// `YYYY-MM-DD` of `DateOfIssue`, when the file has one.
    pub published: Option<String>,
    /// Entries of the EVM asset features that are not EVM addresses.
    pub ignored: usize,
}

#[derive(Default)]
struct DateParts {
    year: Option<u32>,
    month: Option<u32>,
    day: Option<u32>,
}

fn attribute(element: &BytesStart<'_>, name: &[u8]) -> Result<Option<String>, OfacError> {
    match element.try_get_attribute(name) {
        Ok(Some(attr)) => attr
            .unescape_value()
            .map(|v| Some(v.into_owned()))
            .map_err(|e| OfacError::Xml(e.to_string())),
        Ok(None) => Ok(None),
        Err(e) => Err(OfacError::Xml(e.to_string())),
    }
}

#[derive(Clone, Copy)]
enum DatePart {
    Year,
    Month,
    Day,
}

/// What the parser is reading the text of.
enum Capture {
    None,
    FeatureType(String),
    VersionDetail(String),
    Date(DatePart),
}

/// Parses an `SDN_ADVANCED.XML` stream.
pub fn parse(input: impl BufRead) -> Result<SdnList, OfacError> {
    let mut reader = quick_xml::Reader::from_reader(input);
    let mut buf = Vec::new();
    // Element local names from the root down.
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut feature_types: HashMap<String, String> = HashMap::new();
    // (feature type id, text) of every VersionDetail under a DistinctParties Feature: the ids may be defined
    // after the parties, so they are matched at the end.
    let mut details: Vec<(String, String)> = Vec::new();
    let mut feature: Option<String> = None;
    let mut capture = Capture::None;
    let mut text = String::new();
    let mut date = DateParts::default();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| OfacError::Xml(format!("at byte {}: {e}", reader.buffer_position())))?;
        match event {
            Event::Start(element) => {
                let name = element.local_name().as_ref().to_vec();
                let parent = path.last().map(Vec::as_slice);
                let in_parties = path.iter().any(|p| p == b"DistinctParties");
                match name.as_slice() {
                    b"FeatureType" if parent == Some(b"FeatureTypeValues") => {
                        if let Some(id) = attribute(&element, b"ID")? {
                            capture = Capture::FeatureType(id);
                            text.clear();
                        }
                    }
                    b"Feature" if in_parties => feature = attribute(&element, b"FeatureTypeID")?,
                    b"VersionDetail" if in_parties => {
                        if let Some(id) = &feature {
                            capture = Capture::VersionDetail(id.clone());
                            text.clear();
                        }
                    }
                    b"Year" | b"Month" | b"Day" if parent == Some(b"DateOfIssue") => {
                        capture = Capture::Date(match name.as_slice() {
                            b"Year" => DatePart::Year,
                            b"Month" => DatePart::Month,
                            _ => DatePart::Day,
                        });
                        text.clear();
                    }
                    _ => {}
                }
                path.push(name);
            }
            Event::Text(t) if !matches!(capture, Capture::None) => {
                text.push_str(&t.decode().map_err(|e| OfacError::Xml(e.to_string()))?);
            }
            Event::CData(t) if !matches!(capture, Capture::None) => {
                text.push_str(&t.decode().map_err(|e| OfacError::Xml(e.to_string()))?);
            }
            Event::GeneralRef(r) if !matches!(capture, Capture::None) => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    text.push(c);
                } else {
                    let name = r.decode().map_err(|e| OfacError::Xml(e.to_string()))?;
                    text.push_str(quick_xml::escape::resolve_xml_entity(&name).unwrap_or(""));
                }
            }
            Event::End(element) => {
                let name = element.local_name().as_ref().to_vec();
                match (&capture, name.as_slice()) {
                    (Capture::FeatureType(id), b"FeatureType") => {
                        feature_types.insert(id.clone(), text.trim().to_owned());
                        capture = Capture::None;
                    }
                    (Capture::VersionDetail(id), b"VersionDetail") => {
                        details.push((id.clone(), text.trim().to_owned()));
                        capture = Capture::None;
                    }
                    (Capture::Date(part), b"Year" | b"Month" | b"Day") => {
                        let value = text.trim().parse::<u32>().ok();
                        match part {
                            DatePart::Year => date.year = value,
                            DatePart::Month => date.month = value,
                            DatePart::Day => date.day = value,
                        }
                        capture = Capture::None;
                    }
                    (_, b"Feature") => feature = None,
                    _ => {}
                }
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let evm_ids: HashSet<&str> = feature_types
        .iter()
        .filter(|(_, name)| {
            name.strip_prefix(FEATURE_PREFIX)
                .is_some_and(|asset| EVM_ASSETS.contains(&asset.trim()))
        })
        .map(|(id, _)| id.as_str())
        .collect();
    if !feature_types.values().any(|name| name.starts_with(FEATURE_PREFIX)) {
        return Err(OfacError::NoFeatureTypes);
    }
    let mut list = SdnList {
        published: match (date.year, date.month, date.day) {
            (Some(y), Some(m), Some(d)) => Some(format!("{y:04}-{m:02}-{d:02}")),
            _ => None,
        },
        ..SdnList::default()
    };
    for (id, text) in details {
        if !evm_ids.contains(id.as_str()) {
            continue;
        }
        match parse_evm(&text) {
            Some(address) => {
                list.addresses.insert(address);
            }
            None => list.ignored += 1,
        }
    }
    if list.addresses.is_empty() {
        return Err(OfacError::NoEvmAddresses);
    }
    Ok(list)
}

/// Where the list comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListLocation {
    Path(std::path::PathBuf),
    Url(url::Url),
}

impl ListLocation {
    /// `http://…` or `https://…` is a URL; anything else a path.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.starts_with("http://") || text.starts_with("https://") {
            url::Url::parse(text)
                .map(ListLocation::Url)
                .map_err(|e| format!("`{text}`: {e}"))
        } else {
            Ok(ListLocation::Path(text.into()))
        }
    }

    fn shown(&self) -> String {
        match self {
            ListLocation::Path(p) => p.display().to_string(),
            ListLocation::Url(u) => protocol::redact::redact_url(u.as_str()),
        }
    }
}

struct Loaded {
    list: SdnList,
    at: Instant,
}

/// The OFAC source: the last good list, reloaded on a schedule.
pub struct OfacSdn {
    location: ListLocation,
    http: reqwest::Client,
    current: RwLock<Option<Loaded>>,
    /// Held while a screen loads a missing list, so concurrent screens start one load, not one each.
    loading: tokio::sync::Mutex<()>,
}

/// The longest the whole download of a list may take (a full SDN_ADVANCED.XML is tens of MiB).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

impl OfacSdn {
    pub fn new(location: ListLocation, timeout: Duration) -> Result<Self, OfacError> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(DOWNLOAD_TIMEOUT.max(timeout))
            .build()
            .map_err(|e| OfacError::Read {
                location: location.shown(),
                message: e.to_string(),
            })?;
        Ok(OfacSdn {
            location,
            http,
            current: RwLock::new(None),
            loading: tokio::sync::Mutex::new(()),
        })
    }

    /// Loads the list now; on failure the previous list (if any) stays.
    pub async fn load(&self) -> Result<(), OfacError> {
        let list = self.fetch().await?;
        tracing::info!(
            addresses = list.addresses.len(),
            published = list.published.as_deref().unwrap_or("unknown"),
            location = %self.location.shown(),
            "OFAC SDN list loaded"
        );
        if let Ok(mut current) = self.current.write() {
            *current = Some(Loaded {
                list,
                at: Instant::now(),
            });
        }
        Ok(())
    }

    async fn fetch(&self) -> Result<SdnList, OfacError> {
        let location = self.location.shown();
        let parsed = match &self.location {
            ListLocation::Path(path) => {
                // Parsed straight from the file, a buffer at a time, off the async threads.
                let path = path.clone();
                tokio::task::spawn_blocking(move || {
                    let read = |e: std::io::Error| OfacError::Read {
                        location: location.clone(),
                        message: e.to_string(),
                    };
                    let file = std::fs::File::open(&path).map_err(read)?;
                    if file.metadata().map_err(read)?.len() > MAX_LIST_BYTES as u64 {
                        return Err(OfacError::TooLarge {
                            location: location.clone(),
                            limit: MAX_LIST_BYTES,
                        });
                    }
                    parse(std::io::BufReader::new(file))
                })
                .await
            }
            ListLocation::Url(url) => {
                let read = |e: reqwest::Error| OfacError::Read {
                    location: location.clone(),
                    message: protocol::redact::redact_in(&e.to_string(), url.as_str()),
                };
                let response = self
                    .http
                    .get(url.clone())
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(read)?;
                let body = crate::buyer::bounded_body::read(response, MAX_LIST_BYTES)
                    .await
                    .map_err(read)?;
                if body.truncated && body.bytes.len() >= MAX_LIST_BYTES {
                    return Err(OfacError::TooLarge {
                        location,
                        limit: MAX_LIST_BYTES,
                    });
                }
                if body.truncated {
                    return Err(OfacError::Read {
                        location,
                        message: format!("the download broke off after {} bytes", body.bytes.len()),
                    });
                }
                tokio::task::spawn_blocking(move || parse(std::io::Cursor::new(body.bytes))).await
            }
        };
        parsed.map_err(|e| OfacError::Xml(e.to_string()))?
    }

    /// Reloads every `period` for as long as `source` lives; a failed reload keeps the last good list.
    pub fn refresh_every(source: &Arc<Self>, period: Duration) {
        let weak: Weak<Self> = Arc::downgrade(source);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(source) = weak.upgrade() else { return };
                if let Err(e) = source.load().await {
                    tracing::warn!(error = %e, age_seconds = ?source.age().map(|a| a.as_secs()),
                        "OFAC SDN refresh failed; the last good list stays in use");
                }
            }
        });
    }

    /// How old the list in use is.
    pub fn age(&self) -> Option<Duration> {
        self.current.read().ok()?.as_ref().map(|l| l.at.elapsed())
    }

    fn answer(&self, address: Address) -> Option<SourceAnswer> {
        let current = self.current.read().ok()?;
        let loaded = current.as_ref()?;
        Some(if loaded.list.addresses.contains(&address) {
            SourceAnswer::Blocked {
                reason: "sanctions".into(),
                detail: format!(
                    "on the OFAC SDN list published {}",
                    loaded.list.published.as_deref().unwrap_or("(undated)")
                ),
            }
        } else {
            SourceAnswer::Clear
        })
    }
}

impl Screener for OfacSdn {
    fn name(&self) -> &'static str {
        source_name::OFAC
    }

    fn screen(&self, address: Address) -> ScreenFuture<'_> {
        Box::pin(async move {
            if let Some(answer) = self.answer(address) {
                return answer;
            }
            // No list yet (the first load failed): one screen tries again now; the others answer unavailable
            // rather than start a download each.
            let Ok(_loading) = self.loading.try_lock() else {
                return SourceAnswer::Unavailable {
                    error: "the OFAC list is being loaded".into(),
                };
            };
            if let Some(answer) = self.answer(address) {
                return answer;
            }
            match self.load().await {
                Ok(()) => self.answer(address).unwrap_or(SourceAnswer::Unavailable {
                    error: "the OFAC list could not be read".into(),
                }),
                Err(e) => SourceAnswer::Unavailable { error: e.to_string() },
            }
        })
    }

    fn version(&self) -> Option<String> {
        let current = self.current.read().ok()?;
        current.as_ref().and_then(|l| l.list.published.clone())
    }
}
