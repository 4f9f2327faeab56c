//! Registered assets.

use folio_errors::{Failure, FolioError, Reason};
use sea_orm::{DatabaseConnection, SqlErr};

use super::{execute, query_all};
use crate::domain::Asset;

/// Registers an asset (`ASSET_EXISTS` when the code is taken).
pub async fn create_asset(
    db: &DatabaseConnection,
    code: &str,
    scale: u32,
    description: &str,
) -> Result<Asset, Failure> {
    let now = folio_storage::db::now(db).await?.timestamp_micros();
    let scale = i32::try_from(scale).unwrap_or(i32::MAX);
    execute(
        db,
        "INSERT INTO assets (code, scale, description, created_at) VALUES ($1, $2, $3, $4)",
        vec![code.into(), scale.into(), description.into(), now.into()],
    )
    .await
    .map_err(|error| match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            Failure::from(FolioError::new(Reason::AssetExists, "this asset is registered already"))
        }
        _ => Failure::from(error),
    })?;
    Ok(Asset { code: code.to_owned(), scale, description: description.to_owned(), created_at: now })
}

/// Assets by code, after `after`, at most `limit`.
pub async fn list_assets(db: &DatabaseConnection, after: &str, limit: u64) -> Result<Vec<Asset>, Failure> {
    let rows = query_all(
        db,
        "SELECT code, scale, description, created_at FROM assets WHERE code > $1 ORDER BY code LIMIT $2",
        vec![after.into(), i64::try_from(limit).unwrap_or(i64::MAX).into()],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            Ok(Asset {
                code: row.try_get("", "code")?,
                scale: row.try_get("", "scale")?,
                description: row.try_get("", "description")?,
                created_at: row.try_get("", "created_at")?,
            })
        })
        .collect::<Result<Vec<_>, sea_orm::DbErr>>()?)
}
