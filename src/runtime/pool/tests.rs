//! The pool's contract: every part runs exactly once for every part and thread count, many
//! jobs in a row (the spinning hand-over) and after the workers have parked; a panicking part
//! is re-raised on the caller after every other part ran, and the pool keeps working; a nested
//! call runs serially on the calling thread; errors come back in item order.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{in_job, run, run_each, threads, try_run_each, SPIN};

/// Runs `f` on a rayon pool of `n` threads (what `--threads n` sets).
fn on_threads<R: Send>(n: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
        .install(f)
}

/// How many times each part of one `run(parts, ..)` ran.
fn counts(parts: usize) -> Vec<usize> {
    let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
    run(parts, &|p| {
        hits[p].fetch_add(1, Ordering::Relaxed);
    });
    hits.into_iter().map(AtomicUsize::into_inner).collect()
}

#[test]
fn every_part_runs_once_for_every_part_and_thread_count() {
    for n in [1, 2, 3, 4] {
        on_threads(n, || {
            assert_eq!(threads(), n);
            for parts in 0..=9 {
                assert_eq!(
                    counts(parts),
                    vec![1; parts],
                    "{parts} parts on {n} threads"
                );
            }
        });
    }
}

#[test]
fn a_long_run_of_jobs_gives_every_part_its_own_result() {
    on_threads(2, || {
        let mut out = vec![0u64; 3];
        for round in 0..20_000u64 {
            let slots: Vec<Mutex<&mut u64>> = out.iter_mut().map(Mutex::new).collect();
            run(3, &|p| **slots[p].lock().unwrap() = round * 10 + p as u64);
            drop(slots);
            assert_eq!(out, [round * 10, round * 10 + 1, round * 10 + 2]);
        }
    });
}

#[test]
fn parked_workers_are_woken_for_the_next_job() {
    on_threads(3, || {
        for _ in 0..5 {
            assert_eq!(counts(4), vec![1; 4]);
            // Long past the spin: the workers are parked on the condition variable.
            std::thread::sleep(SPIN * 20);
        }
    });
}

/// One of two parts that wait for each other: counts itself in `arrived`, then spins until
/// the other has arrived too (which only a second thread can do while this one spins).
fn meet_the_other_part(arrived: &AtomicUsize) {
    arrived.fetch_add(1, Ordering::SeqCst);
    let start = std::time::Instant::now();
    while arrived.load(Ordering::SeqCst) < 2 {
        assert!(
            start.elapsed().as_secs() < 30,
            "no second thread took a part"
        );
        std::hint::spin_loop();
    }
}

#[test]
fn a_worker_really_takes_parts() {
    // With two threads and parts that wait for each other, only a second thread can finish.
    on_threads(2, || {
        let arrived = AtomicUsize::new(0);
        let threads_seen = Mutex::new(Vec::new());
        run(2, &|_| {
            meet_the_other_part(&arrived);
            threads_seen
                .lock()
                .unwrap()
                .push(std::thread::current().id());
        });
        let seen = threads_seen.into_inner().unwrap();
        assert_eq!(seen.len(), 2);
        assert_ne!(seen[0], seen[1]);
    });
}

#[test]
fn a_panicking_part_is_raised_on_the_caller_after_the_others_ran() {
    on_threads(2, || {
        for bad in 0..4 {
            let hits: Vec<AtomicUsize> = (0..4).map(|_| AtomicUsize::new(0)).collect();
            let caught = catch_unwind(AssertUnwindSafe(|| {
                run(4, &|p| {
                    hits[p].fetch_add(1, Ordering::SeqCst);
                    assert!(p != bad, "part {p} failed");
                });
            }));
            let payload = caught.expect_err("the part's panic must reach the caller");
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default();
            assert_eq!(message, format!("part {bad} failed"));
            let hits: Vec<usize> = hits.into_iter().map(AtomicUsize::into_inner).collect();
            assert_eq!(hits, vec![1; 4], "every part ran once despite the panic");
            assert!(!in_job(), "the caller is out of the job after the panic");
            // The pool still works, and no worker is left inside the failed job.
            assert_eq!(counts(5), vec![1; 5]);
        }
    });
}

#[test]
fn when_every_part_panics_one_panic_is_raised() {
    on_threads(3, || {
        let caught = catch_unwind(AssertUnwindSafe(|| run(6, &|p| panic!("part {p}"))));
        let payload = caught.expect_err("a panic must reach the caller");
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(message.starts_with("part "), "{message}");
        assert_eq!(counts(3), vec![1; 3]);
    });
}

#[test]
fn a_nested_call_runs_serially_on_the_part_s_thread() {
    on_threads(2, || {
        let outer: Vec<Mutex<Vec<(usize, std::thread::ThreadId)>>> =
            (0..2).map(|_| Mutex::new(Vec::new())).collect();
        run(2, &|p| {
            assert!(in_job());
            assert_eq!(threads(), 1, "no second level of threads inside a job");
            run(3, &|q| {
                outer[p]
                    .lock()
                    .unwrap()
                    .push((q, std::thread::current().id()));
            });
        });
        for (p, list) in outer.into_iter().enumerate() {
            let list = list.into_inner().unwrap();
            let parts: Vec<usize> = list.iter().map(|&(q, _)| q).collect();
            assert_eq!(parts, [0, 1, 2], "part {p}'s nested parts run in order");
            assert!(list.iter().all(|&(_, t)| t == list[0].1), "on one thread");
        }
        assert!(!in_job());
    });
}

#[test]
fn items_are_each_run_once_and_the_first_error_in_item_order_wins() {
    on_threads(2, || {
        let mut out = vec![0usize; 7];
        run_each(out.iter_mut().enumerate().collect(), |(i, o)| *o = i * i);
        assert_eq!(out, [0, 1, 4, 9, 16, 25, 36]);
        let ran = AtomicUsize::new(0);
        let result = try_run_each((0..7).collect(), |i: usize| {
            ran.fetch_add(1, Ordering::SeqCst);
            if i % 3 == 2 {
                Err(i)
            } else {
                Ok(())
            }
        });
        assert_eq!(result, Err(2));
        assert_eq!(ran.into_inner(), 7);
        assert_eq!(try_run_each(vec![1, 2], |_: i32| Ok::<(), ()>(())), Ok(()));
    });
}

/// Whether this thread's pool has been told to rest (and not yet given a job since).
fn resting() -> bool {
    super::POOL.with(|cell| {
        cell.borrow()
            .as_ref()
            .is_some_and(|p| p.shared.rest.load(Ordering::Relaxed))
    })
}

#[test]
fn rested_workers_still_take_the_next_jobs_parts() {
    on_threads(2, || {
        super::rest(); // no pool yet: nothing to tell, nothing breaks
        assert_eq!(counts(2), vec![1; 2]);
        for _ in 0..20 {
            super::rest();
            assert!(resting(), "rest did not reach the workers");
            // Two parts that wait for each other: only a woken worker lets both finish.
            let arrived = AtomicUsize::new(0);
            run(2, &|_| meet_the_other_part(&arrived));
            assert!(!resting(), "a new job must clear the rest");
        }
    });
}
