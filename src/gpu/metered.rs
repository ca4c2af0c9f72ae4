//! Device memory accounting for any backend: [`Metered`] wraps a backend so that every buffer it
//! hands out is counted while it lives, the peak is kept, and an optional cap refuses an
//! allocation past it with the error a device gives when it runs out. On [`super::Host`] that is
//! how the tests hold `gpu::memory`'s estimate to what `GpuTasks` really allocates, and how the
//! out-of-memory path (the typed error, the checkpoint, the resume) runs without a GPU; on
//! [`super::Cuda`] it is the engine's own count of its buffers, next to what the driver reports.
//!
//! It also counts what crosses between host and device ([`Meter::transfers`]) and how often each
//! kernel is launched ([`Meter::launches`]): what issue 20's "only scalars come back" is checked
//! by, and how the GPU self-check is held to covering every kernel of the table.
//!
//! The cap can move while a run goes on ([`Meter::set_cap`], or [`Meter::cap_after`] for a cap
//! that starts at a given allocation): that is what another process taking the GPU's memory
//! mid-run looks like to the engine.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::backend::Backend;
use super::gemm::Gemm;
use super::GpuError;

const NO_CAP: u64 = u64::MAX;

/// Live and peak bytes of the buffers a [`Metered`] backend handed out, and its cap.
#[derive(Debug)]
pub struct Meter {
    live: AtomicU64,
    peak: AtomicU64,
    /// Bytes past which an allocation fails; `NO_CAP` for none.
    cap: AtomicU64,
    /// Allocations made so far, and the one from which `cap` applies.
    allocations: AtomicU64,
    cap_from: AtomicU64,
    up: Counter,
    down: Counter,
    /// Launches per kernel name.
    launches: Mutex<BTreeMap<&'static str, u64>>,
}

/// Transfers one way: how many, and their bytes.
#[derive(Debug, Default)]
struct Counter {
    calls: AtomicU64,
    bytes: AtomicU64,
}

impl Counter {
    fn add(&self, bytes: usize) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.bytes.fetch_add(bytes as u64, Ordering::SeqCst);
    }
}

/// What crossed between host and device since a meter was made or [`Meter::reset_transfers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Transfers {
    pub uploads: u64,
    pub upload_bytes: u64,
    pub downloads: u64,
    pub download_bytes: u64,
}

impl Transfers {
    /// Each count divided by `n` (rounded down): the share of one of `n` equal pieces of work.
    pub fn per(self, n: u64) -> Transfers {
        let n = n.max(1);
        Transfers {
            uploads: self.uploads / n,
            upload_bytes: self.upload_bytes / n,
            downloads: self.downloads / n,
            download_bytes: self.download_bytes / n,
        }
    }
}

impl Meter {
    /// A meter with no cap.
    pub fn new() -> Arc<Meter> {
        Arc::new(Meter {
            live: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            cap: AtomicU64::new(NO_CAP),
            allocations: AtomicU64::new(0),
            cap_from: AtomicU64::new(0),
            up: Counter::default(),
            down: Counter::default(),
            launches: Mutex::new(BTreeMap::new()),
        })
    }

    /// Uploads and downloads so far.
    pub fn transfers(&self) -> Transfers {
        Transfers {
            uploads: self.up.calls.load(Ordering::SeqCst),
            upload_bytes: self.up.bytes.load(Ordering::SeqCst),
            downloads: self.down.calls.load(Ordering::SeqCst),
            download_bytes: self.down.bytes.load(Ordering::SeqCst),
        }
    }

    /// Starts the transfer counts again from zero.
    pub fn reset_transfers(&self) {
        for c in [&self.up, &self.down] {
            c.calls.store(0, Ordering::SeqCst);
            c.bytes.store(0, Ordering::SeqCst);
        }
    }

