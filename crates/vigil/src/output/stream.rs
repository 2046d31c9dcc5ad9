//! The API's events stream as an output: every event goes to a bounded
//! broadcast that `GetEvents` subscribers read. The agent never waits for a
//! subscriber: one that falls behind loses the oldest events, and is told
//! how many. Events are serialized by the subscribers, off the agent's loop.
use std::sync::Arc;

use tokio::sync::broadcast;
use vigil_events::Event;

#[derive(Clone)]
pub struct EventStream {
    tx: broadcast::Sender<Arc<Event>>,
}

impl EventStream {
    /// A stream keeping at most `capacity` events for its slowest subscriber.
    pub fn new(capacity: usize) -> Self {
        EventStream {
            tx: broadcast::channel(capacity.max(1)).0,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Costs one check when nobody listens.
    pub fn publish(&self, ev: &Event) {
        if self.tx.receiver_count() > 0 {
            // Fails only when the last subscriber left meanwhile.
            let _ = self.tx.send(Arc::new(ev.clone()));
        }
    }
}
