//! [`ProduceMemory`]: a budget for the bytes of unary `Produce` calls being received and handled
//! at once.
//!
//! tonic reads the whole message of a unary call (up to [`GRPC_MESSAGE_BYTES_MAX`]) before the
//! handler runs, and nothing else bounded how many it read at once: clients making many
//! concurrent calls of large messages could make the gateway, which runs in the shards'
//! process, hold gigabytes. This service wrapper reads the first five bytes of a `Produce`
//! call's body, the gRPC prefix that declares the message's length, and waits until that many
//! bytes of [`PRODUCE_BYTES_IN_FLIGHT_MAX`] are free before it lets the call go on; they are
//! given back once the call has answered. While a call waits, the rest of its body is not read,
//! so HTTP/2 flow control holds its client back. `ProduceStream` pushes back by itself (at most
//! [`crate::limits::PRODUCE_STREAM_IN_FLIGHT_MAX`] requests in flight per stream), and the other
//! calls carry small messages.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::Semaphore;
use tonic::codegen::{http, BoxFuture, Context, Poll, Service};
use tonic::server::NamedService;

use crate::limits::{GRPC_MESSAGE_BYTES_MAX, PRODUCE_BYTES_IN_FLIGHT_MAX};

/// The one call this budget applies to.
const PRODUCE_PATH: &str = "/spindle.v1.Producer/Produce";
/// The gRPC message prefix: a compression flag and the message's length (big-endian u32).
const PREFIX_BYTES: usize = 5;
/// The budget is counted in KiB (a semaphore's permits are a `u32` at a time).
const UNIT_BYTES: usize = 1024;

/// Wraps the Producer service so that unary `Produce` calls wait for their bytes.
#[derive(Clone)]
pub struct ProduceMemory<S> {
    inner: S,
    budget: Arc<Semaphore>,
}

impl<S> ProduceMemory<S> {
    /// Wraps `inner` with a budget of [`PRODUCE_BYTES_IN_FLIGHT_MAX`].
    pub fn new(inner: S) -> Self {
        Self::with_budget(inner, PRODUCE_BYTES_IN_FLIGHT_MAX)
    }

    fn with_budget(inner: S, bytes: usize) -> Self {
        Self {
            inner,
            budget: Arc::new(Semaphore::new(bytes / UNIT_BYTES)),
        }
    }
}

impl<S: NamedService> NamedService for ProduceMemory<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for ProduceMemory<S>
where
    S: Service<http::Request<Prefixed<B>>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Send,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != PRODUCE_PATH {
            return Box::pin(self.inner.call(request.map(Prefixed::whole)));
        }
        // The clone is ready in its turn; the one polled ready serves later calls (tower's rule
        // for services called from a future).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let budget = Arc::clone(&self.budget);
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let (body, declared) = Prefixed::read_prefix(body).await;
            let units = declared.min(GRPC_MESSAGE_BYTES_MAX) + PREFIX_BYTES;
            let units = u32::try_from(units.div_ceil(UNIT_BYTES)).unwrap_or(u32::MAX);
            // Never closed, so acquiring fails never; a call waits while others hold the bytes.
            let _held = budget.acquire_many_owned(units).await;
            inner.call(http::Request::from_parts(parts, body)).await
        })
    }
}

/// A request body with the frames already read in front of the rest.
pub struct Prefixed<B: Body> {
    read: VecDeque<Frame<Bytes>>,
    failed: Option<B::Error>,
    rest: B,
}

impl<B: Body<Data = Bytes> + Unpin> Prefixed<B> {
    /// `body` untouched.
    fn whole(body: B) -> Self {
        Self {
            read: VecDeque::new(),
            failed: None,
            rest: body,
        }
    }

    /// Reads `body` until the gRPC message prefix is in, and returns the body to pass on with
    /// the message length it declares (0 when the body ends or fails first: the call then fails
    /// in tonic's decoder as it would have).
    async fn read_prefix(mut body: B) -> (Self, usize) {
        let mut read = VecDeque::new();
        let mut failed = None;
        let mut head = Vec::with_capacity(PREFIX_BYTES);
        while head.len() < PREFIX_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        let wanted = PREFIX_BYTES - head.len();
                        head.extend_from_slice(&data.chunk()[..data.len().min(wanted)]);
                    }
                    let trailers = frame.is_trailers();
                    read.push_back(frame);
                    if trailers {
                        break;
                    }
                }
                Some(Err(e)) => {
                    failed = Some(e);
                    break;
                }
                None => break,
            }
        }
        let declared = match head[..] {
            [_, a, b, c, d] => {
                usize::try_from(u32::from_be_bytes([a, b, c, d])).unwrap_or(usize::MAX)
            }
            _ => 0,
        };
        let body = Self {
            read,
            failed,
            rest: body,
        };
        (body, declared)
    }
}

