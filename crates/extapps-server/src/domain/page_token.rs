//! Opaque, tamper-checked page tokens (AIP-158) over keyset pagination.
//!
//! A token carries the last key of the page it follows and an HMAC over that
//! key and the query it belongs to, under a key of the ring every replica
//! shares (named by its ID in the token). An altered token, or one replayed
//! against another query, is refused.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::error::{Error, FieldViolation};
use super::key_ring::{KEY_ID_BYTES, KeyId, PurposeKeys};

const MAC_BYTES: usize = 16;
const VERSION: u8 = 2;

/// Default and largest page sizes.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 1000;

/// Reads `page_size`: negative is invalid, 0 is the default, above the maximum
/// is the maximum.
pub fn page_size(value: i32) -> Result<u64, Error> {
    checked_page_size(value).map_err(|v| Error::invalid(vec![v]))
}

/// [`page_size`], for a request checked whole.
pub fn checked_page_size(value: i32) -> Result<u64, FieldViolation> {
    match u64::try_from(value) {
        Err(_) => Err(FieldViolation::new("page_size", "must not be negative")),
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(n) => Ok(n.min(MAX_PAGE_SIZE)),
    }
}

/// The error for a token this server did not issue for this query.
fn invalid_token() -> Error {
    Error::invalid(vec![FieldViolation::new(
        "page_token",
        "is not a page token of this query: pass back `next_page_token` unchanged, with the same request fields",
    )])
}

/// The key a page token carries: the last key of the page it follows.
pub trait Cursor: Sized {
    fn to_bytes(&self) -> Vec<u8>;
    /// `None` for bytes this kind of key never encodes to.
    fn from_bytes(bytes: &[u8]) -> Option<Self>;
}

/// A text key (a display name, a client ID).
impl Cursor for String {
    fn to_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

/// A numeric key (a sequence number).
impl Cursor for i64 {
    fn to_bytes(&self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 8]>::try_from(bytes).ok().map(i64::from_be_bytes)
    }
}

/// One page of a keyset listing, as asked for: at most `limit` rows after
/// the key `after` (`None`: from the start), of the listing `query` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest<C> {
    query: String,
    pub limit: u64,
    pub after: Option<C>,
}

impl<C: Cursor> PageRequest<C> {
    /// How many rows to read: one more than the page holds, to tell whether
    /// another page follows.
    pub fn rows_to_read(&self) -> u64 {
        self.limit.saturating_add(1)
    }
}

/// Signs and checks page tokens.
#[derive(Clone)]
pub struct PageTokens {
    keys: PurposeKeys,
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokens([REDACTED])")
    }
}

impl PageTokens {
    pub fn new(keys: PurposeKeys) -> Self {
        Self { keys }
    }

