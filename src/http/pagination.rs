//! `page`/`limit` parameters and the `links` object every list answers with, written once: a list handler
//! takes [`Paging`] (the checked page and what its links need) and answers `paging.links(total)`, or
//! `paging.slice(all)` for a list it holds whole in memory.

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use crate::store::PageRequest;

/// Default page size when `limit` is absent.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest `limit` of ordinary lists (Vantage's documented maximum).
pub const MAX_LIMIT: u32 = 1000;

/// The pagination part of a list's query string (plus `q`, which some lists use to search).
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    pub page: Option<u32>,
    pub limit: Option<u32>,
    /// Search term, for lists that take one (workspaces: by name).
    pub q: Option<String>,
    /// Invoices of one managed account.
    pub managed_account_token: Option<String>,
    /// Reports, folders and saved filters of one workspace.
    pub workspace_token: Option<String>,
    /// Cost reports in one folder.
    pub folder_token: Option<String>,
    /// Folders of one type.
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

impl ListParams {
    /// Checks page ≥ 1 and 1 ≤ limit ≤ `max`.
    pub fn page_request(&self, max: u32) -> Result<PageRequest, ApiError> {
        let page = self.page.unwrap_or(1);
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT.min(max));
        let mut errors = Vec::new();
        if page == 0 {
            errors.push("page must be at least 1".to_string());
        }
        if limit == 0 || limit > max {
            errors.push(format!("limit must be between 1 and {max}"));
        }
        if errors.is_empty() {
            Ok(PageRequest { page, limit })
        } else {
            Err(ApiError::BadRequest(errors))
        }
    }
}

/// Where a list's links point: the configured public URL or the Host header, and the request's own path and
/// query (as the client sent them, before any nesting stripped a prefix). For lists that read their page
/// with the rest of their query (costs, discovery); the others take [`Paging`].
#[derive(Debug, Clone)]
pub struct ListUrl {
    base: String,
    uri: Uri,
}

impl FromRequestParts<super::AppState> for ListUrl {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &super::AppState) -> Result<Self, Self::Rejection> {
        let uri = parts.extensions.get::<OriginalUri>().map(|o| o.0.clone()).unwrap_or_else(|| parts.uri.clone());
        Ok(ListUrl { base: base_url(state.public_url.as_deref(), &parts.headers), uri })
    }
}

impl ListUrl {
    /// The request's query string.
    pub fn query(&self) -> &str {
        self.uri.query().unwrap_or_default()
    }

    /// The links of `page` of a list of `total` items.
    pub fn links(&self, page: PageRequest, total: i64) -> Links {
        Links::new(&self.base, &self.uri, page, total)
    }

    /// `page` of a list held whole, and its links.
    pub fn slice<T>(&self, page: PageRequest, all: Vec<T>) -> (Vec<T>, Links) {
        let links = self.links(page, all.len() as i64);
        let skip = usize::try_from(page.offset()).unwrap_or(usize::MAX);
        (all.into_iter().skip(skip).take(page.limit as usize).collect(), links)
    }
}

/// A list request's page (`page` ≥ 1, 1 ≤ `limit` ≤ `MAX`, checked: a 400 naming both otherwise) and where
/// its links point.
#[derive(Debug, Clone)]
pub struct Paging<const MAX: u32 = MAX_LIMIT> {
    pub page: PageRequest,
    pub url: ListUrl,
}

impl<const MAX: u32> FromRequestParts<super::AppState> for Paging<MAX> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &super::AppState) -> Result<Self, Self::Rejection> {
        let url = match ListUrl::from_request_parts(parts, state).await {
            Ok(url) => url,
            Err(never) => match never {},
        };
        let mut params = ListParams::default();
        let mut errors = Vec::new();
        for (k, v) in form_urlencoded::parse(url.query().as_bytes()) {
            let slot = match k.as_ref() {
                "page" => &mut params.page,
                "limit" => &mut params.limit,
                _ => continue,
            };
            match v.trim().parse::<u32>() {
                Ok(n) => *slot = Some(n),
                Err(_) => errors.push(format!("{k} must be a whole number, got {v:?}")),
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::BadRequest(errors));
        }
        Ok(Paging { page: params.page_request(MAX)?, url })
    }
}

