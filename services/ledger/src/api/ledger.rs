//! The gRPC face of the ledger: validates at the edge, hands writes to the
//! coalescing writer and reads to `reads`, and maps failures to statuses
//! (domain `ledger.folio`).

use std::time::Instant;

use folio_errors::{Failure, FolioError};
use folio_proto::ledger::{self as pb, ledger_service_server::LedgerService};
use folio_runtime::read_after;
use folio_storage::db::{ReadAfter, Reads};
use folio_storage::paging::PageTokens;
use folio_tokens::principal;
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use super::events::{EventStream, EventStreams};
use super::{convert, parse};
use crate::app::reads;
use crate::app::writer::{Outcome, Writer};
use crate::domain::{Actor, Asset, Op, StatementQuery, Status as TransferStatus, Transfer};
use crate::store::assets;

/// The error domain of every ledger answer.
pub const DOMAIN: &str = "ledger.folio";
const MAX_BATCH: usize = 1000;

type Reply<T> = Result<Response<T>, Status>;

pub(crate) fn fail(failure: impl Into<Failure>) -> Status {
    failure.into().into_status(DOMAIN)
}

pub(crate) fn actor<T>(request: &Request<T>) -> Result<Actor, Status> {
    principal(request).map(Actor::from_principal).map_err(fail)
}

fn page_size(requested: i32, default: u64, max: u64) -> Result<u64, Status> {
    folio_errors::validate::page_size(requested, default, max).map_err(fail)
}

/// Serves `LedgerService`.
#[derive(Clone)]
pub struct LedgerApi {
    reads: Reads,
    writer: Writer,
    page_tokens: PageTokens,
    events: EventStreams,
}

impl LedgerApi {
    /// Serves reads through `reads` (a replica where they may trail),
    /// writes through `writer` and event streams through `events`.
    pub fn new(reads: Reads, writer: Writer, page_tokens: PageTokens, events: EventStreams) -> Self {
        Self { reads, writer, page_tokens, events }
    }

    /// A write's answer, with the position a later read hands back to see
    /// at least this write (DESIGN §6; PostgreSQL only).
    async fn written<T>(&self, message: T, committed: Instant) -> Reply<T> {
        let position = self.reads.position_after(committed).await.map_err(|e| fail(Failure::from(e)))?;
        Ok(read_after::answer(Response::new(message), position))
    }

    async fn write_one(&self, op: Op, actor: Actor) -> Result<Transfer, Status> {
        match self.writer.submit(vec![op], true, actor).await.map_err(fail)? {
            Outcome::Each(mut results) => match results.pop() {
                Some(Ok(Some(transfer))) => Ok(transfer),
                Some(Err(error)) => Err(fail(error)),
                _ => Err(fail(Failure::Internal(anyhow::anyhow!("the writer answered without a transfer")))),
            },
            Outcome::AtomicFailed { error, .. } => Err(fail(error)),
        }
    }
}

/// A status as a `google.rpc.Status` message (its details already hold the ErrorInfo).
fn rpc_status(status: &Status) -> folio_proto::google::rpc::Status {
    folio_proto::google::rpc::Status::decode(status.details()).unwrap_or_else(|_| folio_proto::google::rpc::Status {
        code: status.code() as i32,
        message: status.message().to_owned(),
        details: Vec::new(),
    })
}

#[tonic::async_trait]
impl LedgerService for LedgerApi {
    type StreamEventsStream = EventStream;

    async fn stream_events(&self, request: Request<pb::StreamEventsRequest>) -> Reply<EventStream> {
        let actor = actor(&request)?;
        Ok(Response::new(self.events.open(&actor, request).await?))
    }

    async fn create_asset(&self, request: Request<pb::CreateAssetRequest>) -> Reply<pb::CreateAssetResponse> {
        actor(&request)?.require_operator().map_err(fail)?;
        let pb::CreateAssetRequest { code, scale, description } = request.into_inner();
        let code = parse::asset_code("code", &code).map_err(fail)?;
        if scale > 18 {
            return Err(fail(FolioError::invalid_field("scale", "must be 0..18")));
        }
        folio_errors::validate::free_text("description", &description, 200).map_err(fail)?;
        let asset = assets::create_asset(self.reads.primary(), &code, scale, &description).await.map_err(fail)?;
        Ok(Response::new(pb::CreateAssetResponse { asset: Some(asset_message(&asset)) }))
    }

