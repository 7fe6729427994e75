//! Prometheus counters, kept in memory and written in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds: a small JPEG's metadata takes
/// milliseconds, a 12 MP photo with every detector several seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The service's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16, &'static str), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    in_flight: AtomicI64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    regions: Mutex<BTreeMap<String, u64>>,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Decrements the in-flight gauge when a request ends, however it ends.
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counts a request as in flight until the guard is dropped.
    pub fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Records one finished request: its route, status, error code (`""` when none),
    /// duration and body sizes.
    pub fn record(
        &self,
        route: &'static str,
        status: u16,
        code: &'static str,
        took: Duration,
        bytes_in: u64,
        bytes_out: u64,
    ) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((route, status, code)).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry(route).or_default();
            let s = took.as_secs_f64();
            for (i, b) in BUCKETS.iter().enumerate() {
                if s <= *b {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += s;
        }
        self.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes_out, Ordering::Relaxed);
    }

    /// Counts covered regions of one category.
    pub fn regions(&self, category: &str, n: u64) {
        if let Ok(mut r) = self.regions.lock() {
            *r.entry(category.to_string()).or_default() += n;
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP phiscrub_requests_total Requests answered, by route, status and error code.\n# TYPE phiscrub_requests_total counter\n");
        if let Ok(r) = self.requests.lock() {
            for ((route, status, code), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "phiscrub_requests_total{{route=\"{route}\",status=\"{status}\",code=\"{code}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP phiscrub_request_duration_seconds Time from request to answer.\n# TYPE phiscrub_request_duration_seconds histogram\n");
        if let Ok(l) = self.latency.lock() {
            for (route, h) in l.iter() {
                for (b, c) in BUCKETS.iter().zip(h.counts) {
                    let _ = writeln!(
                        out,
                        "phiscrub_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {c}"
                    );
                }
                let _ = writeln!(
                    out,
                    "phiscrub_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\nphiscrub_request_duration_seconds_sum{{route=\"{route}\"}} {}\nphiscrub_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count, h.sum, h.count
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP phiscrub_in_flight_requests Requests being answered now.\n# TYPE phiscrub_in_flight_requests gauge\nphiscrub_in_flight_requests {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP phiscrub_received_bytes_total Request body bytes read.\n# TYPE phiscrub_received_bytes_total counter\nphiscrub_received_bytes_total {}",
            self.bytes_in.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP phiscrub_sent_bytes_total Response body bytes sent.\n# TYPE phiscrub_sent_bytes_total counter\nphiscrub_sent_bytes_total {}",
            self.bytes_out.load(Ordering::Relaxed)
        );
        out.push_str("# HELP phiscrub_regions_total Regions covered, by category.\n# TYPE phiscrub_regions_total counter\n");
        if let Ok(r) = self.regions.lock() {
            for (cat, n) in r.iter() {
                let _ = writeln!(out, "phiscrub_regions_total{{category=\"{cat}\"}} {n}");
            }
        }
        out
    }
}