impl<const MAX: u32> Paging<MAX> {
    /// The links of this page of a list of `total` items.
    pub fn links(&self, total: i64) -> Links {
        self.url.links(self.page, total)
    }

    /// This page of a list held whole, and its links.
    pub fn slice<T>(&self, all: Vec<T>) -> (Vec<T>, Links) {
        self.url.slice(self.page, all)
    }
}

/// Vantage's `links`: absolute URLs; `next`/`prev` null at the ends.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Links {
    #[serde(rename = "self")]
    pub self_: String,
    pub first: String,
    pub next: Option<String>,
    pub last: String,
    pub prev: Option<String>,
}

impl Links {
    /// Links for `page` of a list of `total` items, keeping the request's other query parameters.
    pub fn new(base_url: &str, uri: &Uri, page: PageRequest, total: i64) -> Links {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let url_for = |n: u32| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &pairs {
                q.append_pair(k, v);
            }
            q.append_pair("page", &n.to_string());
            format!("{base_url}{}?{}", uri.path(), q.finish())
        };
        let limit = i64::from(page.limit);
        let last = u32::try_from(((total + limit - 1) / limit).max(1)).unwrap_or(u32::MAX);
        Links {
            self_: format!("{base_url}{uri}"),
            first: url_for(1),
            next: (page.page < last).then(|| url_for(page.page + 1)),
            last: url_for(last),
            prev: (page.page > 1).then(|| url_for(page.page - 1)),
        }
    }
}

/// The scheme and host links start with: the configured public URL, or `http://` + the Host header.
pub fn base_url(public_url: Option<&str>, headers: &HeaderMap) -> String {
    match public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            // Only a plain `host[:port]` is used: a Host header carrying a path, credentials or a query could
            // otherwise turn links costd hands out into links to somewhere else. Set --public-url in production.
            let host = headers
                .get(axum::http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| is_authority(h))
                .unwrap_or("localhost");
            format!("http://{host}")
        }
    }
}

/// Whether `text` is a bare host (name, IPv4 or bracketed IPv6) with an optional port.
fn is_authority(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 255
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(query: &str, page: u32, limit: u32, total: i64) -> Links {
        let uri: Uri = format!("/v2/billing_rules{query}").parse().unwrap();
        Links::new("http://h", &uri, PageRequest { page, limit }, total)
    }

    #[test]
    fn links_take_the_host_header_only_when_it_is_a_bare_host() {
        let with_host = |host: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(axum::http::header::HOST, host.parse().unwrap());
            base_url(None, &headers)
        };
        assert_eq!(with_host("costs.example.com:8080"), "http://costs.example.com:8080");
        assert_eq!(with_host("[::1]:8080"), "http://[::1]:8080");
        for bad in ["evil.example/x?", "user@evil.example", "evil.example#", "a b"] {
            assert_eq!(with_host(bad), "http://localhost", "{bad}");
        }
        assert_eq!(base_url(Some("https://costs.example.com/"), &HeaderMap::new()), "https://costs.example.com");
    }

    #[test]
    fn the_middle_page_links_both_ways_and_keeps_other_params() {
        let l = links("?limit=2&page=2", 2, 2, 5);
        assert_eq!(l.self_, "http://h/v2/billing_rules?limit=2&page=2");
        assert_eq!(l.first, "http://h/v2/billing_rules?limit=2&page=1");
        assert_eq!(l.next.as_deref(), Some("http://h/v2/billing_rules?limit=2&page=3"));
        assert_eq!(l.prev.as_deref(), Some("http://h/v2/billing_rules?limit=2&page=1"));
        assert_eq!(l.last, "http://h/v2/billing_rules?limit=2&page=3");
    }

    #[test]
    fn an_empty_list_has_one_page_and_no_next() {
        let l = links("", 1, 100, 0);
        assert_eq!(l.last, "http://h/v2/billing_rules?page=1");
        assert!(l.next.is_none() && l.prev.is_none());
    }

    #[test]
    fn page_zero_and_oversized_limits_are_rejected() {
        let p = ListParams { page: Some(0), limit: Some(1001), ..Default::default() };
        match p.page_request(MAX_LIMIT) {
            Err(ApiError::BadRequest(e)) => assert_eq!(e.len(), 2),
            other => panic!("{other:?}"),
        }
    }
}
