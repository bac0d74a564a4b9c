//! A list request (`GET /instances`, `GET /elements/{keyOrId}/instances`):
//! its filters and its page, parsed from the query string.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::request::{MAX_TAGS, MAX_TAG_CHARS};
use super::token::InstanceId;

pub const DEFAULT_PAGE_SIZE: usize = 200;
pub const MAX_PAGE_SIZE: usize = 500;

/// What a list keeps: instances carrying every one of `tags`, and whose name
/// or element key contains `search_text` (case-insensitive).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListFilter {
    pub tags: Vec<String>,
    /// Lower case, trimmed, non-empty.
    pub search_text: Option<String>,
    /// Set by `/elements/{keyOrId}/instances`.
    pub element_key: Option<String>,
}

impl ListFilter {
    /// Whether the client searched (a search that matches nothing is `404`,
    /// an unfiltered empty list `200 []`).
    pub fn is_search(&self) -> bool {
        !self.tags.is_empty() || self.search_text.is_some()
    }
}

/// Where the next page starts: after this instance of the organization's
/// index. Opaque to clients (the `Elements-Next-Page-Token` header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_date: String,
    pub id: InstanceId,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{}", self.created_date, self.id))
    }

    pub fn decode(text: &str) -> Option<Self> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text.trim()).ok()?).ok()?;
        let (created_date, id) = raw.rsplit_once('|')?;
        let created_date = super::time::canonical(created_date).filter(|c| c == created_date)?;
        Some(Cursor { created_date, id: InstanceId::new(id.parse().ok()?)? })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub filter: ListFilter,
    pub page_size: usize,
    pub after: Option<Cursor>,
}

impl ListQuery {
    /// From the query string's `tags[]` (repeatable; `tags` is read too),
    /// `searchText`, `pageSize` (1..=500, default 200) and `nextPage`.
    pub fn parse(
        tags: Vec<&str>,
        search_text: Option<&str>,
        page_size: Option<&str>,
        next_page: Option<&str>,
    ) -> Result<Self, String> {
        let mut wanted: Vec<String> = Vec::new();
        for tag in tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
            if !wanted.iter().any(|w| w == tag) {
                wanted.push(tag.to_owned());
            }
        }
        // Each tag is one term of DynamoDB's filter expression, whose size is
        // bounded: no more than an instance can carry, none longer than a tag.
        if wanted.len() > MAX_TAGS {
            return Err(format!(
                "tags[] names at most {MAX_TAGS} distinct tags (as an instance carries), {} were given",
                wanted.len()
            ));
        }
        if wanted.iter().any(|t| t.chars().count() > MAX_TAG_CHARS) {
            return Err(format!("tags[] values are at most {MAX_TAG_CHARS} characters (as an instance's tags)"));
        }
        let search_text = search_text.map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty());
        let page_size = match page_size.map(str::trim) {
            None | Some("") => DEFAULT_PAGE_SIZE,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
                _ => return Err(format!("pageSize must be a whole number from 1 to {MAX_PAGE_SIZE}")),
            },
        };
        let after = match next_page.map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(Cursor::decode(text).ok_or_else(|| {
                "nextPage must be the Elements-Next-Page-Token header of the previous page, unchanged".to_string()
            })?),
        };
        Ok(ListQuery { filter: ListFilter { tags: wanted, search_text, element_key: None }, page_size, after })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn defaults_and_limits() {
        let q = ListQuery::parse(vec![], None, None, None).unwrap();
        assert_eq!((q.page_size, q.after, q.filter.is_search()), (DEFAULT_PAGE_SIZE, None, false));
        let q = ListQuery::parse(vec![" a ", "b", "a", ""], Some("  Support Desk "), Some("500"), None).unwrap();
        assert_eq!(q.filter.tags, ["a", "b"]);
        assert_eq!(q.filter.search_text.as_deref(), Some("support desk"));
        assert!(q.filter.is_search());
        for bad in ["0", "501", "-1", "ten", "1.5"] {
            assert!(ListQuery::parse(vec![], None, Some(bad), None).is_err(), "{bad}");
        }
        let fifty: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
        let mut many: Vec<&str> = fifty.iter().map(String::as_str).collect();
        many.push("t0");
        assert_eq!(ListQuery::parse(many.clone(), None, None, None).unwrap().filter.tags.len(), 50, "50 distinct");
        many.push("t50");
        assert!(ListQuery::parse(many, None, None, None).unwrap_err().contains("at most 50"));
        assert!(ListQuery::parse(vec![&"x".repeat(101)], None, None, None).is_err());
        for bad in ["x", "!!", &URL_SAFE_NO_PAD.encode("no separator"), &URL_SAFE_NO_PAD.encode("yesterday|5")] {
            assert!(ListQuery::parse(vec![], None, None, Some(bad)).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn cursors_round_trip(ms in 0u64..4_102_444_800_000, id in 1u64..(1 << 53)) {
            let created_date = crate::domain::time::iso8601(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms));
            let c = Cursor { created_date, id: InstanceId::new(id).unwrap() };
            prop_assert_eq!(Cursor::decode(&c.encode()), Some(c));
        }
    }
}
