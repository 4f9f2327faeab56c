//! AIP-158 pagination shared by every list RPC: page sizes, and opaque page
//! tokens for keyset pagination on (time, id), stable while rows are added.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::error::FolioError;

pub use crate::validate::page_size;

/// An opaque token for the position after the row at (`at`, `id`).
pub fn encode_token(at: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{at}:{id}"))
}

/// The position a token names; `None` for the first page; `INVALID_FIELD` for a forged token.
pub fn decode_token(token: &str) -> Result<Option<(i64, String)>, FolioError> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || FolioError::invalid_field("page_token", "is not a token this service issued");
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let (at, id) = text.split_once(':').ok_or_else(invalid)?;
    // The id is compared in SQL: text a database refuses (NUL) must not get there.
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err(invalid());
    }
    Ok(Some((at.parse().map_err(|_| invalid())?, id.to_owned())))
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
        assert_eq!(decode_token(&encode_token(42, "abc")).ok().flatten(), Some((42, "abc".to_owned())));
        assert_eq!(decode_token("").ok().flatten(), None);
        assert!(decode_token("!!").is_err());
        assert!(decode_token(&URL_SAFE_NO_PAD.encode("nonsense")).is_err());
        assert!(decode_token(&URL_SAFE_NO_PAD.encode("0:\0")).is_err());
    }

    #[test]
    fn a_page_names_its_successor_only_when_more_rows_exist() {
        assert_eq!(finish_page(vec![1, 2, 3], 2, |n| n.to_string()), (vec![1, 2], "2".to_owned()));
        assert_eq!(finish_page(vec![1, 2], 2, |n| n.to_string()), (vec![1, 2], String::new()));
        assert_eq!(finish_page(Vec::<i32>::new(), 2, |n| n.to_string()), (vec![], String::new()));
    }
}
