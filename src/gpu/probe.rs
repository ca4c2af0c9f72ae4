//! Can this machine run `Cuda(n)`, and if not, why — answered without a crash. cudarc's
//! dynamic loading panics on a missing library when first used, so the libraries are looked
//! for first, and each call into the driver is kept from unwinding into the caller.

use super::GpuError;

/// Which of the libraries the engine loads at run time are present: driver, NVRTC, cuBLAS.
pub fn libraries() -> (bool, bool, bool) {
    // SAFETY: each only tries to dlopen its library by name and closes it again.
    unsafe {
        (
            cudarc::driver::sys::is_culib_present(),
            cudarc::nvrtc::sys::is_culib_present(),
            cudarc::cublas::sys::is_culib_present(),
        )
    }
}

/// The error for the first library `Cuda(ordinal)` needs that is missing.
pub fn require_libraries(ordinal: usize) -> Result<(), GpuError> {
    match libraries() {
        (false, _, _) => Err(GpuError::NoDriver { ordinal }),
        (_, false, _) => Err(GpuError::NoNvrtc { ordinal }),
        (_, _, false) => Err(GpuError::NoCublas { ordinal }),
        _ => Ok(()),
    }
}

/// Runs a call into a CUDA library, turning a panic (cudarc's answer to a missing symbol, or to
/// a driver without a GPU) into an error for `ordinal`.
pub fn guarded<T>(ordinal: usize, f: impl FnOnce() -> Result<T, GpuError>) -> Result<T, GpuError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let reason = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the CUDA library panicked".into());
        Err(GpuError::Driver { ordinal, reason })
    })
}

/// Checks that `Cuda(ordinal)` exists, without compiling anything: libraries, then the device
/// count. Returns the device's name.
pub fn check(ordinal: usize) -> Result<String, GpuError> {
    require_libraries(ordinal)?;
    guarded(ordinal, || {
        let driver = |e: cudarc::driver::DriverError| GpuError::Driver {
            ordinal,
            reason: e.to_string(),
        };
        let count = cudarc::driver::CudaContext::device_count()
            .map_err(driver)?
            .max(0) as usize;
        if ordinal >= count {
            return Err(GpuError::NoSuchDevice { ordinal, count });
        }
        cudarc::driver::CudaContext::new(ordinal)
            .map_err(driver)?
            .name()
            .map_err(driver)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever this machine has, asking for a device it cannot give is an error naming the fix,
    /// never a panic: no driver here (CI), or an ordinal past the last device on a GPU machine.
    #[test]
    fn a_device_that_cannot_be_opened_is_an_error_with_its_fix() {
        let (driver, _, _) = libraries();
        let err = if driver {
            check(4096).expect_err("no machine has 4097 GPUs")
        } else {
            check(0).expect_err("no driver, yet Cuda(0) opened")
        };
        match (&err, driver) {
            (GpuError::NoDriver { ordinal: 0 }, false) => {}
            (GpuError::NoSuchDevice { ordinal: 4096, .. }, true) => {}
            (GpuError::NoNvrtc { .. } | GpuError::NoCublas { .. }, true) => {}
            other => panic!("unexpected answer {other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains("fix:") && text.contains("device: Cpu"),
            "{text}"
        );
    }
}
