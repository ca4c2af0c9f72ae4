//! Where a batched pass's replayed kink codes come from: the jobs' host patterns (uploaded as
//! each layer runs) or device buffers a caller recorded there and hands over (second-order
//! MAML's step back, whose codes never leave the device).

use super::{Backend, GpuError};

/// Each kinked layer's codes of every task of a call, stacked task-major.
pub enum Replay<'a, B: Backend> {
    /// Nothing to replay: the pass chooses the kinks (and records them where asked).
    None,
    /// On the host, one list per layer.
    Host(&'a [Vec<u8>]),
    /// On the device, one buffer per layer, each taken by the layer that replays it.
    Device(Vec<Option<B::U8>>),
}

impl<B: Backend> Replay<'_, B> {
    /// Device buffers to replay, one per kinked layer.
    pub fn device(codes: Vec<B::U8>) -> Self {
        Replay::Device(codes.into_iter().map(Some).collect())
    }

    /// Layer `i`'s codes as a device buffer of the layer's own, or `None` where there are none
    /// to replay.
    pub fn take(&mut self, b: &B, i: usize) -> Result<Option<B::U8>, GpuError> {
        match self {
            Replay::None => Ok(None),
            Replay::Host(codes) => codes.get(i).map(|c| b.upload_u8(c)).transpose(),
            Replay::Device(codes) => Ok(codes.get_mut(i).and_then(Option::take)),
        }
    }
}
