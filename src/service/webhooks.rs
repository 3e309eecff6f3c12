//! Calls to webhook URLs a tenant gave (alerts' recipients), made so that a tenant cannot turn costd into a
//! way into the operator's network:
//!
//! - only `http`/`https`; the host is resolved here and every address it resolves to must be public
//!   (not loopback, private, link-local (the cloud metadata service), unique-local, CGNAT, multicast or
//!   unspecified), unless the operator allowed that host with `--allow-webhook-host`;
//! - the request goes to exactly the addresses checked (the resolution is pinned, so a name that changes
//!   between the check and the call cannot slip in another address), through no proxy;
//! - redirects are not followed (a 3xx is a failed delivery), a call is cut off after its timeout, and at
//!   most [`MAX_RESPONSE_BYTES`] of the answer is read (for the error message).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Most bytes of a receiver's answer that are read.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Whether an address is one a tenant's webhook may reach without the operator's leave.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            let v4 = |hi: u16, lo: u16| {
                IpAddr::V4(std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8))
            };
            // IPv6 forms that carry an IPv4 address reach it through a translator or tunnel: judged by it.
            // IPv4-compatible `::a.b.c.d` (deprecated, still routed by some stacks):
            if s[..6] == [0; 6] && !(v6.is_loopback() || v6.is_unspecified()) {
                return is_public(v4(s[6], s[7]));
            }
            // NAT64's well-known prefix `64:ff9b::/96`:
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_public(v4(s[6], s[7]));
            }
            // A local-use NAT64 prefix (`64:ff9b:1::/48`) translates into the operator's own network, and
            // Teredo (`2001::/32`) hides its addresses: never public.
            if (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) || (s[0] == 0x2001 && s[1] == 0) {
                return false;
            }
            // 6to4 (`2002::/16`): the IPv4 address in bits 16 to 48.
            if s[0] == 0x2002 {
                return is_public(v4(s[1], s[2]));
            }
            let first = s[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && v6.segments()[1] == 0x0db8))
        }
    }
}

/// Why a webhook call did not deliver.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL may not be called (never retried: it will not change by waiting).
    #[error("{0}")]
    Refused(String),
    /// The call failed or the receiver did not accept it (retried).
    #[error("{0}")]
    Failed(String),
}

/// Makes webhook calls under the rules above.
#[derive(Debug, Clone)]
pub struct WebhookClient {
    /// `host` or `host:port` entries the operator allowed to be private.
    allowed: Vec<String>,
    timeout: Duration,
}

impl WebhookClient {
    pub fn new(allowed: Vec<String>, timeout: Duration) -> WebhookClient {
        WebhookClient { allowed: allowed.into_iter().map(|h| h.trim().to_ascii_lowercase()).collect(), timeout }
    }

    fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        self.allowed.iter().any(|a| {
            let a = a.trim_start_matches('[').replace("]:", ":");
            a == host || a == format!("{host}:{port}") || a.trim_end_matches(']') == host
        })
    }

    /// The addresses `url` may be called at (resolved and checked).
    pub async fn addresses(&self, url: &url::Url) -> Result<Vec<SocketAddr>, WebhookError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(WebhookError::Refused(format!("{}: only http and https webhooks are called", url.scheme())));
        }
        let host = url.host_str().ok_or_else(|| WebhookError::Refused("the webhook URL has no host".into()))?;
        let port = url.port_or_known_default().unwrap_or(443);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|e| WebhookError::Failed(format!("{host} does not resolve: {e}")))?
                .collect(),
        };
        if addresses.is_empty() {
            return Err(WebhookError::Failed(format!("{host} resolves to no address")));
        }
        if !self.allows(host, port) && addresses.iter().any(|a| !is_public(a.ip())) {
            // The address a name resolves to stays unsaid: a refusal must not map the operator's network.
            return Err(WebhookError::Refused(format!(
                "{host} is or resolves to a private, loopback or link-local address; the operator can allow the \
                 host with --allow-webhook-host"
            )));
        }
        Ok(addresses)
    }

    /// POSTs `body` (JSON) with `headers` to `url`; Ok once the receiver answered 2xx.
    pub async fn post(&self, url: &url::Url, headers: &[(&str, String)], body: Vec<u8>) -> Result<(), WebhookError> {
        let addresses = self.addresses(url).await?;
        let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .resolve_to_addrs(&host, &addresses)
            .build()
            .map_err(|e| WebhookError::Failed(format!("no HTTP client: {e}")))?;
        let mut request = client.post(url.clone()).header("content-type", "application/json").body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let mut response = request.send().await.map_err(|e| {
            let what = if e.is_timeout() { "timed out".to_string() } else { without_url(&e) };
            WebhookError::Failed(format!("{host}: {what}"))
        })?;
        let status = response.status();
        // Read (a bounded part of) the answer, so the connection ends cleanly and an error can quote it.
        let mut answer = Vec::new();
        while answer.len() < MAX_RESPONSE_BYTES {
            match tokio::time::timeout(self.timeout, response.chunk()).await {
                Ok(Ok(Some(chunk))) => {
                    answer.extend_from_slice(&chunk[..chunk.len().min(MAX_RESPONSE_BYTES - answer.len())])
                }
                _ => break,
            }
        }
        if status.is_success() {
            return Ok(());
        }
        let quoted: String = String::from_utf8_lossy(&answer).chars().take(200).collect();
        if status.is_redirection() {
            return Err(WebhookError::Failed(format!("{host} answered {status}; webhook redirects are not followed")));
        }
        Err(WebhookError::Failed(format!("{host} answered {status}: {}", quoted.trim())))
    }
}

