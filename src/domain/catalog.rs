//! The element catalog: data (`catalog/elements.json`), read once per cold
//! start. Code knows no element by name; adding an element is a change to that
//! file alone.

use serde::{Deserialize, Serialize};

/// The catalog shipped with the binary.
pub const BUILTIN_CATALOG: &str = include_str!("../../catalog/elements.json");

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the catalog is not valid JSON of the expected shape: {0}")]
    Shape(#[from] serde_json::Error),
    #[error("the catalog is inconsistent: {0}")]
    Inconsistent(String),
}

/// What the response shows of an element: exactly the documented fields, in
/// the documented order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ElementInfo {
    pub id: u64,
    pub name: String,
    pub key: String,
    pub description: String,
    pub image: String,
    pub active: bool,
    pub deleted: bool,
    pub type_oauth: bool,
    pub trial_account: bool,
    pub config_description: String,
    #[serde(rename = "signupURL")]
    pub signup_url: String,
}

/// How a configuration value is checked and normalized.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    String,
    /// An absolute `https` URL.
    Url,
    Boolean,
    Number,
    Enum,
    /// A JSON object (or a string holding one).
    Json,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigEntry {
    /// Its id in an instance's configuration
    /// (`GET /instances/{id}/configuration/{configId}`): stable, and unique
    /// among the entries of an element.
    pub id: u64,
    pub key: String,
    /// Other names a client may give it by (the platform renamed JIRA's
    /// entries `username`, `password`, `base.url`): an instance keeps the
    /// name its client used, one per entry.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// What a form shows for it (`GET /elements/{key}`).
    pub name: String,
    #[serde(rename = "type")]
    pub entry_type: EntryType,
    pub required: bool,
    pub secret: bool,
    pub description: String,
    #[serde(default)]
    pub default: Option<String>,
    /// The allowed values of an `enum` entry.
    #[serde(default)]
    pub values: Vec<String>,
    /// The smallest allowed value of a `number` entry.
    #[serde(default)]
    pub minimum: Option<f64>,
    /// For a secret: the URL entry of the site it is sent to. It goes to that
    /// URL's origin only; a change of the URL to another origin must give it
    /// again (`domain::origin`).
    #[serde(default)]
    pub sent_to: Option<String>,
    /// For a `url` entry: the API's own paths, which a client may give after
    /// the site (`/rest/api/2`); read as the site.
    #[serde(default)]
    pub api_paths: Vec<String>,
}

/// How the vendor is asked whether an instance's credentials work: `GET`
/// the `url` entry's value plus `path`, with HTTP basic auth of the
/// `username` and `password` entries; an answer naming an account in one of
/// `accountFields` means they do (see `provider`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialCheck {
    pub url: String,
    pub path: String,
    pub username: String,
    pub password: String,
    pub account_fields: Vec<String>,
    /// Which kind of site an account field tells (`accountId`: Jira Cloud,
    /// `name`: Jira Server / Data Center), learned at the check and kept
    /// with the instance for the hub.
    #[serde(default)]
    pub flavors: std::collections::BTreeMap<String, String>,
}

/// The element's hub (the platform's `helpdesk` for JIRA): its resources
/// mapped to the vendor's API, as data. The site and its credentials are
/// the credential check's entries.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hub {
    /// `/hubs/{key}/...`
    pub key: String,
    pub search: HubSearch,
    pub routes: Vec<HubRoute>,
    /// What its polled events are of (`src/events/`); none: no events.
    #[serde(default)]
    pub events: Option<HubEvents>,
}

/// The polled events of a hub: which of the search's items changed, by
/// which of their fields.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HubEvents {
    /// The events' `objectType` (the search's resource: `incidents`).
    pub object_type: String,
    /// The vendor's query field of the last change (JQL's `updated`), and
    /// the item fields of the last change and of the creation.
    pub updated_field: String,
    pub created_field: String,
    /// The item fields a poll asks for (the notification's `raw`).
    pub fields: String,
}

