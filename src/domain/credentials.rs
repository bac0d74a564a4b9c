//! The `Authorization` header: `User <secret>, Organization <secret>`, and
//! optionally `Element <token>` naming one instance, in any order, white
//! space around the parts ignored, scheme names matched without regard to
//! case. Anything else is one `Malformed` that says nothing about which part
//! was wrong.

use super::secret::{Secret, SecretDigest};
use super::token::Token;

/// The longest secret accepted; ours are 43 characters.
const MAX_SECRET_LEN: usize = 512;

#[derive(Debug)]
pub struct Credentials {
    pub user: Secret,
    pub organization: Secret,
    /// The instance an `Element <token>` part names, if one was given.
    pub element: Option<Token>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

impl Credentials {
    pub fn parse(header: &str) -> Result<Self, Malformed> {
        let mut user = None;
        let mut organization = None;
        let mut element = None;
        let mut parts = 0;
        for part in header.split(',') {
            parts += 1;
            let part = part.trim();
            let (scheme, secret) = part.split_once(char::is_whitespace).ok_or(Malformed)?;
            let secret = secret.trim_start();
            if secret.is_empty() || secret.len() > MAX_SECRET_LEN || !secret.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Malformed);
            }
            let slot = if scheme.eq_ignore_ascii_case("user") {
                &mut user
            } else if scheme.eq_ignore_ascii_case("organization") {
                &mut organization
            } else if scheme.eq_ignore_ascii_case("element") {
                &mut element
            } else {
                return Err(Malformed);
            };
            if slot.replace(Secret::new(secret)).is_some() {
                return Err(Malformed);
            }
        }
        // Text that is not a token names no instance, which is said once the
        // user and organization have authenticated.
        let element =
            element.map(|secret| Token::parse(secret.expose()).unwrap_or_else(|| Token::unresolvable(secret.expose())));
        match (user, organization) {
            (Some(user), Some(organization)) if parts == 2 + usize::from(element.is_some()) => {
                Ok(Credentials { user, organization, element })
            }
            _ => Err(Malformed),
        }
    }

    /// The key under which a verified pair is cached: a digest of both digests.
    pub fn pair_digest(&self) -> SecretDigest {
        let mut both = Vec::with_capacity(64);
        both.extend_from_slice(&self.user.digest().0);
        both.extend_from_slice(&self.organization.digest().0);
        SecretDigest::of(&both)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(h: &str) -> (String, String) {
        let c = Credentials::parse(h).unwrap();
        (c.user.expose().to_owned(), c.organization.expose().to_owned())
    }

    #[test]
    fn documented_form_and_either_order() {
        assert_eq!(ok("User abc, Organization def"), ("abc".into(), "def".into()));
        assert_eq!(ok("Organization def,User abc"), ("abc".into(), "def".into()));
        assert_eq!(ok("  user   abc ,  ORGANIZATION def  "), ("abc".into(), "def".into()));
    }

    #[test]
    fn malformed_forms_are_refused() {
        for h in [
            "",
            "User abc",
            "Organization def",
            "User abc, User def",
            "Organization a, Organization b",
            "User abc, Organization def, User x",
            "User abc Organization def",
            "User , Organization def",
            "Bearer abc, Organization def",
            "User abc, Organization de f",
            "User abc,, Organization def",
            "Userabc, Organization def",
        ] {
            assert_eq!(Credentials::parse(h).map(|_| ()), Err(Malformed), "{h:?}");
        }
    }

    #[test]
    fn an_element_token_is_a_third_part_in_any_order() {
        let token = Token::mint(crate::domain::token::InstanceId::new(7).unwrap()).unwrap();
        for h in [
            format!("User u, Organization o, Element {}", token.expose()),
            format!("Element {} ,User u,Organization o", token.expose()),
            format!("organization o, ELEMENT {}, user u", token.expose()),
        ] {
            let c = Credentials::parse(&h).unwrap();
            assert_eq!((c.user.expose(), c.organization.expose()), ("u", "o"));
            assert_eq!(c.element.unwrap().expose(), token.expose(), "{h}");
        }
        assert!(Credentials::parse("User u, Organization o").unwrap().element.is_none());
        let garbage = Credentials::parse("User u, Organization o, Element not-a-token").unwrap();
        assert!(garbage.element.unwrap().instance_id().is_none(), "text that is not a token names no instance");
        for h in [
            format!("User u, Organization o, Element {0}, Element {0}", token.expose()),
            format!("User u, Element {}", token.expose()),
        ] {
            assert_eq!(Credentials::parse(&h).map(|_| ()), Err(Malformed), "{h}");
        }
    }

    proptest! {
        #[test]
        fn any_pair_of_tokens_round_trips(u in "[!-+\\--~]{1,80}", o in "[!-+\\--~]{1,80}", swap: bool, ws in "[ \t]{0,3}") {
            let (a, b) = (format!("{ws}User {u}{ws}"), format!("{ws}Organization {o}{ws}"));
            let header = if swap { format!("{b},{a}") } else { format!("{a},{b}") };
            prop_assert_eq!(ok(&header), (u, o));
        }

        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = Credentials::parse(&s);
        }
    }
}
