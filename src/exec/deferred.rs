//! A value worked out on another thread while this one goes on.

use std::cell::{Cell, OnceCell};
use std::thread::JoinHandle;

/// A value known now, or being worked out on a thread of its own.
pub struct Deferred<T> {
    value: OnceCell<T>,
    thread: Cell<Option<JoinHandle<T>>>,
}

impl<T: Send + 'static> Deferred<T> {
    pub fn ready(value: T) -> Deferred<T> {
        Deferred {
            value: OnceCell::from(value),
            thread: Cell::new(None),
        }
    }

    /// `f` on a thread of its own; `None` when no thread can start.
    pub fn spawn(f: impl FnOnce() -> T + Send + 'static) -> Option<Deferred<T>> {
        let thread = std::thread::Builder::new().spawn(f).ok()?;
        Some(Deferred {
            value: OnceCell::new(),
            thread: Cell::new(Some(thread)),
        })
    }

    /// The value if it is known without waiting for its thread.
    pub fn known(&self) -> Option<&T> {
        self.value.get()
    }

    /// The value, once its thread is done; a panic there is passed on.
    pub fn get(&self) -> &T {
        self.value.get_or_init(|| {
            let thread = self.thread.take().expect("a deferred value has a value or a thread");
            thread.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deferred_value_is_the_job_s_and_a_panic_is_passed_on() {
        assert_eq!(*Deferred::ready(3).get(), 3);
        let d = Deferred::spawn(|| 6 * 7).unwrap();
        assert_eq!(*d.get(), 42);
        assert_eq!(d.known(), Some(&42));
        let boom = Deferred::<u8>::spawn(|| panic!("boom")).unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| *boom.get()));
        assert!(caught.is_err());
    }
}
