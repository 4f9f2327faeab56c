//! Field checks every service applies the same way at its edge.

use std::collections::{BTreeMap, HashMap};

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::FolioError;

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

/// Which characters a string from a caller may hold (DESIGN §4). Checked
/// before anything is stored or compared, identically on every backend:
/// PostgreSQL refuses NUL inside a statement while SQLite stores it, and a
/// value one database refuses must never reach a shared batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextRule {
    /// One line: no control character (Cc, NUL included), no U+2028/U+2029.
    Line,
    /// Free text (`description`, `reason`, metadata values): a line that may
    /// also hold TAB, LF and CR.
    Multiline,
    /// What people read and compare (emails, `display_name`): a line without
    /// format characters (Cf: zero-width spaces, bidirectional controls)
    /// either, so two values that look the same are the same.
    Identity,
}

impl TextRule {
    fn allows(self, c: char) -> bool {
        if matches!(c, '\u{2028}' | '\u{2029}') {
            return false;
        }
        if c.is_control() {
            return self == TextRule::Multiline && matches!(c, '\t' | '\n' | '\r');
        }
        self != TextRule::Identity || c.general_category() != GeneralCategory::Format
    }

    fn explain(self) -> &'static str {
        match self {
            TextRule::Line => "must not hold control characters or line separators",
            TextRule::Multiline => "must not hold control characters other than TAB, LF and CR",
            TextRule::Identity => "must not hold control, format or invisible characters",
        }
    }
}

/// `Ok` when every character of `value` is allowed by `rule`, else `INVALID_FIELD`.
pub fn checked_text(field: &str, value: &str, rule: TextRule) -> Result<(), FolioError> {
    if value.chars().all(|c| rule.allows(c)) { Ok(()) } else { Err(FolioError::invalid_field(field, rule.explain())) }
}

/// Free text of at most `max` characters (descriptions, reasons).
pub fn free_text(field: &str, value: &str, max: usize) -> Result<(), FolioError> {
    checked_text(field, value, TextRule::Multiline)?;
    if value.chars().count() > max {
        return Err(FolioError::invalid_field(field, format!("must be at most {max} characters")));
    }
    Ok(())
}

/// Every string of a repeated field, each one a [`TextRule::Line`].
pub fn lines<'a>(field: &str, values: impl IntoIterator<Item = &'a String>) -> Result<(), FolioError> {
    values.into_iter().try_for_each(|value| checked_text(field, value, TextRule::Line))
}

/// Client metadata: at most 32 keys and 4 KiB of keys and values, no empty
/// key; keys are lines, values free text.
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
    for (key, value) in metadata {
        checked_text(field, key, TextRule::Line)?;
        checked_text(field, value, TextRule::Multiline)?;
    }
    Ok(metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// A name people read (`display_name`): `min..=max` characters, trimmed,
/// under [`TextRule::Identity`].
pub fn text(field: &str, value: &str, min: usize, max: usize) -> Result<String, FolioError> {
    checked_text(field, value, TextRule::Identity)?;
    let value = value.trim();
    let chars = value.chars().count();
    if chars < min || chars > max {
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

    #[test]
    fn text_rules_follow_design_section_4() {
        for bad in ["bad\u{0}", "a\u{7}b", "x\u{85}", "line\u{2028}", "para\u{2029}"] {
            for rule in [TextRule::Line, TextRule::Multiline, TextRule::Identity] {
                assert!(checked_text("f", bad, rule).is_err(), "{bad:?} under {rule:?}");
            }
        }
        for spaced in ["a\tb", "a\nb", "a\r\nb"] {
            assert!(checked_text("f", spaced, TextRule::Multiline).is_ok(), "{spaced:?}");
            assert!(checked_text("f", spaced, TextRule::Line).is_err(), "{spaced:?}");
        }
        for invisible in ["ops@example.test\u{200b}", "a\u{202e}b", "\u{feff}x", "soft\u{ad}hyphen"] {
            assert!(checked_text("f", invisible, TextRule::Identity).is_err(), "{invisible:?}");
            assert!(checked_text("f", invisible, TextRule::Line).is_ok(), "{invisible:?}");
        }
        assert!(checked_text("f", "Zoë Ångström 東京 🙂", TextRule::Identity).is_ok());
        assert!(text("n", "Sav\u{200b}ings", 1, 100).is_err());
        let nul_key: HashMap<String, String> = [("k\u{0}".to_owned(), "v".to_owned())].into();
        let tab_value: HashMap<String, String> = [("k".to_owned(), "a\tb".to_owned())].into();
        assert!(metadata("m", &nul_key).is_err() && metadata("m", &tab_value).is_ok());
        assert!(free_text("reason", "x\u{0}", 500).is_err() && free_text("reason", &"x".repeat(501), 500).is_err());
    }
}
