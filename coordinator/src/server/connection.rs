//! One client connection: the four-letter-word check on its first bytes, the
//! session handshake, then a reader (frames -> state machine) and a writer
//! (replies and events -> socket) running side by side until either ends.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::ALL_4LW;
use crate::proto::{write_event, write_reply, ConnectRequest, Reader, Request};

use super::outbound::{Conn, ConnStats, CoreMsg, Outbound, SessionClock};

/// Replies queued for one connection before it counts as not reading.
const OUTBOX: usize = 16 * 1024;
/// Bytes gathered before a write to the socket.
const WRITE_CHUNK: usize = 64 * 1024;

/// What every connection needs to know of the server.
#[derive(Debug)]
pub struct ConnContext {
    pub core: mpsc::Sender<CoreMsg>,
    pub max_buffer: usize,
    pub four_letter_words: std::collections::BTreeSet<String>,
    /// Time allowed for the first packet.
    pub handshake_timeout: Duration,
    pub epoch: Instant,
}

#[derive(Debug, thiserror::Error)]
enum FrameError {
    #[error("frame length {0} outside 0..=jute.maxbuffer")]
    Length(i64),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one length-prefixed frame; `Ok(None)` on a clean end of stream.
async fn read_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<BytesMut>, FrameError> {
    loop {
        if let Some(frame) =
            common::framing::split_frame(buf, max).map_err(|bad| FrameError::Length(bad.0))?
        {
            return Ok(Some(frame));
        }
        if rd.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
    }
}

pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    ctx: Arc<ConnContext>,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut rbuf = BytesMut::with_capacity(8 * 1024);

    // The first four bytes are either a four-letter word or a length prefix.
    let first = tokio::time::timeout(ctx.handshake_timeout, async {
        while rbuf.len() < 4 {
            if rd.read_buf(&mut rbuf).await? == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
        }
        Ok(true)
    })
    .await;
    if !matches!(first, Ok(Ok(true))) {
        tracing::debug!(%peer, "connection closed before its first packet");
        return;
    }
    if let Ok(word) = std::str::from_utf8(&rbuf[..4]) {
        if ALL_4LW.contains(&word) {
            let text = four_letter(word, &ctx).await;
            let _ = wr.write_all(text.as_bytes()).await;
            let _ = wr.shutdown().await;
            return;
        }
    }

    let request = match tokio::time::timeout(
        ctx.handshake_timeout,
        read_frame(&mut rd, &mut rbuf, ctx.max_buffer),
    )
    .await
    {
        Ok(Ok(Some(frame))) => match ConnectRequest::decode(&mut Reader::new(&frame)) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "bad connect request; closing");
                return;
            }
        },
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            tracing::warn!(%peer, error = %e, "bad first frame; closing");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "no connect request in time; closing");
            return;
        }
    };

    let (tx, mut rx) = mpsc::channel(OUTBOX);
    let close = shutdown.child_token();
    let conn = Arc::new(Conn {
        id,
        peer,
        tx,
        close: close.clone(),
        stats: ConnStats::default(),
    });
    let connect = CoreMsg::Connect {
        conn: conn.clone(),
        request,
    };
    if ctx.core.send(connect).await.is_err() {
        return;
    }
    let mut wbuf = BytesMut::with_capacity(WRITE_CHUNK);
    let mut attached = None;
    let mut closing = false;
    for msg in rx.recv().await.unwrap_or_default() {
        match msg {
            Outbound::Connected { response, clock } => {
                let start = wbuf.len();
                wbuf.extend_from_slice(&[0; 4]);
                response.encode(&mut wbuf);
                let len = (wbuf.len() - start - 4) as u32;
                wbuf[start..start + 4].copy_from_slice(&len.to_be_bytes());
                attached = clock.map(|c| (response.session_id, c));
            }
            other => closing |= encode(other, &mut wbuf),
        }
    }
    let Some((session, clock)) = attached.filter(|_| !closing) else {
        // Expired or refused: send the answer queued so far and go.
        let _ = wr.write_all(&wbuf).await;
        let _ = wr.shutdown().await;
        return;
    };
    let span = tracing::info_span!("session", id = format_args!("{session:#x}"), %peer);
    let reader = read_loop(
        &mut rd,
        rbuf,
        session,
        id,
        &ctx,
        &clock,
        &conn.stats,
        &close,
    );
    let writer = write_loop(&mut wr, wbuf, &mut rx, &close);
    async { tokio::join!(reader, writer) }
        .instrument(span)
        .await;
    let _ = ctx
        .core
        .send(CoreMsg::Disconnected {
            session,
            conn_id: id,
        })
        .await;
    let _ = wr.shutdown().await;
}

