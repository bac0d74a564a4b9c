//! The hub's list of its main resource (`GET /incidents`): CEQL `where` as
//! JQL, `orderBy`, `fields`, and pages, through the search of the kind of
//! site the instance is (`flavor`): a token-paged search without totals
//! (Jira Cloud's `search/jql`), or an offset-paged one with them (Jira
//! Server's `search`). Which kind a site is, when no credential check told,
//! the first search finds out (a `404` of the token-paged search is a site
//! without it) and it is kept.

use std::collections::HashMap;

use hyper::body::Bytes;
use hyper::Method;
use serde_json::value::RawValue;
use serde_json::Value;

use super::vendor::{Site, VendorAnswer};
use super::{json_answer, HubAnswer, HubCall, HubError};
use crate::app::App;
use crate::domain::catalog::{Hub, Paging};
use crate::domain::ceql;
use crate::domain::instance::InstanceRecord;
use crate::domain::pages::{next_token, query_digest, PageRequest, Start};

/// `GET {search.path}`.
pub async fn list(
    app: &App,
    record: &InstanceRecord,
    hub: &Hub,
    site: &Site<'_>,
    call: &HubCall<'_>,
    keep_nulls: bool,
) -> Result<HubAnswer, HubError> {
    let param = |name: &str| call.query.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let search = &hub.search;
    let filter = match param("where").map(str::trim).filter(|w| !w.is_empty()) {
        Some(text) => Some(ceql::parse(text).map_err(|e| HubError::InvalidQuery(format!("where: {e}")))?.to_jql()),
        None => None,
    };
    let order = match param("orderBy").map(str::trim).filter(|o| !o.is_empty()) {
        Some(text) => ceql::order_by(text).map_err(|e| HubError::InvalidQuery(format!("orderBy: {e}")))?,
        None => format!("ORDER BY {}", search.order_by),
    };
    let fields = match param("fields").map(str::trim).filter(|f| !f.is_empty()) {
        Some(f) if f.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.,*-".contains(&b)) => f.to_owned(),
        Some(_) => return Err(HubError::Invalid("fields must be field names separated by commas".into())),
        None => search.fields.clone(),
    };
    let jql = match &filter {
        Some(f) => format!("({f}) {order}"),
        None => format!("{} {order}", search.everything),
    };
    let digest = query_digest(&[&jql, &fields, param("pageSize").unwrap_or("")]);
    let page =
        PageRequest::parse(param("pageSize"), param("page"), param("nextPage"), record.summary.id.get(), &digest)
            .map_err(HubError::Invalid)?;

    let (paging, path) = flavor_of(app, record, hub, site, &jql).await?;
    let ask = |start: Option<&Start>, size: u32, fields: &str| {
        let mut query = vec![("jql".to_owned(), jql.clone()), ("maxResults".to_owned(), size.to_string())];
        query.push(("fields".to_owned(), fields.to_owned()));
        match start {
            Some(Start::Token(t)) => query.push(("nextPageToken".to_owned(), t.clone())),
            Some(Start::Offset(o)) => query.push(("startAt".to_owned(), o.to_string())),
            None => {}
        }
        query
    };
    let mut start = page.next.clone();
    if start.is_none() && page.number > 1 {
        match paging {
            Paging::Offset => start = Some(Start::Offset(u64::from(page.number - 1) * u64::from(page.size))),
            // No random access: walk the pages before it, asking for ids only.
            Paging::Token => {
                for _ in 1..page.number {
                    let answer =
                        site.send(Method::GET, &path, &ask(start.as_ref(), page.size, "id"), Bytes::new()).await?;
                    match next_start(&answer, paging, &start, &search.items)? {
                        Some(next) => start = Some(next),
                        None => return Ok(page_answer(vec![], None, None, keep_nulls)),
                    }
                }
            }
        }
    }
    let mut answer = site.send(Method::GET, &path, &ask(start.as_ref(), page.size, &fields), Bytes::new()).await?;
    let next = next_start(&answer, paging, &start, &search.items)?
        .map(|s| next_token(record.summary.id.get(), &digest, page.number, s));
    let json = answer.json.as_mut().ok_or_else(|| HubError::BadResponse("the search answered nothing".into()))?;
    let total = json.get("total").and_then(Value::as_u64).filter(|_| paging == Paging::Offset);
    // Taken out, not copied: an answer may be large.
    let items = match json.as_object_mut().and_then(|o| o.remove(&search.items)) {
        Some(Value::Array(items)) => items,
        _ => return Err(HubError::BadResponse(format!("the search's answer holds no {:?} list", search.items))),
    };
    Ok(page_answer(items, total, next, keep_nulls))
}

fn page_answer(items: Vec<Value>, total: Option<u64>, next: Option<String>, keep_nulls: bool) -> HubAnswer {
    let mut headers = vec![("elements-returned-count", items.len().to_string())];
    if let Some(total) = total {
        headers.push(("elements-total-count", total.to_string()));
    }
    if let Some(next) = next {
        headers.push(("elements-next-page-token", next));
    }
    json_answer(200, Value::Array(items), keep_nulls, headers)
}