/// The list of the hub's main resource, through the vendor's search.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HubSearch {
    /// The hub's path (`/incidents`).
    pub path: String,
    /// The search of each kind of site (see `CredentialCheck::flavors`).
    pub flavors: std::collections::BTreeMap<String, SearchFlavor>,
    /// The member of the vendor's answer that holds the items.
    pub items: String,
    /// The fields asked for when the client names none.
    pub fields: String,
    /// The order when the client gives none.
    pub order_by: String,
    /// The restriction of a list without `where` (a vendor may refuse an
    /// unbounded query): every item.
    pub everything: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchFlavor {
    pub path: String,
    pub paging: Paging,
}

/// How the vendor's search pages.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Paging {
    /// `nextPageToken`, no total, no random access (Jira Cloud).
    Token,
    /// `startAt`, `maxResults` and `total` (Jira Server).
    Offset,
}

/// One call of the hub: `method path` (segments in braces name values)
/// maps to one vendor call, optionally followed by a `then` read whose
/// answer is the call's (`{created}`: the `id` the first call answered), and
/// `items` names the member of the vendor's answer that holds a list.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HubRoute {
    pub method: String,
    pub path: String,
    pub vendor: String,
    #[serde(default)]
    pub then: Option<String>,
    #[serde(default)]
    pub items: Option<String>,
}

impl HubRoute {
    /// The values of the route's placeholders when `method` and `segments`
    /// are this route's.
    pub fn matches<'s>(&self, method: &str, segments: &[&'s str]) -> Option<Vec<(&str, &'s str)>> {
        if !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        template_values(&self.path, segments)
    }
}

/// `(name, value)` of each `{name}` segment of `template` when `segments`
/// have its shape.
pub fn template_values<'t, 's>(template: &'t str, segments: &[&'s str]) -> Option<Vec<(&'t str, &'s str)>> {
    let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut values = Vec::new();
    for (part, segment) in parts.iter().zip(segments) {
        match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) => values.push((name, *segment)),
            None if part == segment => {}
            None => return None,
        }
    }
    Some(values)
}

/// `METHOD /path` of a vendor call.
pub fn vendor_call(text: &str) -> Option<(&str, &str)> {
    let (method, path) = text.split_once(' ')?;
    let known = ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method);
    (known && path.starts_with('/')).then_some((method, path))
}

impl CredentialCheck {
    /// The entries whose change calls for a new check.
    pub fn entries(&self) -> [&str; 3] {
        [&self.url, &self.username, &self.password]
    }
}

/// One element with its configuration entries: its own first, then the
/// platform's common ones, in catalog order.
#[derive(Debug, Clone)]
pub struct Element {
    pub info: ElementInfo,
    pub entries: Vec<ConfigEntry>,
    pub credential_check: Option<CredentialCheck>,
    pub hub: Option<Hub>,
}

impl Element {
    pub fn entry(&self, key: &str) -> Option<&ConfigEntry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// The entry a client's name stands for: its key or one of its aliases.
    pub fn entry_named(&self, name: &str) -> Option<&ConfigEntry> {
        self.entries.iter().find(|e| e.key == name || e.aliases.iter().any(|a| a == name))
    }