    /// Launches so far, per kernel name (kernels never launched are absent).
    pub fn launches(&self) -> BTreeMap<&'static str, u64> {
        self.launches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Counts one launch of `kernel` (the generated launchers call it).
    pub(crate) fn launched(&self, kernel: &'static str) {
        *self
            .launches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kernel)
            .or_default() += 1;
    }

    /// A meter whose allocations fail past `cap` bytes (none with `None`).
    pub fn capped(cap: Option<u64>) -> Arc<Meter> {
        let m = Meter::new();
        m.set_cap(cap);
        m
    }

    /// Bytes of the buffers alive now.
    pub fn live(&self) -> u64 {
        self.live.load(Ordering::SeqCst)
    }

    /// The most bytes alive at once since the meter was made or [`Meter::reset_peak`].
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }

    /// Starts a new peak from what is alive now.
    pub fn reset_peak(&self) {
        self.peak.store(self.live(), Ordering::SeqCst);
    }

    /// Allocations made so far.
    pub fn allocations(&self) -> u64 {
        self.allocations.load(Ordering::SeqCst)
    }

    /// The cap in force now, if any.
    pub fn cap(&self) -> Option<u64> {
        let from = self.cap_from.load(Ordering::SeqCst);
        let cap = self.cap.load(Ordering::SeqCst);
        (cap != NO_CAP && self.allocations() >= from).then_some(cap)
    }

    /// Caps the memory at `cap` bytes from now on (`None` lifts it).
    pub fn set_cap(&self, cap: Option<u64>) {
        self.cap_from.store(0, Ordering::SeqCst);
        self.cap.store(cap.unwrap_or(NO_CAP), Ordering::SeqCst);
    }

    /// Caps the memory at `cap` bytes from the `from`-th allocation on (counting from 0).
    pub fn cap_after(&self, from: u64, cap: u64) {
        self.cap_from.store(from, Ordering::SeqCst);
        self.cap.store(cap, Ordering::SeqCst);
    }

    /// Bytes left under the cap in force, if there is one.
    pub fn headroom(&self) -> Option<u64> {
        self.cap().map(|cap| cap.saturating_sub(self.live()))
    }

    /// Counts `bytes` in, or refuses them past the cap.
    fn take(&self, bytes: u64) -> Result<(), GpuError> {
        let index = self.allocations.fetch_add(1, Ordering::SeqCst);
        let cap = self.cap.load(Ordering::SeqCst);
        if cap != NO_CAP && index >= self.cap_from.load(Ordering::SeqCst) {
            let live = self.live();
            if live + bytes > cap {
                return Err(GpuError::Memory(format!(
                    "out of memory: {bytes} bytes asked with {live} of the cap's {cap} in use"
                )));
            }
        }
        let live = self.live.fetch_add(bytes, Ordering::SeqCst) + bytes;
        self.peak.fetch_max(live, Ordering::SeqCst);
        Ok(())
    }

    fn give(&self, bytes: u64) {
        self.live.fetch_sub(bytes, Ordering::SeqCst);
    }
}

/// A buffer of the wrapped backend, counted by its meter while it lives.
pub struct Tracked<T> {
    buf: T,
    bytes: u64,
    meter: Arc<Meter>,
}

impl<T> Tracked<T> {
    /// The wrapped backend's buffer.
    pub fn inner(&self) -> &T {
        &self.buf
    }
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.buf
    }
}

impl<T> Drop for Tracked<T> {
    fn drop(&mut self) {
        self.meter.give(self.bytes);
    }
}

/// Backend `B` with every buffer counted by a [`Meter`]. See the module documentation.
pub struct Metered<B> {
    inner: B,
    meter: Arc<Meter>,
}

impl<B: Backend> Metered<B> {
    pub fn new(inner: B, meter: Arc<Meter>) -> Metered<B> {
        Metered { inner, meter }
    }
    pub fn inner(&self) -> &B {
        &self.inner
    }
    pub fn meter(&self) -> &Arc<Meter> {
        &self.meter
    }

    /// `make()` counted as `len` values of `size` bytes (at least one value: a device rounds an
    /// empty buffer up to one).
    fn track<T>(
        &self,
        len: usize,
        size: usize,
        make: impl FnOnce() -> Result<T, GpuError>,
    ) -> Result<Tracked<T>, GpuError> {
        let bytes = (len.max(1) * size) as u64;
        self.meter.take(bytes)?;
        match make() {
            Ok(buf) => Ok(Tracked {
                buf,
                bytes,
                meter: Arc::clone(&self.meter),
            }),
            Err(e) => {
                self.meter.give(bytes);
                Err(e)
            }
        }
    }
}

impl<B: Backend> Backend for Metered<B> {
    type F32 = Tracked<B::F32>;
    type U8 = Tracked<B::U8>;
    type I32 = Tracked<B::I32>;
    type F64 = Tracked<B::F64>;