    async fn list_assets(&self, request: Request<pb::ListAssetsRequest>) -> Reply<pb::ListAssetsResponse> {
        actor(&request)?;
        let pb::ListAssetsRequest { page_size: size, page_token } = request.into_inner();
        let limit = page_size(size, 100, 1000)?;
        // The token seals the last code of the previous page.
        let after = if page_token.is_empty() {
            String::new()
        } else {
            self.page_tokens.open("page_token", &page_token).map_err(fail)?
        };
        let assets = assets::list_assets(self.reads.primary(), &after, limit + 1).await.map_err(fail)?;
        let (assets, next_page_token) =
            folio_storage::paging::finish_page(assets, limit, |a| self.page_tokens.seal(&a.code));
        Ok(Response::new(pb::ListAssetsResponse {
            assets: assets.iter().map(asset_message).collect(),
            next_page_token,
        }))
    }

    async fn create_transfer(&self, request: Request<pb::CreateTransferRequest>) -> Reply<pb::CreateTransferResponse> {
        let actor = actor(&request)?;
        let new = parse::new_transfer(&parse::from_create_request(request.into_inner())).map_err(fail)?;
        let transfer = self.write_one(Op::Transfer(new), actor).await?;
        self.written(pb::CreateTransferResponse { transfer: Some(convert::transfer(&transfer)) }, Instant::now()).await
    }

    async fn create_transfers(
        &self,
        request: Request<pb::CreateTransfersRequest>,
    ) -> Reply<pb::CreateTransfersResponse> {
        let actor = actor(&request)?;
        let pb::CreateTransfersRequest { transfers, atomic } = request.into_inner();
        if transfers.is_empty() || transfers.len() > MAX_BATCH {
            return Err(fail(FolioError::invalid_field("transfers", "must hold 1..1000 transfers")));
        }
        let validated: Vec<Result<_, FolioError>> = transfers.iter().map(parse::new_transfer).collect();
        if atomic {
            let mut ops = Vec::with_capacity(validated.len());
            for (index, result) in validated.into_iter().enumerate() {
                ops.push(Op::Transfer(result.map_err(|e| fail(e.with_metadata("index", index.to_string())))?));
            }
            return match self.writer.submit(ops, true, actor).await.map_err(fail)? {
                Outcome::Each(results) => {
                    let results = results.into_iter().map(|r| result_message(r.map_err(fail))).collect();
                    self.written(pb::CreateTransfersResponse { results }, Instant::now()).await
                }
                Outcome::AtomicFailed { index, error } => Err(fail(error.with_metadata("index", index.to_string()))),
            };
        }
        // Not atomic: invalid transfers answer for themselves; the rest go to the writer in order.
        let ops: Vec<Op> = validated.iter().filter_map(|r| r.as_ref().ok().cloned().map(Op::Transfer)).collect();
        let mut written = match self.writer.submit(ops, false, actor).await.map_err(fail)? {
            Outcome::Each(results) => results.into_iter(),
            Outcome::AtomicFailed { error, .. } => return Err(fail(error)),
        };
        let results = validated
            .into_iter()
            .map(|r| match r {
                Ok(_) => result_message(written.next().unwrap_or(Ok(None)).map_err(fail)),
                Err(error) => result_message(Err(fail(error))),
            })
            .collect();
        self.written(pb::CreateTransfersResponse { results }, Instant::now()).await
    }

    async fn get_transfer(&self, request: Request<pb::GetTransferRequest>) -> Reply<pb::GetTransferResponse> {
        let actor = actor(&request)?;
        let after = read_after::requested(&request).map_err(fail)?;
        let id = parse::uuid("transfer_id", &request.into_inner().transfer_id).map_err(fail)?;
        let (actor, id) = (&actor, &id);
        let transfer = self
            .reads
            .run(after, reads::retry_on_primary, |db, _| async move { reads::transfer(&db, actor, id).await })
            .await
            .map_err(fail)?;
        Ok(Response::new(pb::GetTransferResponse { transfer: Some(convert::transfer(&transfer)) }))
    }

