//! Properties of `canonical_path::canonicalize` over generated paths: it is idempotent, its output holds no
//! dot segment, encoded slash, backslash or (when merging) `//`, and on generated route tables mixing free
//! prefix routes and priced literal routes on one upstream no path reaches a priced upstream path through a
//! free or cheaper route (the upstream read by `upstream_oracle`).

mod upstream_oracle;

use proptest::prelude::*;
use proxy::canonical_path::{AmbiguousPath, canonicalize};
use upstream_oracle::{Reads, Send, check, check_matched, served_path, table};

/// The pieces attacks are made of, and words the generated routes use.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "/", ".", "..", "%2e", "%2E", "%2f", "%2F", "//", ";", "\\", "%5c", "%5C", "%61", "%3B", "%00", "%", "a", "b",
        "x", "free", "paid", "pub", "w", "paris",
    ])
}

/// A segment of an attack: a route word, a dot segment spelt some way, or a few pieces run together.
fn attack_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["free", "paid", "pub", "a", "b", "x", "w", "paris", ""]).prop_map(String::from),
        prop::sample::select(vec![
            ".", "..", "%2e", "%2E%2e", ".%2e", "%2e.", "..;", ".;", "..%2f", "..\\"
        ])
        .prop_map(String::from),
        prop::collection::vec(piece(), 1..4).prop_map(|pieces| pieces.concat()),
    ]
}

/// A path from attack pieces (it need not start with `/`: `NotAbsolute` is exercised too).
fn attack_path() -> impl Strategy<Value = String> {
    let rooted = (any::<bool>(), prop::collection::vec(attack_segment(), 0..7))
        .prop_map(|(trailing, segments)| format!("/{}{}", segments.join("/"), if trailing { "/" } else { "" }));
    let loose = (any::<bool>(), prop::collection::vec(piece(), 0..14)).prop_map(|(rooted, pieces)| {
        let body = pieces.concat();
        if rooted { format!("/{body}") } else { body }
    });
    prop_oneof![3 => rooted, 1 => loose]
}

/// Any text after a `/`: printable ASCII (dense in `%`, `.`, `/`), or any Unicode.
fn any_path() -> impl Strategy<Value = String> {
    prop_oneof![
        attack_path(),
        "/[ -~]{0,24}".prop_map(String::from),
        "/[./%a-fA-F0-9;\\\\]{0,24}".prop_map(String::from),
        "/\\PC{0,16}".prop_map(String::from),
    ]
}

const FREE: [&str; 5] = ["/free/*", "/pub/*", "/free/x/*", "/*", "/w/:city/*"];
const PRICED: [&str; 9] = [
    "/paid/*",
    "/paid",
    "/free/paid",
    "/a/b",
    "/paid/x",
    "/w/:city",
    "/pub/a/:id",
    "/x",
    "/",
];