/// A reqwest error's text without its URL (a webhook URL's path is its secret).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "the webhook");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The signature header of a generic webhook: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
/// A receiver recomputes it with its signing secret and rejects old timestamps (replays).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for inside in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::",
            // NAT64, 6to4 and IPv4-compatible forms of inside addresses; local-use NAT64 and Teredo.
            "64:ff9b::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::127.0.0.1",
            "2002:a9fe:a9fe::1",
            "2002:0a00:0001::",
            "2002:7f00:1::",
            "::10.0.0.1",
            "::169.254.169.254",
            "64:ff9b:1::8.8.8.8",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(!is_public(inside.parse().unwrap()), "{inside}");
        }
        for outside in
            ["8.8.8.8", "52.95.110.1", "2606:4700::1111", "100.128.0.1", "64:ff9b::8.8.8.8", "2002:0808:0808::1"]
        {
            assert!(is_public(outside.parse().unwrap()), "{outside}");
        }
    }

    #[tokio::test]
    async fn private_hosts_are_refused_unless_allowed() {
        let client = WebhookClient::new(vec![], Duration::from_secs(1));
        for url in ["http://127.0.0.1:9/x", "http://169.254.169.254/latest", "http://localhost:8080/", "http://[::1]/"]
        {
            let e = client.addresses(&url::Url::parse(url).unwrap()).await.unwrap_err();
            assert!(matches!(&e, WebhookError::Refused(m) if m.contains("--allow-webhook-host")), "{url}: {e}");
        }
        // A name's refusal does not say what it resolves to.
        let e = client.addresses(&url::Url::parse("http://localhost:8080/").unwrap()).await.unwrap_err();
        assert!(!e.to_string().contains("127.0.0.1") && !e.to_string().contains("::1"), "{e}");
        for url in ["http://[64:ff9b::a9fe:a9fe]/", "http://[2002:a9fe:a9fe::1]/", "http://[::a9fe:a9fe]/"] {
            let e = client.addresses(&url::Url::parse(url).unwrap()).await.unwrap_err();
            assert!(matches!(&e, WebhookError::Refused(_)), "{url}: {e}");
        }
        assert!(matches!(
            client.addresses(&url::Url::parse("ftp://example.com/").unwrap()).await,
            Err(WebhookError::Refused(_))
        ));
        let allowed = WebhookClient::new(vec!["127.0.0.1:9".into(), "localhost".into()], Duration::from_secs(1));
        assert!(allowed.addresses(&url::Url::parse("http://127.0.0.1:9/x").unwrap()).await.is_ok());
        assert!(allowed.addresses(&url::Url::parse("http://localhost:8080/").unwrap()).await.is_ok());
        assert!(allowed.addresses(&url::Url::parse("http://127.0.0.1:10/x").unwrap()).await.is_err(), "port listed");
    }

    #[test]
    fn a_signature_covers_the_timestamp_and_the_body() {
        let s = signature("whsec_test", 1_700_000_000, b"{\"a\":1}");
        assert!(s.starts_with("t=1700000000,v1="), "{s}");
        assert_eq!(s.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(s, signature("whsec_test", 1_700_000_001, b"{\"a\":1}"));
        assert_ne!(s, signature("whsec_test", 1_700_000_000, b"{\"a\":2}"));
        assert_ne!(s, signature("whsec_other", 1_700_000_000, b"{\"a\":1}"));
    }
}
