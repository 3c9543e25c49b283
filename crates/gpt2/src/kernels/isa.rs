//! Which vector instructions the kernels use, chosen at run time.
//!
//! One binary runs on every x86-64 CPU: the hot kernels are compiled three times (portable,
//! AVX2 + FMA + F16C, AVX-512 F/BW/VL) and [`isa`] picks the best one this CPU has, once per
//! process. `GPT2_KERNEL=portable|avx2|avx512` forces a path (for tests and benchmarks); asking for
//! one the CPU lacks is an error from [`check_env`], and the library then falls back to the best
//! available path rather than executing unsupported instructions.
//!
//! Non-goals: ARM NEON (the portable path runs there, auto-vectorized for the target's baseline).

use std::sync::OnceLock;

/// The environment variable that forces a kernel path.
pub const ENV: &str = "GPT2_KERNEL";

/// A family of vector instructions the kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Plain Rust for the target's baseline (SSE2 on x86-64), vectorized by the compiler.
    Portable,
    /// AVX2 with FMA and F16C (Intel Haswell, AMD Zen and later): 8 f32 lanes.
    Avx2,
    /// AVX-512 F, BW and VL (Intel Skylake-X, AMD Zen 4 and later): 16 f32 lanes.
    Avx512,
}

impl Isa {
    /// The name used by `GPT2_KERNEL` and in reports: `portable`, `avx2`, `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Parses a [`Isa::name`].
    pub fn from_name(s: &str) -> Option<Isa> {
        match s.trim().to_ascii_lowercase().as_str() {
            "portable" => Some(Isa::Portable),
            "avx2" => Some(Isa::Avx2),
            "avx512" => Some(Isa::Avx512),
            _ => None,
        }
    }

    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                    && std::arch::is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.is_supported()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vl")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// Whether the AVX-512 path may also use AVX-512 VNNI (`vpdpbusd`, Intel Ice Lake, AMD Zen 4 and
/// later) for its integer dot products; without it they use the AVX2 instructions.
pub fn has_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static VNNI: OnceLock<bool> = OnceLock::new();
        *VNNI.get_or_init(|| {
            Isa::Avx512.is_supported() && std::arch::is_x86_feature_detected!("avx512vnni")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Every path this CPU can run, best last (tests run each of them).
pub fn supported() -> Vec<Isa> {
    [Isa::Portable, Isa::Avx2, Isa::Avx512]
        .into_iter()
        .filter(|i| i.is_supported())
        .collect()
}

/// The best path this CPU supports.
pub fn detected() -> Isa {
    *supported().last().unwrap_or(&Isa::Portable)
}

/// Validates `GPT2_KERNEL`: `Ok(None)` when unset, the forced path when valid and supported, an
/// error naming the variable and the choices otherwise. Binaries call this once at start.
pub fn check_env() -> Result<Option<Isa>, String> {
    let Ok(v) = std::env::var(ENV) else {
        return Ok(None);
    };
    let isa = Isa::from_name(&v)
        .ok_or_else(|| format!("{ENV}={v}: expected one of portable, avx2, avx512"))?;
    if !isa.is_supported() {
        return Err(format!(
            "{ENV}={v}: this CPU does not support it (best available: {})",
            detected().name()
        ));
    }
    Ok(Some(isa))
}

/// The path the kernels use in this process: `GPT2_KERNEL` if valid and supported, else
/// [`detected`]. Decided once.
pub fn isa() -> Isa {
    static CHOSEN: OnceLock<Isa> = OnceLock::new();
    *CHOSEN.get_or_init(|| check_env().ok().flatten().unwrap_or_else(detected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_portable_is_always_supported() {
        for i in [Isa::Portable, Isa::Avx2, Isa::Avx512] {
            assert_eq!(Isa::from_name(i.name()), Some(i));
        }
        assert_eq!(Isa::from_name("sse9"), None);
        assert!(supported().contains(&Isa::Portable));
        assert!(isa().is_supported());
    }
}