    fn max_grid(&self) -> u32 {
        self.inner.max_grid()
    }
    fn upload_f32(&self, v: &[f32]) -> Result<Self::F32, GpuError> {
        self.meter.up.add(4 * v.len());
        self.track(v.len(), 4, || self.inner.upload_f32(v))
    }
    fn upload_u8(&self, v: &[u8]) -> Result<Self::U8, GpuError> {
        self.meter.up.add(v.len());
        self.track(v.len(), 1, || self.inner.upload_u8(v))
    }
    fn upload_i32(&self, v: &[i32]) -> Result<Self::I32, GpuError> {
        self.meter.up.add(4 * v.len());
        self.track(v.len(), 4, || self.inner.upload_i32(v))
    }
    fn upload_f64(&self, v: &[f64]) -> Result<Self::F64, GpuError> {
        self.meter.up.add(8 * v.len());
        self.track(v.len(), 8, || self.inner.upload_f64(v))
    }
    fn zeros_f64(&self, n: usize) -> Result<Self::F64, GpuError> {
        self.track(n, 8, || self.inner.zeros_f64(n))
    }
    fn download_f64(&self, b: &Self::F64) -> Result<Vec<f64>, GpuError> {
        self.meter.down.add(8 * B::len_f64(&b.buf));
        self.inner.download_f64(&b.buf)
    }
    fn len_f64(b: &Self::F64) -> usize {
        B::len_f64(&b.buf)
    }
    fn zeros_f32(&self, n: usize) -> Result<Self::F32, GpuError> {
        self.track(n, 4, || self.inner.zeros_f32(n))
    }
    fn zeros_u8(&self, n: usize) -> Result<Self::U8, GpuError> {
        self.track(n, 1, || self.inner.zeros_u8(n))
    }
    fn download_f32(&self, b: &Self::F32) -> Result<Vec<f32>, GpuError> {
        self.meter.down.add(4 * B::len_f32(&b.buf));
        self.inner.download_f32(&b.buf)
    }
    fn download_u8(&self, b: &Self::U8) -> Result<Vec<u8>, GpuError> {
        self.meter.down.add(B::len_u8(&b.buf));
        self.inner.download_u8(&b.buf)
    }
    fn copy_f32(
        &self,
        src: &Self::F32,
        src_at: usize,
        dst: &mut Self::F32,
        dst_at: usize,
        len: usize,
    ) -> Result<(), GpuError> {
        self.inner
            .copy_f32(&src.buf, src_at, &mut dst.buf, dst_at, len)
    }
    fn copy_u8(
        &self,
        src: &Self::U8,
        src_at: usize,
        dst: &mut Self::U8,
        dst_at: usize,
        len: usize,
    ) -> Result<(), GpuError> {
        self.inner
            .copy_u8(&src.buf, src_at, &mut dst.buf, dst_at, len)
    }
    fn len_f32(b: &Self::F32) -> usize {
        B::len_f32(&b.buf)
    }
    fn len_u8(b: &Self::U8) -> usize {
        B::len_u8(&b.buf)
    }
    fn len_i32(b: &Self::I32) -> usize {
        B::len_i32(&b.buf)
    }
    fn sgemm(
        &self,
        g: &Gemm,
        a: &Self::F32,
        b: &Self::F32,
        c: &mut Self::F32,
    ) -> Result<(), GpuError> {
        self.inner.sgemm(g, &a.buf, &b.buf, &mut c.buf)
    }
    fn synchronize(&self) -> Result<(), GpuError> {
        self.inner.synchronize()
    }
    fn used_memory(&self) -> Option<u64> {
        Some(self.meter.live())
    }
    /// The smaller of the device's free memory and the headroom under the cap.
    fn free_memory(&self) -> Option<u64> {
        match (self.inner.free_memory(), self.meter.headroom()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Host;

    #[test]
    fn counts_live_and_peak_bytes_and_refuses_past_the_cap() {
        let m = Meter::new();
        let b = Metered::new(Host, Arc::clone(&m));
        let a = b.zeros_f32(100).unwrap();
        let c = b.upload_u8(&[1, 2, 3]).unwrap();
        assert_eq!((m.live(), m.peak()), (403, 403));
        drop(a);
        assert_eq!((m.live(), m.peak()), (3, 403));
        m.reset_peak();
        assert_eq!(m.peak(), 3);
        m.set_cap(Some(43));
        assert_eq!(b.free_memory(), Some(40));
        let e = b.zeros_f32(11).err().expect("44 + 3 bytes is past the cap");
        assert!(e.is_out_of_memory(), "{e}");
        assert_eq!(m.live(), 3, "a refused allocation counts nothing");
        let d = b.zeros_f32(10).unwrap();
        assert_eq!(m.live(), 43);
        drop((c, d));
        assert_eq!(m.live(), 0);
        m.set_cap(None);
        assert_eq!(b.free_memory(), None);
    }

    #[test]
    fn counts_what_crosses_and_each_kernel_launched() {
        let m = Meter::new();
        let b = Metered::new(Host, Arc::clone(&m));
        let x = b.upload_f32(&[1.0, 2.0, 3.0]).unwrap();
        let _c = b.upload_u8(&[1, 2]).unwrap();
        let mut y = b.zeros_f32(3).unwrap();
        let g = b.upload_f32(&[1.0; 3]).unwrap();
        crate::gpu::ops::sgd_step(&b, &x, &g, &mut y, 0.5).unwrap();
        assert_eq!(b.download_f32(&y).unwrap(), [0.5, 1.5, 2.5]);
        let t = m.transfers();
        assert_eq!((t.uploads, t.upload_bytes), (3, 26));
        assert_eq!(
            (t.downloads, t.download_bytes),
            (1, 12),
            "zeros cross nothing"
        );
        assert_eq!(m.launches().get("ml_sgd_step"), Some(&1));
        m.reset_transfers();
        assert_eq!(m.transfers(), Transfers::default());
    }

    #[test]
    fn a_cap_after_an_allocation_applies_from_it() {
        let m = Meter::new();
        let b = Metered::new(Host, Arc::clone(&m));
        m.cap_after(2, 8);
        let _a = b.zeros_f32(4).unwrap();
        let _b = b.zeros_f32(4).unwrap();
        assert!(b.zeros_f32(1).is_err(), "the third allocation is capped");
        assert_eq!(m.cap(), Some(8));
    }
}
