//! The codec every generated Folio client and server uses.
//!
//! It is tonic-prost's codec with one change: a request body that does not
//! decode is the caller's mistake, so it answers `INVALID_ARGUMENT` with an
//! `ErrorInfo` reason `INVALID_FIELD` instead of prost's `INTERNAL`.

use std::marker::PhantomData;

use prost::{Message, Name};
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::{Code, Status};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};
use tonic_types::{ErrorDetails, StatusExt};

/// Reason carried in `ErrorInfo` when a message does not decode.
pub const UNDECODABLE_REASON: &str = "INVALID_FIELD";

/// Prost encoding with caller-friendly decode errors. `T` is encoded, `U` decoded.
#[derive(Debug, Clone)]
pub struct FolioCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for FolioCodec<T, U> {
    fn default() -> Self {
        Self { _types: PhantomData }
    }
}

impl<T, U> Codec for FolioCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Name + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = FolioDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        FolioDecoder { inner: ProstCodec::<T, U>::raw_decoder(BufferSettings::default()) }
    }
}

/// Decodes `U`, reporting malformed bytes as `INVALID_ARGUMENT`.
#[derive(Debug)]
pub struct FolioDecoder<U> {
    inner: ProstDecoder<U>,
}

impl<U: Message + Name + Default> Decoder for FolioDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.inner.decode(buf).map_err(|status| undecodable::<U>(&status))
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.inner.buffer_settings()
    }
}

/// The error domain of a message's package: `folio.ledger.v1` -> `ledger.folio`.
pub fn domain_of_package(package: &str) -> String {
    let mut parts = package.split('.');
    match (parts.next(), parts.next()) {
        (Some("folio"), Some(service)) => format!("{service}.folio"),
        _ => "folio".to_owned(),
    }
}

fn undecodable<U: Name>(cause: &Status) -> Status {
    let mut details = ErrorDetails::with_error_info(
        UNDECODABLE_REASON,
        domain_of_package(U::PACKAGE),
        [("message".to_owned(), U::full_name())],
    );
    details.add_bad_request_violation("body", "the message body is not a valid protobuf encoding");
    Status::with_error_details(
        Code::InvalidArgument,
        format!("request body does not decode as {}: {}", U::full_name(), cause.message()),
        details,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_follows_the_package() {
        assert_eq!(domain_of_package("folio.ledger.v1"), "ledger.folio");
        assert_eq!(domain_of_package("folio.auth.v1"), "auth.folio");
        assert_eq!(domain_of_package("grpc.health.v1"), "folio");
    }
}
