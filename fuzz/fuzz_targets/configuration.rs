//! The configuration validator on any JSON object, against every catalog
//! element: never panics; an accepted configuration has every required entry,
//! only known entries, URLs that are https, secrets held as secrets.
#![no_main]

use std::sync::OnceLock;

use instances::domain::catalog::{Catalog, EntryType};
use instances::domain::configuration::{ConfigText, Configuration, ConfigurationError};
use libfuzzer_sys::fuzz_target;

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::builtin().expect("the built-in catalog parses"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    for element in catalog().elements() {
        match Configuration::parse(element, Some(&value)) {
            Ok(c) => {
                for v in c.values() {
                    let entry = element.entry(&v.key).expect("only known entries");
                    assert_eq!(entry.secret, matches!(v.value, ConfigText::Secret(_)));
                    if entry.entry_type == EntryType::Url {
                        assert!(v.value.expose().starts_with("https://"));
                    }
                }
                for entry in element.entries.iter().filter(|e| e.required) {
                    assert!(c.get(&entry.key).is_some());
                }
            }
            Err(ConfigurationError::Entries { missing, unknown, invalid }) => {
                assert!(!missing.is_empty() || !unknown.is_empty() || !invalid.is_empty());
            }
            Err(_) => {}
        }
    }
});
