//! Element-wise kernels compiled a second time for AVX-512, chosen at run time.
//!
//! The crate is built for baseline x86-64, where the compiler vectorises loops only 4 wide (SSE2).
//! [`multiversion!`] compiles a function's body twice, once as is and once with AVX-512 enabled,
//! and runs the second when the CPU supports it. Both copies compute the same thing.

use std::sync::atomic::{AtomicU8, Ordering};

static DETECTED: AtomicU8 = AtomicU8::new(0);

/// Whether the AVX-512 copies run (detected once).
#[inline]
pub fn available() -> bool {
    #[cfg(test)]
    if PORTABLE_ONLY.with(|p| p.get()) {
        return false;
    }
    match DETECTED.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let yes = detect();
            DETECTED.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
    }
}

#[cfg(test)]
thread_local! {
    static PORTABLE_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` on this thread with every AVX-512 path switched off, so tests on an AVX-512 machine
/// also check the code other machines run.
#[cfg(test)]
pub fn portable_only<R>(f: impl FnOnce() -> R) -> R {
    PORTABLE_ONLY.with(|p| p.set(true));
    let r = f();
    PORTABLE_ONLY.with(|p| p.set(false));
    r
}

/// `METALAB_NO_AVX512=1` forces the portable paths (the `gemm` crate and 4-wide loops): to
/// compare kernels, or to reproduce numbers from a machine without AVX-512 bit for bit.
fn detect() -> bool {
    if std::env::var_os("METALAB_NO_AVX512").is_some_and(|v| v != "0") {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines `fn name(args) -> ret { body }` so that `body`, and every `#[inline(always)]`
/// function it calls, also exists compiled for AVX-512, used when [`available`].
macro_rules! multiversion {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn portable($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                /// # Safety
                /// The CPU must have every feature this is compiled for ([`available`]).
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn wide($($arg: $ty),*) $(-> $ret)? {
                    portable($($arg),*)
                }
                if $crate::model::ops::simd::available() {
                    // SAFETY: the CPU has every feature `wide` is compiled for.
                    return unsafe { wide($($arg),*) };
                }
            }
            portable($($arg),*)
        }
    };
}
pub(crate) use multiversion;
