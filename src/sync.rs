//! Locks that survive a panicked holder.
//!
//! A poisoned mutex means a thread panicked while holding it. Every caller in aib keeps its
//! shared state consistent at each step (a counter, a queue index, a map entry), so carrying on
//! is safe, and it lets the panic itself be the one error reported, not a cascade of poison
//! errors from the threads that remain.

use std::sync::{Condvar, Mutex, MutexGuard};

/// Locks `mutex`, ignoring poison.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits on `condvar` with `guard`, ignoring poison.
pub fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar
        .wait(guard)
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The value inside `mutex`, ignoring poison.
pub fn into_inner<T>(mutex: Mutex<T>) -> T {
    mutex
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
