//! Which x86-64 vector extension the hand-written kernels use, chosen once per process:
//! AVX2 with FMA (8 lanes) or AVX-512F (16 lanes) where the CPU has it. The AVX-512 code of
//! every kernel performs, lane by lane, the same IEEE operations in the same order as its AVX2
//! code, so the choice changes speed, never a bit of any result; tests compare the two
//! exactly ([`with_avx2`] forces the narrower one).
//!
//! `MODELC_MAX_ISA=avx2` caps the choice, as oneDNN's `ONEDNN_MAX_CPU_ISA` does: to measure
//! the wider code against the narrower on one machine, or to rule it out when chasing a
//! problem. Whether AVX2 + FMA is there at all is each kernel's own `available` check; this
//! module only says how wide to go once it is.

/// The vector extension the kernels use (where they run at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX2 + FMA: 256-bit vectors, 16 registers.
    Avx2,
    /// AVX-512F: 512-bit vectors, 32 registers, lane masks.
    Avx512,
}

impl Isa {
    /// The set in force for this process (in tests, [`with_avx2`] overrides it per thread).
    pub fn current() -> Isa {
        static CHOSEN: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        #[cfg(test)]
        if FORCE_AVX2.with(std::cell::Cell::get) {
            return Isa::Avx2;
        }
        *CHOSEN.get_or_init(Isa::detect)
    }

    /// The widest this CPU runs, capped by `MODELC_MAX_ISA=avx2`.
    fn detect() -> Isa {
        if std::env::var("MODELC_MAX_ISA").is_ok_and(|v| v.eq_ignore_ascii_case("avx2")) {
            return Isa::Avx2;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        Isa::Avx2
    }
}

#[cfg(test)]
thread_local! {
    static FORCE_AVX2: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with [`Isa::current`] saying AVX2 on this thread, even where AVX-512 is there (for
/// tests that both give the same bits). Work `f` hands to other threads sees the real choice,
/// so tests of it run single-threaded.
#[cfg(test)]
pub(crate) fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    FORCE_AVX2.with(|b| b.set(true));
    let r = f();
    FORCE_AVX2.with(|b| b.set(false));
    r
}
