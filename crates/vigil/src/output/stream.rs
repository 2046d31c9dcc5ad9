//! The API's events stream as an output: every event goes to a bounded
//! broadcast that `GetEvents` subscribers read. The agent never waits for a
//! subscriber: one that falls behind loses the oldest events, and is told
//! how many. Events are serialized by the subscribers, off the agent's loop.
use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use tokio::sync::broadcast;
use vigil_events::Event;

#[derive(Clone)]
pub struct EventStream {
    tx: broadcast::Sender<Arc<Event>>,
    /// Kept apart from the channel's own count, which takes a lock to read.
    subscribers: Arc<AtomicUsize>,
}

/// Counts its subscriber until dropped with it.
pub struct SubscriberGuard(Arc<AtomicUsize>);

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl EventStream {
    /// A stream keeping at most `capacity` events for its slowest subscriber.
    pub fn new(capacity: usize) -> Self {
        EventStream {
            tx: broadcast::channel(capacity.max(1)).0,
            subscribers: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Events from now on; the guard must live as long as the receiver.
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<Event>>, SubscriberGuard) {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        (
            self.tx.subscribe(),
            SubscriberGuard(self.subscribers.clone()),
        )
    }

    pub fn subscribers(&self) -> usize {
        self.subscribers.load(Ordering::Relaxed)
    }

    /// Costs one atomic load when nobody listens.
    pub fn publish(&self, ev: &Event) {
        if self.subscribers() > 0 {
            // Fails only when the last subscriber left meanwhile.
            let _ = self.tx.send(Arc::new(ev.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use vigil_events::{EventBody, LostEvents};

    use super::*;

    fn event(count: u64) -> Event {
        Event {
            body: EventBody::LostEvents(LostEvents {
                source: "s".into(),
                kind: "k".into(),
                count,
                total: count,
            }),
            node_name: "n".into(),
            time: "t".into(),
        }
    }

    #[test]
    fn a_slow_subscriber_loses_the_oldest_and_is_told() {
        let stream = EventStream::new(2);
        stream.publish(&event(0));
        let (mut rx, guard) = stream.subscribe();
        assert_eq!(stream.subscribers(), 1);
        for i in 1..=5 {
            stream.publish(&event(i));
        }
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(3))
        ));
        let next = rx.try_recv().expect("the newest two remain");
        assert!(matches!(&next.body, EventBody::LostEvents(l) if l.count == 4));
        drop(guard);
        assert_eq!(stream.subscribers(), 0);
    }
}
