//! The out-of-memory text a failing job prints, in PyTorch's words
//! (`torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.60 GiB. GPU 0 has a
//! total capacity of 79.18 GiB of which 2.59 GiB is free. ...`), so that OOM detectors that
//! read real PyTorch stderr recognise it.

/// What the allocator knew when the allocation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomReport {
    /// Bytes the failed allocation asked for.
    pub tried: u64,
    /// Capacity as CUDA reports it: the MPS limit when that is the cause, else the device's.
    pub capacity: u64,
    /// Free bytes within that capacity.
    pub free: u64,
    /// This process's pid and bytes in use.
    pub this_pid: u32,
    pub this_used: u64,
    /// Other processes on the device: (pid, bytes).
    pub others: Vec<(u32, u64)>,
    /// Set when the MPS client limit is the cause: (limit bytes, the variable's value).
    pub mps_limit: Option<(u64, String)>,
}

/// A size as PyTorch's `format_size` prints it.
pub fn torch_size(bytes: u64) -> String {
    const K: f64 = 1024.0;
    let b = bytes as f64;
    if bytes <= 1024 {
        format!("{bytes} bytes")
    } else if b < K * K {
        format!("{:.2} KiB", b / K)
    } else if b < K * K * K {
        format!("{:.2} MiB", b / (K * K))
    } else {
        format!("{:.2} GiB", b / (K * K * K))
    }
}

impl OomReport {
    /// The stderr text: PyTorch's message, plus a line naming the MPS limit when it is the
    /// cause.
    pub fn message(&self) -> String {
        let mut procs: Vec<(u32, Option<u64>)> =
            self.others.iter().map(|&(pid, b)| (pid, Some(b))).collect();
        procs.push((self.this_pid, None));
        procs.sort_by_key(|p| p.0);
        let mut s = format!(
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {}. GPU 0 has a total capacity of {} of which {} is free.",
            torch_size(self.tried),
            torch_size(self.capacity),
            torch_size(self.free)
        );
        for (pid, used) in procs {
            match used {
                Some(b) => s.push_str(&format!(
                    " Process {pid} has {} memory in use.",
                    torch_size(b)
                )),
                None => s.push_str(&format!(
                    " Including non-PyTorch memory, this process has {} memory in use.",
                    torch_size(self.this_used)
                )),
            }
        }
        s.push_str(&format!(
            " Of the allocated memory {} is allocated by PyTorch, and 0 bytes is reserved by PyTorch but unallocated. \
             If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  \
             See documentation for Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)",
            torch_size(self.this_used)
        ));
        if let Some((limit, raw)) = &self.mps_limit {
            s.push_str(&format!(
                "\nfake-gpu-job: the allocation exceeds this MPS client's memory limit of {} (CUDA_MPS_PINNED_DEVICE_MEM_LIMIT={raw})",
                torch_size(*limit)
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn sizes_like_pytorch() {
        assert_eq!(torch_size(0), "0 bytes");
        assert_eq!(torch_size(80 << 20), "80.00 MiB");
        assert_eq!(torch_size(2 * GIB + GIB * 6 / 10), "2.60 GiB");
        assert_eq!(torch_size(1536), "1.50 KiB");
    }

    #[test]
    fn reads_like_the_seed_message() {
        let r = OomReport {
            tried: 2 * GIB + GIB * 6 / 10,
            capacity: 81079 << 20,
            free: 2 * GIB,
            this_pid: 72257,
            this_used: 21 * GIB,
            others: vec![(72374, 21 * GIB), (72221, 33 * GIB)],
            mps_limit: None,
        };
        let m = r.message();
        assert!(m.starts_with(
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.60 GiB. GPU 0 has a total capacity of 79.18 GiB of which 2.00 GiB is free. Process 72221 has 33.00 GiB memory in use. Including non-PyTorch memory, this process has 21.00 GiB memory in use. Process 72374 has 21.00 GiB"
        ), "{m}");
        assert_eq!(m.lines().count(), 1);
        let with_limit = OomReport {
            mps_limit: Some((16 * GIB, "0=16G".into())),
            ..r
        };
        let m = with_limit.message();
        assert!(
            m.lines()
                .nth(1)
                .unwrap()
                .contains("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=16G"),
            "{m}"
        );
    }
}
