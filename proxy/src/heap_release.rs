//! Gives freed heap back to the operating system after a burst. glibc's allocator keeps pages a burst freed
//! inside its per-thread arenas (only the top of the main arena is trimmed by itself), so a proxy that served a
//! load peak would hold that peak's memory for the rest of its life. Every few seconds this asks glibc to
//! return every free page (`malloc_trim(0)`, which walks the arenas and `madvise`s whole free pages away); on
//! other C libraries it does nothing.

use std::time::Duration;

/// How often the heap is trimmed: rarely enough that the walk over the arenas is a negligible share of a busy
/// proxy's time (its cost on its own is not measured; the benchmark series run with it on), often enough that
/// memory falls soon after a burst.
pub const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Trims the heap every `every` until the task is aborted.
pub fn spawn(every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            // Off the async workers: a trim takes the arenas' locks one by one.
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    })
}

/// Returns free heap pages to the kernel; true when glibc released any.
pub fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointers and only reorganises the allocator's own free lists; glibc
        // documents it as safe to call at any time from any thread.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
