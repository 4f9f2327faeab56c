//! `x-folio-read-after` on the wire (DESIGN §6, "Reads from replicas"): a
//! write's answer carries the position its commit reached; a read that
//! hands it back sees at least that state.

use folio_errors::{Failure, FolioError};
use folio_storage::db::{READ_AFTER_HEADER, ReadAfter};
use tonic::metadata::MetadataValue;
use tonic::{Request, Response};

/// The position a read asks to see at least; `INVALID_FIELD` when the
/// header is there but is not a position this suite hands out.
pub fn requested<T>(request: &Request<T>) -> Result<Option<ReadAfter>, FolioError> {
    let Some(value) = request.metadata().get(READ_AFTER_HEADER) else {
        return Ok(None);
    };
    let invalid = || FolioError::invalid_field(READ_AFTER_HEADER, "is not a position a write's answer carried");
    let text = value.to_str().map_err(|_| invalid())?;
    ReadAfter::parse(text).map(Some).ok_or_else(invalid)
}

/// Puts `position` on a write's answer (header; the server stack copies it
/// to the trailers as well).
pub fn answer<T>(mut response: Response<T>, position: Option<ReadAfter>) -> Response<T> {
    if let Some(position) = position
        && let Ok(value) = MetadataValue::try_from(position.to_string())
    {
        response.metadata_mut().insert(READ_AFTER_HEADER, value);
    }
    response
}

/// Whether a replica's answer is asked again of the primary: a `NOT_FOUND`
/// (the replica may not have replayed the row yet) or any failure of the
/// replica itself (a query cancelled by a recovery conflict, a lost
/// connection). For `folio_storage::db::Reads::run`.
pub fn retry_on_primary(failure: &Failure) -> bool {
    match failure {
        Failure::Caller(error) => error.reason().code() == tonic::Code::NotFound,
        Failure::Internal(_) => true,
    }
}