/// Where the page after `answer` starts, or `None` on the last page.
fn next_start(
    answer: &VendorAnswer,
    paging: Paging,
    start: &Option<Start>,
    items: &str,
) -> Result<Option<Start>, HubError> {
    let json = answer.json.as_ref().ok_or_else(|| HubError::BadResponse("the search answered nothing".into()))?;
    Ok(match paging {
        Paging::Token => {
            let last = json.get("isLast").and_then(Value::as_bool).unwrap_or(false);
            json.get("nextPageToken")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty() && !last)
                .map(|t| Start::Token(t.to_owned()))
        }
        Paging::Offset => {
            let at = match start {
                Some(Start::Offset(o)) => *o,
                _ => json.get("startAt").and_then(Value::as_u64).unwrap_or(0),
            };
            let returned = json.get(items).and_then(Value::as_array).map_or(0, Vec::len) as u64;
            let total = json.get("total").and_then(Value::as_u64).unwrap_or(0);
            let next = at.saturating_add(returned);
            (returned > 0 && next < total).then_some(Start::Offset(next))
        }
    })
}

/// The kind of site the instance is, its paging and its search's path: as
/// kept, else found out by asking the token-paged search first (a site
/// without it answers `404`), and kept.
async fn flavor_of(
    app: &App,
    record: &InstanceRecord,
    hub: &Hub,
    site: &Site<'_>,
    jql: &str,
) -> Result<(Paging, String), HubError> {
    if let Some(search) = record.summary.flavor.as_ref().and_then(|f| hub.search.flavors.get(f)) {
        return Ok((search.paging, search.path.clone()));
    }
    // Token-paged first (the one a site may have lost its other for).
    let mut candidates: Vec<(&String, &crate::domain::catalog::SearchFlavor)> = hub.search.flavors.iter().collect();
    candidates.sort_by_key(|(_, s)| s.paging != Paging::Token);
    for (flavor, search) in &candidates {
        let probe = vec![
            ("jql".to_owned(), jql.to_owned()),
            ("maxResults".to_owned(), "1".to_owned()),
            ("fields".to_owned(), "id".to_owned()),
        ];
        let before = site.answer_limit();
        site.limit_answers(MAX_PROBE_BYTES);
        let probed = site.send(Method::GET, &search.path, &probe, Bytes::new()).await;
        site.limit_answers(before);
        match probed {
            Ok(_) => {
                if let Err(e) = app.store.set_flavor(record.summary.id, flavor).await {
                    tracing::warn!(error = %e, "the site's kind could not be kept");
                }
                return Ok((search.paging, search.path.clone()));
            }
            Err(HubError::Provider { status: 404 | 410, .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(HubError::BadResponse("the site serves none of the element's searches".into()))
}

/// The most of a flavour probe's answer read (one issue's id).
const MAX_PROBE_BYTES: usize = 64 * 1024;

/// The most of one page's answer a poll reads (a hundred issues with the
/// events' fields).
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;

/// One page of a poll's search, as read: the issues kept as JIRA wrote them
/// (text, never a tree: a hostile page's small values would parse to many
/// times its size), whether JIRA answered everything the JQL matches on it,
/// and JIRA's clock.
pub struct PollPage {
    pub issues: Vec<Box<RawValue>>,
    pub complete: bool,
    pub date_ms: Option<i64>,
    pub bytes: usize,
}

/// The first page of `jql` (at most `size` issues with `fields`), as the
/// events' poller reads it: one `POST`, never a second page (a list that
/// moves between two pages can step a row over; the poller narrows its
/// JQL instead, see `events::window`).
pub async fn poll_page(
    app: &App,
    record: &InstanceRecord,
    hub: &Hub,
    site: &Site<'_>,
    jql: &str,
    fields: &str,
    size: usize,
) -> Result<PollPage, HubError> {
    // (A site not yet known is probed with the short JQL of everything.)
    let (paging, path) = flavor_of(app, record, hub, site, &hub.search.everything).await?;
    // POSTed (Jira Cloud's `search/jql` and Server's `search` both take
    // it): a burst's JQL names every project read, too long for a URL.
    let fields: Vec<&str> = fields.split(',').map(str::trim).filter(|f| !f.is_empty()).collect();
    let body = serde_json::json!({"jql": jql, "maxResults": size, "fields": fields});
    let before = site.answer_limit();
    site.limit_answers(MAX_PAGE_BYTES);
    let answer = site.post_raw(&path, Bytes::from(body.to_string())).await;
    site.limit_answers(before);
    let answer = answer?;
    let unusable = |what: &str| HubError::BadResponse(format!("the search's answer {what}"));
    // The top level's members as text: only the list and the paging's are read.
    let doc: HashMap<String, Box<RawValue>> =
        serde_json::from_slice(&answer.body).map_err(|_| unusable("is not a JSON object"))?;
    let issues: Vec<Box<RawValue>> = match doc.get(&hub.search.items) {
        Some(list) => {
            serde_json::from_str(list.get()).map_err(|_| unusable(&format!("holds no {:?} list", hub.search.items)))?
        }
        None => return Err(unusable(&format!("holds no {:?} list", hub.search.items))),
    };
    if issues.len() > size {
        // More than asked for: not an answer to this request.
        return Err(unusable(&format!("holds {} issues for a page of {size}", issues.len())));
    }
    let member = |name: &str| doc.get(name).map(|v| v.get());
    let number = |name: &str| member(name).and_then(|v| v.parse::<u64>().ok());
    let complete = match paging {
        Paging::Token => {
            let token = member("nextPageToken").filter(|t| !matches!(*t, "null" | "\"\""));
            match member("isLast") {
                Some("true") => true,
                Some("false") => false,
                _ => token.is_none(),
            }
        }
        Paging::Offset => match number("total") {
            Some(total) => total <= number("startAt").unwrap_or(0) + issues.len() as u64,
            None => issues.len() < size,
        },
    };
    Ok(PollPage { issues, complete, date_ms: answer.date_ms, bytes: answer.body.len() })
}
