//! Ledger events through the front door (DESIGN "Ledger events"): a customer
//! watches its own account through the gateway, over gRPC and over gRPC-Web
//! (HTTP/1.1, as a browser sends it), and each change arrives as it
//! commits, not when the stream ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use folio_proto::ledger::{
    AccountKind, Event, EventType, StartPosition, StreamEventsRequest, StreamEventsResponse, event,
};
use prost::Message;
use support::{Stack, bearer, posted};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(10);

fn transfer_id(event: &Event) -> Option<&str> {
    match &event.change {
        Some(event::Change::Transfer(change)) => change.transfer.as_ref().map(|t| t.id.as_str()),
        _ => None,
    }
}

#[tokio::test]
async fn a_customer_watches_its_account_through_the_gateway_over_grpc_and_grpc_web() {
    let stack = Stack::start(None, None, &[]).await;
    let operator = stack.operator().await;
    let (_, token) = stack.customer().await;
    let account = stack.funded(&token, &operator, 1_000).await;
    let other = stack.open(&token, AccountKind::Customer).await;

    // gRPC: from the earliest, the account's opening and its funding.
    let request = StreamEventsRequest {
        account_id: account.clone(),
        start_position: StartPosition::Earliest as i32,
        ..Default::default()
    };
    let mut stream = stack.ledger().stream_events(bearer(request, &token)).await.unwrap().into_inner();
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let message = tokio::time::timeout(WAIT, stream.message()).await.unwrap().unwrap().unwrap();
        kinds.extend(message.event.map(|e| e.r#type));
    }
    assert_eq!(kinds, [EventType::AccountOpened as i32, EventType::TransferPosted as i32]);

    // gRPC-Web: the stream is open (its first heartbeat came) before the
    // transfer is made, and the transfer's event follows on the same response.
    let mut web = GrpcWebStream::open(stack.gateway, &token, &watching(&account)).await;
    let opened = web.next().await;
    assert!(opened.event.is_none() && !opened.cursor.is_empty(), "{opened:?}");
    let moved = stack.ledger().create_transfer(bearer(posted(&account, &other, 25), &token)).await.unwrap();
    let moved = moved.into_inner().transfer.unwrap();
    let arrived = loop {
        let message = web.next().await;
        if let Some(event) = message.event {
            break event;
        }
    };
    assert_eq!(transfer_id(&arrived), Some(moved.id.as_str()));
    assert_eq!(arrived.r#type, EventType::TransferPosted as i32);
}

/// A stream of `account`'s events from now on.
fn watching(account: &str) -> StreamEventsRequest {
    StreamEventsRequest { account_id: account.to_owned(), ..Default::default() }
}

/// A gRPC-Web call over HTTP/1.1 whose response is read as it arrives.
struct GrpcWebStream {
    socket: tokio::net::TcpStream,
    /// Bytes read and not yet parsed (HTTP chunks).
    raw: Vec<u8>,
    /// The response body so far, unchunked, not yet parsed into frames.
    body: Vec<u8>,
}

impl GrpcWebStream {
    async fn open(gateway: std::net::SocketAddr, token: &str, request: &StreamEventsRequest) -> Self {
        let message = request.encode_to_vec();
        let mut frame = vec![0u8];
        frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
        frame.extend_from_slice(&message);
        let head = format!(
            "POST /folio.ledger.v1.LedgerService/StreamEvents HTTP/1.1\r\nHost: {gateway}\r\n\
             Content-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\nAuthorization: Bearer {token}\r\n\
             Content-Length: {}\r\n\r\n",
            frame.len()
        );
        let mut socket = tokio::net::TcpStream::connect(gateway).await.unwrap();
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(&frame).await.unwrap();
        let mut stream = Self { socket, raw: Vec::new(), body: Vec::new() };
        let head_end = loop {
            if let Some(end) = stream.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            stream.read_more().await;
        };
        let head = String::from_utf8_lossy(&stream.raw[..head_end]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("transfer-encoding: chunked"), "the answer streams: {head}");
        stream.raw.drain(..head_end + 4);
        stream
    }

    async fn read_more(&mut self) {
        let mut buffer = [0u8; 8192];
        let read = tokio::time::timeout(WAIT, self.socket.read(&mut buffer)).await.expect("more of the stream in time");
        let read = read.unwrap();
        assert!(read > 0, "the stream ended");
        self.raw.extend_from_slice(&buffer[..read]);
    }

    /// Moves every complete HTTP chunk from `raw` to `body`.
    fn unchunk(&mut self) {
        while let Some(line_end) = self.raw.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&self.raw[..line_end]).unwrap().trim(), 16).unwrap();
            if self.raw.len() < line_end + 2 + size + 2 {
                return;
            }
            self.body.extend_from_slice(&self.raw[line_end + 2..line_end + 2 + size]);
            self.raw.drain(..line_end + 2 + size + 2);
        }
    }

    /// The next message frame.
    async fn next(&mut self) -> StreamEventsResponse {
        loop {
            self.unchunk();
            if self.body.len() >= 5 {
                let length = usize::try_from(u32::from_be_bytes(self.body[1..5].try_into().unwrap())).unwrap();
                if self.body.len() >= 5 + length {
                    assert_eq!(
                        self.body[0],
                        0,
                        "a message frame, not trailers: {:?}",
                        String::from_utf8_lossy(&self.body)
                    );
                    let message = StreamEventsResponse::decode(&self.body[5..5 + length]).unwrap();
                    self.body.drain(..5 + length);
                    return message;
                }
            }
            self.read_more().await;
        }
    }
}
