//! An update (`PATCH` or `PUT`): what the body asks to change, checked
//! against the element and merged with what is stored. No I/O.
//!
//! `PATCH` ([`Mode::Merge`]): `name` and `tags` are replaced when given
//! (`tags: []` clears them); `configuration` entries are merged: a given
//! entry replaces the stored one, `null` removes an optional one.
//!
//! `PUT` ([`Mode::Replace`]): a create's body, typically what a read
//! answered, edited. `name` and `tags` are set when given; `configuration`,
//! when given, replaces the whole configuration; what the body leaves out is
//! kept; an `element`, if given, must be the instance's own.
//!
//! Both: a secret entry given as `"********"` (what a client read back)
//! means unchanged; an entry may be given by its key or an alias (the name
//! given is the one kept); the result is checked as a create's is (types,
//! required entries, unknown keys). Fields that cannot change (`id`,
//! `token`, dates, ...) are ignored.

use serde_json::{Map, Value};

use super::catalog::Element;
use super::configuration::{name_of, ConfigText, Configuration, ConfigurationError, InvalidEntry};
use super::instance::InstanceSummary;
use super::origin::stranded;
use super::representation::MASK;
use super::request::{FieldErrors, InstanceName, RequestError, Tags, CONFIGURATION, NAME, TAGS};
use super::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `PATCH`: given entries merged into the stored configuration.
    Merge,
    /// `PUT`: a given configuration replaces the stored one.
    Replace,
}

/// The configuration after the update.
#[derive(Debug)]
pub struct MergedConfiguration {
    /// Non-secret values, in their normal form.
    pub plain: Vec<(String, String)>,
    /// Secret entries left as they are stored.
    pub kept_secrets: Vec<String>,
    /// Secret entries given a new value.
    pub new_secrets: Vec<(String, Secret)>,
    /// `(key, name)` for the entries given by an alias.
    pub names: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct Patch {
    pub name: Option<InstanceName>,
    pub tags: Option<Tags>,
    pub configuration: Option<MergedConfiguration>,
}

impl Patch {
    /// `current` is the instance as stored (its plain values, the names of
    /// its secret entries that are set, the names its entries were given by).
    pub fn parse(body: &Value, element: &Element, current: &InstanceSummary, mode: Mode) -> Result<Self, RequestError> {
        let Value::Object(body) = body else {
            return Err(RequestError::Invalid("the body must be a JSON object".into()));
        };
        if mode == Mode::Replace {
            same_element(body.get("element"), element)?;
        }
        let mut errors = FieldErrors::default();
        let configuration = match body.get("configuration") {
            None => None,
            Some(Value::Null) if mode == Mode::Replace => None,
            Some(Value::Object(given)) => match merge(element, given, current, mode) {
                Ok(merged) => Some(merged),
                Err(ConfigurationError::Entries { missing, unknown, invalid }) => {
                    errors = FieldErrors { missing, unknown, invalid };
                    None
                }
                Err(ConfigurationError::NotAnObject) => None,
            },
            Some(_) => {
                let problem = "must be an object of entry names to values".to_owned();
                errors.invalid.push(InvalidEntry { key: CONFIGURATION.into(), problem });
                None
            }
        };
        let (name, tags) = names_and_tags(body, &mut errors);
        if !errors.missing.is_empty() || !errors.unknown.is_empty() || !errors.invalid.is_empty() {
            return Err(RequestError::Fields(errors));
        }
        Ok(Patch { name, tags, configuration })
    }

