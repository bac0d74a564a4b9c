//! Every path the API serves and the methods it serves there: the one place
//! `404`, `405` and `Allow` come from.

use lambda_http::http::Method;

/// A path the API serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'p> {
    /// `/instances`
    Instances,
    /// `/instances/{id}`
    Instance(&'p str),
    /// `/instances/{id}/enabled`
    InstanceEnabled(&'p str),
    /// `/instances/enabled` (the instance the `Element` token names)
    TokenEnabled,
    /// `/instances/{id}/configuration`, or `/instances/configuration` (`None`:
    /// the instance the `Element` token names)
    Configuration(Option<&'p str>),
    /// `/instances/{id}/configuration/{configId}`, or
    /// `/instances/configuration/{configId}` (token)
    ConfigurationEntry(Option<&'p str>, &'p str),
    /// `/instances/{id}/events`, or `/instances/events` (`None`: the
    /// instance the `Element` token names)
    Events(Option<&'p str>),
    /// `/elements`
    Elements,
    /// `/elements/{keyOrId}`
    Element(&'p str),
    /// `/elements/{keyOrId}/instances`
    ElementInstances(&'p str),
    /// `/elements/{keyOrId}/instances/{id}`
    ElementInstance(&'p str, &'p str),
}

impl<'p> Route<'p> {
    /// The route of a path (without stage or base path); one trailing slash
    /// is the same path, as API Gateway's REST APIs have it.
    pub fn of(path: &'p str) -> Option<Self> {
        let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
        let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return None;
        }
        Some(match segments.as_slice() {
            ["instances"] => Route::Instances,
            ["instances", "enabled"] => Route::TokenEnabled,
            ["instances", "events"] => Route::Events(None),
            ["instances", id, "events"] => Route::Events(Some(id)),
            ["instances", "configuration"] => Route::Configuration(None),
            ["instances", "configuration", entry] => Route::ConfigurationEntry(None, entry),
            ["instances", id, "configuration"] => Route::Configuration(Some(id)),
            ["instances", id, "configuration", entry] => Route::ConfigurationEntry(Some(id), entry),
            ["instances", id] => Route::Instance(id),
            ["instances", id, "enabled"] => Route::InstanceEnabled(id),
            ["elements"] => Route::Elements,
            ["elements", key] => Route::Element(key),
            ["elements", key, "instances"] => Route::ElementInstances(key),
            ["elements", key, "instances", id] => Route::ElementInstance(key, id),
            _ => return None,
        })
    }

    /// The methods served here, as `Allow` lists them.
    pub fn allow(&self) -> &'static str {
        match self {
            Route::Instances => "DELETE, GET, PATCH, POST, PUT",
            Route::ElementInstances(_) => "GET, POST",
            Route::Instance(_) => "DELETE, GET, PATCH, PUT",
            Route::ElementInstance(..) => "DELETE, GET, PUT",
            Route::Configuration(_) | Route::Events(_) => "GET",
            Route::ConfigurationEntry(..) => "GET, PATCH",
            Route::Elements | Route::Element(_) => "GET",
            Route::InstanceEnabled(_) | Route::TokenEnabled => "DELETE, PUT",
        }
    }

    pub fn serves(&self, method: &Method) -> bool {
        self.allow().split(", ").any(|m| m == method.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_their_methods() {
        assert_eq!(Route::of("/instances"), Some(Route::Instances));
        assert_eq!(Route::of("/instances/"), Some(Route::Instances));
        assert_eq!(Route::of("/instances/42"), Some(Route::Instance("42")));
        assert_eq!(Route::of("/elements"), Some(Route::Elements));
        assert_eq!(Route::of("/elements/jira"), Some(Route::Element("jira")));
        assert_eq!(Route::of("/elements/1/"), Some(Route::Element("1")));
        assert_eq!(Route::of("/elements/jira/instances"), Some(Route::ElementInstances("jira")));
        assert_eq!(Route::of("/elements/jira/instances/7"), Some(Route::ElementInstance("jira", "7")));
        for none in
            ["", "/", "/instances//", "//instances", "/instancesx", "/elements/a/b", "/elements//", "/instances/1/x/y"]
        {
            assert_eq!(Route::of(none), None, "{none}");
        }
        assert!(Route::Instances.serves(&Method::POST) && Route::Instances.serves(&Method::GET));
        assert!(Route::Instances.serves(&Method::DELETE) && Route::Instances.serves(&Method::PUT));
        assert!(!Route::ElementInstances("jira").serves(&Method::PUT));
        assert!(Route::Instances.serves(&Method::PATCH) && Route::Instance("1").serves(&Method::PATCH));
        assert!(Route::Element("jira").serves(&Method::GET) && !Route::Elements.serves(&Method::POST));
        assert_eq!(Route::Instance("1").allow(), "DELETE, GET, PATCH, PUT");
        assert_eq!(Route::of("/instances/configuration"), Some(Route::Configuration(None)));
        assert_eq!(Route::of("/instances/configuration/3"), Some(Route::ConfigurationEntry(None, "3")));
        assert_eq!(Route::of("/instances/5/configuration"), Some(Route::Configuration(Some("5"))));
        assert_eq!(Route::of("/instances/5/configuration/3/"), Some(Route::ConfigurationEntry(Some("5"), "3")));
        assert!(Route::ConfigurationEntry(None, "3").serves(&Method::PATCH));
        assert!(!Route::Configuration(None).serves(&Method::PATCH));
        assert_eq!(Route::of("/instances/enabled"), Some(Route::TokenEnabled));
        assert_eq!(Route::of("/instances/5/enabled"), Some(Route::InstanceEnabled("5")));
        assert!(Route::TokenEnabled.serves(&Method::PUT) && Route::TokenEnabled.serves(&Method::DELETE));
        assert!(!Route::InstanceEnabled("5").serves(&Method::GET));
    }
}
