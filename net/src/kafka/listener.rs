//! Each shard's Kafka listener.
//!
//! Every shard binds the Kafka address itself with `SO_REUSEPORT` and accepts its own
//! connections; the kernel spreads new connections across the shards' sockets. The alternative,
//! one acceptor handing sockets round-robin to the other shards, adds a cross-shard hop and a
//! single point that every connection waits on, and buys an even spread that the kernel's hash
//! already gives for the many connections a loaded broker sees. Partitions are spread over
//! shards anyway, so which shard holds a connection changes only where its requests start, not
//! which shard does the work.
//!
//! Port 0 (tests) needs care: each shard binding port 0 would get its own port. So the port is
//! chosen once, before the shards start, by [`reserve_listen_addr`], which binds (without
//! listening) a socket that holds the port until every shard has bound it.
//!
//! Trap: `SO_REUSEPORT` lets any process of the same user bind a port that is already being
//! listened on, and the kernel then splits new connections between the two. A second node
//! started by mistake on a busy port would start without a word and take half the clients. So
//! [`reserve_listen_addr`] first binds the address without `SO_REUSEPORT`, which fails while
//! any other socket listens on it, as every other server's bind does.

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future;
use glommio::net::TcpListener;
use socket2::{Domain, Protocol, Socket, Type};
use spindle_engine::Shard;

use crate::kafka::connections::Connections;
use crate::kafka::{connection, KafkaConfig};
use crate::kafka::{quota, quota_changes};
use crate::NetError;

/// Backlog of each shard's listening socket.
const LISTEN_BACKLOG: i32 = 1024;

/// How long the accept loop rests after an accept error (such as running out of descriptors)
/// before trying again, so an error it cannot fix does not spin the shard.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// How long a start waits for a Kafka address in use to be released (see
/// [`probe_until_released`]): the sockets of a killed process are gone within milliseconds.
const ADDRESS_RELEASE_WAIT: Duration = Duration::from_secs(2);

/// How often the address is tried meanwhile.
const ADDRESS_RELEASE_POLL: Duration = Duration::from_millis(20);

/// A bound, non-listening socket that holds the Kafka port while the shards bind it.
#[derive(Debug)]
pub struct ListenReservation {
    _socket: Socket,
    addr: SocketAddr,
}

impl ListenReservation {
    /// The concrete address (port 0 resolved) that every shard must bind.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Chooses the concrete listen address for `addr` (resolving port 0) and holds it until the
/// reservation is dropped, which should happen once every shard's listener is bound.
///
/// # Errors
/// [`NetError::Bind`] when the address is in use or not local.
pub fn reserve_listen_addr(addr: SocketAddr) -> Result<ListenReservation, NetError> {
    let bind_err = |source| NetError::Bind { addr, source };
    let free = probe_until_released(addr).map_err(bind_err)?;
    let socket = reuse_port_socket(free).map_err(bind_err)?;
    let bound = socket
        .local_addr()
        .map_err(bind_err)?
        .as_socket()
        .ok_or_else(|| bind_err(std::io::Error::other("not an IP socket")))?;
    Ok(ListenReservation {
        _socket: socket,
        addr: bound,
    })
}

/// Binds this shard's listener on `config.listen` and spawns its accept loop, which stops when
/// the engine begins to shut down. Returns the bound address.
///
/// # Errors
/// [`NetError::Config`] when a setting is outside its range ([`KafkaConfig::validate`]);
/// [`NetError::State`] when the client quotas changed at run time cannot be read;
/// [`NetError::Bind`] when the address cannot be bound.
pub fn start(shard: Shard, config: Arc<KafkaConfig>) -> Result<SocketAddr, NetError> {
    config.validate()?;
    quota_changes::start(&shard.data_dir(), &config.quotas).map_err(NetError::State)?;
    let addr = config.listen;
    let bind_err = |source| NetError::Bind { addr, source };
    let socket = reuse_port_socket(addr).map_err(bind_err)?;
    socket.listen(LISTEN_BACKLOG).map_err(bind_err)?;
    // SAFETY: the descriptor is a bound, listening TCP socket that we own and hand over whole;
    // this is what glommio's own `TcpListener::bind` builds.
    let listener = unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) };
    let bound = listener
        .local_addr()
        .map_err(|e| bind_err(std::io::Error::other(e.to_string())))?;
    tracing::debug!(shard = %shard.id(), %bound, "kafka listener bound");
    shard
        .clone()
        .spawn_request(accept_loop(listener, shard, config));
    Ok(bound)
}