/// A route file: some free and some priced routes in any order, prices from a small set, one upstream.
fn route_file() -> impl Strategy<Value = String> {
    let route = prop_oneof![
        prop::sample::select(FREE.to_vec()).prop_map(|path| (path, None)),
        (prop::sample::select(PRICED.to_vec()), 1u32..4).prop_map(|(path, price)| (path, Some(price))),
    ];
    prop::collection::vec(route, 1..7).prop_map(|routes| {
        routes
            .iter()
            .enumerate()
            .map(|(i, (path, price))| {
                let sells = match price {
                    Some(units) => format!("price = {units}"),
                    None => "free = true".into(),
                };
                // Route names are unique; the same pattern may come twice (the first wins).
                format!("[[route]]\nname = \"r{i}\"\npath = \"{path}\"\nupstream = \"http://127.0.0.1:9\"\n{sells}\n")
            })
            .collect()
    })
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').skip(1)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn canonicalize_is_idempotent(path in any_path(), merge in any::<bool>()) {
        if let Ok(once) = canonicalize(&path, merge) {
            prop_assert_eq!(canonicalize(&once, merge), Ok(once.clone()), "{:?}", path);
        }
    }

    #[test]
    fn canonical_paths_are_unambiguous(path in any_path(), merge in any::<bool>()) {
        if let Ok(canonical) = canonicalize(&path, merge) {
            prop_assert!(canonical.starts_with('/'), "{:?} -> {:?}", path, canonical);
            prop_assert!(segments(&canonical).all(|s| s != "." && s != ".."), "{:?} -> {:?}", path, canonical);
            prop_assert!(!canonical.to_ascii_uppercase().contains("%2F"), "{:?} -> {:?}", path, canonical);
            prop_assert!(!canonical.to_ascii_uppercase().contains("%5C"), "{:?} -> {:?}", path, canonical);
            prop_assert!(!canonical.contains('\\'), "{:?} -> {:?}", path, canonical);
            prop_assert!(!merge || !canonical.contains("//"), "{:?} -> {:?}", path, canonical);
            // Every encoding left is uppercase and of a byte that is not unreserved.
            for (at, _) in canonical.match_indices('%') {
                let hex = canonical.get(at + 1..at + 3).unwrap_or("");
                prop_assert!(hex.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)), "{:?}", canonical);
                let byte = u8::from_str_radix(hex, 16).unwrap();
                prop_assert!(!(byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)), "{:?}", canonical);
            }
            // What the upstream serves is what was matched: the canonical path names itself.
            for reads in [Reads::DecodeFirst, Reads::DotsFirst] {
                let served = served_path(&canonical, merge, reads);
                prop_assert!(
                    segments(&served).all(|s| s != "." && s != ".."),
                    "{:?} -> {:?} -> {:?}", path, canonical, served
                );
            }
        }
    }

    #[test]
    fn no_path_reaches_a_priced_path_through_a_cheaper_route(
        routes in route_file(),
        paths in prop::collection::vec(attack_path(), 32),
    ) {
        let table = table(&routes);
        for path in &paths {
            for merge in [true, false] {
                // Whether the proxy sends the canonical path or the request's own, the upstream serves what
                // was charged for.
                for send in [Send::Matched, Send::Raw] {
                    if let Err(bypass) = check(&table, path, merge, send) {
                        return Err(TestCaseError::fail(format!("{bypass}\n{routes}")));
                    }
                }
            }
        }
    }
}

const ATTACKS: [&str; 15] = [
    "/free/../paid",
    "/free/%2e%2e/paid",
    "/free/..%2fpaid",
    "/free/.%2e/paid",
    "/free/%2E%2E/paid",
    "/free/..;/paid",
    "/free/.;/paid",
    "/free/..\\paid",
    "/free/..%5cpaid",
    "/free//../paid",
    "/free/%00/x",
    "//paid",
    "/./paid",
    "/paid/.",
    "/p%61id",
];

const FIXED: &str = "[[route]]\npath = \"/paid\"\nupstream = \"http://127.0.0.1:9\"\nprice = 5\n\
     [[route]]\npath = \"/free/*\"\nupstream = \"http://127.0.0.1:9\"\nfree = true\n\
     [[route]]\npath = \"/*\"\nupstream = \"http://127.0.0.1:9\"\nfree = true\n";

#[test]
fn the_attack_list_is_refused_or_charged() {
    let table = table(FIXED);
    for path in ATTACKS {
        for (merge, send) in [
            (true, Send::Matched),
            (false, Send::Matched),
            (true, Send::Raw),
            (false, Send::Raw),
        ] {
            match check(&table, path, merge, send) {
                Ok(Some(forwarded)) if forwarded.served.iter().any(|s| s == "/paid" || s == "/paid/") => {
                    assert_eq!(forwarded.route, "/paid", "{path:?} merge={merge}: {forwarded:?}");
                }
                Ok(_) => {}
                Err(bypass) => panic!("{bypass}"),
            }
        }
    }
    assert_eq!(canonicalize("/free/..%2fpaid", true), Err(AmbiguousPath::EncodedSlash));
}

/// The check is not vacuous: matched without canonicalization, the attacks reach `/paid` for free.
#[test]
fn without_canonicalization_the_check_finds_the_bypasses() {
    let table = table(FIXED);
    let mut bypasses = 0;
    for path in ATTACKS {
        if check_matched(&table, path, path.to_owned(), true, Send::Matched).is_err() {
            bypasses += 1;
        }
    }
    assert!(bypasses >= 8, "only {bypasses} bypasses found");
}
