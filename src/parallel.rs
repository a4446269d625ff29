//! Work split over every CPU in more parts than threads, each thread taking
//! the next part when it is done with one: a part that goes slowly (cold
//! inodes, a deep directory) then does not leave the other threads idle
//! while it finishes, as one fixed half per thread would.

use std::ops::Range;
use std::sync::Mutex;

use crate::walk::parallelism;

/// About this many parts per thread.
const PARTS_PER_THREAD: usize = 8;

/// `0..n` in consecutive ranges of at least `min` (but one when `n` is
/// below `2 * min`), about [`PARTS_PER_THREAD`] per thread.
pub(crate) fn ranges(n: usize, min: usize) -> Vec<Range<usize>> {
    // A short list needs no CPU count (finding it out reads cgroup files).
    let threads = if n < 2 * min { 1 } else { parallelism() };
    let size = if threads < 2 {
        n.max(1)
    } else {
        n.div_ceil(threads * PARTS_PER_THREAD).max(min)
    };
    (0..n.max(1))
        .step_by(size)
        .map(|start| start..n.min(start + size))
        .collect()
}

/// `f` of each of `parts`, in their order, worked out on up to one thread
/// per CPU (this one included). A panic in `f` is passed on.
pub(crate) fn map<P: Send, R: Send>(parts: Vec<P>, f: impl Fn(P) -> R + Sync) -> Vec<R> {
    let threads = if parts.len() < 2 {
        1
    } else {
        parallelism().min(parts.len())
    };
    if threads < 2 {
        return parts.into_iter().map(f).collect();
    }
    let n = parts.len();
    let queue = Mutex::new(parts.into_iter().enumerate());
    let work = || {
        let mut done = Vec::new();
        loop {
            // Poisoned only by a panic in `f`, which is passed on below.
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
            let Some((i, part)) = next else { break done };
            done.push((i, f(part)));
        }
    };
    let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
    std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mine = work();
        for done in helpers
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        {
            for (i, r) in done {
                out[i] = Some(r);
            }
        }
        for (i, r) in mine {
            out[i] = Some(r);
        }
    });
    // Every part was taken by a thread that returned.
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_everything_once_in_order() {
        for n in [0, 1, 5, 4095, 4096, 100_000] {
            let rs = ranges(n, 1024);
            assert_eq!(rs.first().map(|r| r.start), Some(0));
            assert_eq!(rs.last().map(|r| r.end), Some(n));
            assert!(rs.windows(2).all(|w| w[0].end == w[1].start));
            if n < 2048 {
                assert_eq!(rs.len(), 1);
            } else {
                assert!(rs.iter().all(|r| r.len() >= 1024 || r.end == n));
            }
        }
    }

    #[test]
    fn results_keep_the_order_of_the_parts() {
        let parts: Vec<Range<usize>> = ranges(50_000, 100);
        let sums = map(parts.clone(), |r| {
            // Uneven work, so parts finish out of order.
            if r.start % 3 == 0 {
                std::thread::yield_now();
            }
            r.sum::<usize>()
        });
        let want: Vec<usize> = parts.into_iter().map(|r| r.sum()).collect();
        assert_eq!(sums, want);
    }

    #[test]
    #[should_panic(expected = "part 7")]
    fn a_panic_in_a_part_is_passed_on() {
        map((0..16).collect(), |i: usize| assert!(i != 7, "part 7"));
    }
}
