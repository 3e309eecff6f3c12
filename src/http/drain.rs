//! Error answers a client can read: when costd refuses a request before reading its whole body (an upload to
//! an unknown integration, a missing token, a full slot, a file past the limit), the rest of the body is read
//! and dropped, up to [`MAX_DRAIN_BYTES`] within [`DRAIN_TIME`], before the answer goes out.
//!
//! Why: closing a connection while the client is still writing makes Node's `fetch` (Vantage's TypeScript
//! client) fail with `EPIPE` ("fetch failed") and never show the status. A body past the bound still gets
//! the connection closed: reading gigabytes to be polite would be the attack.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body::Body as _;

/// Most bytes of an unread body read and dropped before an error answer.
pub const MAX_DRAIN_BYTES: u64 = 64 * 1024 * 1024;
/// Longest time spent doing so.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

/// A request body that hands what is left of it back when it is dropped before its end.
struct Returned {
    body: Option<Body>,
    left: Arc<Mutex<Option<Body>>>,
}

impl http_body::Body for Returned {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        match self.body.as_mut() {
            Some(body) => {
                let polled = Pin::new(body).poll_frame(cx);
                if let Poll::Ready(None) = polled {
                    self.body = None; // read to its end: nothing to hand back
                }
                polled
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.as_ref().map(|b| b.size_hint()).unwrap_or_else(|| http_body::SizeHint::with_exact(0))
    }
}

impl Drop for Returned {
    fn drop(&mut self) {
        if let Some(body) = self.body.take().filter(|b| !b.is_end_stream()) {
            *self.left.lock().unwrap_or_else(|e| e.into_inner()) = Some(body);
        }
    }
}

/// The middleware: runs the request, and before an error answer reads what its handler left of the body.
pub async fn unread_body(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let left = Arc::new(Mutex::new(None));
    let body = Body::new(Returned { body: Some(body), left: left.clone() });
    let response = next.run(Request::from_parts(parts, body)).await;
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        let rest = left.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(rest) = rest {
            let read = tokio::time::timeout(DRAIN_TIME, drain(rest)).await;
            tracing::debug!(?read, "read the unread body of a refused request");
        }
    }
    response
}

/// Reads `body` to its end or to [`MAX_DRAIN_BYTES`]: the bytes read, or `None` past the bound.
async fn drain(body: Body) -> Option<u64> {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut read = 0u64;
    while let Some(chunk) = stream.next().await {
        read += chunk.ok()?.len() as u64;
        if read > MAX_DRAIN_BYTES {
            return None;
        }
    }
    Some(read)
}