/// [`exclusive_probe`], retried for up to [`ADDRESS_RELEASE_WAIT`] while the address is in use.
///
/// A process killed with SIGKILL leaves its io_uring rings to be torn down by the kernel in the
/// background, and the listening socket an accept was pending on is closed only then: a node
/// restarted the moment its predecessor was reaped once failed with "Address already in use".
/// A port that another live server holds is still refused, two seconds later.
fn probe_until_released(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let deadline = Instant::now() + ADDRESS_RELEASE_WAIT;
    let mut waited = false;
    loop {
        match exclusive_probe(addr) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                if !waited {
                    tracing::info!(%addr, "address in use: waiting for it to be released");
                    waited = true;
                }
                std::thread::sleep(ADDRESS_RELEASE_POLL);
            }
            other => return other,
        }
    }
}

/// Binds `addr` without `SO_REUSEPORT` and lets it go: fails (address in use) while another
/// socket listens on it, and resolves port 0. `SO_REUSEADDR` keeps the connections a previous
/// run left in TIME_WAIT from blocking a restart.
fn exclusive_probe(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| std::io::Error::other("not an IP socket"))
}

/// A TCP socket with `SO_REUSEPORT` (so every shard can bind the address) and `SO_REUSEADDR` (so
/// a restart can bind while old connections linger in TIME_WAIT), bound to `addr`.
fn reuse_port_socket(addr: SocketAddr) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_port(true)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// Accepts connections until the engine stops, serving each in its own task; then tells every
/// connection to finish.
async fn accept_loop(listener: TcpListener, shard: Shard, config: Arc<KafkaConfig>) {
    let connections = Rc::new(Connections::default());
    let quotas = quota::shard_quotas();
    // Quotas may be configured at run time: the task sleeps until something is charged.
    shard.spawn_background(quota::share_charges(shard.clone()));
    loop {
        let accepted = future::or(async { Some(listener.accept().await) }, async {
            shard.stopping().await;
            None
        })
        .await;
        let stream = match accepted {
            None => break,
            Some(Ok(stream)) => stream,
            Some(Err(e)) => {
                tracing::warn!(shard = %shard.id(), error = %e, "kafka accept failed");
                glommio::timer::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let peer = match stream.peer_addr() {
            Ok(peer) => peer,
            Err(e) => {
                tracing::debug!(error = %e, "connection gone before it was served");
                continue;
            }
        };
        if connections.len() >= config.max_connections_per_shard {
            tracing::warn!(
                %peer,
                shard = %shard.id(),
                limit = config.max_connections_per_shard,
                "refusing kafka connection: too many open on this shard"
            );
            continue;
        }
        shard.spawn_request(connection::serve(
            stream,
            peer,
            shard.clone(),
            Arc::clone(&config),
            connections.register(),
            Rc::clone(&quotas),
        ));
    }
    drop(listener);
    connections.stop_all();
    tracing::debug!(shard = %shard.id(), "kafka listener stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_another_node_listens_on_is_refused_though_both_use_reuse_port() {
        let first = reserve_listen_addr("127.0.0.1:0".parse().expect("address"))
            .expect("a free port is reserved");
        let other_node = reuse_port_socket(first.addr()).expect("binds beside the reservation");
        other_node.listen(8).expect("listens");
        drop(first);
        let err = reserve_listen_addr(other_node_addr(&other_node)).unwrap_err();
        assert!(
            matches!(&err, NetError::Bind { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse),
            "{err}"
        );
        drop(other_node);
    }

    #[test]
    fn a_port_left_with_no_listener_is_reserved_again() {
        let addr = {
            let first =
                reserve_listen_addr("127.0.0.1:0".parse().expect("address")).expect("reserved");
            first.addr()
        };
        let again = reserve_listen_addr(addr).expect("the port is free again");
        assert_eq!(again.addr(), addr);
    }

    fn other_node_addr(socket: &Socket) -> SocketAddr {
        socket
            .local_addr()
            .expect("bound")
            .as_socket()
            .expect("an IP socket")
    }
}
