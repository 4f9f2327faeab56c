//! Assets: the currencies (or other units) accounts hold.

/// A registered asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// Code.
    pub code: String,
    /// Minor-unit digits.
    pub scale: i32,
    /// Description.
    pub description: String,
    /// When registered (µs).
    pub created_at: i64,
}
