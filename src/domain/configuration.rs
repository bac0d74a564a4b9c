//! A configuration checked against its element: every required entry present
//! and non-blank, no entry the element does not know, typed entries parsed and
//! normalized, defaults filled in. Values the catalog marks secret are held as
//! [`Secret`].
//!
//! Each value is held in one normal form, the one stored, answered and
//! compared by an `Idempotency-Key` replay: strings trimmed (secrets excepted:
//! a password is used byte for byte), URLs in the `url` crate's canonical form
//! without the root's trailing slash (`HTTPS://X.atlassian.net:443/` is
//! `https://x.atlassian.net`), numbers in their shortest decimal form (`+5`,
//! `5.0` and `5e0` are `5`), booleans `true`/`false`, JSON objects compact
//! with sorted keys.

use serde_json::Value;

use super::catalog::{ConfigEntry, Element, EntryType};
use super::secret::Secret;
use super::suggest::closest;

#[derive(Debug, Clone)]
pub enum ConfigText {
    Plain(String),
    Secret(Secret),
}

impl ConfigText {
    /// The value, for sealing or storing. Secret values only go to the seal.
    pub fn expose(&self) -> &str {
        match self {
            ConfigText::Plain(s) => s,
            ConfigText::Secret(s) => s.expose(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConfigValue {
    pub key: String,
    pub value: ConfigText,
}

/// The configuration of one instance, in catalog order, keyed by catalog
/// key, with the names its client gave entries by where they are aliases.
#[derive(Debug, Clone)]
pub struct Configuration {
    values: Vec<ConfigValue>,
    names: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnknownEntry {
    pub key: String,
    pub suggestion: Option<String>,
}

/// A value that is not of its type, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidEntry {
    pub key: String,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConfigurationError {
    /// `configuration` is there but not a JSON object.
    NotAnObject,
    /// Every entry in error, each list in full: required entries missing or
    /// blank (catalog order), entries the element does not know, and known
    /// entries whose value is not of their type (catalog order).
    Entries { missing: Vec<String>, unknown: Vec<UnknownEntry>, invalid: Vec<InvalidEntry> },
}

impl Configuration {
    pub fn parse(element: &Element, value: Option<&Value>) -> Result<Self, ConfigurationError> {
        let empty = serde_json::Map::new();
        let given = match value {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(map)) => map,
            Some(_) => return Err(ConfigurationError::NotAnObject),
        };

        let mut unknown = Vec::new();
        for key in given.keys() {
            if element.entry_named(key).is_none() {
                let suggestion = closest(key, element.entry_names());
                unknown.push(UnknownEntry { key: key.clone(), suggestion });
            }
        }

        let mut missing = Vec::new();
        let mut values = Vec::new();
        let mut invalid = Vec::new();
        let mut names = Vec::new();
        for entry in &element.entries {
            let mut spellings = std::iter::once(&entry.key).chain(&entry.aliases).filter(|n| given.contains_key(*n));
            let name = spellings.next();
            if let Some(other) = spellings.next() {
                let problem = format!("is given both as {} and {other}; give one", name.map_or("", |n| n.as_str()));
                invalid.push(InvalidEntry { key: entry.key.clone(), problem });
                continue;
            }
            if let Some(name) = name.filter(|n| **n != entry.key) {
                names.push((entry.key.clone(), name.clone()));
            }
            match name.and_then(|n| given.get(n)).filter(|v| !is_blank(v)) {
                Some(v) => match check(entry, v) {
                    Ok(text) => values.push(ConfigValue { key: entry.key.clone(), value: wrap(entry, text) }),
                    Err(problem) => invalid.push(InvalidEntry { key: entry.key.clone(), problem }),
                },
                None if entry.required => missing.push(entry.key.clone()),
                None => {
                    if let Some(default) = &entry.default {
                        values.push(ConfigValue { key: entry.key.clone(), value: wrap(entry, default.clone()) });
                    }
                }
            }
        }
        if missing.is_empty() && unknown.is_empty() && invalid.is_empty() {
            // The rules between entries, once each entry is of its type.
            let plain: &[ConfigValue] = &values;
            let get = |key: &str| {
                plain.iter().find(|v| v.key == key).and_then(|v| match &v.value {
                    ConfigText::Plain(text) => Some(text.as_str()),
                    ConfigText::Secret(_) => None,
                })
            };
            let signed = plain.iter().any(|v| v.key == super::events::SIGNATURE_KEY);
            match super::events::check(&get, signed) {
                Ok(()) => {}
                Err(super::events::Problem::Missing(key)) => missing.push(key.to_owned()),
                Err(super::events::Problem::Invalid(key, problem)) => {
                    invalid.push(InvalidEntry { key: key.to_owned(), problem })
                }
            }
        }
        if !missing.is_empty() || !unknown.is_empty() || !invalid.is_empty() {
            return Err(ConfigurationError::Entries { missing, unknown, invalid });
        }
        names.retain(|(key, _)| values.iter().any(|v| &v.key == key));
        Ok(Configuration { values, names })
    }

    pub fn values(&self) -> &[ConfigValue] {
        &self.values
    }

    /// `(key, name)` for each entry given by an alias rather than its key.
    pub fn names(&self) -> &[(String, String)] {
        &self.names
    }

    /// The name the client gave the entry `key` by.
    pub fn name_of<'a>(&'a self, key: &'a str) -> &'a str {
        name_of(&self.names, key)
    }

    pub fn get(&self, key: &str) -> Option<&ConfigText> {
        self.values.iter().find(|v| v.key == key).map(|v| &v.value)
    }
}

/// The name `names` (`(key, name)` pairs) gives the entry `key`: its alias,
/// or the key itself.
pub fn name_of<'a>(names: &'a [(String, String)], key: &'a str) -> &'a str {
    names.iter().find(|(k, _)| k == key).map_or(key, |(_, name)| name.as_str())
}

fn wrap(entry: &ConfigEntry, text: String) -> ConfigText {
    if entry.secret {
        ConfigText::Secret(Secret::new(text))
    } else {
        ConfigText::Plain(text)
    }
}

/// Null and blank strings count as absent: a required entry so given is
/// missing, an optional one is left out.
fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn check(entry: &ConfigEntry, v: &Value) -> Result<String, String> {
    match (&entry.entry_type, v) {
        (EntryType::String, Value::String(s)) if entry.secret => Ok(s.clone()),
        (EntryType::String, Value::String(s)) => Ok(s.trim().to_owned()),
        (EntryType::String, _) => Err("must be a string".into()),
        (EntryType::Url, Value::String(s)) => https_url(s.trim()).map(|url| without_api_path(&url, &entry.api_paths)),
        (EntryType::Url, _) => Err("must be an https URL given as a string".into()),
        (EntryType::Boolean, Value::Bool(b)) => Ok(b.to_string()),
        (EntryType::Boolean, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok("true".into()),
            "false" => Ok("false".into()),
            _ => Err("must be true or false".into()),
        },
        (EntryType::Boolean, _) => Err("must be true or false".into()),
        (EntryType::Number, Value::Number(n)) => number(entry, &n.to_string()),
        (EntryType::Number, Value::String(s)) => number(entry, s.trim()),
        (EntryType::Number, _) => Err("must be a number".into()),
        (EntryType::Enum, Value::String(s)) if entry.values.iter().any(|a| a == s.trim()) => Ok(s.trim().to_owned()),
        (EntryType::Enum, _) => Err(format!("must be one of: {}", entry.values.join(", "))),
        (EntryType::Json, Value::Object(_)) => Ok(v.to_string()),
        (EntryType::Json, Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(inner @ Value::Object(_)) => Ok(inner.to_string()),
            _ => Err("must be a JSON object (or a string holding one)".into()),
        },
        (EntryType::Json, _) => Err("must be a JSON object (or a string holding one)".into()),
    }
}

fn number(entry: &ConfigEntry, text: &str) -> Result<String, String> {
    let n: f64 = text.parse().map_err(|_| "must be a number".to_string())?;
    if !n.is_finite() {
        return Err("must be a finite number".into());
    }
    if let Some(min) = entry.minimum {
        if n < min {
            return Err(format!("must be at least {min}"));
        }
    }
    Ok(canonical_number(n))
}

/// The shortest decimal form: integers without a fraction or sign (`+5`,
/// `5.0`, `-0` are `5`, `5`, `0`), others as Rust's round-trip `Display`.
fn canonical_number(n: f64) -> String {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: integers below are exact
    if n.fract() == 0.0 && n.abs() < EXACT {
        (n as i64).to_string()
    } else {
        n.to_string()
    }
}

/// An absolute `https` URL with a host and no user info. A bare host
/// (`example.atlassian.net`) is read as `https://example.atlassian.net`;
/// `http://` is refused since the credentials would travel in clear.
pub fn https_url(text: &str) -> Result<String, String> {
    const WHY: &str = "must be an absolute https URL (e.g. https://example.atlassian.net)";
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(WHY.into());
    }
    let full = if text.contains("://") { text.to_owned() } else { format!("https://{text}") };
    let url = url::Url::parse(&full).map_err(|_| WHY.to_string())?;
    if url.scheme() != "https" {
        return Err(format!("{WHY}; {}:// is refused because credentials would travel in clear", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(WHY.into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password; give them as their own entries".into());
    }
    let mut canonical = String::from(url.clone());
    if url.path() == "/" && url.query().is_none() && url.fragment().is_none() {
        canonical.pop();
    }
    Ok(canonical)
}

/// A site's URL given with the API's own path after it (`.../rest/api/2`,
/// which a client copies from the API's documentation) read as the site:
/// the catalog's `apiPaths` of the entry, removed from the end of the path
/// (in any case, with or without a trailing `/`), again until none is left.
fn without_api_path(canonical: &str, api_paths: &[String]) -> String {
    let mut url = canonical.to_owned();
    loop {
        let Ok(mut parsed) = url::Url::parse(&url) else { return url };
        let path = parsed.path().trim_end_matches('/').to_owned();
        let Some(suffix) = api_paths.iter().find(|s| path.to_ascii_lowercase().ends_with(&s.to_ascii_lowercase()))
        else {
            return url;
        };
        parsed.set_path(&path[..path.len() - suffix.len()]);
        let mut next = String::from(parsed.clone());
        if parsed.path() == "/" && parsed.query().is_none() && parsed.fragment().is_none() {
            next.pop();
        }
        url = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::Catalog;
    use proptest::prelude::*;
    use serde_json::json;

    fn jira() -> Element {
        Catalog::builtin().unwrap().by_key("jira").unwrap().clone()
    }

    fn parse(v: Value) -> Result<Configuration, ConfigurationError> {
        Configuration::parse(&jira(), Some(&v))
    }

    #[test]
    fn the_apis_own_path_after_the_site_is_read_as_the_site() {
        let url_of = |given: &str| {
            let mut v = good();
            v["jira.api.url"] = json!(given);
            parse(v).unwrap().get("jira.api.url").map(|c| c.expose().to_owned()).unwrap()
        };
        for (given, site) in [
            ("x.atlassian.net/rest/api/2", "https://x.atlassian.net"),
            ("https://x.atlassian.net/rest/api/3/", "https://x.atlassian.net"),
            ("https://x.atlassian.net/REST/API/latest", "https://x.atlassian.net"),
            ("https://jira.example.com/jira/rest/api/2", "https://jira.example.com/jira"),
            ("https://x.atlassian.net/rest/api/2/rest/api/2", "https://x.atlassian.net"),
            ("https://x.atlassian.net/rest/api/25", "https://x.atlassian.net/rest/api/25"),
            ("https://x.atlassian.net/jira", "https://x.atlassian.net/jira"),
        ] {
            assert_eq!(url_of(given), site, "{given}");
        }
        // Only the site's entry: a callback URL keeps its path.
        let mut v = good();
        v["event.notification.callback.url"] = json!("https://app.example.com/rest/api/2");
        let c = parse(v).unwrap();
        assert_eq!(c.get("event.notification.callback.url").unwrap().expose(), "https://app.example.com/rest/api/2");
    }

    fn good() -> Value {
        json!({"jira.username": "u", "jira.password": "p", "jira.api.url": "https://x.atlassian.net"})
    }

    #[test]
    fn all_missing_entries_are_named_in_catalog_order() {
        let err = parse(json!({"jira.api.url": "https://x.atlassian.net"})).unwrap_err();
        assert_eq!(
            err,
            ConfigurationError::Entries {
                missing: vec!["jira.username".into(), "jira.password".into()],
                unknown: vec![],
                invalid: vec![]
            }
        );
        let err = Configuration::parse(&jira(), None).unwrap_err();
        let ConfigurationError::Entries { missing, .. } = err else { panic!() };
        assert_eq!(missing, ["jira.username", "jira.password", "jira.api.url"]);
    }

    #[test]
    fn blank_and_null_required_entries_are_missing() {
        let err = parse(json!({"jira.username": "  ", "jira.password": null, "jira.api.url": "x.io"})).unwrap_err();
        let ConfigurationError::Entries { missing, .. } = err else { panic!() };
        assert_eq!(missing, ["jira.username", "jira.password"]);
    }

    #[test]
    fn unknown_entries_are_named_with_a_near_match() {
        let mut v = good();
        v["jira.pasword"] = json!("x");
        v["colour"] = json!("x");
        let err = parse(v).unwrap_err();
        let ConfigurationError::Entries { missing, unknown, .. } = err else { panic!() };
        assert!(missing.is_empty());
        assert_eq!(unknown[0], UnknownEntry { key: "colour".into(), suggestion: None });
        assert_eq!(unknown[1], UnknownEntry { key: "jira.pasword".into(), suggestion: Some("jira.password".into()) });
    }

    #[test]
    fn entries_may_be_given_by_their_aliases_one_name_each() {
        let c = parse(json!({"username": " u ", "password": "p", "jira.api.url": "x.atlassian.net"})).unwrap();
        assert_eq!(c.get("jira.username").unwrap().expose(), "u", "held under the key");
        assert!(matches!(c.get("jira.password"), Some(ConfigText::Secret(_))));
        assert_eq!(
            c.names(),
            [("jira.username".to_owned(), "username".to_owned()), ("jira.password".to_owned(), "password".to_owned())]
        );
        assert!(parse(good()).unwrap().names().is_empty());

        let mut both = good();
        both["base.url"] = json!("https://y.atlassian.net");
        let Err(ConfigurationError::Entries { invalid, .. }) = parse(both) else { panic!() };
        assert_eq!(invalid[0].key, "jira.api.url");
        assert!(invalid[0].problem.contains("jira.api.url and base.url"), "{}", invalid[0].problem);

        let Err(ConfigurationError::Entries { unknown, .. }) = parse(json!({"usernme": "u"})) else { panic!() };
        assert_eq!(unknown[0].suggestion.as_deref(), Some("username"), "aliases are suggested too");
    }

    #[test]
    fn defaults_are_filled_and_secrets_are_held_as_secrets() {
        let c = parse(good()).unwrap();
        assert_eq!(c.get("filter.response.nulls").unwrap().expose(), "true");
        assert_eq!(c.get("event.notification.enabled").unwrap().expose(), "false");
        assert!(matches!(c.get("jira.password"), Some(ConfigText::Secret(_))));
        assert!(!format!("{c:?}").contains("\"p\""));
        let keys: Vec<_> = c.values().iter().map(|v| v.key.as_str()).collect();
        assert_eq!(&keys[..3], ["jira.username", "jira.password", "jira.api.url"]);
    }

    #[test]
    fn typed_entries_accept_the_platforms_string_forms() {
        let mut v = good();
        v["event.notification.enabled"] = json!("true");
        v["event.poller.refresh_interval"] = json!("15");
        v["filter.response.nulls"] = json!(false);
        v["event.vendor.type"] = json!("polling");
        v["event.poller.configuration"] = json!("{\"incidents\": {\"where\": \"priority = 'High'\"}}");
        v["event.notification.callback.url"] = json!("https://app.example.com/events");
        let c = parse(v).unwrap();
        assert_eq!(c.get("event.notification.enabled").unwrap().expose(), "true");
        assert_eq!(c.get("event.poller.refresh_interval").unwrap().expose(), "15");
        assert_eq!(c.get("filter.response.nulls").unwrap().expose(), "false");
        assert_eq!(
            c.get("event.poller.configuration").unwrap().expose(),
            "{\"incidents\":{\"where\":\"priority = 'High'\"}}"
        );
    }

    #[test]
    fn typed_entries_refuse_values_of_another_type() {
        for (key, bad) in [
            ("jira.username", json!(5)),
            ("event.notification.enabled", json!("yes")),
            ("event.poller.refresh_interval", json!("soon")),
            ("event.poller.refresh_interval", json!(0)),
            ("event.vendor.type", json!("carrier-pigeon")),
            ("event.poller.configuration", json!("[1]")),
            ("jira.api.url", json!("http://x.atlassian.net")),
        ] {
            let mut v = good();
            v[key] = bad;
            match parse(v) {
                Err(ConfigurationError::Entries { missing, unknown, invalid }) => {
                    assert!(missing.is_empty() && unknown.is_empty());
                    assert_eq!(invalid.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(), [key]);
                }
                other => panic!("{key}: {other:?}"),
            }
        }
        assert_eq!(Configuration::parse(&jira(), Some(&json!([1]))).unwrap_err(), ConfigurationError::NotAnObject);
    }

    #[test]
    fn every_invalid_value_is_named_at_once_beside_missing_and_unknown_entries() {
        let mut v = good();
        v["jira.api.url"] = json!("http://x.atlassian.net");
        v["event.vendor.type"] = json!("carrier-pigeon");
        v["event.notification.enabled"] = json!("yes");
        v.as_object_mut().unwrap().remove("jira.username");
        v["colour"] = json!("blue");
        let Err(ConfigurationError::Entries { missing, unknown, invalid }) = parse(v) else { panic!() };
        assert_eq!(missing, ["jira.username"]);
        assert_eq!(unknown.iter().map(|u| u.key.as_str()).collect::<Vec<_>>(), ["colour"]);
        let keys: Vec<&str> = invalid.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys.len(), 3, "{keys:?}");
        for key in ["jira.api.url", "event.vendor.type", "event.notification.enabled"] {
            assert!(keys.contains(&key), "{key} in {keys:?}");
        }
    }

    #[test]
    fn values_are_held_in_one_normal_form() {
        let mut v = good();
        v["jira.username"] = json!("  u  ");
        v["jira.password"] = json!(" p ");
        v["jira.api.url"] = json!(" HTTPS://X.Atlassian.NET:443/ ");
        v["event.poller.refresh_interval"] = json!("+15");
        v["event.vendor.type"] = json!(" polling ");
        v["event.notification.enabled"] = json!(" TRUE ");
        v["event.notification.callback.url"] = json!("https://app.example.com/events");
        let c = parse(v).unwrap();
        assert_eq!(c.get("jira.username").unwrap().expose(), "u");
        assert_eq!(c.get("jira.password").unwrap().expose(), " p ", "a secret is kept byte for byte");
        assert_eq!(c.get("jira.api.url").unwrap().expose(), "https://x.atlassian.net");
        assert_eq!(c.get("event.poller.refresh_interval").unwrap().expose(), "15");
        assert_eq!(c.get("event.vendor.type").unwrap().expose(), "polling");
        assert_eq!(c.get("event.notification.enabled").unwrap().expose(), "true");
        let element = jira();
        let interval = element.entry("event.poller.refresh_interval").unwrap();
        for (given, stored) in [("15.0", "15"), ("1.50", "1.5"), ("1e3", "1000"), ("+7", "7")] {
            assert_eq!(number(interval, given).unwrap(), stored);
        }
        assert_eq!(https_url("https://x.atlassian.net/jira/").unwrap(), "https://x.atlassian.net/jira/");
        assert_eq!(https_url("x.atlassian.net/?a=1").unwrap(), "https://x.atlassian.net/?a=1");
    }

    #[test]
    fn urls() {
        assert_eq!(https_url("example.atlassian.net").unwrap(), "https://example.atlassian.net");
        assert_eq!(https_url("https://example.atlassian.net/x").unwrap(), "https://example.atlassian.net/x");
        assert_eq!(https_url("https://example.atlassian.net/").unwrap(), "https://example.atlassian.net");
        for bad in [
            "http://example.atlassian.net",
            "ftp://example.com",
            "https://user:pw@example.com",
            "https://",
            "javascript:alert(1)",
            "https://exa mple.com",
            "https://xn--.com",
            "",
        ] {
            assert!(https_url(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_dns_host_is_an_https_url(labels in proptest::collection::vec("[a-w][a-z0-9]{0,10}", 1..4)) {
            let host = labels.join(".");
            prop_assert_eq!(https_url(&host).unwrap(), format!("https://{host}"));
        }

        /// Keys drawn from the catalog (and a few strangers), values of every
        /// JSON type in the forms clients send: every branch of the type
        /// checks is reached, and each outcome is checked against the input.
        #[test]
        fn every_outcome_agrees_with_the_catalog(given in arbitrary_configuration()) {
            let element = jira();
            let input = Value::Object(given.clone());
            match Configuration::parse(&element, Some(&input)) {
                Ok(c) => {
                    for entry in element.entries.iter().filter(|e| e.required) {
                        prop_assert!(c.get(&entry.key).is_some(), "required {} present", entry.key);
                    }
                    for v in c.values() {
                        let entry = element.entry(&v.key).expect("only catalog entries");
                        let text = v.value.expose();
                        prop_assert_eq!(matches!(v.value, ConfigText::Secret(_)), entry.secret);
                        match entry.entry_type {
                            EntryType::Boolean => prop_assert!(text == "true" || text == "false", "{text}"),
                            EntryType::Number => {
                                let n: f64 = text.parse().unwrap();
                                prop_assert!(n.is_finite() && entry.minimum.is_none_or(|m| n >= m));
                                prop_assert_eq!(canonical_number(n), text, "numbers are canonical");
                            }
                            EntryType::Url => prop_assert_eq!(https_url(text), Ok(text.to_owned()), "URLs are canonical"),
                            EntryType::Enum => prop_assert!(entry.values.iter().any(|a| a == text)),
                            EntryType::Json => prop_assert!(serde_json::from_str::<Value>(text).unwrap().is_object()),
                            EntryType::String if !entry.secret => prop_assert_eq!(text.trim(), text, "strings are trimmed"),
                            EntryType::String => {}
                        }
                        // Parsing the normal form again gives it back unchanged.
                        prop_assert_eq!(check(entry, &Value::String(text.to_owned())), Ok(text.to_owned()));
                    }
                }
                Err(ConfigurationError::Entries { missing, unknown, invalid }) => {
                    prop_assert!(!missing.is_empty() || !unknown.is_empty() || !invalid.is_empty());
                    // The rules between the event entries (domain::events) name
                    // entries their own type accepts.
                    let events_rule = |key: &str| {
                        given.get(crate::domain::events::ENABLED).and_then(|v| check(element.entry(crate::domain::events::ENABLED).unwrap(), v).ok()).as_deref() == Some("true")
                            && [crate::domain::events::CALLBACK_URL, crate::domain::events::VENDOR_TYPE, crate::domain::events::INTERVAL, crate::domain::events::POLLER_CONFIGURATION].contains(&key)
                    };
                    for key in &missing {
                        prop_assert!(element.entry(key).is_some_and(|e| e.required) || events_rule(key));
                        prop_assert!(given.get(key).is_none_or(is_blank), "{key} was given");
                    }
                    for u in &unknown {
                        prop_assert!(element.entry(&u.key).is_none() && given.contains_key(&u.key));
                    }
                    for i in &invalid {
                        let entry = element.entry(&i.key).expect("an invalid entry is a catalog entry");
                        let value = given.get(&i.key).expect("it was given");
                        prop_assert!(!is_blank(value));
                        prop_assert!(check(entry, value).is_err() || events_rule(&i.key));
                    }
                    // Every given, non-blank catalog entry whose value fails its check is named.
                    for (key, value) in &given {
                        if let Some(entry) = element.entry(key) {
                            if !is_blank(value) && check(entry, value).is_err() {
                                prop_assert!(invalid.iter().any(|i| &i.key == key), "{key} not named");
                            }
                        }
                    }
                }
                Err(ConfigurationError::NotAnObject) => prop_assert!(false, "it was an object"),
            }
        }
    }

    /// The forms clients send for an entry of this type, valid and not.
    fn forms(entry: &ConfigEntry) -> Vec<Value> {
        let mut forms = match entry.entry_type {
            EntryType::Boolean => vec![json!(true), json!(false), json!("true"), json!(" FALSE "), json!("yes")],
            EntryType::Number => {
                vec![
                    json!(5),
                    json!(5.0),
                    json!("+5"),
                    json!("15"),
                    json!("1e2"),
                    json!("1.50"),
                    json!("0"),
                    json!("NaN"),
                ]
            }
            EntryType::Url => vec![
                json!("https://X.Atlassian.net/"),
                json!("x.atlassian.net"),
                json!("https://x.io:443/a/"),
                json!(" https://x.io/?q=1 "),
                json!("http://x.io"),
                json!("https://u:p@x.io"),
            ],
            EntryType::Enum => {
                let first = entry.values.first().cloned().unwrap_or_default();
                vec![json!(first.clone()), json!(format!(" {first} ")), json!("carrier-pigeon")]
            }
            EntryType::Json => vec![json!({"b": 2, "a": 1}), json!("{\"a\": 1}"), json!("[1]")],
            EntryType::String => vec![json!(" padded "), json!("plain"), json!("x y")],
        };
        forms.extend([json!(null), json!("  "), json!([1])]);
        forms
    }

    /// Every entry of the catalog absent or in one of its forms (the
    /// required ones present more often), plus now and then a stranger.
    fn arbitrary_configuration() -> impl Strategy<Value = serde_json::Map<String, Value>> {
        let element = jira();
        let per_entry: Vec<_> = element
            .entries
            .iter()
            .map(|entry| {
                let key = entry.key.clone();
                let present = if entry.required { 0.9 } else { 0.5 };
                proptest::option::weighted(present, proptest::sample::select(forms(entry)))
                    .prop_map(move |v| v.map(|v| (key.clone(), v)))
            })
            .collect();
        let stranger = proptest::option::weighted(0.1, ("[a-z]{1,8}\\.[a-z]{1,8}", Just(json!("x"))));
        (per_entry, stranger).prop_map(|(entries, stranger)| entries.into_iter().flatten().chain(stranger).collect())
    }
}
