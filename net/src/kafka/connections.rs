//! [`Connections`]: the open connections of one shard's listener, stopped together.
//!
//! Each connection must notice shutdown while it waits for its next request. Waiting on the
//! engine's stop event from every connection would leave a registration behind for each
//! connection ever opened; here the accept loop alone waits for the engine, and each connection
//! holds a [`StopWatch`] whose channel closes when the shard stops and whose entry is removed
//! when the connection ends. The registry also bounds how many connections one shard serves.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};

/// The open connections of one shard.
#[derive(Default)]
pub(crate) struct Connections {
    next_id: Cell<u64>,
    stopped: Cell<bool>,
    open: RefCell<HashMap<u64, LocalSender<()>>>,
}

impl Connections {
    /// How many connections are open.
    pub(crate) fn len(&self) -> usize {
        self.open.borrow().len()
    }

    /// Registers a new connection; its watch fires when [`Connections::stop_all`] is called (at
    /// once if it already was).
    pub(crate) fn register(self: &Rc<Self>) -> StopWatch {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (sender, receiver) = local_channel::new_bounded(1);
        if !self.stopped.get() {
            self.open.borrow_mut().insert(id, sender);
        }
        StopWatch {
            id,
            receiver,
            registry: Rc::clone(self),
        }
    }

    /// Tells every open connection, and every one registered later, to stop.
    pub(crate) fn stop_all(&self) {
        self.stopped.set(true);
        // Dropping the senders closes every watch's channel.
        let closing = std::mem::take(&mut *self.open.borrow_mut());
        drop(closing);
    }
}

/// One connection's view of the shard's shutdown.
pub(crate) struct StopWatch {
    id: u64,
    receiver: LocalReceiver<()>,
    registry: Rc<Connections>,
}

impl StopWatch {
    /// Resolves when the shard stops.
    pub(crate) async fn stopped(&self) {
        // Nothing is ever sent: the channel only closes.
        while self.receiver.recv().await.is_some() {}
    }
}

impl Drop for StopWatch {
    fn drop(&mut self) {
        self.registry.open.borrow_mut().remove(&self.id);
    }
}
