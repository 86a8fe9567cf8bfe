//! Waiting for something that happens on its own: a background refresh, a reconnect, a
//! task that ends. Each wait polls with a deadline, so a test that waits in vain fails
//! with what it waited for instead of hanging.

use std::time::Duration;

/// How long a wait lasts unless the test says otherwise: far beyond what any of these
/// waits takes on a quiet machine, so that only a wait in vain reaches it.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// Short enough that a wait ends soon after its condition holds, long enough that a
/// check sending a request each round does not load the server under test.
const POLL: Duration = Duration::from_millis(10);

/// What a check reports: `false` or `None` to keep waiting, `true` or `Some(value)` once
/// it holds; the wait returns `()` or the value.
pub trait Ready {
    type Value;
    fn ready(self) -> Option<Self::Value>;
}

impl Ready for bool {
    type Value = ();
    fn ready(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Ready for Option<T> {
    type Value = T;
    fn ready(self) -> Option<T> {
        self
    }
}

/// Runs `check` until it holds, failing with `what` after [`PATIENCE`].
pub async fn eventually<R: Ready>(what: &str, check: impl AsyncFnMut() -> R) -> R::Value {
    eventually_within(PATIENCE, what, check).await
}

/// Runs `check` until it holds, failing with `what` after `within`: for a wait whose
/// bound is part of what the test proves, or one that takes longer (a server restart).
pub async fn eventually_within<R: Ready>(
    within: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> R,
) -> R::Value {
    // The time is read before the check: a check that starts in time and then holds
    // counts, however long its round took.
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let past = tokio::time::Instant::now() >= deadline;
        if let Some(value) = check().await.ready() {
            return value;
        }
        assert!(!past, "not within {within:?}: {what}");
        tokio::time::sleep(POLL).await;
    }
}
