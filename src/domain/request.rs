//! The Create Instance body, parsed into types that cannot hold an invalid
//! value. Unknown top-level fields are ignored.

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::catalog::{Catalog, Element};
use super::configuration::{Configuration, ConfigurationError, InvalidEntry, UnknownEntry};
use super::suggest::closest;
use super::text::plain_text;

pub const MAX_NAME_CHARS: usize = 255;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_CHARS: usize = 100;
/// How much longer than its limit a name or tag may be given (in bytes),
/// markup included, before it is refused without being parsed.
const MAX_RAW_FACTOR: usize = 16;

/// A non-blank instance name of at most 255 characters: plain text (HTML
/// markup removed, see [`plain_text`]), trimmed.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceName(String);

impl InstanceName {
    pub fn parse(v: Option<&Value>) -> Result<Self, String> {
        let text = match v {
            None | Some(Value::Null) => return Err("is required".into()),
            // Markup may make a name longer than its text, not 16 times longer:
            // what is far past the limit is refused before it is parsed.
            Some(Value::String(s)) if s.len() > MAX_RAW_FACTOR * MAX_NAME_CHARS => {
                return Err(format!("must be at most {MAX_NAME_CHARS} characters"))
            }
            Some(Value::String(s)) => plain_text(s).map_err(|e| e.to_string())?,
            Some(_) => return Err("must be a string".into()),
        };
        let s = text.trim();
        if s.is_empty() {
            return Err("must not be blank".into());
        }
        if s.chars().count() > MAX_NAME_CHARS {
            return Err(format!("must be at most {MAX_NAME_CHARS} characters"));
        }
        Ok(InstanceName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// At most 50 distinct, non-blank, trimmed tags of at most 100 characters,
/// each plain text (HTML markup removed, see [`plain_text`]).
/// A set: the order given is kept and answered, but is not part of the
/// request's meaning (see [`CreateInstance::fingerprint`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tags(Vec<String>);

impl Tags {
    pub fn parse(v: Option<&Value>) -> Result<Self, String> {
        let items = match v {
            None | Some(Value::Null) => return Ok(Tags::default()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err("must be an array of strings".into()),
        };
        if items.len() > MAX_TAGS {
            return Err(format!("must be at most {MAX_TAGS}, {} were given", items.len()));
        }
        // Every problem of every tag, in one message.
        let mut tags: Vec<String> = Vec::with_capacity(items.len());
        let mut problems: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Value::String(s) = item else {
                return Err("must be an array of strings".into());
            };
            if s.len() > MAX_RAW_FACTOR * MAX_TAG_CHARS {
                problems.push(format!("tag {} is longer than {MAX_TAG_CHARS} characters", i + 1));
                continue;
            }
            let text = match plain_text(s) {
                Ok(text) => text,
                Err(e) => {
                    problems.push(format!("tag {} must be plain text: one {e}", i + 1));
                    continue;
                }
            };
            let t = text.trim();
            if t.is_empty() {
                problems.push(format!("tag {} is blank", i + 1));
            } else if t.chars().count() > MAX_TAG_CHARS {
                problems.push(format!("tag {} is longer than {MAX_TAG_CHARS} characters", i + 1));
            } else if tags.iter().any(|seen| seen == t) {
                problems.push(format!("{t:?} is given twice"));
            } else {
                tags.push(t.to_owned());
            }
        }
        if !problems.is_empty() {
            return Err(format!(
                "must be distinct, non-blank and at most {MAX_TAG_CHARS} characters each: {}",
                problems.join("; ")
            ));
        }
        Ok(Tags(tags))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// A create's tags when it gives none: its name (its first 100
    /// characters, trimmed), as the platform tags instances.
    pub fn or_name(self, name: &InstanceName) -> Self {
        if !self.0.is_empty() {
            return self;
        }
        let tag: String = name.as_str().chars().take(MAX_TAG_CHARS).collect();
        Tags(vec![tag.trim_end().to_owned()])
    }
}

/// A request to create an instance of a catalog element.
#[derive(Debug, Clone)]
pub struct CreateInstance<'c> {
    pub element: &'c Element,
    pub name: InstanceName,
    pub tags: Tags,
    pub configuration: Configuration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RequestError {
    /// The body is JSON but not an object, or `element` has the wrong shape.
    Invalid(String),
    UnknownElement {
        given: String,
        known: Vec<String>,
        suggestion: Option<String>,
    },
    /// Every field in error, all named in one answer.
    Fields(FieldErrors),
}

/// What is wrong with the fields after the element: configuration entries
/// missing, unknown or of the wrong type, and the name and tags.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldErrors {
    /// Required configuration entries missing or blank, in catalog order.
    pub missing: Vec<String>,
    /// Configuration entries the element does not know.
    pub unknown: Vec<UnknownEntry>,
    /// Values that are not of their type: configuration entries by key (in
    /// catalog order), then `configuration` itself, `name`, `tags`.
    pub invalid: Vec<InvalidEntry>,
}

impl FieldErrors {
    fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unknown.is_empty() && self.invalid.is_empty()
    }
}

/// The names `FieldErrors::invalid` uses for the top-level fields.
pub const CONFIGURATION: &str = "configuration";
pub const NAME: &str = "name";
pub const TAGS: &str = "tags";

impl<'c> CreateInstance<'c> {
    /// The element first (the other fields are read against it); then the
    /// configuration, the name and the tags, every field in error named in
    /// one [`RequestError::Fields`].
    pub fn parse(body: &Value, catalog: &'c Catalog) -> Result<Self, RequestError> {
        let Value::Object(body) = body else {
            return Err(RequestError::Invalid("the body must be a JSON object".into()));
        };
        let element = element(body.get("element"), catalog)?;
        let mut errors = FieldErrors::default();
        let configuration = match Configuration::parse(element, body.get("configuration")) {
            Ok(configuration) => Some(configuration),
            Err(ConfigurationError::NotAnObject) => {
                let problem = "must be an object of entry names to values".to_owned();
                errors.invalid.push(InvalidEntry { key: CONFIGURATION.into(), problem });
                None
            }
            Err(ConfigurationError::Entries { missing, unknown, invalid }) => {
                errors = FieldErrors { missing, unknown, invalid };
                None
            }
        };
        let mut field = |key: &str, problem: String| errors.invalid.push(InvalidEntry { key: key.into(), problem });
        let name = InstanceName::parse(body.get("name")).map_err(|p| field(NAME, p)).ok();
        let tags = Tags::parse(body.get("tags")).map_err(|p| field(TAGS, p)).ok();
        match (configuration, name, tags) {
            (Some(configuration), Some(name), Some(tags)) if errors.is_empty() => {
                let tags = tags.or_name(&name);
                Ok(CreateInstance { element, name, tags, configuration })
            }
            _ => Err(RequestError::Fields(errors)),
        }
    }

    /// SHA-256 of the request's meaning (not its bytes): what an
    /// `Idempotency-Key` replay is compared against. It is taken over the
    /// normal forms the parse produced (trimmed name, canonical values, the
    /// tags as a sorted set), so two bodies that store the same instance have
    /// the same fingerprint. It covers secret values, so it is kept only
    /// inside sealed data.
    pub fn fingerprint(&self) -> [u8; 32] {
        let config: Vec<(&str, &str)> =
            self.configuration.values().iter().map(|v| (v.key.as_str(), v.value.expose())).collect();
        let mut tags: Vec<&str> = self.tags.as_slice().iter().map(String::as_str).collect();
        tags.sort_unstable();
        let canonical = serde_json::json!([self.element.info.id, self.name.as_str(), tags, config]);
        let mut bytes = zeroize::Zeroizing::new(canonical.to_string().into_bytes());
        let digest = Sha256::digest(bytes.as_slice()).into();
        zeroize::Zeroize::zeroize(&mut *bytes);
        digest
    }
}

fn element<'c>(v: Option<&Value>, catalog: &'c Catalog) -> Result<&'c Element, RequestError> {
    const SHAPE: &str = "element must be an object naming a catalog element, e.g. {\"key\": \"jira\"}";
    let obj = match v {
        Some(Value::Object(obj)) => obj,
        None | Some(Value::Null) => return Err(RequestError::Invalid(format!("element is required; {SHAPE}"))),
        Some(_) => return Err(RequestError::Invalid(SHAPE.into())),
    };
    let unknown = |given: String| {
        let known = catalog.keys();
        RequestError::UnknownElement {
            suggestion: closest(&given, known.iter().copied()),
            known: known.into_iter().map(str::to_owned).collect(),
            given,
        }
    };
    let by_key = match obj.get("key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(catalog.by_key(k.trim()).ok_or_else(|| unknown(k.clone()))?),
        Some(_) => return Err(RequestError::Invalid("element.key must be a string".into())),
    };
    let by_id = match obj.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(id) => Some(catalog.by_id(id).ok_or_else(|| unknown(n.to_string()))?),
            None => return Err(RequestError::Invalid("element.id must be a positive integer".into())),
        },
        Some(_) => return Err(RequestError::Invalid("element.id must be a positive integer".into())),
    };
    match (by_key, by_id) {
        (Some(a), Some(b)) if a.info.id != b.info.id => Err(RequestError::Invalid(format!(
            "element.key {:?} and element.id {} name different elements",
            a.info.key, b.info.id
        ))),
        (Some(e), _) | (None, Some(e)) => Ok(e),
        (None, None) => Err(RequestError::Invalid(SHAPE.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn catalog() -> Catalog {
        Catalog::builtin().unwrap()
    }

    fn seed() -> Value {
        json!({
            "element": {"key": "jira"},
            "configuration": {"jira.username": "u", "jira.password": "p", "jira.api.url": "https://x.atlassian.net"},
            "tags": ["support"],
            "name": "Test",
            "ignored": {"anything": 1}
        })
    }

    #[test]
    fn the_documented_request_parses() {
        let c = catalog();
        let r = CreateInstance::parse(&seed(), &c).unwrap();
        assert_eq!(r.element.info.key, "jira");
        assert_eq!(r.name.as_str(), "Test");
        assert_eq!(r.tags.as_slice(), ["support"]);
    }

    #[test]
    fn element_by_id_and_unknown_elements() {
        let c = catalog();
        let mut v = seed();
        v["element"] = json!({"id": 1});
        assert_eq!(CreateInstance::parse(&v, &c).unwrap().element.info.key, "jira");
        v["element"] = json!({"key": "jirra"});
        match CreateInstance::parse(&v, &c).unwrap_err() {
            RequestError::UnknownElement { given, known, suggestion } => {
                assert_eq!(given, "jirra");
                assert_eq!(known, ["jira"]);
                assert_eq!(suggestion.as_deref(), Some("jira"));
            }
            e => panic!("{e:?}"),
        }
        v["element"] = json!({"key": "jira", "id": 99});
        assert!(matches!(CreateInstance::parse(&v, &c), Err(RequestError::UnknownElement { .. })));
        for bad in [json!(null), json!("jira"), json!({}), json!({"id": -1}), json!({"key": 5})] {
            v["element"] = bad;
            assert!(matches!(CreateInstance::parse(&v, &c), Err(RequestError::Invalid(_))));
        }
    }

    #[test]
    fn names() {
        assert_eq!(InstanceName::parse(Some(&json!("  x  "))).unwrap().as_str(), "x");
        assert!(InstanceName::parse(Some(&json!("é".repeat(255)))).is_ok());
        for bad in [json!(null), json!(""), json!("   "), json!(3), json!("a".repeat(256))] {
            assert!(InstanceName::parse(Some(&bad)).is_err(), "{bad}");
        }
        assert!(InstanceName::parse(None).is_err());
    }

    #[test]
    fn every_problem_of_the_tags_is_named_at_once() {
        let e = Tags::parse(Some(&json!(["a", "a", " ", "x".repeat(101)]))).unwrap_err();
        assert!(e.contains("\"a\" is given twice"), "{e}");
        assert!(e.contains("tag 3 is blank"), "{e}");
        assert!(e.contains("tag 4 is longer than 100"), "{e}");
        // Far past the limit: refused before any parse.
        let huge = "<b>".repeat(5000);
        assert!(Tags::parse(Some(&json!([huge]))).unwrap_err().contains("longer than 100"));
        assert!(InstanceName::parse(Some(&json!("<i>".repeat(2000)))).unwrap_err().contains("at most 255"));
        // Markup around a name within the bound is still read as text.
        assert_eq!(
            InstanceName::parse(Some(&json!(format!("<b>{}</b>", "n".repeat(255))))).unwrap().as_str().len(),
            255
        );
    }

    #[test]
    fn names_and_tags_are_plain_text_and_tags_default_to_the_name() {
        let c = catalog();
        let mut v = seed();
        v["name"] = json!(r##" <a href="#" onclick="alert(1)">churros-xss</a> "##);
        v["tags"] = json!(["<b>ops</b>", "eu"]);
        let r = CreateInstance::parse(&v, &c).unwrap();
        assert_eq!(r.name.as_str(), "churros-xss");
        assert_eq!(r.tags.as_slice(), ["ops", "eu"]);
        for none in [json!(null), json!([])] {
            v["tags"] = none;
            assert_eq!(CreateInstance::parse(&v, &c).unwrap().tags.as_slice(), ["churros-xss"]);
        }
        v.as_object_mut().unwrap().remove("tags");
        v["name"] = json!(format!("{} {}", "n".repeat(99), "tail"));
        assert_eq!(CreateInstance::parse(&v, &c).unwrap().tags.as_slice(), ["n".repeat(99)], "at most 100 characters");
        v["name"] = json!("<img src=x onerror=alert(1)>");
        let Err(RequestError::Fields(f)) = CreateInstance::parse(&v, &c) else { panic!() };
        assert_eq!(f.invalid[0].key, NAME, "a name of markup only is blank");
        v["name"] = json!("x");
        v["tags"] = json!(["<i>a</i>", "a"]);
        assert!(CreateInstance::parse(&v, &c).is_err(), "tags that are the same text are not distinct");
    }

    #[test]
    fn tags() {
        assert_eq!(Tags::parse(None).unwrap(), Tags::default());
        assert_eq!(Tags::parse(Some(&json!([" a ", "b"]))).unwrap().as_slice(), ["a", "b"]);
        let fifty: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
        assert!(Tags::parse(Some(&json!(fifty))).is_ok());
        let fifty_one: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
        for bad in [json!(fifty_one), json!(["a", "a"]), json!([""]), json!([1]), json!("a"), json!(["x".repeat(101)])]
        {
            assert!(Tags::parse(Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_fingerprint_follows_meaning_not_bytes() {
        let c = catalog();
        let a = CreateInstance::parse(&seed(), &c).unwrap().fingerprint();
        let mut v = seed();
        v["name"] = json!("  Test ");
        v["element"] = json!({"id": 1});
        v["ignored"] = json!(2);
        assert_eq!(CreateInstance::parse(&v, &c).unwrap().fingerprint(), a);
        v["tags"] = json!([" support "]);
        v["configuration"]["jira.username"] = json!(" u ");
        v["configuration"]["jira.api.url"] = json!("HTTPS://X.atlassian.net/");
        assert_eq!(CreateInstance::parse(&v, &c).unwrap().fingerprint(), a);
        v["configuration"]["jira.password"] = json!("other");
        assert_ne!(CreateInstance::parse(&v, &c).unwrap().fingerprint(), a);
    }

    #[test]
    fn the_fingerprint_ignores_the_order_of_tags_and_the_spelling_of_values() {
        let c = catalog();
        let mut v = seed();
        v["tags"] = json!(["a", "b", "c"]);
        v["configuration"]["event.poller.refresh_interval"] = json!("+5");
        let a = CreateInstance::parse(&v, &c).unwrap().fingerprint();
        v["tags"] = json!(["c", "a", "b"]);
        v["configuration"]["event.poller.refresh_interval"] = json!(5.0);
        assert_eq!(CreateInstance::parse(&v, &c).unwrap().fingerprint(), a);
        v["tags"] = json!(["c", "a"]);
        assert_ne!(CreateInstance::parse(&v, &c).unwrap().fingerprint(), a, "another set of tags is another request");
    }

    fn arbitrary_body() -> impl Strategy<Value = Value> {
        let element = prop_oneof![
            6 => Just(json!({"key": "jira"})),
            1 => Just(json!({"id": 1})),
            1 => Just(json!({"key": "jirra"})),
            1 => Just(json!("jira")),
        ];
        let name = prop_oneof![
            6 => "[ ]{0,2}[A-Za-z0-9]{1,20}[ ]{0,2}".prop_map(|s| json!(s)),
            1 => Just(json!("   ")),
            1 => Just(json!("a".repeat(256))),
            1 => Just(json!(5)),
        ];
        let tag = prop_oneof![8 => "[ ]?[a-d]{1,2}[ ]?", 1 => Just(" ".to_owned()), 1 => Just("x".repeat(101))];
        let tags = prop_oneof![
            6 => proptest::collection::vec(tag, 0..6).prop_map(|t| json!(t)),
            1 => Just(json!("support")),
            1 => Just(json!([1])),
        ];
        let password = prop_oneof![6 => Just(json!("pw")), 1 => Just(json!(null)), 1 => Just(json!(3))];
        (
            proptest::option::weighted(0.95, element),
            proptest::option::weighted(0.9, name),
            proptest::option::of(tags),
            password,
        )
            .prop_map(|(element, name, tags, password)| {
                let mut body = json!({
                    "configuration": {"jira.username": " u ", "jira.password": password, "jira.api.url": "x.atlassian.net"}
                });
                for (field, value) in [("element", element), ("name", name), ("tags", tags)] {
                    if let Some(v) = value {
                        body[field] = v;
                    }
                }
                body
            })
    }

    proptest! {
        /// Bodies built from the fields a client sends, each field absent,
        /// well formed or not: every outcome is checked against the input.
        #[test]
        fn every_outcome_agrees_with_the_body(body in arbitrary_body()) {
            let c = catalog();
            match CreateInstance::parse(&body, &c) {
                Ok(r) => {
                    let name = body["name"].as_str().unwrap();
                    prop_assert_eq!(r.name.as_str(), name.trim());
                    prop_assert!(!r.name.as_str().is_empty() && r.name.as_str().chars().count() <= MAX_NAME_CHARS);
                    let given: Vec<&str> = body.get("tags").and_then(Value::as_array).map(|t| t.iter().map(|t| t.as_str().unwrap().trim()).collect()).unwrap_or_default();
                    if given.is_empty() {
                        prop_assert_eq!(r.tags.as_slice(), [name.trim()], "no tags given: tagged with the name");
                    } else {
                        prop_assert_eq!(r.tags.as_slice(), &given[..], "tags are kept as given, trimmed");
                    }
                    let mut distinct = given.clone();
                    distinct.sort_unstable();
                    distinct.dedup();
                    prop_assert_eq!(distinct.len(), given.len());
                    for entry in r.element.entries.iter().filter(|e| e.required) {
                        prop_assert!(r.configuration.get(&entry.key).is_some());
                    }
                    prop_assert_eq!(CreateInstance::parse(&body, &c).unwrap().fingerprint(), r.fingerprint());
                }
                Err(RequestError::Fields(errors)) => {
                    let named = |key: &str| errors.invalid.iter().any(|i| i.key == key);
                    let name = body.get("name").and_then(Value::as_str).map(str::trim);
                    let name_ok = name.is_some_and(|n| !n.is_empty() && n.chars().count() <= MAX_NAME_CHARS);
                    prop_assert_eq!(named(NAME), !name_ok, "name {:?}", name);
                    let tags = body.get("tags").cloned().unwrap_or(Value::Null);
                    let tags_ok = tags.is_null() || tags.as_array().is_some_and(|t| {
                        let strings: Vec<&str> = t.iter().filter_map(Value::as_str).map(str::trim).collect();
                        let mut distinct = strings.clone();
                        distinct.sort_unstable();
                        distinct.dedup();
                        strings.len() == t.len() && distinct.len() == t.len() && t.len() <= MAX_TAGS
                            && strings.iter().all(|s| !s.is_empty() && s.chars().count() <= MAX_TAG_CHARS)
                    });
                    prop_assert_eq!(named(TAGS), !tags_ok, "tags {}", tags);
                    let password_given = body["configuration"]["jira.password"].is_string();
                    prop_assert_eq!(errors.missing.is_empty() && !named("jira.password"), password_given);
                }
                Err(RequestError::UnknownElement { given, .. }) => {
                    prop_assert!(c.by_key(given.trim()).is_none());
                }
                Err(RequestError::Invalid(_)) => {
                    prop_assert!(!body.get("element").is_some_and(Value::is_object), "{}", body);
                }
            }
        }

        #[test]
        fn valid_names_and_tags_round_trip(name in "[^\\s<&]([^\\p{C}<&]){0,200}[^\\s<&]", tags in proptest::collection::hash_set("[a-z0-9]{1,100}", 1..50)) {
            let tags: Vec<String> = tags.into_iter().collect();
            let mut v = seed();
            v["name"] = json!(name.clone());
            v["tags"] = json!(tags.clone());
            let c = catalog();
            let r = CreateInstance::parse(&v, &c);
            if name.chars().count() <= MAX_NAME_CHARS {
                let r = r.unwrap();
                prop_assert_eq!(r.name.as_str(), name.trim());
                prop_assert_eq!(r.tags.as_slice(), &tags[..]);
            } else {
                prop_assert!(matches!(r, Err(RequestError::Fields(f)) if f.invalid.iter().map(|i| i.key.as_str()).eq([NAME])));
            }
        }
    }
}
