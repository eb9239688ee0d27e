//! The intra-op worker pool: the threads that share one step's work in a forward pass (a
//! GEMM's rows or columns, a batch's slices), kept awake between the steps of a pass.
//!
//! Why not rayon here: at batch 1 a forward pass is a chain of parallel sections a few tens of
//! microseconds apart, and each of rayon's splits wakes a sleeping thread (a futex wake, then
//! the scheduler), which costs about as much as the half product it hands over. Here, after a
//! job, each worker spins ([`std::hint::spin_loop`]) for [`SPIN`] watching for the next job,
//! and only then parks on a condition variable; the next section of the same pass finds it
//! awake. Rayon stays in charge of coarse data-parallel work (the trainer's batch slices,
//! data loading), where one wake-up per step is noise.
//!
//! Input: a part count and a job `Fn(part)`. Output: the job run once for every part, on the
//! calling thread and the pool's workers, the call returning when every part is done.
//!
//! Invariants:
//! - Thread count: [`threads`] is the current rayon pool's thread count (what `--threads`
//!   sets), or 1 inside a job. Each thread that splits work owns a pool of `threads − 1`
//!   workers (thread-local, made on first use, remade when its rayon pool's size differs,
//!   shut down and joined when the thread exits). A worker that cannot be started leaves
//!   fewer workers; with none, parts run one after another on the caller.
//! - Determinism: which thread runs a part is not fixed, so a job must make each part's result
//!   depend on the part alone (parts write disjoint outputs); callers choose the partition from
//!   the thread count, so the same thread count gives the same bits.
//! - One level of threads at a time: inside a part, [`in_job`] is true, [`threads`] is 1 and a
//!   nested [`run`] runs its parts serially on that thread (no deadlock, no second level);
//!   `linalg::may_split` is false there too.
//! - Panics: a part that panics is caught on the thread that ran it; the other parts still
//!   run, and once all are done [`run`] re-raises the first panic on the caller. No worker is
//!   left inside a job and the pool stays usable.
//!
//! Safety: this is the one module of the pool that uses `unsafe`, to hand the caller's
//! borrowed job to the workers without a `'static` bound (the lifetime erasure scoped threads
//! avoid by joining; here the workers outlive the call). The argument: a worker dereferences
//! the job pointer only after it has claimed an unfinished part of the current job (a
//! compare-and-swap on the state word, which holds the job's epoch and its next part), and
//! [`Pool::run`] returns, even when a part panics, only after every part has been reported
//! done, which a worker does after its last use of the job. A claim of an earlier job's part
//! fails because the epoch differs. So every dereference happens while the caller is still
//! inside [`run`], while everything the job borrows is alive.

#![allow(unsafe_code)]

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a worker watches for the next job after finishing one before it parks. Longer
/// than the gap between two parallel sections of a batch-1 forward pass (a few tens of
/// microseconds), and short enough that a worker left spinning after a pass costs nothing
/// anyone notices.
pub const SPIN: Duration = Duration::from_micros(150);

/// Most parts one [`run`] runs side by side (the part count's width in the state word); a
/// call with more runs serially.
const MAX_PARTS: usize = 0xFFFF;

/// A job: the caller's closure, borrowed.
type Job<'a> = &'a (dyn Fn(usize) + Sync);

thread_local! {
    /// Set while this thread runs a part of a job.
    static IN_JOB: Cell<bool> = const { Cell::new(false) };
    /// This thread's pool, made on its first split.
    static POOL: RefCell<Option<Pool>> = const { RefCell::new(None) };
}

/// Whether this thread is running a part of a job (then work is not split again).
pub fn in_job() -> bool {
    IN_JOB.with(Cell::get)
}

/// The threads a step may split its work between: the current rayon pool's (what `--threads`
/// sets), or 1 inside a job.
pub fn threads() -> usize {
    if in_job() {
        1
    } else {
        rayon::current_num_threads()
    }
}

