//! Buffers reused from one batch to the next.
//!
//! Every training step needs the same large buffers (each layer's output, im2col
//! matrices, gradients); allocating them afresh per batch cost about a third of the
//! CPU time at 96×96×3, in the kernel clearing newly faulted pages and in zeroing new
//! allocations. Layers take their buffers here and a [`super::Trace`] gives them back
//! when dropped, so the next batch finds them already mapped. Values in a taken
//! buffer are whatever the last user left ([`take`]) unless it is asked zeroed
//! ([`zeroed`]); no result depends on them, as every taker overwrites what it reads.

use std::sync::Mutex;

/// Free buffers, any order.
static FREE: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// The most values the pool keeps (1 GiB of f32); beyond it, given buffers are freed.
const MAX_VALUES: usize = 1 << 28;

/// The most buffers the pool keeps.
const MAX_BUFFERS: usize = 1024;

/// Buffers below this length are not worth pooling.
const MIN_LEN: usize = 4096;

fn free_list() -> std::sync::MutexGuard<'static, Vec<Vec<f32>>> {
    // A panic while the lock is held leaves the list consistent (a push or a remove).
    FREE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A buffer of `len` values whose contents are unspecified (stale values of an
/// earlier batch, or zeros).
pub fn take(len: usize) -> Vec<f32> {
    if len >= MIN_LEN {
        let mut free = free_list();
        // The smallest buffer that holds `len` values.
        let best = free
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= len)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i);
        if let Some(i) = best {
            let mut v = free.swap_remove(i);
            drop(free);
            if v.len() >= len {
                v.truncate(len);
            } else {
                v.resize(len, 0.0);
            }
            return v;
        }
    }
    vec![0.0; len]
}

/// A buffer of `len` zeros.
pub fn zeroed(len: usize) -> Vec<f32> {
    let mut v = take(len);
    v.fill(0.0);
    v
}

/// A copy of `x` in a pooled buffer.
pub fn copy(x: &[f32]) -> Vec<f32> {
    let mut v = take(x.len());
    v.copy_from_slice(x);
    v
}

/// Gives `v` back for a later [`take`].
pub fn give(v: Vec<f32>) {
    if v.capacity() < MIN_LEN {
        return;
    }
    let mut free = free_list();
    let held: usize = free.iter().map(Vec::capacity).sum();
    if free.len() < MAX_BUFFERS && held + v.capacity() <= MAX_VALUES {
        free.push(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_comes_back_with_the_asked_length() {
        // Other tests share the pool: only what holds whatever else it holds is checked.
        give(vec![7.0f32; 10_000]);
        let z = zeroed(9_000);
        assert_eq!(z.len(), 9_000);
        assert!(z.iter().all(|&x| x == 0.0));
        let t = take(12_000);
        assert_eq!(t.len(), 12_000);
        give(z);
        give(t);
        assert_eq!(take(5).len(), 5);
    }
}