    /// Every name a client may give an entry by: keys, then aliases.
    pub fn entry_names(&self) -> impl Iterator<Item = &str> {
        let keys = self.entries.iter().map(|e| e.key.as_str());
        keys.chain(self.entries.iter().flat_map(|e| e.aliases.iter().map(String::as_str)))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CatalogFile {
    common_configuration: Vec<ConfigEntry>,
    elements: Vec<ElementFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
struct ElementFile {
    element: ElementInfo,
    configuration: Vec<ConfigEntry>,
    #[serde(default)]
    credential_check: Option<CredentialCheck>,
    #[serde(default)]
    hub: Option<Hub>,
}

#[derive(Debug, Clone)]
pub struct Catalog {
    elements: Vec<Element>,
}

impl Catalog {
    pub fn builtin() -> Result<Self, CatalogError> {
        Self::from_json(BUILTIN_CATALOG)
    }

    pub fn from_json(text: &str) -> Result<Self, CatalogError> {
        let file: CatalogFile = serde_json::from_str(text)?;
        let mut elements = Vec::with_capacity(file.elements.len());
        for e in file.elements {
            let mut entries = e.configuration;
            entries.extend(file.common_configuration.iter().cloned());
            elements.push(Element { info: e.element, entries, credential_check: e.credential_check, hub: e.hub });
        }
        let catalog = Catalog { elements };
        catalog.check()?;
        Ok(catalog)
    }

    fn check(&self) -> Result<(), CatalogError> {
        let bad = |m: String| Err(CatalogError::Inconsistent(m));
        if self.elements.is_empty() {
            return bad("no element".into());
        }
        for (i, e) in self.elements.iter().enumerate() {
            let later = &self.elements[i + 1..];
            if later.iter().any(|o| o.info.key == e.info.key || o.info.id == e.info.id) {
                return bad(format!("element {} (id {}) is listed twice", e.info.key, e.info.id));
            }
            let names: Vec<&str> = e.entry_names().collect();
            for (j, name) in names.iter().enumerate() {
                if names[j + 1..].contains(name) {
                    return bad(format!("{}: entry name {name} is listed twice", e.info.key));
                }
            }
            for (j, entry) in e.entries.iter().enumerate() {
                if e.entries[j + 1..].iter().any(|o| o.id == entry.id) {
                    return bad(format!("{}: entry id {} is listed twice", e.info.key, entry.id));
                }
                if (entry.entry_type == EntryType::Enum) == entry.values.is_empty() {
                    return bad(format!(
                        "{}: entry {} has values without being an enum, or the reverse",
                        e.info.key, entry.key
                    ));
                }
                if entry.required && entry.default.is_some() {
                    return bad(format!("{}: required entry {} has a default", e.info.key, entry.key));
                }
                if let Some(url) = &entry.sent_to {
                    let site = e.entry(url).filter(|u| u.entry_type == EntryType::Url);
                    if !entry.secret || site.is_none() {
                        return bad(format!(
                            "{}: entry {} is sent to {url}, which needs a secret entry and a url entry",
                            e.info.key, entry.key
                        ));
                    }
                }
            }
            if let Some(check) = &e.credential_check {
                let entry = |key: &str| e.entry(key).filter(|entry| entry.required);
                let fits = matches!(entry(&check.url), Some(u) if u.entry_type == EntryType::Url)
                    && entry(&check.username).is_some()
                    && matches!(entry(&check.password), Some(p) if p.secret && p.sent_to.as_ref() == Some(&check.url))
                    && check.path.starts_with('/')
                    && !check.account_fields.is_empty();
                if !fits {
                    return bad(format!(
                        "{}: credentialCheck must name required entries (a url, a user name, a secret password), \
                         a path from /, and account fields",
                        e.info.key
                    ));
                }
            }
            if let Some(hub) = &e.hub {
                check_hub(e, hub)
                    .map_err(|m| CatalogError::Inconsistent(format!("{}: hub {}: {m}", e.info.key, hub.key)))?;
            }
        }
        Ok(())
    }

    pub fn elements(&self) -> &[Element] {
        &self.elements
    }

    pub fn by_key(&self, key: &str) -> Option<&Element> {
        self.elements.iter().find(|e| e.info.key == key)
    }

    pub fn by_id(&self, id: u64) -> Option<&Element> {
        self.elements.iter().find(|e| e.info.id == id)
    }

    /// An element by its key, or by its id when `key_or_id` is a number (as
    /// the platform's `/elements/{keyOrId}` reads it).
    pub fn by_key_or_id(&self, key_or_id: &str) -> Option<&Element> {
        match key_or_id.parse::<u64>() {
            Ok(id) => self.by_id(id),
            Err(_) => self.by_key(key_or_id),
        }
    }

    /// The first segments of every hub's paths (`incidents`, `priorities`,
    /// ...) and `proxy`: a path that starts with one is a hub call.
    pub fn hub_roots(&self) -> impl Iterator<Item = &str> {
        let hubs = self.elements.iter().filter_map(|e| e.hub.as_ref());
        let paths =
            hubs.flat_map(|h| std::iter::once(h.search.path.as_str()).chain(h.routes.iter().map(|r| r.path.as_str())));
        paths.map(|p| p.trim_start_matches('/').split('/').next().unwrap_or("")).chain(std::iter::once("proxy"))
    }

    pub fn keys(&self) -> Vec<&str> {
        self.elements.iter().map(|e| e.info.key.as_str()).collect()
    }
}

/// A hub names its site through the credential check, a search for every
/// kind of site the check tells, and routes whose vendor calls are `METHOD
/// /path` with no placeholder the hub's path does not bind.
fn check_hub(e: &Element, hub: &Hub) -> Result<(), String> {
    let Some(check) = &e.credential_check else {
        return Err("needs a credentialCheck (its site and credentials)".into());
    };
    let flavors: std::collections::BTreeSet<&String> = check.flavors.values().collect();
    if flavors.is_empty() || flavors.iter().any(|f| !hub.search.flavors.contains_key(*f)) {
        return Err("needs a search for every flavor the credential check tells".into());
    }
    if !hub.search.path.starts_with('/') || hub.search.flavors.values().any(|f| !f.path.starts_with('/')) {
        return Err("search paths start with /".into());
    }
    // A hub path is matched before the instance resource's: none may shadow it.
    let roots = std::iter::once(&hub.search.path).chain(hub.routes.iter().map(|r| &r.path));
    for root in roots.map(|p| p.trim_start_matches('/').split('/').next().unwrap_or("")) {
        if ["instances", "elements", "hubs", ""].contains(&root) {
            return Err(format!("a hub path may not start with /{root}: the API's own paths do"));
        }
    }
    for route in &hub.routes {
        let bound: Vec<&str> =
            template_values(&route.path, &route.path.trim_start_matches('/').split('/').collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .map(|(name, _)| name)
                .collect();
        for call in std::iter::once(&route.vendor).chain(route.then.iter()) {
            let Some((_, path)) = vendor_call(call) else {
                return Err(format!("{} {}: {call:?} is not METHOD /path", route.method, route.path));
            };
            for placeholder in path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))) {
                if !bound.contains(&placeholder) && placeholder != "created" {
                    return Err(format!("{} {}: {{{placeholder}}} is not bound by the path", route.method, route.path));
                }
            }
        }
        if vendor_call(&format!("{} /", route.method)).is_none() || !route.path.starts_with('/') {
            return Err(format!("{} {}: not a method and a path", route.method, route.path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_has_jira_first_with_the_documented_values() {
        let catalog = Catalog::builtin().unwrap();
        let jira = &catalog.elements()[0];
        let documented = serde_json::json!({
            "id": 1, "name": "JIRA", "key": "jira", "description": "JIRA element",
            "image": "elements/provider_jira.png", "active": true, "deleted": false,
            "typeOauth": false, "trialAccount": false,
            "configDescription": "If you do not have an JIRA account, you can create one at <a href=\"http://www.atlassian.com/software/jira/pricing\" target=\"_blank\">JIRA Signup</a>",
            "signupURL": "http://www.atlassian.com/software/jira/pricing"
        });
        assert_eq!(serde_json::to_value(&jira.info).unwrap(), documented);
        let required: Vec<_> = jira.entries.iter().filter(|e| e.required).map(|e| e.key.as_str()).collect();
        assert_eq!(required, ["jira.username", "jira.password", "jira.api.url"]);
        assert!(jira.entry("jira.password").unwrap().secret);
        assert!(jira.entry("event.notification.signature.key").unwrap().secret);
        assert_eq!(jira.entry("filter.response.nulls").unwrap().default.as_deref(), Some("true"));
        for (alias, key) in [("username", "jira.username"), ("password", "jira.password"), ("base.url", "jira.api.url")]
        {
            assert_eq!(jira.entry_named(alias).unwrap().key, key);
            assert_eq!(jira.entry_named(key).unwrap().key, key);
        }
        assert!(jira.entry("username").is_none(), "entry() takes keys only");
        let check = jira.credential_check.as_ref().unwrap();
        assert_eq!((check.url.as_str(), check.path.as_str()), ("jira.api.url", "/rest/api/2/myself"));
        assert_eq!(check.account_fields, ["accountId", "name"]);
        let hub = jira.hub.as_ref().unwrap();
        assert_eq!((hub.key.as_str(), hub.search.path.as_str()), ("helpdesk", "/incidents"));
        assert_eq!(hub.search.flavors["cloud"].paging, Paging::Token);
        let route =
            hub.routes.iter().find(|r| r.matches("GET", &["incidents", "DEMO-1", "comments"]).is_some()).unwrap();
        assert_eq!(route.vendor, "GET /rest/api/2/issue/{id}/comment");
        assert_eq!(route.matches("get", &["incidents", "DEMO-1", "comments"]), Some(vec![("id", "DEMO-1")]));
    }

    #[test]
    fn a_hub_route_that_names_an_unbound_value_is_refused() {
        let bad = BUILTIN_CATALOG.replacen("GET /rest/api/2/priority/{id}", "GET /rest/api/2/priority/{other}", 1);
        assert!(Catalog::from_json(&bad).unwrap_err().to_string().contains("{other}"));
        let no_server = BUILTIN_CATALOG.replacen(
            "\"server\": {\"path\": \"/rest/api/2/search\"",
            "\"elsewhere\": {\"path\": \"/rest/api/2/search\"",
            1,
        );
        assert!(Catalog::from_json(&no_server).is_err());
        let shadowing = BUILTIN_CATALOG.replacen("\"path\": \"/priorities\"", "\"path\": \"/instances\"", 1);
        assert!(Catalog::from_json(&shadowing).unwrap_err().to_string().contains("/instances"));
    }

    #[test]
    fn an_element_is_added_by_data_alone() {
        let text = BUILTIN_CATALOG.replacen(
            "\"elements\": [",
            r#""elements": [{"element": {"id": 7, "name": "Zen", "key": "zen", "description": "d", "image": "i",
              "active": true, "deleted": false, "typeOauth": false, "trialAccount": false,
              "configDescription": "c", "signupURL": "u"},
              "configuration": [{"id": 1, "key": "zen.token", "name": "Token", "type": "string", "required": true, "secret": true, "description": "t"}]},"#,
            1,
        );
        let catalog = Catalog::from_json(&text).unwrap();
        let zen = catalog.by_key("zen").unwrap();
        assert_eq!(catalog.by_id(7).unwrap().info.key, "zen");
        assert_eq!(zen.entries[0].key, "zen.token");
        assert!(zen.entry("filter.response.nulls").is_some(), "common entries apply to every element");
    }

    #[test]
    fn inconsistent_catalogs_are_refused() {
        let twice = BUILTIN_CATALOG.replacen("\"key\": \"jira.username\"", "\"key\": \"jira.password\"", 1);
        assert!(Catalog::from_json(&twice).is_err());
        let alias_is_a_key = BUILTIN_CATALOG.replacen("[\"username\"]", "[\"jira.password\"]", 1);
        assert!(Catalog::from_json(&alias_is_a_key).is_err());
        let same_id = BUILTIN_CATALOG.replacen("\"id\": 2,", "\"id\": 1,", 1);
        assert!(Catalog::from_json(&same_id).is_err());
        let check_on_a_plain_password =
            BUILTIN_CATALOG.replacen("\"password\": \"jira.password\"", "\"password\": \"jira.username\"", 1);
        assert!(Catalog::from_json(&check_on_a_plain_password).is_err());
        let unbound_password = BUILTIN_CATALOG.replacen(", \"sentTo\": \"jira.api.url\"", "", 1);
        assert!(Catalog::from_json(&unbound_password).is_err(), "the checked password must be bound to its URL");
        let bound_to_a_string =
            BUILTIN_CATALOG.replacen("\"sentTo\": \"jira.api.url\"", "\"sentTo\": \"jira.username\"", 1);
        assert!(Catalog::from_json(&bound_to_a_string).is_err());
        assert!(Catalog::from_json("{}").is_err());
    }
}
