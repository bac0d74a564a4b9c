//! Name resolution for the outbound client, with the address check inside
//! it: the connector connects to exactly the addresses this resolver
//! returned, so what was checked is what is connected to. There is no second
//! resolution for a rebinding DNS answer to slip into. (A host given as an
//! IP address never reaches a resolver; `Client::send` checks it first.)

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;

use super::address::{refusal, AllowList};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where host names are looked up: the system's resolver in the function;
/// a test may answer what it likes (a rebinding DNS, say). A name that DNS
/// says does not exist is an error of kind `NotFound`; any other error is a
/// failure to ask (which retrying may mend).
pub trait Lookup: Send + Sync {
    fn lookup(&self, host: String) -> BoxFuture<'static, io::Result<Vec<IpAddr>>>;
}

/// `getaddrinfo`, through tokio's blocking pool.
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: String) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(found) => Ok(found.map(|a| a.ip()).collect()),
                Err(e) if names_no_host(&e) => Err(io::Error::new(io::ErrorKind::NotFound, e.to_string())),
                Err(e) => Err(e),
            }
        })
    }
}

/// Whether `getaddrinfo` said the name does not exist (`EAI_NONAME`,
/// `EAI_NODATA`), as std words it ("failed to lookup address information:
/// Name or service not known"), rather than that DNS could not be asked
/// (`EAI_AGAIN`: "Temporary failure in name resolution").
fn names_no_host(e: &io::Error) -> bool {
    let text = e.to_string();
    ["Name or service not known", "No address associated with hostname", "nodename nor servname provided"]
        .iter()
        .any(|m| text.contains(m))
}

/// A host name that DNS says does not exist (or has no address).
#[derive(Debug, thiserror::Error)]
#[error("{host} does not exist (DNS)")]
pub struct NoSuchHost {
    pub host: String,
}

/// A host that resolved to an address the check does not connect to.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {address}, {why}")]
pub struct Refused {
    pub host: String,
    pub address: IpAddr,
    pub why: &'static str,
}

/// A `tower::Service<Name>`, as hyper-util's `HttpConnector` takes a
/// resolver: looks the name up once, and answers its addresses only if every
/// one of them may be connected to (or the host is allowed).
#[derive(Clone)]
pub struct CheckedResolver {
    lookup: Arc<dyn Lookup>,
    allow: Arc<AllowList>,
}

impl CheckedResolver {
    pub fn new(lookup: Arc<dyn Lookup>, allow: Arc<AllowList>) -> Self {
        CheckedResolver { lookup, allow }
    }
}

impl tower_service::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let (lookup, allow) = (self.lookup.clone(), self.allow.clone());
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = match lookup.lookup(host.clone()).await {
                Ok(addresses) => addresses,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(NoSuchHost { host }.into()),
                Err(e) => return Err(e.into()),
            };
            if addresses.is_empty() {
                return Err(NoSuchHost { host }.into());
            }
            if !allow.host(&host) {
                for &address in &addresses {
                    if let Some(why) = refusal(address).filter(|_| !allow.address(address)) {
                        return Err(Refused { host, address, why }.into());
                    }
                }
            }
            // The port is the URL's: the connector sets it.
            Ok(addresses.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect::<Vec<_>>().into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_dns_says_does_not_exist_is_told_from_a_dns_that_cannot_be_asked() {
        let gai = |detail: &str| io::Error::other(format!("failed to lookup address information: {detail}"));
        assert!(names_no_host(&gai("Name or service not known")));
        assert!(names_no_host(&gai("No address associated with hostname")));
        assert!(!names_no_host(&gai("Temporary failure in name resolution")));
        assert!(!names_no_host(&io::Error::from(io::ErrorKind::TimedOut)));
    }

    /// The system's resolver on a name that cannot exist (`.invalid` is
    /// reserved, RFC 6761): NotFound, or a failure to ask where no DNS
    /// answers at all; never an address.
    #[tokio::test]
    async fn the_system_resolver_on_a_reserved_name() {
        match SystemLookup.lookup("no-such-host.invalid".into()).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => assert!(!names_no_host(&e), "{e}"),
            Ok(found) => assert!(found.is_empty(), "{found:?}"),
        }
    }
}
