//! A TCP proxy of the tests' own between the function and the DynamoDB/KMS
//! server, to inject faults: forward, refuse connections, answer every
//! request with a throttling error, or hold requests past the SDK's timeouts.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(u8)]
pub enum Mode {
    Forward = 0,
    /// Accept, then close at once (the server is down).
    Drop = 1,
    /// Answer `400 ThrottlingException` (DynamoDB's and KMS's throttling shape).
    Throttle = 2,
    /// Hold the connection without answering (the server hangs).
    Stall = 3,
    /// Answer every TransactWriteItems as DynamoDB does when another
    /// transaction on one of its items is in flight; forward the rest.
    ConflictTransactions = 4,
    /// Answer every UpdateItem and DeleteItem as DynamoDB does when a
    /// transaction is writing the item (`TransactionConflictException`,
    /// which the SDK does not retry); forward the rest.
    ConflictWrites = 5,
}

#[derive(Clone)]
pub struct Proxy {
    pub url: String,
    mode: Arc<AtomicU8>,
    lose: Arc<AtomicUsize>,
    /// The operation whose answers are lost (`X-Amz-Target`'s, lower case); empty: any.
    lose_of: Arc<std::sync::Mutex<String>>,
    /// The requests whose answers were lost, as sent.
    lost: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(AtomicU8::new(Mode::Forward as u8));
        let lose = Arc::new(AtomicUsize::new(0));
        let lose_of = Arc::new(std::sync::Mutex::new(String::new()));
        let lost = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (m, l, o, kept) = (mode.clone(), lose.clone(), lose_of.clone(), lost.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let (m, l, o, kept) = (m.clone(), l.clone(), o.clone(), kept.clone());
                tokio::spawn(async move {
                    if l.load(Ordering::SeqCst) > 0 {
                        let of = o.lock().unwrap().clone();
                        lose_answer(client, &upstream, &l, &of, &kept).await
                    } else {
                        serve(client, &upstream, m).await
                    }
                });
            }
        });
        Proxy { url, mode, lose, lose_of, lost }
    }

    /// The requests whose answers were lost, as sent (head and body).
    pub fn lost_requests(&self) -> Vec<String> {
        self.lost.lock().unwrap().clone()
    }

    /// The next `n` requests of `operation` (`UpdateItem`, `DeleteItem`, ...)
    /// reach the server, which acts on them, but their answers are lost;
    /// other requests meanwhile are forwarded.
    pub fn lose_next_answers_to(&self, operation: &str, n: usize) {
        *self.lose_of.lock().unwrap() = format!("dynamodb_20120810.{}", operation.to_ascii_lowercase());
        self.lose.store(n, Ordering::SeqCst);
    }

    /// The next `n` requests on new connections reach the server, which acts
    /// on them, but their answers are lost (the connection closes).
    pub fn lose_next_answers(&self, n: usize) {
        self.lose_of.lock().unwrap().clear();
        self.lose.store(n, Ordering::SeqCst);
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }
}

async fn serve(mut client: TcpStream, upstream: &str, mode: Arc<AtomicU8>) {
    let _ = client.set_nodelay(true);
    match mode.load(Ordering::SeqCst) {
        0 => {
            let Ok(mut server) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = server.set_nodelay(true);
            // Forward until either side closes, or the mode changes (checked between reads).
            let (mut cr, mut cw) = client.split();
            let (mut sr, mut sw) = server.split();
            let _ = tokio::select! {
                r = tokio::io::copy(&mut cr, &mut sw) => r,
                r = tokio::io::copy(&mut sr, &mut cw) => r,
                _ = async { while mode.load(Ordering::SeqCst) == 0 { tokio::time::sleep(Duration::from_millis(20)).await } } => Ok(0),
            };
        }
        1 => {}
        2 => {
            // Answer each request on the connection with a throttling error.
            loop {
                let Some(_) = read_request(&mut client).await else {
                    return;
                };
                if mode.load(Ordering::SeqCst) != Mode::Throttle as u8 {
                    return; // the fault is over: close, the client reconnects
                }
                let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#;
                let head = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-errortype: ThrottlingException\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                if client.write_all(head.as_bytes()).await.is_err() || client.write_all(body.as_bytes()).await.is_err()
                {
                    return;
                }
            }
        }
        5 => {
            let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException","message":"Transaction is ongoing for the item"}"#;
            answer_some(client, upstream, &["updateitem", "deleteitem"], "TransactionConflictException", body).await
        }
        4 => {
            let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict]","CancellationReasons":[{"Code":"None"},{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"}]}"#;
            answer_some(client, upstream, &["transactwriteitems"], "TransactionCanceledException", body).await
        }
        _ => {
            // Hold the connection until the fault is over, then close it.
            while mode.load(Ordering::SeqCst) == Mode::Stall as u8 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

async fn lose_answer(
    mut client: TcpStream,
    upstream: &str,
    lose: &AtomicUsize,
    of: &str,
    lost: &std::sync::Mutex<Vec<String>>,
) {
    let Some(request) = read_request(&mut client).await else {
        return;
    };
    let head = String::from_utf8_lossy(&request).to_ascii_lowercase();
    if !of.is_empty() && !head.contains(&format!("x-amz-target: {of}")) {
        // Not the operation whose answer is lost: this one exchange goes through.
        if let Some(response) = forward_once(upstream, &request).await {
            let _ = client.write_all(&response).await;
        }
        return;
    }
    lose.fetch_sub(1, Ordering::SeqCst);
    lost.lock().unwrap().push(String::from_utf8_lossy(&request).into_owned());
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = server.write_all(&request).await;
    // Wait for the server's answer (it has acted), then drop it and the client.
    let mut chunk = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(5), server.read(&mut chunk)).await;
}

/// Answers the requests of the `operations` (`X-Amz-Target`'s, lower case)
/// with DynamoDB's `400` of `error_type` and `body`; forwards the rest.
async fn answer_some(mut client: TcpStream, upstream: &str, operations: &[&str], error_type: &str, body: &str) {
    loop {
        let Some(request) = read_request(&mut client).await else { return };
        let head = String::from_utf8_lossy(&request).to_ascii_lowercase();
        let answer = if operations.iter().any(|op| head.contains(&format!("x-amz-target: dynamodb_20120810.{op}"))) {
            format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-errortype: {error_type}\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        } else {
            let Some(response) = forward_once(upstream, &request).await else { return };
            response
        };
        if client.write_all(&answer).await.is_err() {
            return;
        }
    }
}

/// One request forwarded on a connection of its own, its answer read. (The
/// serial moto serves one connection at a time: a connection held open while
/// nothing is forwarded would stop it for every other test.)
async fn forward_once(upstream: &str, request: &[u8]) -> Option<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).await.ok()?;
    server.write_all(request).await.ok()?;
    read_request(&mut server).await
}

/// Reads one HTTP/1.1 message (headers and a content-length body); returns its bytes.
async fn read_request(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    while buf.len() - header_end < length {
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf)
}