    /// The HMAC state over (version, query, cursor) under `key`, before
    /// finalizing.
    fn mac(key: &[u8; 32], query: &str, cursor: &[u8]) -> Result<Hmac<Sha256>, Error> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| Error::Internal)?;
        mac.update(&[VERSION]);
        mac.update(&(query.len() as u64).to_be_bytes());
        mac.update(query.as_bytes());
        mac.update(cursor);
        Ok(mac)
    }

    /// A token for the page after `cursor` of `query`.
    pub fn encode(&self, query: &str, cursor: &[u8]) -> Result<String, Error> {
        let (id, key) = self.keys.sealing();
        let mut bytes = Vec::with_capacity(1 + KEY_ID_BYTES + cursor.len() + MAC_BYTES);
        bytes.push(VERSION);
        bytes.extend_from_slice(&id);
        bytes.extend_from_slice(cursor);
        let tag = Self::mac(key, query, cursor)?.finalize().into_bytes();
        bytes.extend_from_slice(tag.get(..MAC_BYTES).ok_or(Error::Internal)?);
        Ok(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The page `token` asks for of the listing `query` names (every
    /// parameter that shapes the listing goes into `query`, so a token is
    /// refused for any other), `limit` rows long.
    pub fn request<C: Cursor>(
        &self,
        query: String,
        limit: u64,
        token: &str,
    ) -> Result<PageRequest<C>, Error> {
        let after = match self.decode(&query, token)? {
            None => None,
            Some(bytes) => Some(C::from_bytes(&bytes).ok_or_else(invalid_token)?),
        };
        Ok(PageRequest {
            query,
            limit,
            after,
        })
    }

    /// The page of `rows` (read with [`PageRequest::rows_to_read`]) and the
    /// token of the next page, empty if this is the last: the next page
    /// starts after the key of this page's last row.
    pub fn page<T, C: Cursor>(
        &self,
        request: &PageRequest<C>,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> C,
    ) -> Result<(Vec<T>, String), Error> {
        let limit = usize::try_from(request.limit).unwrap_or(usize::MAX);
        if rows.len() <= limit {
            return Ok((rows, String::new()));
        }
        rows.truncate(limit);
        let next = match rows.last() {
            Some(last) => self.encode(&request.query, &key(last).to_bytes())?,
            None => String::new(),
        };
        Ok((rows, next))
    }

    /// The cursor in `token`, if it is one we issued for `query`. An empty
    /// token means the first page.
    pub fn decode(&self, query: &str, token: &str) -> Result<Option<Vec<u8>>, Error> {
        if token.is_empty() {
            return Ok(None);
        }
        let invalid = invalid_token;
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        let [version, rest @ ..] = bytes.as_slice() else {
            return Err(invalid());
        };
        let Some((id, rest)) = rest.split_first_chunk::<KEY_ID_BYTES>() else {
            return Err(invalid());
        };
        if *version != VERSION || rest.len() < MAC_BYTES {
            return Err(invalid());
        }
        let key = self.keys.get(id as &KeyId).ok_or_else(invalid)?;
        let (cursor, mac) = rest.split_at(rest.len() - MAC_BYTES);
        // Constant-time comparison of the truncated tag.
        Self::mac(key, query, cursor)?
            .verify_truncated_left(mac)
            .map_err(|_| invalid())?;
        Ok(Some(cursor.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tokens() -> PageTokens {
        PageTokens::new(PurposeKeys::fixed([7; 32]))
    }

    #[test]
    fn round_trips_for_the_same_query_only() {
        let t = tokens().encode("apps:acme", b"Billing").unwrap();
        assert_eq!(
            tokens().decode("apps:acme", &t).unwrap().unwrap(),
            b"Billing"
        );
        assert!(tokens().decode("apps:other", &t).is_err());
        assert!(
            PageTokens::new(PurposeKeys::fixed([8; 32]))
                .decode("apps:acme", &t)
                .is_err()
        );
    }

    #[test]
    fn numeric_cursors_round_trip_and_refuse_other_lengths() {
        let request = tokens().request::<i64>("audit".into(), 2, "").unwrap();
        assert_eq!((request.after, request.rows_to_read()), (None, 3));
        let (page, next) = tokens().page(&request, vec![9, 8, 7], |n| *n).unwrap();
        assert_eq!(page, vec![9, 8]);
        let second = tokens().request::<i64>("audit".into(), 2, &next).unwrap();
        assert_eq!(second.after, Some(8));
        let text = tokens().encode("audit", b"not eight").unwrap();
        assert!(tokens().request::<i64>("audit".into(), 2, &text).is_err());
    }

    #[test]
    fn page_size_rules() {
        assert!(page_size(-1).is_err());
        assert_eq!(page_size(0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(5000).unwrap(), MAX_PAGE_SIZE);
    }

    proptest! {
        #[test]
        fn any_altered_token_is_refused(cursor in proptest::collection::vec(any::<u8>(), 0..40), flip in any::<usize>(), bit in 0u8..8) {
            let t = tokens().encode("q", &cursor).unwrap();
            let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
            let i = flip % raw.len();
            raw[i] ^= 1 << bit;
            prop_assert!(tokens().decode("q", &URL_SAFE_NO_PAD.encode(raw)).is_err());
        }

        /// Text that is not a token this server made for the query is
        /// refused as `page_token`, never taken for a cursor; the empty
        /// token is the first page.
        #[test]
        fn only_issued_tokens_are_accepted(s in ".*") {
            match tokens().decode("q", &s) {
                Ok(None) => prop_assert!(s.is_empty()),
                Ok(Some(cursor)) => prop_assert_eq!(tokens().encode("q", &cursor).unwrap(), s),
                Err(e) => prop_assert_eq!(e, invalid_token()),
            }
        }

        /// Walking a keyset listing page by page with the tokens it hands
        /// out yields every row once, in order, whatever the page size.
        #[test]
        fn pages_cover_a_listing_exactly_once(
            keys in proptest::collection::btree_set("[a-z]{1,6}", 0..40),
            limit in 1u64..7,
        ) {
            let all: Vec<String> = keys.into_iter().collect();
            let mut seen = Vec::new();
            let mut token = String::new();
            for _ in 0..=all.len() {
                let request = tokens().request::<String>("q".into(), limit, &token).unwrap();
                let rows: Vec<String> = all
                    .iter()
                    .filter(|k| request.after.as_ref().is_none_or(|after| *k > after))
                    .take(request.rows_to_read() as usize)
                    .cloned()
                    .collect();
                let (page, next) = tokens().page(&request, rows, String::clone).unwrap();
                prop_assert!(page.len() as u64 <= limit);
                seen.extend(page);
                if next.is_empty() {
                    break;
                }
                token = next;
            }
            prop_assert_eq!(seen, all);
        }

        /// Any cursor comes back unchanged for the query it was made for,
        /// and for no other.
        #[test]
        fn any_cursor_round_trips_for_its_query_only(
            cursor in proptest::collection::vec(any::<u8>(), 0..64),
            query in "[a-z:]{1,20}",
            other in "[a-z:]{1,20}",
        ) {
            let t = tokens().encode(&query, &cursor).unwrap();
            prop_assert_eq!(tokens().decode(&query, &t).unwrap(), Some(cursor));
            if other != query {
                prop_assert!(tokens().decode(&other, &t).is_err());
            }
        }
    }
}
