//! Recognising out-of-memory failures in a launched process's stderr: PyTorch
//! (`torch.OutOfMemoryError`, `torch.cuda.OutOfMemoryError`, "CUDA out of memory"), the CUDA
//! runtime and driver (`cudaErrorMemoryAllocation`, `CUDA_ERROR_OUT_OF_MEMORY`), and JAX/XLA
//! (`RESOURCE_EXHAUSTED: Out of memory`). Lines are matched as they stream by; the first
//! match is kept as the message.

const PATTERNS: [&str; 7] = [
    "CUDA out of memory",
    "torch.OutOfMemoryError",
    "torch.cuda.OutOfMemoryError",
    "cudaErrorMemoryAllocation",
    "CUDA_ERROR_OUT_OF_MEMORY",
    "RESOURCE_EXHAUSTED: Out of memory",
    "out of memory while trying to allocate",
];

/// Longest message kept.
const MAX_MESSAGE: usize = 1024;

/// Watches stderr lines for an OOM.
#[derive(Debug, Default)]
pub struct OomWatcher {
    message: Option<String>,
}

impl OomWatcher {
    /// Looks at one line of stderr.
    pub fn line(&mut self, line: &str) {
        if self.message.is_none() && PATTERNS.iter().any(|p| line.contains(p)) {
            let mut m = line.trim().to_string();
            if m.len() > MAX_MESSAGE {
                let mut cut = MAX_MESSAGE;
                while !m.is_char_boundary(cut) {
                    cut -= 1;
                }
                m.truncate(cut);
            }
            self.message = Some(m);
        }
    }

    /// The first OOM line seen.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_frameworks() {
        for line in [
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.60 GiB. GPU 0 has a total capacity of 79.18 GiB",
            "torch.cuda.OutOfMemoryError: CUDA out of memory.",
            "RuntimeError: CUDA error: out of memory (cudaErrorMemoryAllocation)",
            "jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1234 bytes.",
            "CUDA_ERROR_OUT_OF_MEMORY",
        ] {
            let mut w = OomWatcher::default();
            w.line("Traceback (most recent call last):");
            w.line(line);
            assert!(w.message().is_some(), "{line}");
        }
    }

    #[test]
    fn ordinary_errors_are_not_oom() {
        let mut w = OomWatcher::default();
        for line in [
            "ValueError: bad shape",
            "RuntimeError: CUDA error: device-side assert triggered",
            "memory usage 33 GiB",
        ] {
            w.line(line);
        }
        assert_eq!(w.message(), None);
    }

    #[test]
    fn keeps_the_first_and_bounds_it() {
        let mut w = OomWatcher::default();
        w.line(&format!("CUDA out of memory {}", "é".repeat(2000)));
        w.line("torch.OutOfMemoryError: second");
        let m = w.message().unwrap();
        assert!(m.starts_with("CUDA out of memory") && m.len() <= MAX_MESSAGE);
    }
}
