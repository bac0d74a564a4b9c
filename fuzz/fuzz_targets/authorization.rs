//! The Authorization parser: never panics; whatever it accepts has exactly a
//! user and an organization secret, each non-empty printable ASCII without
//! white space, both present in the header.
#![no_main]

use instances::domain::credentials::Credentials;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    if let Ok(c) = Credentials::parse(header) {
        for secret in [c.user.expose(), c.organization.expose()] {
            assert!(!secret.is_empty());
            assert!(secret.bytes().all(|b| b.is_ascii_graphic()));
            assert!(!secret.contains(','));
            assert!(header.contains(secret));
        }
        assert_eq!(header.matches(',').count(), 1);
    }
});