#[allow(clippy::too_many_arguments)]
async fn read_loop<R: AsyncRead + Unpin>(
    rd: &mut R,
    mut buf: BytesMut,
    session: i64,
    conn_id: u64,
    ctx: &ConnContext,
    clock: &SessionClock,
    stats: &ConnStats,
    close: &CancellationToken,
) {
    loop {
        let frame = tokio::select! {
            f = read_frame(rd, &mut buf, ctx.max_buffer) => f,
            _ = close.cancelled() => break,
        };
        let frame = match frame {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, "closing connection");
                break;
            }
        };
        clock.store(ctx.epoch.elapsed().as_millis() as i64, Ordering::Relaxed);
        stats.received.fetch_add(1, Ordering::Relaxed);
        match Request::decode(&frame) {
            Ok((header, request)) => {
                let msg = CoreMsg::Request {
                    session,
                    conn_id,
                    xid: header.xid,
                    request,
                    received: Instant::now(),
                };
                if ctx.core.send(msg).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "undecodable request; closing connection");
                break;
            }
        }
    }
    close.cancel();
}

async fn write_loop<W: tokio::io::AsyncWrite + Unpin>(
    wr: &mut W,
    mut buf: BytesMut,
    rx: &mut mpsc::Receiver<Vec<Outbound>>,
    close: &CancellationToken,
) {
    let mut closing = false;
    while !closing {
        if buf.is_empty() {
            let batch = tokio::select! {
                b = rx.recv() => b,
                _ = close.cancelled() => None,
            };
            let Some(batch) = batch else {
                break;
            };
            closing = encode_all(batch, &mut buf);
        }
        while !closing && buf.len() < WRITE_CHUNK {
            match rx.try_recv() {
                Ok(batch) => closing = encode_all(batch, &mut buf),
                Err(_) => break,
            }
        }
        if let Err(e) = wr.write_all(&buf).await {
            tracing::debug!(error = %e, "write failed");
            break;
        }
        buf.clear();
    }
    close.cancel();
}

/// Appends a batch's frames up to a Close; true when the connection should close.
fn encode_all(batch: Vec<Outbound>, buf: &mut BytesMut) -> bool {
    batch.into_iter().any(|msg| encode(msg, buf))
}

/// Appends a message's frame; true when the connection should close after it.
fn encode(msg: Outbound, buf: &mut BytesMut) -> bool {
    match msg {
        Outbound::Reply { xid, zxid, result } => write_reply(buf, xid, zxid, &result),
        Outbound::Event { zxid, event } => write_event(buf, zxid, &event),
        Outbound::Close => return true,
        Outbound::Connected { .. } => {}
    }
    false
}

async fn four_letter(word: &str, ctx: &ConnContext) -> String {
    if !ctx.four_letter_words.contains(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    if word == "ruok" {
        return "imok".into();
    }
    let (reply, rx) = oneshot::channel();
    if ctx
        .core
        .send(CoreMsg::FourLetter {
            word: word.to_string(),
            reply,
        })
        .await
        .is_err()
    {
        return String::new();
    }
    rx.await.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_bounded_and_truncation_detected() {
        let mut buf = BytesMut::new();
        let mut ok: &[u8] = &[0, 0, 0, 2, 7, 8, 0, 0, 0, 0];
        assert_eq!(
            read_frame(&mut ok, &mut buf, 16)
                .await
                .ok()
                .flatten()
                .as_deref(),
            Some(&[7u8, 8][..])
        );
        assert_eq!(
            read_frame(&mut ok, &mut buf, 16)
                .await
                .ok()
                .flatten()
                .as_deref(),
            Some(&[][..])
        );
        assert!(matches!(read_frame(&mut ok, &mut buf, 16).await, Ok(None)));

        let mut big: &[u8] = &[0, 0, 0, 17];
        assert!(matches!(
            read_frame(&mut big, &mut BytesMut::new(), 16).await,
            Err(FrameError::Length(17))
        ));
        let mut negative: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut negative, &mut BytesMut::new(), 16).await,
            Err(FrameError::Length(-1))
        ));
        let mut short: &[u8] = &[0, 0, 0, 4, 1];
        assert!(matches!(
            read_frame(&mut short, &mut BytesMut::new(), 16).await,
            Err(FrameError::Truncated)
        ));
    }
}
