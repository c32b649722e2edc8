//! The FFI boundary: the caller's pointers, wrapped once at the top of each exported function
//! so that the API bodies are safe code. Writes go through `ptr::write`, so the caller's
//! memory may be uninitialised (C callers often pass `unsigned int x; f(&x)`).

use crate::codes::{INSUFFICIENT_SIZE, INVALID_ARGUMENT, Ret};
use std::ffi::{CStr, c_char};
use std::ptr::NonNull;

/// An output value the caller provided room for.
pub(crate) struct Out<T> {
    ptr: Option<NonNull<T>>,
}

impl<T> Out<T> {
    /// # Safety
    /// `ptr` is null or valid for writing one `T` until the exported function returns.
    pub(crate) unsafe fn new(ptr: *mut T) -> Self {
        Self {
            ptr: NonNull::new(ptr),
        }
    }

    /// Whether the caller passed null.
    pub(crate) fn is_null(&self) -> bool {
        self.ptr.is_none()
    }

    /// Stores `v`; `INVALID_ARGUMENT` for a null pointer.
    pub(crate) fn set(&mut self, v: T) -> Result<(), Ret> {
        let p = self.ptr.ok_or(INVALID_ARGUMENT)?;
        // SAFETY: `new`'s contract: valid for writing one T.
        unsafe { p.as_ptr().write(v) };
        Ok(())
    }
}

/// An input/output value (a count, a struct with a version field) the caller initialised.
pub(crate) struct InOut<T: Copy> {
    ptr: Option<NonNull<T>>,
}

impl<T: Copy> InOut<T> {
    /// # Safety
    /// `ptr` is null or valid for reading and writing one initialised `T` until the
    /// exported function returns.
    pub(crate) unsafe fn new(ptr: *mut T) -> Self {
        Self {
            ptr: NonNull::new(ptr),
        }
    }

    /// The caller's value; `INVALID_ARGUMENT` for a null pointer.
    pub(crate) fn get(&self) -> Result<T, Ret> {
        let p = self.ptr.ok_or(INVALID_ARGUMENT)?;
        // SAFETY: `new`'s contract: valid for reading an initialised T.
        Ok(unsafe { p.as_ptr().read() })
    }

    /// Stores `v`; `INVALID_ARGUMENT` for a null pointer.
    pub(crate) fn set(&mut self, v: T) -> Result<(), Ret> {
        let p = self.ptr.ok_or(INVALID_ARGUMENT)?;
        // SAFETY: `new`'s contract: valid for writing one T.
        unsafe { p.as_ptr().write(v) };
        Ok(())
    }
}

/// Room for `cap` elements (an array or a character buffer).
pub(crate) struct OutArray<T> {
    ptr: Option<NonNull<T>>,
    cap: usize,
}

impl<T: Copy> OutArray<T> {
    /// # Safety
    /// `ptr` is null or valid for writing `cap` consecutive `T`s until the exported function
    /// returns.
    pub(crate) unsafe fn new(ptr: *mut T, cap: usize) -> Self {
        Self {
            ptr: NonNull::new(ptr),
            cap,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        self.ptr.is_none()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// Writes `items` at the start; `INSUFFICIENT_SIZE` if they do not fit, `INVALID_ARGUMENT`
    /// for a null pointer.
    pub(crate) fn fill(&mut self, items: &[T]) -> Result<(), Ret> {
        let p = self.ptr.ok_or(INVALID_ARGUMENT)?;
        if items.len() > self.cap {
            return Err(INSUFFICIENT_SIZE);
        }
        for (i, item) in items.iter().enumerate() {
            // SAFETY: i < len ≤ cap, and `new`'s contract makes `cap` elements writable.
            unsafe { p.as_ptr().add(i).write(*item) };
        }
        Ok(())
    }
}

impl OutArray<c_char> {
    /// Copies `s` as a NUL-terminated string; `INSUFFICIENT_SIZE` if it does not fit.
    pub(crate) fn put_str(&mut self, s: &str) -> Result<(), Ret> {
        let mut bytes: Vec<c_char> = s.bytes().map(|b| b as c_char).collect();
        bytes.push(0);
        self.fill(&bytes)
    }

    /// Copies as much of `s` as fits (NUL-terminated), as `nvmlSystemGetProcessName` does.
    pub(crate) fn put_str_cropped(&mut self, s: &str) -> Result<(), Ret> {
        let keep = self.cap.saturating_sub(1).min(s.len());
        let mut bytes: Vec<c_char> = s.bytes().take(keep).map(|b| b as c_char).collect();
        bytes.push(0);
        self.fill(&bytes)
    }
}

/// Reads a caller's C string; `None` for null or non-UTF-8.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string valid until the function returns.
pub(crate) unsafe fn c_str(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null, NUL-terminated by the contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().ok().map(str::to_string)
}
