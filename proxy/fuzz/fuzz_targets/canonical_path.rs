//! Fuzzes `canonical_path::canonicalize` with arbitrary text, in both slash modes: the canonical form is its own
//! canonical form, holds no dot segment, encoded slash or backslash (nor `//` when merging), and against a fixed
//! route table (priced `/paid` and `/weather/:city`, free `/free/*` and a free `/*` catch-all, one upstream) no
//! path reaches a priced upstream path through a free route — whether the proxy sends the canonical path or the
//! request's own, and whether the upstream decodes before or after resolving dot segments.

#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use proxy::canonical_path::{canonical_segment, canonicalize};
use proxy::route_table::RouteTable;

#[path = "../../tests/upstream_oracle/mod.rs"]
mod upstream_oracle;

use upstream_oracle::{Send, check};

const ROUTES: &str = "\
[[route]]\npath = \"/paid\"\nupstream = \"http://127.0.0.1:9\"\nprice = 5\n\
[[route]]\npath = \"/weather/:city\"\nupstream = \"http://127.0.0.1:9\"\nprice = 7\n\
[[route]]\npath = \"/free/*\"\nupstream = \"http://127.0.0.1:9\"\nfree = true\n\
[[route]]\npath = \"/*\"\nupstream = \"http://127.0.0.1:9\"\nfree = true\n";

static TABLE: LazyLock<Arc<RouteTable>> = LazyLock::new(|| upstream_oracle::table(ROUTES));

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    for merge in [true, false] {
        let Ok(canonical) = canonicalize(raw, merge) else {
            continue;
        };
        assert_eq!(
            canonicalize(&canonical, merge).as_ref(),
            Ok(&canonical),
            "{raw:?} merge={merge}"
        );
        assert!(canonical.starts_with('/'), "{raw:?} -> {canonical:?}");
        for segment in canonical.split('/').skip(1) {
            assert!(segment != "." && segment != "..", "{raw:?} -> {canonical:?}");
            assert_eq!(
                canonical_segment(segment).as_deref(),
                Ok(segment),
                "{raw:?} -> {canonical:?}"
            );
        }
        let upper = canonical.to_ascii_uppercase();
        assert!(
            !upper.contains("%2F") && !upper.contains("%5C"),
            "{raw:?} -> {canonical:?}"
        );
        assert!(!canonical.contains('\\'), "{raw:?} -> {canonical:?}");
        assert!(!merge || !canonical.contains("//"), "{raw:?} -> {canonical:?}");
        for send in [Send::Matched, Send::Raw] {
            if let Err(bypass) = check(&TABLE, raw, merge, send) {
                panic!("{bypass}");
            }
        }
    }
});