/// Runs `job(part)` for every part in `0..parts`, on this thread and the pool's workers,
/// returning when all are done (re-raising the first part's panic, if any). Serial when there
/// is one part, one thread, or when called from inside a part.
pub fn run(parts: usize, job: &(dyn Fn(usize) + Sync)) {
    let threads = threads();
    if parts <= 1 || threads <= 1 || parts > MAX_PARTS {
        serial(parts, job);
        return;
    }
    let ran = POOL.try_with(|cell| {
        let Ok(mut slot) = cell.try_borrow_mut() else {
            return false; // only from inside a part, which `threads` already made serial
        };
        if slot.as_ref().is_none_or(|p| p.threads != threads) {
            *slot = None; // the old pool's workers are joined before new ones start
            *slot = Some(Pool::new(threads));
        }
        match slot.as_ref() {
            Some(pool) if !pool.workers.is_empty() => {
                pool.run(parts, job);
                true
            }
            _ => false,
        }
    });
    // Not run: no worker could start, or the thread is exiting (its pool is gone).
    if ran != Ok(true) {
        serial(parts, job);
    }
}

/// Tells this thread's pool workers, if they are spinning after a job, to park now: for a
/// caller about to hand its cores to other threads (rayon's, in the kernels that still split
/// their samples with rayon: upsampling, transposed convolution), which a
/// spinning worker would otherwise compete with for up to [`SPIN`]. Harmless anywhere: the
/// next [`run`] wakes the workers as usual.
pub fn rest() {
    let _ = POOL.try_with(|cell| {
        if let Ok(slot) = cell.try_borrow() {
            if let Some(pool) = slot.as_ref() {
                pool.shared.rest.store(true, Ordering::Relaxed);
            }
        }
    });
}

/// Runs `f` on every item, the items shared out as the parts of one [`run`]; returns the first
/// error in item order (every item runs even when one fails).
pub fn try_run_each<T: Send, E: Send>(
    items: Vec<T>,
    f: impl Fn(T) -> Result<(), E> + Sync,
) -> Result<(), E> {
    if items.len() <= 1 {
        return items.into_iter().try_for_each(f);
    }
    let slots: Vec<Mutex<(Option<T>, Option<E>)>> = items
        .into_iter()
        .map(|item| Mutex::new((Some(item), None)))
        .collect();
    run(slots.len(), &|part| {
        let Some(slot) = slots.get(part) else { return };
        let item = lock(slot).0.take();
        if let Some(item) = item {
            if let Err(e) = f(item) {
                lock(slot).1 = Some(e);
            }
        }
    });
    for slot in slots {
        let (_, err) = slot.into_inner().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = err {
            return Err(e);
        }
    }
    Ok(())
}

/// Values from which [`zip_parts`] splits.
pub const ZIP_SPLIT_MIN: usize = 1 << 16;

/// `f(dst part, src part)` over aligned contiguous parts of `dst` and `src`, one part per
/// thread when `dst` has at least [`ZIP_SPLIT_MIN`] values, else `f(dst, src)` once: for
/// element-wise loops (each element computed alone, so any split gives the same bits). `src`
/// past `dst`'s length is not visited.
pub fn zip_parts(dst: &mut [f32], src: &[f32], f: impl Fn(&mut [f32], &[f32]) + Sync) {
    let threads = threads();
    let src = &src[..src.len().min(dst.len())];
    if threads < 2 || dst.len() < ZIP_SPLIT_MIN || src.len() < dst.len() {
        f(dst, src);
        return;
    }
    let per = dst.len().div_ceil(threads);
    run_each(
        dst.chunks_mut(per).zip(src.chunks(per)).collect(),
        |(d, s)| {
            f(d, s);
        },
    );
}

/// Runs `f` on every item, shared out as the parts of one [`run`].
pub fn run_each<T: Send>(items: Vec<T>, f: impl Fn(T) + Sync) {
    let result: Result<(), std::convert::Infallible> = try_run_each(items, |item| {
        f(item);
        Ok(())
    });
    let Ok(()) = result;
}

