//! The address a request comes from, for the per-source budgets: the TCP
//! peer, or, behind a configured number of trusted reverse proxies, the
//! entry of `X-Forwarded-For` the outermost trusted proxy wrote. Entries
//! further left are written by the client and never trusted.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

/// The source address of a request from `peer` that passed through
/// `trusted_proxies` proxies, each appending to `X-Forwarded-For`.
pub fn source_address(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trusted_proxies: usize,
) -> Option<IpAddr> {
    if trusted_proxies == 0 {
        return peer.map(|p| p.ip());
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    // Fewer entries than proxies: the leftmost was still written by one of
    // them (the request entered at an inner proxy).
    let Some(entry) = entries
        .len()
        .checked_sub(trusted_proxies)
        .and_then(|i| entries.get(i))
        .or(entries.first())
    else {
        return peer.map(|p| p.ip());
    };
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or(peer.map(|p| p.ip()))
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

    fn source(values: &[&str], proxies: usize) -> String {
        source_address(&headers(values), Some(PEER.parse().unwrap()), proxies)
            .unwrap()
            .to_string()
    }

    #[test]
    fn the_header_is_ignored_unless_proxies_are_trusted() {
        assert_eq!(source(&["1.2.3.4"], 0), "10.9.9.9");
    }

    #[test]
    fn the_entry_of_the_outermost_trusted_proxy_counts() {
        // Client-written entries on the left cannot choose the source.
        assert_eq!(source(&["6.6.6.6, 1.2.3.4"], 1), "1.2.3.4");
        assert_eq!(source(&["6.6.6.6, 1.2.3.4", "192.168.1.1"], 2), "1.2.3.4");
        assert_eq!(source(&["1.2.3.4"], 3), "1.2.3.4");
        assert_eq!(source(&["[2001:db8::1]:443"], 1), "2001:db8::1");
        // No header, or garbage where the proxy's entry should be: the peer.
        assert_eq!(source(&[], 1), "10.9.9.9");
        assert_eq!(source(&["6.6.6.6, garbage"], 1), "10.9.9.9");
    }

    proptest! {
        #[test]
        fn any_header_gives_an_address_without_panicking(value in "[ -~]{0,200}", proxies in 0usize..4) {
            if let Ok(v) = value.parse() {
                let mut headers = HeaderMap::new();
                headers.insert("x-forwarded-for", v);
                prop_assert!(source_address(&headers, Some(PEER.parse().unwrap()), proxies).is_some());
            }
        }
    }
}
