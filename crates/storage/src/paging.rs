//! AIP-158 pagination shared by every list RPC: page sizes, and opaque page
//! tokens for keyset pagination on (time, id), stable while rows are added.

mod keys;

use folio_errors::FolioError;

use crate::db::ReadAfter;

pub use folio_errors::validate::page_size;
pub use keys::{PageTokens, PagingKeyMigration};

impl PageTokens {
    /// An opaque token for the position after the row at (`at`, `id`).
    pub fn encode(&self, at: i64, id: &str) -> String {
        self.seal(&format!("{at}:{id}"))
    }

    /// The position a token names; `None` for the first page; `INVALID_FIELD`
    /// for a token this service did not issue.
    pub fn decode(&self, token: &str) -> Result<Option<(i64, String)>, FolioError> {
        if token.is_empty() {
            return Ok(None);
        }
        let invalid = || FolioError::invalid_field("page_token", "is not a token this service issued");
        let text = self.open("page_token", token)?;
        let (at, id) = text.split_once(':').ok_or_else(invalid)?;
        Ok(Some((at.parse().map_err(|_| invalid())?, id.to_owned())))
    }

    /// [`PageTokens::encode`] for a list that may be read on a replica: the
    /// token also carries the position the page was read at least as new
    /// as, so the next page is never older (DESIGN §6).
    pub fn encode_read_after(&self, at: i64, id: &str, after: Option<ReadAfter>) -> String {
        match after {
            // `@` never starts a plain position (a number), nor is it in a WAL position.
            Some(after) => self.seal(&format!("@{after}@{at}:{id}")),
            None => self.encode(at, id),
        }
    }

    /// The position and the read-after position of a token from
    /// [`PageTokens::encode_read_after`] (or [`PageTokens::encode`]).
    #[allow(clippy::type_complexity)]
    pub fn decode_read_after(&self, token: &str) -> Result<(Option<(i64, String)>, Option<ReadAfter>), FolioError> {
        if token.is_empty() {
            return Ok((None, None));
        }
        let invalid = || FolioError::invalid_field("page_token", "is not a token this service issued");
        let text = self.open("page_token", token)?;
        let Some(rest) = text.strip_prefix('@') else {
            return Ok((self.decode(token)?, None));
        };
        let (after, position) = rest.split_once('@').ok_or_else(invalid)?;
        let after = ReadAfter::parse(after).ok_or_else(invalid)?;
        let (at, id) = position.split_once(':').ok_or_else(invalid)?;
        Ok((Some((at.parse().map_err(|_| invalid())?, id.to_owned())), Some(after)))
    }
}

/// A page fetched with `limit + 1` rows: the first `limit` rows, and the
/// token of the last one when the extra row shows that more exist.
pub fn finish_page<T>(mut rows: Vec<T>, limit: u64, token_of: impl Fn(&T) -> String) -> (Vec<T>, String) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() <= limit {
        return (rows, String::new());
    }
    rows.truncate(limit);
    let next = rows.last().map(token_of).unwrap_or_default();
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_forgeries_are_refused() {
        let tokens = PageTokens::with_key(b"key");
        assert_eq!(tokens.decode(&tokens.encode(42, "abc")).ok().flatten(), Some((42, "abc".to_owned())));
        assert_eq!(tokens.decode("").ok().flatten(), None);
        assert!(tokens.decode("!!").is_err());
        assert!(tokens.decode(&tokens.seal("nonsense")).is_err());
        let unsigned = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, "0:x");
        assert!(tokens.decode(&unsigned).is_err(), "a position without a tag");
    }

    #[test]
    fn read_after_tokens_carry_their_position_and_plain_ones_none() {
        let tokens = PageTokens::with_key(b"key");
        let after = ReadAfter::parse("16/B374D848");
        let token = tokens.encode_read_after(42, "abc", after);
        assert_eq!(tokens.decode_read_after(&token).ok(), Some((Some((42, "abc".to_owned())), after)));
        let plain = tokens.encode_read_after(-7, "a:b", None);
        assert_eq!(tokens.decode_read_after(&plain).ok(), Some((Some((-7, "a:b".to_owned())), None)));
        assert_eq!(tokens.decode_read_after("").ok(), Some((None, None)));
        assert!(tokens.decode_read_after(&tokens.seal("@nonsense@1:x")).is_err());
        assert!(tokens.decode_read_after(&tokens.seal("@0/1@x:y")).is_err());
    }

    #[test]
    fn a_page_names_its_successor_only_when_more_rows_exist() {
        assert_eq!(finish_page(vec![1, 2, 3], 2, |n| n.to_string()), (vec![1, 2], "2".to_owned()));
        assert_eq!(finish_page(vec![1, 2], 2, |n| n.to_string()), (vec![1, 2], String::new()));
        assert_eq!(finish_page(Vec::<i32>::new(), 2, |n| n.to_string()), (vec![], String::new()));
    }
}
