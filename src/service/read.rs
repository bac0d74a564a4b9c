//! Reading instances: one, by id or by its `Element` token, and a page of
//! the organization's list. Only the caller's organization is ever seen: an
//! instance of another one is `NotFound` by id and `TokenRefused` by token.

use crate::app::App;
use crate::domain::catalog::Element;
use crate::domain::instance::{InstanceRecord, InstanceSummary, Principal};
use crate::domain::listing::{Cursor, ListQuery};
use crate::domain::token::{InstanceId, Token};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such instance in the caller's organization.
    #[error("no such instance")]
    NotFound,
    /// A search that matched nothing.
    #[error("no instance matches")]
    NoMatch,
    /// The `Element` token names no live instance of the caller's
    /// organization (wrong, deleted, another organization's, or not the
    /// instance the path names).
    #[error("the element token names no live instance of the organization")]
    TokenRefused,
    /// The instance the token names is disabled.
    #[error("the instance the token names is disabled")]
    Disabled,
}

/// The live instance of the caller's organization an `Element` token names:
/// one strongly consistent read and a constant-time digest comparison.
pub async fn by_token(app: &App, principal: &Principal, token: &Token) -> Result<InstanceRecord, ReadError> {
    match app.store.instance_by_token(token).await? {
        Some(record) if record.summary.organization == principal.organization => Ok(record),
        _ => Err(ReadError::TokenRefused),
    }
}

/// The instance a call names: by `id` (of the caller's organization, else
/// `NotFound`), by `token` (else `TokenRefused`), or by both (the token must
/// name that id). A call without either names nothing: `TokenRefused`.
pub async fn resolve(
    app: &App,
    principal: &Principal,
    id: Option<InstanceId>,
    token: Option<&Token>,
) -> Result<InstanceRecord, ReadError> {
    match (id, token) {
        (_, Some(token)) => {
            let record = by_token(app, principal, token).await?;
            if id.is_some_and(|id| id != record.summary.id) {
                return Err(ReadError::TokenRefused);
            }
            Ok(record)
        }
        (Some(id), None) => app
            .store
            .get_instance(id)
            .await?
            .filter(|r| r.summary.organization == principal.organization)
            .ok_or(ReadError::NotFound),
        (None, None) => Err(ReadError::TokenRefused),
    }
}

/// `GET /instances/{id}` (`element`: `/elements/{keyOrId}/instances/{id}`;
/// no `id`: the instance the token names). A token, when given, must name
/// this very instance, and it must not be disabled.
pub async fn one(
    app: &App,
    principal: &Principal,
    id: Option<InstanceId>,
    token: Option<&Token>,
    element: Option<&Element>,
) -> Result<InstanceSummary, ReadError> {
    Ok(Target::new(id, token, element).read(app, principal).await?.summary)
}

/// How a call names the instance it acts on, and the rules of that naming:
/// read once before a change, and again, with the same rules, each time the
/// change's write finds that another landed first.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub id: Option<InstanceId>,
    pub token: Option<&'a Token>,
    /// Under `/elements/{keyOrId}`: the instance must be of that element
    /// (else `NotFound`).
    pub element: Option<&'a Element>,
    /// Enabling is the one call a disabled instance's token may make.
    pub enabling: bool,
}

impl<'a> Target<'a> {
    pub fn new(id: Option<InstanceId>, token: Option<&'a Token>, element: Option<&'a Element>) -> Self {
        Target { id, token, element, enabling: false }
    }

    /// The instance, [`resolve`]d; not disabled when named by its token
    /// (unless enabling); of the path's element.
    pub async fn read(&self, app: &App, principal: &Principal) -> Result<InstanceRecord, ReadError> {
        let record = resolve(app, principal, self.id, self.token).await?;
        if self.token.is_some() && record.summary.disabled && !self.enabling {
            return Err(ReadError::Disabled);
        }
        if self.element.is_some_and(|e| e.info.key != record.summary.element_key) {
            return Err(ReadError::NotFound);
        }
        Ok(record)
    }
}

/// A page of the organization's instances, newest first.
pub struct Page {
    pub items: Vec<InstanceSummary>,
    pub next: Option<Cursor>,
}

/// `GET /instances` (`element`: `/elements/{keyOrId}/instances`). A token,
/// when given, is checked like any (`TokenRefused`, `Disabled`). A search
/// that matches nothing at all is `NoMatch`; an unfiltered empty list is an
/// empty page.
pub async fn list(
    app: &App,
    principal: &Principal,
    token: Option<&Token>,
    query: &ListQuery,
    element: Option<&Element>,
) -> Result<Page, ReadError> {
    if let Some(token) = token {
        if by_token(app, principal, token).await?.summary.disabled {
            return Err(ReadError::Disabled);
        }
    }
    let mut filter = query.filter.clone();
    filter.element_key = element.map(|e| e.info.key.clone());
    let (items, next) =
        app.store.list_page(&principal.organization, &filter, query.page_size, query.after.as_ref()).await?;
    if items.is_empty() && next.is_none() && query.after.is_none() && query.filter.is_search() {
        return Err(ReadError::NoMatch);
    }
    Ok(Page { items, next })
}
