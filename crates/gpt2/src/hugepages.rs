//! Transparent huge pages for resident weights.
//!
//! Decoding reads every weight once per token, front to back. With 4 KiB pages that is a TLB miss
//! and a restart of the hardware prefetcher every 4 KiB; with 2 MiB pages, every 2 MiB. On the
//! development machine (Zen 4, 2 cores) f16 decode of the 124M shape ran 10–20% faster from
//! huge pages (`docs/quantization.md`).
//!
//! Linux only backs memory with huge pages when asked (`/sys/kernel/mm/transparent_hugepage/enabled`
//! = `madvise`, the common default) or always. [`advise`] asks for it and collapses the pages that
//! are already there (`MADV_COLLAPSE`, Linux ≥ 6.1). It works on memory the process owns; a file
//! mapping keeps the page cache's pages (hence `--no-mmap`, which copies a GGUF file's tensors).
//! Used for typed weights ([`crate::Model::from_typed`], [`crate::weights::TypedWeights::into_owned`]);
//! not for f32 [`crate::Params`], which training clones for every sample (a collapse is a copy).
//! Elsewhere, and when the kernel refuses, it does nothing: the contents never change either way.

/// Huge page size the advice aims at (x86-64, arm64 with 4 KiB base pages).
pub const HUGE: usize = 2 << 20;

/// Asks the kernel to back the 2 MiB-aligned interior of `bytes` with huge pages, now. Returns
/// the bytes covered by a successful collapse (0 if none: too small, unsupported or refused).
pub fn advise(bytes: &[u8]) -> usize {
    #[cfg(target_os = "linux")]
    {
        let start = (bytes.as_ptr() as usize).next_multiple_of(HUGE);
        let end = (bytes.as_ptr() as usize + bytes.len()) / HUGE * HUGE;
        if end <= start {
            return 0;
        }
        let len = end - start;
        /// `MADV_COLLAPSE` (include/uapi/asm-generic/mman-common.h).
        const MADV_COLLAPSE: libc::c_int = 25;
        // SAFETY: [start, end) lies inside `bytes`, memory this process has mapped; both advices
        // keep the contents (MADV_COLLAPSE copies them into the new pages), so the borrow's
        // guarantees hold. Errors (EINVAL on a file mapping or an old kernel) change nothing.
        unsafe {
            let p = start as *mut libc::c_void;
            libc::madvise(p, len, libc::MADV_HUGEPAGE);
            if libc::madvise(p, len, MADV_COLLAPSE) == 0 {
                return len;
            }
        }
        0
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = bytes;
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_keeps_the_contents_and_covers_only_the_aligned_interior() {
        let v: Vec<u8> = (0..3 * HUGE + 12_345)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let before = v.clone();
        let covered = advise(&v);
        assert_eq!(v, before);
        assert!(
            covered <= v.len() && covered.is_multiple_of(HUGE),
            "{covered}"
        );
        assert_eq!(advise(&v[..HUGE / 2]), 0, "less than one huge page");
    }
}