/// A mutex's guard; a poisoned lock (a part panicked while holding it) is still usable: the
/// data is plain values, and the panic itself is re-raised by [`run`].
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every part in order on this thread, marked as inside a job.
fn serial(parts: usize, job: Job<'_>) {
    let outer = IN_JOB.with(|j| j.replace(true));
    let result = catch_unwind(AssertUnwindSafe(|| (0..parts).for_each(job)));
    IN_JOB.with(|j| j.set(outer));
    if let Err(payload) = result {
        resume_unwind(payload);
    }
}

/// One part on this thread, marked as inside a job; a panic comes back as its payload.
fn run_part(job: Job<'_>, part: usize) -> Option<Box<dyn Any + Send>> {
    IN_JOB.with(|j| j.set(true));
    let result = catch_unwind(AssertUnwindSafe(|| job(part)));
    IN_JOB.with(|j| j.set(false));
    result.err()
}

/// The state word: the job's epoch (high 32 bits), its part count (16), its next part (16).
fn pack(epoch: u32, parts: usize, next: usize) -> u64 {
    (u64::from(epoch) << 32) | ((parts as u64 & 0xFFFF) << 16) | (next as u64 & 0xFFFF)
}

/// `(epoch, parts, next)` of a state word.
fn unpack(state: u64) -> (u32, usize, usize) {
    let epoch = (state >> 32) as u32;
    (
        epoch,
        ((state >> 16) & 0xFFFF) as usize,
        (state & 0xFFFF) as usize,
    )
}

/// What the caller and the workers share.
struct Shared {
    /// The current job's epoch, part count and next unclaimed part ([`pack`]).
    state: AtomicU64,
    /// The current job: a thin pointer to the caller's [`Job`] (a fat reference on its stack).
    job: AtomicPtr<()>,
    /// Parts of the current job finished (by anyone).
    done: AtomicUsize,
    /// The first panic a worker caught in the current job.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// Workers parked (or about to park) on `wake`.
    sleepers: AtomicUsize,
    parking: Mutex<()>,
    wake: Condvar,
    exit: AtomicBool,
    /// Set by [`rest`]: spinning workers park now instead of at the end of [`SPIN`]; cleared
    /// when the next job is posted.
    rest: AtomicBool,
    /// Parts the workers ran (tests check that the pool path was taken).
    #[cfg(test)]
    worker_parts: AtomicUsize,
}

impl Shared {
    /// Claims the next part of the job of `epoch`, if it has one left.
    fn claim(&self, epoch: u32) -> Option<usize> {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            let (e, parts, next) = unpack(state);
            if e != epoch || next >= parts {
                return None;
            }
            match self.state.compare_exchange_weak(
                state,
                state + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(next),
                Err(now) => state = now,
            }
        }
    }

    /// The epoch of a job newer than `seen`, waiting for one (spinning for [`SPIN`], then
    /// parked), or `None` when the pool shuts down.
    fn next_epoch(&self, seen: u32) -> Option<u32> {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            let (epoch, _, _) = unpack(self.state.load(Ordering::Acquire));
            if epoch != seen {
                return Some(epoch);
            }
            if self.exit.load(Ordering::Acquire) {
                return None;
            }
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64)
                && (start.elapsed() >= SPIN || self.rest.load(Ordering::Relaxed))
            {
                break;
            }
        }
        let mut guard = lock(&self.parking);
        // Announce the park before the last look at the state: a caller stores the state and
        // then reads `sleepers` (both sequentially consistent), so either it sees this worker
        // and notifies under the lock, or this look sees its job.
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let found = loop {
            let (epoch, _, _) = unpack(self.state.load(Ordering::SeqCst));
            if epoch != seen {
                break Some(epoch);
            }
            if self.exit.load(Ordering::SeqCst) {
                break None;
            }
            guard = self
                .wake
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        };
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        found
    }

    /// A worker's life: wait for a job, run the parts it can claim, repeat until shut down.
    fn work(&self) {
        // Pools start at epoch 0 and post their first job as epoch 1.
        let mut seen = 0;
        while let Some(epoch) = self.next_epoch(seen) {
            seen = epoch;
            while let Some(part) = self.claim(epoch) {
                // SAFETY: the claim succeeded, so part `part` of the job of `epoch` is not done
                // and that job's caller is inside `Pool::run`, waiting for it: the pointer it
                // stored before publishing `epoch` (ordered by the claim's acquire) points to
                // its live `Job`, whose borrows outlive the call (module doc).
                let job: Job<'_> = unsafe { *self.job.load(Ordering::Acquire).cast::<Job<'_>>() };
                let panic = run_part(job, part);
                #[cfg(test)]
                self.worker_parts.fetch_add(1, Ordering::Relaxed);
                if let Some(payload) = panic {
                    lock(&self.panic).get_or_insert(payload);
                }
                // The last touch of the job: after this the caller may return.
                self.done.fetch_add(1, Ordering::Release);
            }
        }
    }
}

