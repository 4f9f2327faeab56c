//! Assets registered at start from configuration (`ledger.bootstrap_assets`).

use folio_errors::{Failure, Reason};
use sea_orm::DatabaseConnection;

use crate::store::assets;

/// Registers `USD:2,EUR:2`-style assets that are missing.
pub async fn bootstrap_assets(db: &DatabaseConnection, spec: &str) -> anyhow::Result<()> {
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (code, scale) = entry.split_once(':').ok_or_else(|| {
            anyhow::anyhow!("invalid configuration: `ledger.bootstrap_assets` entries are CODE:SCALE, got {entry:?}")
        })?;
        let code =
            folio_errors::validate::asset_code("ledger.bootstrap_assets", code).map_err(|e| anyhow::anyhow!("{e}"))?;
        let scale: u32 = scale.parse().ok().filter(|s| *s <= 18).ok_or_else(|| {
            anyhow::anyhow!("invalid configuration: `ledger.bootstrap_assets` scale of {code} must be 0..18")
        })?;
        match assets::create_asset(db, &code, scale, &code).await {
            Ok(_) => tracing::info!(%code, scale, "asset registered"),
            Err(Failure::Caller(error)) if error.reason() == Reason::AssetExists => {}
            Err(failure) => anyhow::bail!("registering asset {code}: {failure}"),
        }
    }
    Ok(())
}
