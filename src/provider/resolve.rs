//! Name resolution for the credential check, with the address check inside
//! it: the connector connects to exactly the addresses this resolver
//! returned, so what was checked is what is connected to. There is no second
//! resolution for a rebinding DNS answer to slip into. (A host given as an
//! IP address never reaches a resolver; `Checker` checks it before sending.)

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
/// a test may answer what it likes (a rebinding DNS, say).
pub trait Lookup: Send + Sync {
    fn lookup(&self, host: String) -> BoxFuture<'static, io::Result<Vec<IpAddr>>>;
}

/// `getaddrinfo`, through tokio's blocking pool.
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: String) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.map(|a| a.ip()).collect()) })
    }
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
            let addresses = lookup.lookup(host.clone()).await?;
            if addresses.is_empty() {
                return Err(io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address")).into());
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
