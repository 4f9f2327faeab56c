//! Password rules (OWASP ASVS 6.2, NIST SP 800-63B): 12..128 characters, not
//! a common password (nor one with a predictable prefix or suffix), not
//! repetitive or sequential, not containing the email's local part.

use std::{collections::HashSet, sync::LazyLock};

use folio_errors::{FolioError, Reason};

/// Shortest password accepted, in characters.
pub const MIN_CHARS: usize = 12;
/// Longest password accepted, in characters.
pub const MAX_CHARS: usize = 128;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .collect()
});

/// Keyboard walks (row after row) and the alphabet; a password inside one of
/// these, forwards or backwards (wrapping around), is a sequence.
const SEQUENCES: &[&str] = &["1234567890qwertyuiopasdfghjklzxcvbnm", "abcdefghijklmnopqrstuvwxyz"];

/// Accepts the password or says, with `WEAK_PASSWORD`, what is wrong with it.
pub fn check(password: &str, email: &str) -> Result<(), FolioError> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(weak(&format!("must be at least {MIN_CHARS} characters")));
    }
    if chars > MAX_CHARS {
        return Err(weak(&format!("must be at most {MAX_CHARS} characters")));
    }
    let lower = password.to_lowercase();
    if is_common(&lower) {
        return Err(weak("is a commonly used password"));
    }
    if is_repetitive(&lower) {
        return Err(weak("is too repetitive"));
    }
    if is_sequential(&lower) {
        return Err(weak("is a sequence of characters"));
    }
    let local_part = email.split('@').next().unwrap_or_default().to_lowercase();
    if local_part.chars().count() >= 3 && lower.contains(&local_part) {
        return Err(weak("must not contain your email address"));
    }
    Ok(())
}

fn weak(what: &str) -> FolioError {
    FolioError::new(Reason::WeakPassword, format!("the password {what}")).with_violation("password", what)
}

/// In the list, or a list word of 4+ characters padded with digits and symbols.
fn is_common(lower: &str) -> bool {
    if COMMON.contains(lower) {
        return true;
    }
    let core = lower.trim_matches(|c: char| !c.is_alphabetic());
    core.chars().count() >= 4 && core.chars().count() < lower.chars().count() && COMMON.contains(core)
}

/// One short unit repeated (`aaaa…`, `abab…`, `abcabc…`), or hardly any distinct characters.
fn is_repetitive(lower: &str) -> bool {
    let chars: Vec<char> = lower.chars().collect();
    let distinct: HashSet<char> = chars.iter().copied().collect();
    if distinct.len() <= 3 {
        return true;
    }
    (1..=chars.len() / 2)
        .any(|unit| chars.len().is_multiple_of(unit) && chars.chunks(unit).all(|chunk| chunk == &chars[..unit]))
}

/// Steps of +1 or -1 throughout (digits wrap 9→0), or a run along a keyboard row.
fn is_sequential(lower: &str) -> bool {
    let chars: Vec<char> = lower.chars().collect();
    let step = |a: char, b: char| -> Option<i64> {
        match (a.to_digit(10), b.to_digit(10)) {
            (Some(x), Some(y)) => Some((i64::from(y) - i64::from(x)).rem_euclid(10)),
            _ => Some(i64::from(u32::from(b)) - i64::from(u32::from(a))),
        }
    };
    let steps: Vec<Option<i64>> = chars.windows(2).map(|w| step(w[0], w[1])).collect();
    let all = |wanted: i64| steps.iter().all(|s| *s == Some(wanted) || (wanted == -1 && *s == Some(9)));
    if all(1) || all(-1) {
        return true;
    }
    SEQUENCES.iter().any(|sequence| {
        let forward = sequence.repeat(MAX_CHARS / sequence.len() + 2);
        let backward: String = forward.chars().rev().collect();
        forward.contains(lower) || backward.contains(lower)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(password: &str) -> Option<Reason> {
        check(password, "alice.smith@example.com").err().map(|e| e.reason())
    }

    #[test]
    fn accepts_a_decent_passphrase() {
        assert_eq!(reason("correct horse battery staple"), None);
        assert_eq!(reason("Tr0ub4dor&3-extended"), None);
    }

    #[test]
    fn refuses_each_kind_of_weak_password() {
        for weak in [
            "short1!",
            &"x1".repeat(65),
            "password1234",
            "Password123456!",
            "qwerty123456",
            "aaaaaaaaaaaa",
            "abababababab",
            "abcabcabcabc",
            "123456789012",
            "987654321098",
            "abcdefghijklm",
            "qwertyuiopasdf",
            "my-alice.smith-pass",
        ] {
            assert_eq!(reason(weak), Some(Reason::WeakPassword), "{weak:?} was accepted");
        }
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert_eq!(reason("ñandú-è-ça-va"), None, "13 characters, more bytes");
        assert_eq!(reason("ñandúèçaväü"), Some(Reason::WeakPassword), "11 characters, 20 bytes");
    }
}
