//! Run-time CPU feature detection.

use std::sync::OnceLock;

/// The instruction-set level the kernels use, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Plain Rust, vectorised by the compiler for the build target's baseline (SSE2, NEON).
    Portable,
    /// x86-64 with AVX2 and FMA.
    Avx2,
    /// x86-64 with AVX-512 F/BW/DQ/VL.
    Avx512,
    /// AVX-512 plus VNNI (`vpdpbusd`): the fast INT8 path.
    Avx512Vnni,
}

impl Isa {
    /// A short name for logs and benchmark reports.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Avx512Vnni => "avx512-vnni",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Isa::Portable, Isa::Avx2, Isa::Avx512, Isa::Avx512Vnni].into_iter().find(|i| i.name() == s)
    }
}

/// What this CPU supports, detected once.
pub fn detected() -> Isa {
    static DETECTED: OnceLock<Isa> = OnceLock::new();
    *DETECTED.get_or_init(detect)
}

/// The level the kernels use: [`detected`], lowered by `RAGMILL_KERNELS=portable|avx2|avx512`
/// when set (for testing the fallbacks on a capable machine). It is never raised above what
/// the CPU has, so no setting can make a kernel fault.
pub fn active() -> Isa {
    static ACTIVE: OnceLock<Isa> = OnceLock::new();
    *ACTIVE.get_or_init(|| {
        let wanted = std::env::var("RAGMILL_KERNELS").ok().and_then(|s| Isa::parse(s.trim()));
        wanted.map_or(detected(), |w| w.min(detected()))
    })
}

/// Threads the kernels spread work over (rayon's pool: one per core unless
/// `RAYON_NUM_THREADS` says otherwise).
pub fn threads() -> usize {
    rayon::current_num_threads()
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Isa {
    use std::arch::is_x86_feature_detected as has;
    let avx512 = has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl");
    if avx512 && has!("avx512vnni") {
        Isa::Avx512Vnni
    } else if avx512 {
        Isa::Avx512
    } else if has!("avx2") && has!("fma") {
        Isa::Avx2
    } else {
        Isa::Portable
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Isa {
    Isa::Portable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for isa in [Isa::Portable, Isa::Avx2, Isa::Avx512, Isa::Avx512Vnni] {
            assert_eq!(Isa::parse(isa.name()), Some(isa));
        }
        assert_eq!(Isa::parse("sse9"), None);
    }

    #[test]
    fn active_never_exceeds_detected() {
        assert!(active() <= detected());
    }
}
