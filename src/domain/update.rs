//! A partial update (`PATCH`): what the body asks to change, checked against
//! the element and merged with what is stored. No I/O.
//!
//! `name` and `tags` are replaced when given (`tags: []` clears them).
//! `configuration` entries are merged: a given entry replaces the stored one,
//! `null` removes an optional one, and a secret entry given as `"********"`
//! (what a client read back) means unchanged. The merged configuration is
//! checked as a create's is (types, required entries, unknown keys). Fields
//! that cannot change (`id`, `element`, `token`, dates, ...) are ignored.

use serde_json::{Map, Value};

use super::catalog::Element;
use super::configuration::{ConfigText, Configuration, ConfigurationError, InvalidEntry};
use super::representation::MASK;
use super::request::{FieldErrors, InstanceName, RequestError, Tags, CONFIGURATION, NAME, TAGS};
use super::secret::Secret;

/// The configuration after the merge.
#[derive(Debug)]
pub struct MergedConfiguration {
    /// Non-secret values, in their normal form.
    pub plain: Vec<(String, String)>,
    /// Secret entries left as they are stored.
    pub kept_secrets: Vec<String>,
    /// Secret entries given a new value.
    pub new_secrets: Vec<(String, Secret)>,
}

#[derive(Debug)]
pub struct Patch {
    pub name: Option<InstanceName>,
    pub tags: Option<Tags>,
    pub configuration: Option<MergedConfiguration>,
}

impl Patch {
    /// `stored_plain` and `stored_secrets` are the instance's current
    /// non-secret values and the names of its secret entries that are set.
    pub fn parse(
        body: &Value,
        element: &Element,
        stored_plain: &[(String, String)],
        stored_secrets: &[String],
    ) -> Result<Self, RequestError> {
        let Value::Object(body) = body else {
            return Err(RequestError::Invalid("the body must be a JSON object".into()));
        };
        let mut errors = FieldErrors::default();
        let configuration = match body.get("configuration") {
            None => None,
            Some(Value::Object(given)) => match merge(element, given, stored_plain, stored_secrets) {
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
        if !errors.missing.is_empty() || !errors.unknown.is_empty() || !errors.invalid.is_empty() {
            return Err(RequestError::Fields(errors));
        }
        Ok(Patch { name, tags, configuration })
    }
}

fn merge(
    element: &Element,
    given: &Map<String, Value>,
    stored_plain: &[(String, String)],
    stored_secrets: &[String],
) -> Result<MergedConfiguration, ConfigurationError> {
    let mut merged: Map<String, Value> =
        stored_plain.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
    // A stored secret stands in as the mask: it passes the checks of a string
    // entry and is never taken for its value.
    let mut kept: Vec<String> = stored_secrets.to_vec();
    for key in stored_secrets {
        merged.insert(key.clone(), Value::from(MASK));
    }
    for (key, value) in given {
        let secret = element.entry(key).is_some_and(|e| e.secret);
        match value {
            Value::String(s) if secret && s == MASK => {} // unchanged (and unset stays unset)
            Value::Null => {
                merged.remove(key);
                kept.retain(|k| k != key);
            }
            other => {
                merged.insert(key.clone(), other.clone());
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
    Ok(MergedConfiguration { plain, kept_secrets: kept, new_secrets })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::Catalog;
    use serde_json::json;

    fn jira() -> Element {
        Catalog::builtin().unwrap().by_key("jira").unwrap().clone()
    }

    fn stored() -> Vec<(String, String)> {
        vec![
            ("filter.response.nulls".into(), "true".into()),
            ("jira.api.url".into(), "https://x.atlassian.net".into()),
            ("jira.username".into(), "u".into()),
        ]
    }

    fn patch(body: Value) -> Result<Patch, RequestError> {
        Patch::parse(&body, &jira(), &stored(), &["jira.password".to_owned()])
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
    fn name_and_tags_replace_and_read_only_fields_are_ignored() {
        let p =
            patch(json!({"name": " New ", "tags": [], "id": 5, "token": "x", "element": {"key": "other"}})).unwrap();
        assert_eq!(p.name.unwrap().as_str(), "New");
        assert!(p.tags.unwrap().as_slice().is_empty());
        assert!(p.configuration.is_none());
    }
}
