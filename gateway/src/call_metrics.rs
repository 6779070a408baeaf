//! [`CallMetrics`]: gRPC calls, failures and latency by method, and [`Counted`], the service
//! wrapper that records them around each Spindle service.
//!
//! The gateway runs on a multi-threaded tokio runtime, not on a shard, so its counters are
//! shared by its worker threads behind one mutex, taken once per call (not per message of a
//! stream). A call counts when its response headers are ready: for unary calls that is the
//! whole call; for streams it is the time to open them. A call fails when it answers with a
//! non-zero `grpc-status` in its headers (a trailers-only error) or the service errs.
//!
//! The method label is the request path, which the client chooses: only
//! [`METHODS_MAX`] distinct paths get their own series, later ones are counted as `other`, so
//! a client cannot grow the exposition without bound.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use spindle_engine::metrics::{Exposition, Kind, LatencyHistogram};
use tonic::codegen::{http, BoxFuture, Context, Poll, Service};
use tonic::server::NamedService;

/// Distinct methods counted by name; more are counted as `other`.
pub const METHODS_MAX: usize = 64;

/// One method's numbers.
#[derive(Debug, Default)]
struct MethodStats {
    calls: u64,
    errors: u64,
    latency: LatencyHistogram,
}

/// gRPC calls by method, shared by the gateway's threads.
#[derive(Debug, Default)]
pub struct CallMetrics {
    methods: Mutex<BTreeMap<String, MethodStats>>,
}

impl CallMetrics {
    fn record(&self, method: &str, elapsed: Duration, failed: bool) {
        // A panic elsewhere while holding the lock leaves counts that are still counts.
        let mut methods = self.methods.lock().unwrap_or_else(PoisonError::into_inner);
        let key = if methods.contains_key(method) || methods.len() < METHODS_MAX {
            method
        } else {
            "other"
        };
        let stats = methods.entry(key.to_owned()).or_default();
        stats.calls += 1;
        stats.errors += u64::from(failed);
        stats.latency.record(elapsed);
    }

    /// The gRPC families in the Prometheus text format.
    pub fn render(&self) -> String {
        let methods = self.methods.lock().unwrap_or_else(PoisonError::into_inner);
        let mut e = Exposition::default();
        let name = "spindle_grpc_requests_total";
        e.family(name, "gRPC calls, by method.", Kind::Counter);
        for (method, stats) in methods.iter() {
            e.sample(name, &[("method", method)], stats.calls);
        }
        let name = "spindle_grpc_request_errors_total";
        e.family(
            name,
            "gRPC calls answered with an error, by method.",
            Kind::Counter,
        );
        for (method, stats) in methods.iter() {
            e.sample(name, &[("method", method)], stats.errors);
        }
        let name = "spindle_grpc_request_duration_seconds";
        e.family(
            name,
            "Time from a gRPC call to its response headers, by method.",
            Kind::Histogram,
        );
        for (method, stats) in methods.iter() {
            e.histogram(name, &[("method", method)], &stats.latency.snapshot());
        }
        e.finish()
    }
}

/// A service whose calls are counted in [`CallMetrics`].
#[derive(Debug, Clone)]
pub struct Counted<S> {
    inner: S,
    metrics: Arc<CallMetrics>,
}

impl<S> Counted<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, metrics: Arc<CallMetrics>) -> Self {
        Self { inner, metrics }
    }
}

impl<S: NamedService> NamedService for Counted<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, R> Service<http::Request<B>> for Counted<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let started = Instant::now();
        let call = self.inner.call(request);
        let metrics = Arc::clone(&self.metrics);
        Box::pin(async move {
            let result = call.await;
            let failed = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .is_some_and(|status| status.as_bytes() != b"0"),
                Err(_) => true,
            };
            metrics.record(&method, started.elapsed(), failed);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_past_the_limit_are_counted_as_other() {
        let metrics = CallMetrics::default();
        for i in 0..METHODS_MAX + 3 {
            metrics.record(&format!("/m/{i}"), Duration::from_micros(10), i % 2 == 0);
        }
        metrics.record("/m/0", Duration::from_micros(10), false);
        let text = metrics.render();
        assert!(text.contains("spindle_grpc_requests_total{method=\"/m/0\"} 2\n"));
        assert!(text.contains("spindle_grpc_requests_total{method=\"other\"} 3\n"));
        assert!(text.contains("spindle_grpc_request_errors_total{method=\"/m/0\"} 1\n"));
    }
}
