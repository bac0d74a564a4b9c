//! The hub's pages: `pageSize` (1..=100, default 50), `page` (1-based), or
//! `nextPage`, the `Elements-Next-Page-Token` the previous page answered. A
//! token carries where the next page starts at the vendor (its own page
//! token, or an offset) and is bound to the instance and the query it was
//! made for: given with another, it is refused (`400 invalid_request`).
//! Tokens are opaque to clients (base64url of a small JSON object); nothing
//! in one is a secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 100;
/// How many pages before it a `page=N` may walk (a vendor without random
/// access), so that one call stays inside its deadline.
pub const MAX_PAGE: u32 = 100;

/// Where a page starts at the vendor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Start {
    /// The vendor's own token for the page (Jira Cloud's `nextPageToken`).
    Token(String),
    /// An offset (Jira Server's `startAt`).
    Offset(u64),
}

/// What a page request asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub size: u32,
    /// 1-based; with `next`, the page the token leads to.
    pub number: u32,
    /// From a `nextPage` token.
    pub next: Option<Start>,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    /// The instance's id.
    i: u64,
    /// The query's digest (first 8 bytes, hex).
    q: String,
    /// The page it leads to.
    p: u32,
    s: Start,
}

/// The digest that binds a token to a query: every parameter that shapes the
/// pages (the filter, the order, the fields, the page size).
pub fn query_digest(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

impl PageRequest {
    /// From the query string's `pageSize`, `page` and `nextPage`, for the
    /// instance `instance` and the query whose digest is `query`.
    pub fn parse(
        page_size: Option<&str>,
        page: Option<&str>,
        next_page: Option<&str>,
        instance: u64,
        query: &str,
    ) -> Result<Self, String> {
        let size = match page_size.map(str::trim).filter(|s| !s.is_empty()) {
            None => DEFAULT_PAGE_SIZE,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
                _ => return Err(format!("pageSize must be a whole number from 1 to {MAX_PAGE_SIZE}")),
            },
        };
        let number = match page.map(str::trim).filter(|s| !s.is_empty()) {
            None => 1,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                _ => return Err(format!("page must be a whole number from 1 to {MAX_PAGE}")),
            },
        };
        let Some(token) = next_page.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(PageRequest { size, number, next: None });
        };
        let refused = || {
            "nextPage must be the Elements-Next-Page-Token of the previous page of the same query on the same instance"
                .to_string()
        };
        let wire: Wire =
            URL_SAFE_NO_PAD.decode(token).ok().and_then(|raw| serde_json::from_slice(&raw).ok()).ok_or_else(refused)?;
        if wire.i != instance || wire.q != query {
            return Err(refused());
        }
        Ok(PageRequest { size, number: wire.p, next: Some(wire.s) })
    }
}

/// The `Elements-Next-Page-Token` of the page after `number`.
pub fn next_token(instance: u64, query: &str, number: u32, start: Start) -> String {
    let wire = Wire { i: instance, q: query.to_owned(), p: number + 1, s: start };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_pages_and_tokens() {
        let q = query_digest(&["status = \"Done\"", "", "", "50"]);
        assert_eq!(
            PageRequest::parse(None, None, None, 7, &q).unwrap(),
            PageRequest { size: 50, number: 1, next: None }
        );
        assert_eq!(PageRequest::parse(Some("100"), Some("3"), None, 7, &q).unwrap().number, 3);
        for bad in ["0", "101", "x", "-1"] {
            assert!(PageRequest::parse(Some(bad), None, None, 7, &q).is_err(), "{bad}");
            assert!(PageRequest::parse(None, Some(bad), None, 7, &q).is_err() || bad == "101", "{bad}");
        }
        let token = next_token(7, &q, 1, Start::Token("abc".into()));
        let next = PageRequest::parse(None, None, Some(&token), 7, &q).unwrap();
        assert_eq!((next.number, next.next), (2, Some(Start::Token("abc".into()))));
        // Another instance, another query, or garbage: refused.
        assert!(PageRequest::parse(None, None, Some(&token), 8, &q).is_err());
        let other = query_digest(&["status = \"To Do\"", "", "", "50"]);
        assert!(PageRequest::parse(None, None, Some(&token), 7, &other).is_err());
        assert!(PageRequest::parse(None, None, Some("garbage"), 7, &q).is_err());
        let offset = next_token(7, &q, 2, Start::Offset(100));
        assert_eq!(PageRequest::parse(None, None, Some(&offset), 7, &q).unwrap().next, Some(Start::Offset(100)));
    }

    #[test]
    fn a_digest_tells_its_parts_apart() {
        assert_ne!(query_digest(&["ab", "c"]), query_digest(&["a", "bc"]));
    }
}
