//! Configuration, probability tables and rule trees are cached in each process. When an
//! operator changes them on one node (armory, dcc), the other nodes must drop their
//! copies: the services announce the change through [`ConfigBroadcast`] (Redis pub/sub
//! on the production backend, nothing on one embedded node) and every node reloads what
//! was named, without announcing again.

use std::sync::{Arc, OnceLock};

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    Strategy(i64),
    Activity(i64),
    Dcc,
}

/// Announces a change to the other nodes; must not block (the caller is a request).
pub trait ConfigBroadcast: Send + Sync {
    fn changed(&self, what: Changed);
}

/// A service's announcer, set once at wiring time; silent until then.
#[derive(Default)]
pub struct Broadcaster(OnceLock<Arc<dyn ConfigBroadcast>>);

impl Broadcaster {
    /// Sets the announcer; a second call is ignored (wiring happens once).
    pub fn set(&self, broadcast: Arc<dyn ConfigBroadcast>) {
        let _ = self.0.set(broadcast);
    }

    pub fn changed(&self, what: Changed) {
        if let Some(b) = self.0.get() {
            b.changed(what);
        }
    }
}