    async fn list_transfers(&self, request: Request<pb::ListTransfersRequest>) -> Reply<pb::ListTransfersResponse> {
        let actor = actor(&request)?;
        let asked_after = read_after::requested(&request).map_err(fail)?;
        let pb::ListTransfersRequest { account_id, start_time, end_time, status, page_size: size, page_token } =
            request.into_inner();
        let account_id = parse::uuid("account_id", &account_id).map_err(fail)?;
        let status = match pb::TransferStatus::try_from(status) {
            Ok(pb::TransferStatus::Unspecified) => None,
            Ok(pb::TransferStatus::Posted) => Some(TransferStatus::Posted),
            Ok(pb::TransferStatus::Pending) => Some(TransferStatus::Pending),
            Ok(pb::TransferStatus::PostedFromPending) => Some(TransferStatus::PostedFromPending),
            Ok(pb::TransferStatus::Voided) => Some(TransferStatus::Voided),
            Ok(pb::TransferStatus::Expired) => Some(TransferStatus::Expired),
            Err(_) => return Err(fail(FolioError::invalid_field("status", "unknown status"))),
        };
        let (after_sequence, page_after) =
            reads::parse_statement_token(&self.page_tokens, &page_token).map_err(fail)?;
        // A later page is never older than an earlier one.
        let after = ReadAfter::max(asked_after, page_after);
        let query = StatementQuery {
            start: start_time.as_ref().map(|t| convert::micros("start_time", t)).transpose().map_err(fail)?,
            end: end_time.as_ref().map(|t| convert::micros("end_time", t)).transpose().map_err(fail)?,
            status,
            limit: page_size(size, 100, 1000)?,
            after_sequence,
        };
        let (actor, account, query) = (&actor, &account_id, &query);
        let (lines, more) =
            self.reads
                .run(after, reads::retry_on_primary, |db, _| async move {
                    reads::statement(&db, actor, account, query).await
                })
                .await
                .map_err(fail)?;
        let next_page_token = match (more, lines.last()) {
            (true, Some(last)) => reads::statement_token(&self.page_tokens, last.account_sequence, after),
            _ => String::new(),
        };
        let entries = lines
            .iter()
            .map(|line| pb::StatementEntry {
                transfer: Some(convert::transfer(&line.transfer)),
                side: convert::side(line.side) as i32,
                account_sequence: line.account_sequence,
                balance_after: Some(convert::balance(
                    &account_id,
                    &line.transfer.asset_code,
                    &line.totals,
                    line.created_at,
                )),
            })
            .collect();
        Ok(Response::new(pb::ListTransfersResponse { entries, next_page_token }))
    }

    async fn get_balance(&self, request: Request<pb::GetBalanceRequest>) -> Reply<pb::GetBalanceResponse> {
        let actor = actor(&request)?;
        let after = read_after::requested(&request).map_err(fail)?;
        let pb::GetBalanceRequest { account_id, as_of } = request.into_inner();
        let account_id = parse::uuid("account_id", &account_id).map_err(fail)?;
        let as_of = as_of.as_ref().map(|t| convert::micros("as_of", t)).transpose().map_err(fail)?;
        let (actor, account) = (&actor, &account_id);
        let at = self
            .reads
            .run(after, reads::retry_on_primary, |db, source| async move {
                reads::balance(&db, source, actor, account, as_of).await
            })
            .await
            .map_err(fail)?;
        Ok(Response::new(pb::GetBalanceResponse {
            balance: Some(convert::balance(&account_id, &at.asset_code, &at.totals, at.as_of)),
        }))
    }

    async fn reverse_transfer(
        &self,
        request: Request<pb::ReverseTransferRequest>,
    ) -> Reply<pb::ReverseTransferResponse> {
        let actor = actor(&request)?;
        actor.may_reverse().map_err(fail)?;
        let pb::ReverseTransferRequest { transfer_id, id, description } = request.into_inner();
        let original = parse::uuid("transfer_id", &transfer_id).map_err(fail)?;
        let id = parse::uuid("id", &id).map_err(fail)?;
        parse::description_and_metadata(&description, &Default::default()).map_err(fail)?;
        let digest = serde_json::json!(["reverse", id, original, description]).to_string();
        let op =
            Op::Reverse { id, original, description, request_hash: hex::encode(Sha256::digest(digest.as_bytes())) };
        let transfer = self.write_one(op, actor).await?;
        self.written(pb::ReverseTransferResponse { transfer: Some(convert::transfer(&transfer)) }, Instant::now()).await
    }
}

fn result_message(result: Result<Option<Transfer>, Status>) -> pb::TransferResult {
    use pb::transfer_result::Result as Outcome;
    let outcome = match result {
        Ok(Some(transfer)) => Outcome::Transfer(convert::transfer(&transfer)),
        Ok(None) => Outcome::Error(rpc_status(&Status::internal("no transfer"))),
        Err(status) => Outcome::Error(rpc_status(&status)),
    };
    pb::TransferResult { result: Some(outcome) }
}

fn asset_message(asset: &Asset) -> pb::Asset {
    pb::Asset {
        code: asset.code.clone(),
        scale: u32::try_from(asset.scale).unwrap_or_default(),
        description: asset.description.clone(),
        created_at: Some(convert::timestamp(asset.created_at)),
    }
}
