//! Creation rate: a token bucket shared by every caller.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub(super) struct TokenBucket {
    pub(super) rate: f64,
    pub(super) burst: f64,
    pub(super) state: Mutex<BucketState>,
}

pub(super) struct BucketState {
    pub(super) tokens: f64,
    pub(super) last: Instant,
    pub(super) paused_until: Option<Instant>,
}

impl TokenBucket {
    pub(super) fn new(rate: f64, burst: f64) -> Self {
        TokenBucket {
            rate,
            burst,
            state: Mutex::new(BucketState { tokens: burst, last: Instant::now(), paused_until: None }),
        }
    }

    /// Wait for one token.
    pub(super) async fn acquire(&self) {
        loop {
            let wait = {
                let mut s = self.state.lock().expect("bucket lock");
                let now = Instant::now();
                match s.paused_until {
                    Some(until) if now < until => until - now,
                    _ => {
                        s.paused_until = None;
                        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
                        s.tokens = (s.tokens + elapsed * self.rate).min(self.burst);
                        s.last = now;
                        if s.tokens >= 1.0 {
                            s.tokens -= 1.0;
                            return;
                        }
                        Duration::from_secs_f64((1.0 - s.tokens) / self.rate)
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Nobody creates for `d` (after a 429), and the bucket starts empty after it.
    pub(super) fn pause_for(&self, d: Duration) {
        let mut s = self.state.lock().expect("bucket lock");
        let until = Instant::now() + d;
        s.paused_until = Some(s.paused_until.map_or(until, |u| u.max(until)));
        s.tokens = 0.0;
        s.last = until;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_token_bucket_spaces_creations() {
        let b = TokenBucket::new(20.0, 1.0);
        let t0 = Instant::now();
        for _ in 0..5 {
            b.acquire().await;
        }
        // One immediately, then four at 50 ms each.
        assert!(t0.elapsed() >= Duration::from_millis(190), "{:?}", t0.elapsed());
    }
}
