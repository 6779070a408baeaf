//! [`Gateway`]: tonic on its own tokio runtime, bridged to the shards by [`EngineHandle`].
//!
//! The shards run glommio executors, one per core, and never block on anything outside them;
//! the gateway must not take one of their threads. So `start` builds a multi-threaded tokio
//! runtime with a few worker threads of its own, binds the listener synchronously (a bad
//! address or TLS file fails `start`, not some later task), and runs the server on a dedicated
//! thread that owns the runtime. Each gRPC call then turns into `EngineHandle` calls: a message
//! to the owning shard and a one-shot reply awaited on the tokio side.
//!
//! Shutdown: the watch channel flips, health turns NOT_SERVING, long-lived streams end
//! (subscribers get UNAVAILABLE), tonic stops accepting and drains open calls for up to
//! [`SHUTDOWN_GRACE`], and the runtime thread is joined.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use spindle_engine::EngineHandle;
use tokio::sync::watch;
use tonic::server::NamedService;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::{Router, TcpIncoming};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::auth::Authenticator;
use crate::call_metrics::{CallMetrics, Counted};
use crate::config::{GatewayConfig, TlsConfig};
use crate::error::GatewayError;
use crate::limits::{GRPC_MESSAGE_BYTES_MAX, SHUTDOWN_GRACE};
use crate::partitioner::Partitioner;
use crate::produce_memory::ProduceMemory;
use crate::proto::admin_server::AdminServer;
use crate::proto::consumer_server::ConsumerServer;
use crate::proto::producer_server::ProducerServer;
use crate::quota::Quotas;
use crate::service::{AdminService, ConsumerService, Context, ProducerService};
use crate::topic_cache::TopicCache;

/// A running gateway: its own tokio runtime serving gRPC.
pub struct Gateway {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    call_metrics: Arc<CallMetrics>,
}

