//! Ports for time and randomness, with the system implementations. This is the only module
//! allowed to read the system clock (see `clippy.toml`).

use ciclo_domain::Timestamp;
use rand::RngCore;

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

pub trait Random: Send + Sync {
    fn u128(&self) -> u128;
    /// `bytes` random bytes, URL-safe base64 without padding: for tokens and keys.
    fn token(&self, bytes: usize) -> String;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRandom;

impl Random for SystemRandom {
    fn u128(&self) -> u128 {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        u128::from_le_bytes(bytes)
    }

    fn token(&self, bytes: usize) -> String {
        use base64::Engine;
        let mut buf = vec![0u8; bytes];
        rand::rngs::OsRng.fill_bytes(&mut buf);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
    }
}

/// A clock that stands still until moved: for tests.
#[derive(Debug)]
pub struct FixedClock(pub std::sync::Mutex<Timestamp>);

impl FixedClock {
    pub fn at(t: Timestamp) -> Self {
        FixedClock(std::sync::Mutex::new(t))
    }
    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
