//! A request body handed to hyper in pieces, which says when hyper has taken the last one.
//!
//! A request's own read timeout (`timeout=` on one call) must not count the upload: the server
//! is silent while it receives the body, so an upload longer than the limit failed with a read
//! timeout (httpx counts `read` from the end of the upload). hyper asks a body for its next
//! frame only when its write buffer has room, so with the body cut into pieces the moment the
//! last piece is taken is close to the moment the upload ends (within hyper's buffer and the
//! kernel's, as for httpx); a body of one frame would be taken whole at once. The client's own
//! read timeout is per read on the connection and is kept off during the upload there
//! (`conn::TrackedTcp::after_write`).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;

/// The size of the pieces: large enough that a big body costs few polls, small against hyper's
/// write buffer (~400 KB).
const PIECE: usize = 64 * 1024;

pub(crate) struct Upload {
    rest: Bytes,
    /// Told once the last piece is taken (dropped unsent when the body is dropped before).
    taken: Option<oneshot::Sender<()>>,
}

impl Upload {
    /// A body that tells nobody.
    pub(crate) fn new(body: Bytes) -> Self {
        Upload {
            rest: body,
            taken: None,
        }
    }

    /// A body, and a receiver that completes once hyper has taken all of it (at once for an
    /// empty body; with an error, which means the same, when the body is dropped first).
    pub(crate) fn watched(body: Bytes) -> (Self, oneshot::Receiver<()>) {
        let (sender, receiver) = oneshot::channel();
        let taken = if body.is_empty() {
            let _ = sender.send(());
            None
        } else {
            Some(sender)
        };
        (Upload { rest: body, taken }, receiver)
    }
}

impl Body for Upload {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if this.rest.is_empty() {
            return Poll::Ready(None);
        }
        let piece = this.rest.split_to(this.rest.len().min(PIECE));
        if this.rest.is_empty() {
            if let Some(taken) = this.taken.take() {
                let _ = taken.send(());
            }
        }
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn an_upload_is_its_bytes_in_pieces_and_tells_when_all_are_taken() {
        for size in [0, 1, PIECE - 1, PIECE, PIECE + 1, 3 * PIECE + 17] {
            let bytes: Bytes = (0..size)
                .map(|i| (i % 251) as u8)
                .collect::<Vec<_>>()
                .into();
            let (mut upload, mut taken) = Upload::watched(bytes.clone());
            assert_eq!(upload.size_hint().exact(), Some(size as u64));
            let mut got = Vec::new();
            while let Some(frame) = upload.frame().await {
                let data = frame.unwrap().into_data().unwrap();
                assert!(data.len() <= PIECE);
                // Told with the last piece, not before.
                assert_eq!(taken.try_recv().is_ok(), got.len() + data.len() == size);
                got.extend_from_slice(&data);
            }
            assert_eq!(got, bytes);
            assert!(upload.is_end_stream());
            if size == 0 {
                assert!(taken.try_recv().is_ok());
            }
        }
    }
}
