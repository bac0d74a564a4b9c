//! A local HTTPS stand-in for JIRA: a certificate authority made at test
//! time (trusted by the function through `PROVIDER_TEST_CA_FILE`, which
//! exists for this alone), a server on a loopback address of the test's
//! choosing that answers what the test says, and counts what it was asked.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The names the stand-in's certificate is good for.
pub const NAMES: &[&str] = &["localhost", "jira.test", "rebind.test", "internal.test"];

/// An answer, and how long to wait before giving it.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A test certificate authority, its certificate in a PEM file.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub pem_file: std::path::PathBuf,
}

impl TestCa {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "instances test CA");
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem_file = std::env::temp_dir().join(format!("{}.pem", super::unique("test-ca")));
        std::fs::write(&pem_file, issuer.pem()).unwrap();
        TestCa { issuer, pem_file }
    }

    fn server_config(&self) -> rustls::ServerConfig {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
        let leaf = CertificateParams::new(names).unwrap().signed_by(&key, &self.issuer).unwrap();
        let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), self.issuer.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap()
    }
}

/// What the stand-in was asked.
#[derive(Clone, Debug)]
pub struct Asked {
    pub path: String,
    pub authorization: Option<String>,
}

pub struct StandIn {
    pub address: SocketAddr,
    hits: Arc<AtomicUsize>,
    asked: Arc<Mutex<Vec<Asked>>>,
    reply: Arc<Mutex<Reply>>,
    task: tokio::task::JoinHandle<()>,
}

impl StandIn {
    /// Serves `reply` on `ip` (a loopback address), on a free port.
    pub async fn start(ca: &TestCa, ip: IpAddr, reply: Reply) -> Self {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let address = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(ca.server_config()));
        let hits = Arc::new(AtomicUsize::new(0));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let reply = Arc::new(Mutex::new(reply));
        let (h, a, r) = (hits.clone(), asked.clone(), reply.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (acceptor, h, a, r) = (acceptor.clone(), h.clone(), a.clone(), r.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                        h.fetch_add(1, Ordering::SeqCst);
                        let authorization =
                            request.headers().get("authorization").map(|v| v.to_str().unwrap_or_default().to_owned());
                        a.lock().unwrap().push(Asked { path: request.uri().path().to_owned(), authorization });
                        let reply = r.lock().unwrap().clone();
                        async move {
                            tokio::time::sleep(reply.delay).await;
                            let mut response = hyper::Response::new(Full::new(Bytes::from(reply.body)));
                            *response.status_mut() = hyper::StatusCode::from_u16(reply.status).unwrap();
                            for (k, v) in reply.headers {
                                response.headers_mut().append(
                                    hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                                    v.parse().unwrap(),
                                );
                            }
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
                });
            }
        });
        StandIn { address, hits, asked, reply, task }
    }

    /// The URL a configuration names it by, through `host`.
    pub fn url(&self, host: &str) -> String {
        format!("https://{host}:{}", self.address.port())
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn asked(&self) -> Vec<Asked> {
        self.asked.lock().unwrap().clone()
    }

    /// Answers `reply` from now on.
    pub fn answer(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A DNS of the test's: each name answers the next of its lists of
/// addresses (the last one again once they run out), and counts lookups.
#[derive(Default)]
pub struct TestDns {
    answers: Mutex<std::collections::HashMap<String, Vec<Vec<IpAddr>>>>,
    lookups: AtomicUsize,
}

impl TestDns {
    pub fn new(answers: &[(&str, &[&[&str]])]) -> Arc<Self> {
        let map = answers
            .iter()
            .map(|(name, lists)| {
                let lists = lists.iter().map(|l| l.iter().map(|a| a.parse().unwrap()).collect()).collect();
                (name.to_string(), lists)
            })
            .collect();
        Arc::new(TestDns { answers: Mutex::new(map), lookups: AtomicUsize::new(0) })
    }

    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

impl instances::outbound::resolve::Lookup for TestDns {
    fn lookup(&self, host: String) -> instances::outbound::resolve::BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let mut answers = self.answers.lock().unwrap();
        let found = match answers.get_mut(&host) {
            Some(lists) if lists.len() > 1 => Ok(lists.remove(0)),
            Some(lists) => Ok(lists[0].clone()),
            None => Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{host}: no such name"))),
        };
        Box::pin(async move { found })
    }
}