    /// The change, when it needs nothing of what is stored: a body that sets
    /// only `name` and/or `tags` (no `configuration`, and for a `PUT` no
    /// `element`), which one conditional write can apply without reading
    /// the instance first. `None` otherwise.
    pub fn names_only(body: &Value, mode: Mode) -> Result<Option<Self>, RequestError> {
        let Value::Object(body) = body else {
            return Err(RequestError::Invalid("the body must be a JSON object".into()));
        };
        let given = |field: &str| match mode {
            Mode::Merge => body.contains_key(field),
            Mode::Replace => body.get(field).is_some_and(|v| !v.is_null()),
        };
        if given("configuration") || (mode == Mode::Replace && given("element")) {
            return Ok(None);
        }
        let mut errors = FieldErrors::default();
        let (name, tags) = names_and_tags(body, &mut errors);
        if !errors.invalid.is_empty() {
            return Err(RequestError::Fields(errors));
        }
        Ok(Some(Patch { name, tags, configuration: None }))
    }
}

/// `name` and `tags`, each when given (`tags: null` clears, as `[]` does);
/// a value in error is named in `errors`.
fn names_and_tags(body: &Map<String, Value>, errors: &mut FieldErrors) -> (Option<InstanceName>, Option<Tags>) {
    let mut field = |key: &str, problem: String| errors.invalid.push(InvalidEntry { key: key.into(), problem });
    let name = match body.get("name") {
        None => None,
        given => InstanceName::parse(given).map_err(|p| field(NAME, p)).ok(),
    };
    let tags = match body.get("tags") {
        None => None,
        Some(Value::Null) => Some(Tags::default()),
        given => Tags::parse(given).map_err(|p| field(TAGS, p)).ok(),
    };
    (name, tags)
}

/// A `PUT`'s `element`, if given (what a read answered, or `{"key": ...}` /
/// `{"id": ...}`), must name the instance's own: an instance never changes
/// element.
fn same_element(given: Option<&Value>, element: &Element) -> Result<(), RequestError> {
    let Some(given) = given.filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let Value::Object(given) = given else {
        return Err(RequestError::Invalid("element must be an object naming the instance's element".into()));
    };
    let key_differs = given.get("key").is_some_and(|k| !k.is_null() && k.as_str() != Some(&element.info.key));
    let id_differs = given.get("id").is_some_and(|i| !i.is_null() && i.as_u64() != Some(element.info.id));
    if key_differs || id_differs {
        return Err(RequestError::Invalid(format!(
            "the element of an instance cannot change: this one is {:?} (id {})",
            element.info.key, element.info.id
        )));
    }
    Ok(())
}

fn merge(
    element: &Element,
    given: &Map<String, Value>,
    current: &InstanceSummary,
    mode: Mode,
) -> Result<MergedConfiguration, ConfigurationError> {
    let name_of = |key: &str| name_of(&current.names, key).to_owned();
    let stored_secret = |key: &str| current.secret_keys.iter().any(|k| k == key);
    // The stored configuration under its names; a stored secret stands in as
    // the mask: it passes the checks of a string entry and is never taken
    // for its value.
    let mut merged: Map<String, Value> = Map::new();
    let mut kept: Vec<String> = Vec::new();
    if mode == Mode::Merge {
        for (key, value) in &current.configuration {
            merged.insert(name_of(key), Value::from(value.as_str()));
        }
        for key in &current.secret_keys {
            merged.insert(name_of(key), Value::from(MASK));
            kept.push(key.clone());
        }
        // An entry the body gives replaces the stored one under any name.
        for entry in given.keys().filter_map(|name| element.entry_named(name)) {
            merged.remove(&name_of(&entry.key));
        }
    }
    for (name, value) in given {
        let entry = element.entry_named(name);
        let key = entry.map_or(name.as_str(), |e| e.key.as_str());
        match value {
            Value::String(s) if entry.is_some_and(|e| e.secret) && s == MASK => {
                // Unchanged (and an unset secret stays unset).
                if stored_secret(key) {
                    merged.insert(name.clone(), value.clone());
                    if !kept.iter().any(|k| k == key) {
                        kept.push(key.to_owned());
                    }
                }
            }
            Value::Null => kept.retain(|k| k != key),
            other => {
                merged.insert(name.clone(), other.clone());
                kept.retain(|k| k != key);
            }
        }
    }
    let configuration = Configuration::parse(element, Some(&Value::Object(merged)))?;
    let mut plain = Vec::new();
    let mut new_secrets = Vec::new();
    for value in configuration.values() {
        match &value.value {
            ConfigText::Plain(text) => plain.push((value.key.clone(), text.clone())),
            ConfigText::Secret(_) if kept.contains(&value.key) => {}
            ConfigText::Secret(secret) => new_secrets.push((value.key.clone(), secret.clone())),
        }
    }
    kept.retain(|k| configuration.get(k).is_some());
    plain.sort();
    let names = configuration.names();
    let invalid: Vec<InvalidEntry> = stranded(element, &current.configuration, &plain, &kept)
        .into_iter()
        .map(|s| InvalidEntry {
            key: super::configuration::name_of(names, &s.secret).to_owned(),
            problem: format!(
                "must be given again when {} moves to another site (scheme, host or port): the stored one is \
                 sent only to {}, where it was given for",
                super::configuration::name_of(names, &s.url),
                s.given_for
            ),
        })
        .collect();
    if !invalid.is_empty() {
        return Err(ConfigurationError::Entries { missing: vec![], unknown: vec![], invalid });
    }
    Ok(MergedConfiguration { plain, kept_secrets: kept, new_secrets, names: names.to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::Catalog;
    use serde_json::json;

    fn jira() -> Element {
        Catalog::builtin().unwrap().by_key("jira").unwrap().clone()
    }

    fn stored() -> InstanceSummary {
        let mut summary = InstanceSummary::example(crate::domain::token::InstanceId::new(7).unwrap(), "o", "u");
        summary.name = "n".into();
        summary.tags = vec![];
        summary.configuration[2].1 = "https://x.atlassian.net".into();
        summary.configuration[3].1 = "u".into();
        summary
    }

    fn patch(body: Value) -> Result<Patch, RequestError> {
        Patch::parse(&body, &jira(), &stored(), Mode::Merge)
    }

    fn put(body: Value) -> Result<Patch, RequestError> {
        Patch::parse(&body, &jira(), &stored(), Mode::Replace)
    }

    #[test]
    fn a_put_replaces_the_configuration_it_is_given_and_keeps_what_it_leaves_out() {
        // What a read answered, sent back: nothing changes, the secret is kept.
        let p = put(json!({"element": {"key": "jira", "id": 1, "name": "JIRA"}, "name": "n", "tags": [],
            "configuration": {"jira.username": "u", "jira.password": "********", "jira.api.url": "https://x.atlassian.net",
                              "filter.response.nulls": "true", "event.vendor.type": null}}))
        .unwrap();
        let c = p.configuration.unwrap();
        assert_eq!(c.kept_secrets, ["jira.password"]);
        assert!(c.new_secrets.is_empty());
        assert_eq!(c.plain, stored().configuration);

        // An entry left out of a given configuration is gone (a required one is missing).
        let c = put(json!({"configuration": {"jira.username": "v", "jira.password": "********",
                                             "jira.api.url": "x.atlassian.net", "filter.response.nulls": false}}))
        .unwrap()
        .configuration
        .unwrap();
        assert!(c.plain.contains(&("filter.response.nulls".into(), "false".into())));
        let Err(RequestError::Fields(f)) = put(json!({"configuration": {"jira.username": "v"}})) else { panic!() };
        assert_eq!(f.missing, ["jira.password", "jira.api.url"]);

        // Left out: kept.
        let p = put(json!({"name": "m"})).unwrap();
        assert!(p.configuration.is_none() && p.tags.is_none());
        assert!(put(json!({"configuration": null})).unwrap().configuration.is_none());

        // The element cannot change.
        for other in [json!({"key": "zendesk"}), json!({"id": 2}), json!({"key": "jira", "id": 9}), json!("jira")] {
            assert!(matches!(put(json!({"element": other})), Err(RequestError::Invalid(_))), "{other}");
        }
    }

    #[test]
    fn aliases_are_kept_as_given_and_one_entry_has_one_name() {
        let c = patch(json!({"configuration": {"username": "w", "base.url": "x.atlassian.net/jira"}}))
            .unwrap()
            .configuration
            .unwrap();
        assert!(c.plain.contains(&("jira.username".into(), "w".into())), "held under the key");
        assert!(c.plain.contains(&("jira.api.url".into(), "https://x.atlassian.net/jira".into())));
        assert_eq!(c.names.len(), 2);
        assert_eq!(c.kept_secrets, ["jira.password"]);
        let Err(RequestError::Fields(f)) = patch(json!({"configuration": {"username": "a", "jira.username": "b"}}))
        else {
            panic!()
        };
        assert_eq!(f.invalid[0].key, "jira.username");
        // A stored alias is kept until the entry is given under another name.
        let mut aliased = stored();
        aliased.names = vec![("jira.username".into(), "username".into())];
        let c =
            Patch::parse(&json!({"configuration": {"event.vendor.type": "polling"}}), &jira(), &aliased, Mode::Merge)
                .unwrap()
                .configuration
                .unwrap();
        assert_eq!(c.names, [("jira.username".to_owned(), "username".to_owned())]);
        let c = Patch::parse(&json!({"configuration": {"jira.username": "x"}}), &jira(), &aliased, Mode::Merge)
            .unwrap()
            .configuration
            .unwrap();
        assert!(c.names.is_empty());
        assert!(c.plain.contains(&("jira.username".into(), "x".into())));
    }

    #[test]
    fn entries_merge_the_mask_keeps_a_secret_and_null_removes() {
        let p = patch(json!({"configuration": {"jira.username": " v ", "jira.password": "********",
                                               "event.vendor.type": "polling"}}))
        .unwrap();
        let c = p.configuration.unwrap();
        assert!(c.plain.contains(&("jira.username".into(), "v".into())));
        assert!(c.plain.contains(&("event.vendor.type".into(), "polling".into())));
        assert!(c.plain.contains(&("jira.api.url".into(), "https://x.atlassian.net".into())), "kept");
        assert_eq!(c.kept_secrets, ["jira.password"]);
        assert!(c.new_secrets.is_empty(), "the mask is never a value");
        assert!(p.name.is_none() && p.tags.is_none());

        let c = patch(json!({"configuration": {"jira.password": "new"}})).unwrap().configuration.unwrap();
        assert!(c.kept_secrets.is_empty());
        assert_eq!(c.new_secrets[0].0, "jira.password");
        assert_eq!(c.new_secrets[0].1.expose(), "new");

        let c = patch(json!({"configuration": {"event.notification.signature.key": "********"}})).unwrap();
        let c = c.configuration.unwrap();
        assert!(
            c.new_secrets.is_empty() && !c.kept_secrets.iter().any(|k| k == "event.notification.signature.key"),
            "an unset secret given as the mask stays unset"
        );
    }

    #[test]
    fn a_stored_password_does_not_follow_the_url_to_another_site() {
        for mode in [Mode::Merge, Mode::Replace] {
            let moved = json!({"configuration": {"jira.username": "u", "jira.password": "********",
                                                  "jira.api.url": "https://evil.example"}});
            let Err(RequestError::Fields(f)) = Patch::parse(&moved, &jira(), &stored(), mode) else {
                panic!("{mode:?}")
            };
            assert_eq!(f.invalid.len(), 1);
            assert_eq!(f.invalid[0].key, "jira.password");
            assert!(f.invalid[0].problem.contains("https://x.atlassian.net:443"), "{}", f.invalid[0].problem);
        }
        let Err(RequestError::Fields(f)) = patch(json!({"configuration": {"jira.api.url": "x.atlassian.net:8443"}}))
        else {
            panic!()
        };
        assert_eq!(f.invalid[0].key, "jira.password");
        // Named as its client names it.
        let mut aliased = stored();
        aliased.names = vec![("jira.password".into(), "password".into())];
        let given = json!({"configuration": {"base.url": "https://evil.example"}});
        let Err(RequestError::Fields(f)) = Patch::parse(&given, &jira(), &aliased, Mode::Merge) else { panic!() };
        assert_eq!(f.invalid[0].key, "password");
        assert!(f.invalid[0].problem.contains("base.url"), "{}", f.invalid[0].problem);
        // With the password, or on the same site: fine.
        let c = patch(json!({"configuration": {"jira.api.url": "https://evil.example", "jira.password": "p"}}))
            .unwrap()
            .configuration
            .unwrap();
        assert_eq!(c.new_secrets[0].0, "jira.password");
        let c = patch(json!({"configuration": {"jira.api.url": "https://X.atlassian.net/jira"}})).unwrap();
        assert_eq!(c.configuration.unwrap().kept_secrets, ["jira.password"]);
    }

    #[test]
    fn what_a_create_refuses_a_patch_refuses_all_at_once() {
        let Err(RequestError::Fields(f)) = patch(json!({
            "configuration": {"jira.username": null, "jira.pasword": "x", "jira.api.url": "http://x"},
            "name": " ",
            "tags": ["a", "a"]
        })) else {
            panic!()
        };
        assert_eq!(f.missing, ["jira.username"]);
        assert_eq!(f.unknown[0].key, "jira.pasword");
        let invalid: Vec<&str> = f.invalid.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(invalid, ["jira.api.url", "name", "tags"]);
        assert!(matches!(patch(json!([1])), Err(RequestError::Invalid(_))));
    }

    #[test]
    fn a_change_of_names_only_needs_nothing_stored() {
        let p = Patch::names_only(&json!({"name": " N ", "tags": ["a"], "id": 3}), Mode::Merge).unwrap().unwrap();
        assert_eq!((p.name.unwrap().as_str(), p.tags.unwrap().as_slice()), ("N", &["a".to_owned()][..]));
        assert!(Patch::names_only(&json!({"configuration": null}), Mode::Merge).unwrap().is_none(), "null removes");
        assert!(Patch::names_only(&json!({"configuration": null, "element": null}), Mode::Replace).unwrap().is_some());
        assert!(Patch::names_only(&json!({"element": {"key": "jira"}}), Mode::Replace).unwrap().is_none());
        assert!(Patch::names_only(&json!({"element": {"key": "x"}}), Mode::Merge).unwrap().is_some(), "ignored");
        assert!(matches!(Patch::names_only(&json!({"name": ""}), Mode::Merge), Err(RequestError::Fields(_))));
        assert!(matches!(Patch::names_only(&json!([]), Mode::Merge), Err(RequestError::Invalid(_))));
    }

    #[test]
    fn name_and_tags_replace_and_read_only_fields_are_ignored() {
        let p =
            patch(json!({"name": " New ", "tags": [], "id": 5, "token": "x", "element": {"key": "other"}})).unwrap();
        assert_eq!(p.name.unwrap().as_str(), "New");
        assert!(p.tags.unwrap().as_slice().is_empty());
        assert!(p.configuration.is_none());
    }
}