impl Gateway {
    /// Starts serving on its own tokio runtime threads; every call becomes a message to the
    /// owning shard through `engine`.
    ///
    /// # Errors
    /// The listen address cannot be bound, TLS material cannot be read, the configuration is
    /// inconsistent (bad topic pattern, zero quota, thread count).
    pub fn start(config: GatewayConfig, engine: EngineHandle) -> Result<Gateway, GatewayError> {
        config.validate()?;
        let authenticator = Authenticator::new(config.auth.as_ref())?;
        let quotas = Quotas::new(config.quota, config.auth.as_ref())?;
        let tls = config.tls.as_ref().map(load_tls).transpose()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.runtime_threads)
            .thread_name("spindle-grpc")
            .enable_all()
            .build()
            .map_err(GatewayError::Runtime)?;
        let (listener, local_addr) = bind(config.listen, &runtime)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let ctx = Arc::new(Context {
            engine,
            topics: TopicCache::default(),
            quotas,
            partitioner: Partitioner::default(),
            gauges: Arc::default(),
            shutdown: shutdown_rx,
        });
        let (health, health_service) = tonic_health::server::health_reporter();
        let mut builder = Server::builder();
        if let Some(tls) = tls {
            builder = builder.tls_config(tls)?;
        }
        let router = builder
            .add_service(health_service)
            .add_service(reflection().build_v1()?)
            .add_service(reflection().build_v1alpha()?);
        let call_metrics = Arc::new(CallMetrics::default());
        let router = add_spindle_services(router, &ctx, authenticator, &call_metrics);
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let serve = serve(router, incoming, health, Arc::clone(&ctx));
        let thread = std::thread::Builder::new()
            .name("spindle-grpc-main".to_string())
            .spawn(move || run_runtime(runtime, serve, &ctx))
            .map_err(GatewayError::Runtime)?;
        tracing::info!(addr = %local_addr, tls = config.tls.is_some(), auth = config.auth.is_some(), "gRPC gateway listening");
        Ok(Gateway {
            local_addr,
            shutdown,
            thread: Some(thread),
            call_metrics,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The gRPC calls counted by method, for the admin endpoint's `/metrics`.
    pub fn call_metrics(&self) -> Arc<CallMetrics> {
        Arc::clone(&self.call_metrics)
    }

    /// Stops accepting, ends streams and joins the runtime.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the gRPC runtime thread panicked");
            }
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds synchronously, so that a bad address fails `start` itself.
fn bind(
    listen: SocketAddr,
    runtime: &tokio::runtime::Runtime,
) -> Result<(tokio::net::TcpListener, SocketAddr), GatewayError> {
    let bind_error = |source| GatewayError::Bind {
        addr: listen,
        source,
    };
    let listener = std::net::TcpListener::bind(listen).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    let _entered = runtime.enter();
    let listener = tokio::net::TcpListener::from_std(listener).map_err(bind_error)?;
    Ok((listener, local_addr))
}

/// The `spindle.v1` services, each behind the bearer-token interceptor.
fn add_spindle_services(
    router: Router,
    ctx: &Arc<Context>,
    authenticator: Authenticator,
    metrics: &Arc<CallMetrics>,
) -> Router {
    let auth = move |request| authenticator.intercept(request);
    // The generated servers share no trait for their size limits, so one macro wraps each the
    // same way: limits, then the interceptor, then the call counter.
    macro_rules! intercepted {
        ($server:ident, $service:ident) => {
            InterceptedService::new(
                $server::new($service::new(Arc::clone(ctx)))
                    .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
                    .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX),
                auth.clone(),
            )
        };
    }
    macro_rules! wrapped {
        ($server:ident, $service:ident) => {
            Counted::new(intercepted!($server, $service), Arc::clone(metrics))
        };
    }
    router
        // Unary Produce calls wait for their bytes of a gateway-wide budget before they are read.
        .add_service(Counted::new(
            ProduceMemory::new(intercepted!(ProducerServer, ProducerService)),
            Arc::clone(metrics),
        ))
        .add_service(wrapped!(ConsumerServer, ConsumerService))
        .add_service(wrapped!(AdminServer, AdminService))
}

/// Serves until shutdown begins, reporting health on the way in and out.
async fn serve(router: Router, incoming: TcpIncoming, health: HealthReporter, ctx: Arc<Context>) {
    set_health(&health, ServingStatus::Serving).await;
    let stopping = async {
        ctx.stopping().await;
        set_health(&health, ServingStatus::NotServing).await;
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
    };
    if let Err(err) = router
        .serve_with_incoming_shutdown(incoming, stopping)
        .await
    {
        tracing::error!(error = %err, "gRPC server failed");
    }
}

async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health
        .set_service_status(
            <ProducerServer<ProducerService> as NamedService>::NAME,
            status,
        )
        .await;
    health
        .set_service_status(
            <ConsumerServer<ConsumerService> as NamedService>::NAME,
            status,
        )
        .await;
    health
        .set_service_status(<AdminServer<AdminService> as NamedService>::NAME, status)
        .await;
}

/// The body of the gateway's main thread: runs the server, and once shutdown begins gives open
/// calls [`SHUTDOWN_GRACE`] before dropping them.
fn run_runtime(
    runtime: tokio::runtime::Runtime,
    serve: impl std::future::Future<Output = ()> + Send + 'static,
    ctx: &Context,
) {
    runtime.block_on(async {
        let mut server = tokio::spawn(serve);
        let grace_over = async {
            ctx.stopping().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            finished = &mut server => {
                if let Err(err) = finished {
                    tracing::error!(error = %err, "gRPC server task failed");
                }
            }
            () = grace_over => {
                tracing::warn!("open gRPC calls did not finish within the grace period; dropping them");
                server.abort();
            }
        }
    });
    // Tasks still running (a call parked on the engine) are dropped, not awaited.
    runtime.shutdown_timeout(std::time::Duration::ZERO);
}

/// Server reflection over `spindle.v1` and the health service (built once per protocol
/// version: grpcurl and older tools still ask v1alpha).
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

fn load_tls(config: &TlsConfig) -> Result<ServerTlsConfig, GatewayError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| GatewayError::TlsFile {
            path: path.to_path_buf(),
            source,
        })
    };
    let cert = read(&config.cert_path)?;
    let key = read(&config.key_path)?;
    let tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    Ok(match &config.client_ca_path {
        Some(ca) => tls.client_ca_root(Certificate::from_pem(read(ca)?)),
        None => tls,
    })
}
