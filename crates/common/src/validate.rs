//! Field checks every service applies the same way at its edge.

use std::collections::{BTreeMap, HashMap};

use crate::error::FolioError;

const MAX_METADATA_KEYS: usize = 32;
const MAX_METADATA_BYTES: usize = 4096;

/// A UUID in canonical lower-case form, or `INVALID_FIELD` naming `field`.
pub fn uuid(field: &str, value: &str) -> Result<String, FolioError> {
    uuid::Uuid::parse_str(value)
        .map(|id| id.to_string())
        .map_err(|_| FolioError::invalid_field(field, "must be a UUID"))
}

/// An asset code `[A-Z0-9]{3,12}`, or `INVALID_FIELD`.
pub fn asset_code(field: &str, value: &str) -> Result<String, FolioError> {
    let valid = (3..=12).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if valid { Ok(value.to_owned()) } else { Err(FolioError::invalid_field(field, "must match [A-Z0-9]{3,12}")) }
}

/// Client metadata: at most 32 keys and 4 KiB of keys and values, no empty key.
pub fn metadata(field: &str, metadata: &HashMap<String, String>) -> Result<BTreeMap<String, String>, FolioError> {
    if metadata.len() > MAX_METADATA_KEYS {
        return Err(FolioError::invalid_field(field, "at most 32 keys"));
    }
    let bytes: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_METADATA_BYTES {
        return Err(FolioError::invalid_field(field, "at most 4 KiB in all"));
    }
    if metadata.keys().any(String::is_empty) {
        return Err(FolioError::invalid_field(field, "keys must not be empty"));
    }
    Ok(metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// Text of `min..=max` characters without control characters, trimmed.
pub fn text(field: &str, value: &str, min: usize, max: usize) -> Result<String, FolioError> {
    let value = value.trim();
    let chars = value.chars().count();
    if chars < min || chars > max || value.chars().any(char::is_control) {
        return Err(FolioError::invalid_field(field, format!("must be {min}..{max} printable characters")));
    }
    Ok(value.to_owned())
}

/// Page size within `1..=max`, `default` when 0.
pub fn page_size(requested: i32, default: u64, max: u64) -> Result<u64, FolioError> {
    match requested {
        0 => Ok(default),
        n if n < 0 => Err(FolioError::invalid_field("page_size", "must not be negative")),
        n => Ok(u64::try_from(n).unwrap_or(max).min(max)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_checked() {
        assert_eq!(
            uuid("id", "1B4E28BA-2FA1-11D2-883F-0016D3CCA427").ok().as_deref(),
            Some("1b4e28ba-2fa1-11d2-883f-0016d3cca427")
        );
        assert!(uuid("id", "nope").is_err());
        assert!(asset_code("a", "USD").is_ok() && asset_code("a", "usd").is_err() && asset_code("a", "US").is_err());
        let big: HashMap<String, String> = (0..33).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(metadata("m", &big).is_err());
        let heavy: HashMap<String, String> = [("k".to_owned(), "v".repeat(4096))].into();
        assert!(metadata("m", &heavy).is_err());
        assert_eq!(text("n", "  Savings ", 1, 100).ok().as_deref(), Some("Savings"));
        assert!(text("n", "", 1, 100).is_err() && text("n", &"x".repeat(101), 1, 100).is_err());
        assert_eq!(page_size(0, 50, 500).ok(), Some(50));
        assert_eq!(page_size(9999, 50, 500).ok(), Some(500));
        assert!(page_size(-1, 50, 500).is_err());
    }
}
