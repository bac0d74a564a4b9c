//! Credentials go only where they were given for. A secret entry the
//! catalog binds to a URL entry (`sentTo`: JIRA's password to its site's
//! URL) is sent to one origin only, the scheme, host and port of that URL as
//! it was when the secret was given. Any user of an organization may manage
//! its instances, but none may read their secrets; so a change of the URL to
//! another origin must carry the secret again, in the same request, or the
//! stored one would be sent to a host the caller chose (manage would become
//! read). A change of the path on the same origin keeps it.
//!
//! This is the rule's one home: the update's merge applies it
//! ([`stranded`]), so what is stored always holds each secret for the
//! origin it was given for, and every user of the stored pair (the
//! credential check, the hub, the poller) may send it there.

use super::catalog::Element;

/// The scheme, host and port of a URL (the port the scheme implies when
/// none is written), host in lower case: where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    /// `None` for what is not an absolute URL with a host.
    pub fn of(url: &str) -> Option<Origin> {
        let parsed = url::Url::parse(url.trim()).ok()?;
        let host = parsed.host_str()?;
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        Some(Origin { scheme: parsed.scheme().to_owned(), port: parsed.port_or_known_default(), host })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}://{}:{port}", self.scheme, self.host),
            None => write!(f, "{}://{}", self.scheme, self.host),
        }
    }
}

/// A secret that a change leaves bound to another origin than its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stranded {
    /// The secret entry's key.
    pub secret: String,
    /// The URL entry's key.
    pub url: String,
    /// Where the stored secret may go.
    pub given_for: String,
}

/// The secret entries of `element` that a change would keep (`kept`: their
/// stored values stay) while moving the URL entry they are bound to from
/// `before` to `after` another origin. A URL that is not there before
/// binds nothing yet; one whose origin cannot be read counts as another.
pub fn stranded(
    element: &Element,
    before: &[(String, String)],
    after: &[(String, String)],
    kept: &[String],
) -> Vec<Stranded> {
    let value = |pairs: &[(String, String)], key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let mut found = Vec::new();
    for entry in element.entries.iter().filter(|e| kept.contains(&e.key)) {
        let Some(url) = entry.sent_to.as_deref() else { continue };
        let Some(was) = value(before, url) else { continue };
        let now = value(after, url);
        let (was_origin, now_origin) = (Origin::of(&was), now.as_deref().and_then(Origin::of));
        if was_origin.is_none() || was_origin != now_origin {
            let given_for = was_origin.map_or(was, |o| o.to_string());
            found.push(Stranded { secret: entry.key.clone(), url: url.to_owned(), given_for });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::Catalog;

    fn jira() -> Element {
        Catalog::builtin().unwrap().by_key("jira").unwrap().clone()
    }

    fn at(url: &str) -> Vec<(String, String)> {
        vec![("jira.api.url".into(), url.into()), ("jira.username".into(), "u".into())]
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        let o = |u: &str| Origin::of(u).unwrap();
        assert_eq!(o("https://X.atlassian.net/a"), o("https://x.atlassian.net:443/b?c"));
        assert_eq!(o("https://x.atlassian.net.").to_string(), "https://x.atlassian.net:443");
        assert_ne!(o("https://x.atlassian.net"), o("https://x.atlassian.net:8443"));
        assert_ne!(o("https://x.atlassian.net"), o("https://y.atlassian.net"));
        assert_ne!(o("https://x.atlassian.net"), o("http://x.atlassian.net"));
        assert_ne!(o("https://x.atlassian.net"), o("https://x.atlassian.net.evil.com"));
        assert!(Origin::of("not a url").is_none());
    }

    #[test]
    fn a_kept_password_may_not_follow_its_url_to_another_origin() {
        let kept = vec!["jira.password".to_owned()];
        let site = at("https://x.atlassian.net");
        // Same origin (another path, the default port written): kept.
        assert!(stranded(&jira(), &site, &at("https://x.atlassian.net:443/jira"), &kept).is_empty());
        assert!(stranded(&jira(), &site, &site, &kept).is_empty());
        // Another host, port or scheme: stranded.
        for elsewhere in
            ["https://evil.example", "https://x.atlassian.net:8443", "https://x.atlassian.net@evil.example"]
        {
            let s = stranded(&jira(), &site, &at(elsewhere), &kept);
            assert_eq!(
                s,
                [Stranded {
                    secret: "jira.password".into(),
                    url: "jira.api.url".into(),
                    given_for: "https://x.atlassian.net:443".into()
                }],
                "{elsewhere}"
            );
        }
        // A password given anew (not kept) goes where it was given for.
        assert!(stranded(&jira(), &site, &at("https://evil.example"), &[]).is_empty());
        // The signature key is not bound to JIRA's URL.
        let key = vec!["event.notification.signature.key".to_owned()];
        assert!(stranded(&jira(), &site, &at("https://evil.example"), &key).is_empty());
    }
}
