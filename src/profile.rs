//! `--profile FILE`: the run as Chrome trace-event JSON, one complete
//! (`"ph": "X"`) event per task that started, for Perfetto or
//! `chrome://tracing`.
//!
//! Events on one thread id must nest, so tasks that overlap in time are
//! put on different lanes (`tid`): each task takes the lowest lane that is
//! free when it starts, which is also how many tasks ran at once.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::summary::{Run, TaskStatus, why};

/// The pid every event carries (a trace holds one mtr run).
const PID: u32 = 1;

#[derive(Serialize)]
struct Trace {
    #[serde(rename = "traceEvents")]
    trace_events: Vec<serde_json::Value>,
    #[serde(rename = "displayTimeUnit")]
    display_time_unit: &'static str,
    #[serde(rename = "otherData")]
    other_data: serde_json::Value,
}

/// A task's span on the run's clock.
struct Span<'a> {
    name: &'a str,
    start: Duration,
    took: Duration,
}

/// Lanes for spans sorted by start: the lowest lane free at each start.
fn lanes(spans: &[Span]) -> Vec<usize> {
    let mut ends: Vec<Duration> = Vec::new();
    spans
        .iter()
        .map(|s| match ends.iter().position(|end| *end <= s.start) {
            Some(lane) => {
                ends[lane] = s.start + s.took;
                lane
            }
            None => {
                ends.push(s.start + s.took);
                ends.len() - 1
            }
        })
        .collect()
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The trace as JSON (with a final newline).
pub fn json(run: &Run) -> String {
    let mut spans: Vec<Span> = run
        .plan
        .order
        .iter()
        .filter_map(|name| {
            let start = *run.result.started.get(name)?;
            let o = run.result.outcomes.get(name)?;
            Some(Span {
                name,
                start,
                // A zero-length event is invisible; an up-to-date check can be that quick.
                took: o.took.max(Duration::from_micros(1)),
            })
        })
        .collect();
    // Stable: tasks started at the same instant keep plan order.
    spans.sort_by_key(|s| s.start);
    let lanes = lanes(&spans);
    let mut events = vec![json!({
        "name": "process_name", "ph": "M", "pid": PID, "tid": 0,
        "args": { "name": format!("mtr {}", run.config.display_name()) },
    })];
    for lane in 0..lanes.iter().max().map_or(0, |m| m + 1) {
        events.push(json!({
            "name": "thread_name", "ph": "M", "pid": PID, "tid": lane + 1,
            "args": { "name": format!("lane {}", lane + 1) },
        }));
    }
    for (span, lane) in spans.iter().zip(&lanes) {
        let o = &run.result.outcomes[span.name];
        let mut args = json!({
            "status": TaskStatus::of(&o.status).as_str(),
            "reason": run.reporter.mask(&why(o)),
        });
        if let Some(fp) = &o.fingerprint {
            args["fingerprint"] = json!(crate::fingerprint::short(fp));
        }
        events.push(json!({
            "name": span.name,
            "cat": "task",
            "ph": "X",
            "ts": micros(span.start),
            "dur": micros(span.took),
            "pid": PID,
            "tid": lane + 1,
            "args": args,
        }));
    }
    let trace = Trace {
        trace_events: events,
        display_time_unit: "ms",
        other_data: json!({
            "mtr_version": env!("CARGO_PKG_VERSION"),
            "started": crate::summary::rfc3339(run.started),
            "duration_ms": run.result.took.as_millis(),
            "exit_status": run.exit_code,
        }),
    };
    serde_json::to_string_pretty(&trace).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: u64, took: u64) -> Span<'static> {
        Span {
            name: "t",
            start: Duration::from_millis(start),
            took: Duration::from_millis(took),
        }
    }

    #[test]
    fn overlapping_tasks_get_different_lanes() {
        // a [0,10) and b [2,5) overlap; c [5,8) fits after b; d [10,12) after a.
        let spans = [span(0, 10), span(2, 3), span(5, 3), span(10, 2)];
        assert_eq!(lanes(&spans), vec![0, 1, 1, 0]);
    }

    #[test]
    fn sequential_tasks_share_one_lane() {
        let spans = [span(0, 1), span(1, 1), span(2, 1)];
        assert_eq!(lanes(&spans), vec![0, 0, 0]);
    }
}
