//! Rules for the identifying fields of auth's requests.

use folio_errors::validate::{self, TextRule};
use folio_errors::{FolioError, echo};

/// A normalised email: trimmed, lower-case, one `@` with text on both sides.
pub fn normalize_email(email: &str) -> Result<String, FolioError> {
    validate::checked_text("email", email, TextRule::Identity)?;
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !email.chars().any(char::is_whitespace)
        });
    if valid { Ok(email) } else { Err(FolioError::invalid_field("email", "must be an email address")) }
}

/// The given `values`, deduplicated, each one of `allowed`; at least one.
pub fn known_subset(field: &str, values: &[String], allowed: &[&'static str]) -> Result<Vec<&'static str>, FolioError> {
    let mut chosen: Vec<&'static str> = Vec::new();
    for value in values {
        let Some(known) = allowed.iter().find(|a| **a == value.as_str()) else {
            return Err(FolioError::invalid_field(field, format!("unknown value {:?}", echo(value))));
        };
        if !chosen.contains(known) {
            chosen.push(known);
        }
    }
    if chosen.is_empty() {
        return Err(FolioError::invalid_field(field, "at least one value is required"));
    }
    Ok(chosen)
}

/// Parses a UUID field or answers `INVALID_FIELD`.
pub fn parse_id(field: &str, value: &str) -> Result<String, FolioError> {
    uuid::Uuid::parse_str(value)
        .map(|id| id.to_string())
        .map_err(|_| FolioError::invalid_field(field, "must be a UUID"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_is_trimmed_lower_cased_and_needs_text_on_both_sides_of_one_at() {
        assert_eq!(normalize_email("  Alice@Example.COM ").ok().as_deref(), Some("alice@example.com"));
        for bad in ["", "alice", "@example.com", "alice@", "a@b@c", "al ice@example.com", "a\u{0}@example.com"] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
        assert!(normalize_email(&format!("{}@example.com", "a".repeat(250))).is_err(), "longer than 254");
    }

    #[test]
    fn a_subset_is_deduplicated_known_and_not_empty() {
        let allowed = ["customer", "operator"];
        let given = ["operator".to_owned(), "customer".to_owned(), "operator".to_owned()];
        assert_eq!(known_subset("roles", &given, &allowed).ok(), Some(vec!["operator", "customer"]));
        assert!(known_subset("roles", &[], &allowed).is_err());
        assert!(known_subset("roles", &["root".to_owned()], &allowed).is_err());
    }

    #[test]
    fn an_id_is_a_uuid_in_canonical_form() {
        let canonical = "0190a5a0-0000-7000-8000-000000000001";
        assert_eq!(parse_id("user_id", &canonical.to_uppercase()).ok().as_deref(), Some(canonical));
        assert!(parse_id("user_id", "not-a-uuid").is_err());
    }
}
