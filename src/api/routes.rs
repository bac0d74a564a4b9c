//! Every path the API serves and the methods it serves there: the one place
//! `404`, `405` and `Allow` come from.

use lambda_http::http::Method;

/// A path the API serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'p> {
    /// `/instances`
    Instances,
    /// `/elements`
    Elements,
    /// `/elements/{keyOrId}`
    Element(&'p str),
}

impl<'p> Route<'p> {
    /// The route of a path (without stage or base path); one trailing slash
    /// is the same path, as API Gateway's REST APIs have it.
    pub fn of(path: &'p str) -> Option<Self> {
        let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
        let mut segments = path.strip_prefix('/')?.split('/');
        let route = match (segments.next(), segments.next()) {
            (Some("instances"), None) => Route::Instances,
            (Some("elements"), None) => Route::Elements,
            (Some("elements"), Some(key)) if !key.is_empty() => Route::Element(key),
            _ => return None,
        };
        segments.next().is_none().then_some(route)
    }

    /// The methods served here, as `Allow` lists them.
    pub fn allow(&self) -> &'static str {
        match self {
            Route::Instances => "POST",
            Route::Elements | Route::Element(_) => "GET",
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
        assert_eq!(Route::of("/elements"), Some(Route::Elements));
        assert_eq!(Route::of("/elements/jira"), Some(Route::Element("jira")));
        assert_eq!(Route::of("/elements/1/"), Some(Route::Element("1")));
        for none in
            ["", "/", "/instances//", "//instances", "/instances/1", "/instancesx", "/elements/a/b", "/elements//"]
        {
            assert_eq!(Route::of(none), None, "{none}");
        }
        assert!(Route::Instances.serves(&Method::POST) && !Route::Instances.serves(&Method::GET));
        assert!(Route::Element("jira").serves(&Method::GET) && !Route::Elements.serves(&Method::POST));
    }
}
