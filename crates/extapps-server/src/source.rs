//! The address a request comes from, for the per-source budgets: the TCP
//! peer, or, behind a configured number of trusted reverse proxies, the
//! entry of `X-Forwarded-For` the outermost trusted proxy wrote. Entries
//! further left are written by the client and never trusted. Worked out once
//! per request, for gRPC and OAuth alike ([`attach`]).

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::service::SourceKey;

/// The budget key of a request from `peer` that passed through
/// `trusted_proxies` proxies, each appending to `X-Forwarded-For`. A request
/// without the header is the peer's own; a header too short or unreadable
/// where the trusted proxy's entry should be counts as
/// [`SourceKey::UNKNOWN`], never as the proxy (whose budget every client
/// behind it shares).
pub fn source_key(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trusted_proxies: usize,
) -> Option<SourceKey> {
    let from_peer = peer.map(|p| SourceKey::from(p.ip()));
    let Some(hops) = trusted_proxies.checked_sub(1) else {
        return from_peer;
    };
    let values = headers.get_all("x-forwarded-for");
    if values.iter().next().is_none() {
        return from_peer;
    }
    // From the right: the last proxy's entry first. Read as bytes, so a
    // client's non-ASCII byte cannot discard the proxies' entries.
    let entry = values
        .iter()
        .rev()
        .flat_map(|value| value.as_bytes().rsplit(|b| *b == b','))
        .nth(hops);
    Some(
        entry
            .and_then(parse_entry)
            .map_or(SourceKey::UNKNOWN, SourceKey::from),
    )
}

/// The layer that puts each request's [`SourceKey`] (if it has one) into
/// its extensions, where the gRPC handlers and the OAuth endpoints read it.
/// It changes the request in place: no boxed future per call, as a
/// middleware function would cost.
pub fn attach(
    trusted_proxies: usize,
) -> tower::util::MapRequestLayer<impl Fn(axum::extract::Request) -> axum::extract::Request + Clone>
{
    tower::util::MapRequestLayer::new(move |mut request: axum::extract::Request| {
        let peer = request
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        if let Some(source) = source_key(request.headers(), peer, trusted_proxies) {
            request.extensions_mut().insert(source);
        }
        request
    })
}

fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        headers
    }

    const PEER: &str = "10.9.9.9:4000";

    fn source(values: &[&str], proxies: usize) -> SourceKey {
        source_key(&headers(values), Some(PEER.parse().unwrap()), proxies).unwrap()
    }

    fn ip(text: &str) -> SourceKey {
        SourceKey::from(text.parse::<IpAddr>().unwrap())
    }

    #[test]
    fn the_header_is_ignored_unless_proxies_are_trusted() {
        assert_eq!(source(&["1.2.3.4"], 0), ip("10.9.9.9"));
    }

    #[test]
    fn the_entry_of_the_outermost_trusted_proxy_counts() {
        // Client-written entries on the left cannot choose the source.
        assert_eq!(source(&["6.6.6.6, 1.2.3.4"], 1), ip("1.2.3.4"));
        assert_eq!(
            source(&["6.6.6.6, 1.2.3.4", "192.168.1.1"], 2),
            ip("1.2.3.4")
        );
        assert_eq!(source(&["[2001:db8::1]:443"], 1), ip("2001:db8::1"));
        // No header: the request is the peer's own.
        assert_eq!(source(&[], 1), ip("10.9.9.9"));
        // Too short, or garbage where the proxy's entry should be: unknown,
        // never the proxy's address.
        assert_eq!(source(&["1.2.3.4"], 3), SourceKey::UNKNOWN);
        assert_eq!(source(&["6.6.6.6, garbage"], 1), SourceKey::UNKNOWN);
    }

    #[test]
    fn a_client_byte_that_is_not_ascii_cannot_hide_the_proxy_entry() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"\x80\xff, 1.2.3.4").unwrap(),
        );
        assert_eq!(
            source_key(&headers, Some(PEER.parse().unwrap()), 1),
            Some(ip("1.2.3.4"))
        );
    }

    proptest! {
        #[test]
        fn any_header_gives_an_address_without_panicking(value in "[ -~]{0,200}", proxies in 0usize..4) {
            if let Ok(v) = value.parse() {
                let mut headers = HeaderMap::new();
                headers.insert("x-forwarded-for", v);
                prop_assert!(source_key(&headers, Some(PEER.parse().unwrap()), proxies).is_some());
            }
        }
    }
}
