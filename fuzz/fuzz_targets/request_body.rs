//! The request body parser, as the handler runs it: bytes -> JSON -> a
//! CreateInstance checked against the catalog. Never panics; whatever it
//! accepts satisfies the contract's rules.
#![no_main]

use std::sync::OnceLock;

use instances::domain::catalog::Catalog;
use instances::domain::request::{CreateInstance, MAX_NAME_CHARS, MAX_TAGS, MAX_TAG_CHARS};
use libfuzzer_sys::fuzz_target;

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::builtin().expect("the built-in catalog parses"))
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(r) = CreateInstance::parse(&json, catalog()) {
        let name = r.name.as_str();
        assert!(!name.trim().is_empty() && name.chars().count() <= MAX_NAME_CHARS && name == name.trim());
        let tags = r.tags.as_slice();
        assert!(tags.len() <= MAX_TAGS);
        for (i, t) in tags.iter().enumerate() {
            assert!(!t.is_empty() && t.chars().count() <= MAX_TAG_CHARS && !tags[..i].contains(t));
        }
        for entry in r.element.entries.iter().filter(|e| e.required) {
            let v = r.configuration.get(&entry.key).expect("a required entry is present");
            assert!(!v.expose().trim().is_empty());
        }
        let _ = r.fingerprint();
    }
});