impl<B> Body for Prefixed<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        if let Some(frame) = this.read.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(e) = this.failed.take() {
            return Poll::Ready(Some(Err(e)));
        }
        Pin::new(&mut this.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_empty() && self.failed.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let read: u64 = self
            .read
            .iter()
            .filter_map(Frame::data_ref)
            .map(|d| d.len() as u64)
            .sum();
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + read);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + read);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::sync::Notify;

    /// A service that reads the whole body, counts the calls inside it and waits for `release`.
    #[derive(Clone)]
    struct Holding {
        inside: Arc<AtomicUsize>,
        release: Arc<Notify>,
    }

    impl Service<http::Request<Prefixed<Full<Bytes>>>> for Holding {
        type Response = usize;
        type Error = Infallible;
        type Future = BoxFuture<usize, Infallible>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<Prefixed<Full<Bytes>>>) -> Self::Future {
            let (inside, release) = (Arc::clone(&self.inside), Arc::clone(&self.release));
            Box::pin(async move {
                let bytes = request.into_body().collect().await.unwrap().to_bytes();
                inside.fetch_add(1, Ordering::SeqCst);
                release.notified().await;
                inside.fetch_sub(1, Ordering::SeqCst);
                Ok(bytes.len())
            })
        }
    }

    /// A gRPC-framed call to `path` declaring and carrying a message of `len` bytes.
    fn call(path: &str, len: usize) -> http::Request<Full<Bytes>> {
        let mut body = vec![0u8];
        body.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
        body.resize(PREFIX_BYTES + len, 7);
        http::Request::builder()
            .uri(path)
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    }

    #[tokio::test]
    async fn produce_calls_wait_for_their_bytes_and_others_do_not() {
        let holding = Holding {
            inside: Arc::new(AtomicUsize::new(0)),
            release: Arc::new(Notify::new()),
        };
        // Room for two calls of 40 KiB, not three.
        let mut service = ProduceMemory::with_budget(holding.clone(), 100 * UNIT_BYTES);
        let calls: Vec<_> = (0..3)
            .map(|_| tokio::spawn(service.call(call(PRODUCE_PATH, 40 * UNIT_BYTES))))
            .collect();
        let other =
            tokio::spawn(service.call(call("/spindle.v1.Admin/ListTopics", 40 * UNIT_BYTES)));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            holding.inside.load(Ordering::SeqCst),
            3,
            "two Produce calls and the other call are handled; the third Produce waits"
        );
        holding.release.notify_waiters();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            holding.inside.load(Ordering::SeqCst),
            1,
            "the third got the bytes back"
        );
        holding.release.notify_waiters();
        for c in calls {
            assert_eq!(
                c.await.unwrap().unwrap(),
                PREFIX_BYTES + 40 * UNIT_BYTES,
                "body intact"
            );
        }
        assert_eq!(
            other.await.unwrap().unwrap(),
            PREFIX_BYTES + 40 * UNIT_BYTES
        );
    }

    #[tokio::test]
    async fn a_declared_length_beyond_the_largest_message_costs_the_largest() {
        let holding = Holding {
            inside: Arc::new(AtomicUsize::new(0)),
            release: Arc::new(Notify::new()),
        };
        let mut service = ProduceMemory::new(holding.clone());
        // A prefix claiming 4 GiB (the body is short): charged as one largest message, so it
        // neither waits forever nor takes more than the budget.
        let mut body = vec![0u8, 0xff, 0xff, 0xff, 0xff];
        body.extend_from_slice(b"short");
        let request = http::Request::builder()
            .uri(PRODUCE_PATH)
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let call = tokio::spawn(service.call(request));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(holding.inside.load(Ordering::SeqCst), 1);
        holding.release.notify_waiters();
        assert_eq!(call.await.unwrap().unwrap(), 10);
    }
}
