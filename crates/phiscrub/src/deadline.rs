//! The per-file time bound. A file is worked on in units whose cost is bounded by the limits
//! (one model run on one window, one barcode read of one tile, one GIF frame, one stage of
//! the pipeline); the stages check the deadline between those units, so a file that would
//! run past it fails with `limits` and the batch goes on. Nothing is abandoned mid-flight:
//! a thread that kept running after its file was given up would keep its core and memory.

use std::time::{Duration, Instant};

use crate::{Error, Limit};

/// When work on one file must stop. `Deadline::none()` never expires.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    start: Instant,
    limit: Option<Duration>,
}

impl Deadline {
    /// A deadline `limit` from now; `None` never expires.
    pub fn after(limit: Option<Duration>) -> Deadline {
        Deadline {
            start: Instant::now(),
            limit,
        }
    }

    /// A deadline that never expires.
    pub fn none() -> Deadline {
        Deadline::after(None)
    }

    /// Fails with [`Error::Limits`] once the time is up.
    pub fn check(&self) -> Result<(), Error> {
        match self.limit {
            Some(limit) if self.start.elapsed() > limit => Err(Error::limit(
                Limit::Timeout,
                format!(
                    "took longer than the {} per-file time limit",
                    seconds(limit)
                ),
            )),
            _ => Ok(()),
        }
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_deadline_is_a_limits_error() {
        let d = Deadline::after(Some(Duration::ZERO));
        std::thread::sleep(Duration::from_millis(2));
        let e = d.check().unwrap_err();
        assert_eq!(e.code(), "limits");
        assert!(e.to_string().contains("per-file time limit"), "{e}");
        Deadline::none().check().unwrap();
        Deadline::after(Some(Duration::from_secs(60)))
            .check()
            .unwrap();
    }
}