/// `threads − 1` workers and the state they share with the owning thread.
struct Pool {
    threads: usize,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// The epoch of the last job posted.
    epoch: Cell<u32>,
}

impl Pool {
    /// A pool for `threads` threads in all (the caller among them).
    fn new(threads: usize) -> Pool {
        let shared = Arc::new(Shared {
            state: AtomicU64::new(pack(0, 0, 0)),
            job: AtomicPtr::new(std::ptr::null_mut()),
            done: AtomicUsize::new(0),
            panic: Mutex::new(None),
            sleepers: AtomicUsize::new(0),
            parking: Mutex::new(()),
            wake: Condvar::new(),
            exit: AtomicBool::new(false),
            rest: AtomicBool::new(false),
            #[cfg(test)]
            worker_parts: AtomicUsize::new(0),
        });
        let mut workers = Vec::with_capacity(threads.saturating_sub(1));
        for i in 1..threads {
            let mine = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("modelc-pool-{i}"))
                .spawn(move || mine.work());
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(_) => break, // fewer workers; with none, callers run serially
            }
        }
        Pool {
            threads,
            shared,
            workers,
            epoch: Cell::new(0),
        }
    }

    /// Posts the job, runs the parts this thread can claim, waits for the rest.
    fn run(&self, parts: usize, job: Job<'_>) {
        let shared = &*self.shared;
        let epoch = self.epoch.get().wrapping_add(1);
        self.epoch.set(epoch);
        // No worker touches `done` or `job` now: the previous job's parts are all done, and
        // its epoch has no part left to claim.
        shared.done.store(0, Ordering::Relaxed);
        let local: Job<'_> = job;
        shared.job.store(
            std::ptr::from_ref(&local).cast_mut().cast(),
            Ordering::Relaxed,
        );
        shared.rest.store(false, Ordering::Relaxed);
        shared.state.store(pack(epoch, parts, 0), Ordering::SeqCst);
        if shared.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = lock(&shared.parking);
            shared.wake.notify_all();
        }
        let mut first_panic = None;
        while let Some(part) = shared.claim(epoch) {
            let panic = run_part(job, part);
            if first_panic.is_none() {
                first_panic = panic;
            }
            shared.done.fetch_add(1, Ordering::Release);
        }
        // Wait for the workers' parts (they are running: every part is claimed).
        let mut spins = 0u32;
        while shared.done.load(Ordering::Acquire) < parts {
            spins = spins.wrapping_add(1);
            if spins < 1 << 14 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        let worker_panic = lock(&shared.panic).take();
        if let Some(payload) = first_panic.or(worker_panic) {
            resume_unwind(payload);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.exit.store(true, Ordering::SeqCst);
        {
            let _guard = lock(&self.shared.parking);
            self.shared.wake.notify_all();
        }
        for worker in self.workers.drain(..) {
            // A worker catches its parts' panics, so it ends normally.
            let _ = worker.join();
        }
    }
}

/// The parts this thread's pool's workers have run so far (0 without a pool).
#[cfg(test)]
pub(crate) fn worker_parts() -> usize {
    POOL.with(|cell| {
        cell.borrow()
            .as_ref()
            .map_or(0, |p| p.shared.worker_parts.load(Ordering::Relaxed))
    })
}

#[cfg(test)]
mod tests;
