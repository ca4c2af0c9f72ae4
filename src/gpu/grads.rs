//! Where a batched backward pass puts each task's gradient: on the host, which is what the
//! lock-step contract's `StepOut::grad` hands the algorithms, or in a device buffer per task,
//! which is what an inner SGD step uses (`LockStepModel::descend`): there the gradient is made,
//! applied and freed on the device and never crosses the bus.

use super::{ops, Backend, GpuError};

/// Each task's gradient, `len` values long (θ up to the end of the layers a pass goes through).
pub enum Grads<B: Backend> {
    Host(Vec<Vec<f32>>),
    Device(Vec<B::F32>),
}

/// Which of the two a pass fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Host,
    Device,
}

impl<B: Backend> Grads<B> {
    /// `tasks` zero gradients of `len` values, at `place`.
    pub fn zeros(b: &B, place: Place, tasks: usize, len: usize) -> Result<Grads<B>, GpuError> {
        Ok(match place {
            Place::Host => Grads::Host(vec![vec![0.0; len]; tasks]),
            Place::Device => Grads::Device(
                (0..tasks)
                    .map(|_| b.zeros_f32(len))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    /// Task `t`'s share of the stacked `v` (its `t`-th of equal parts) into task `t`'s gradient
    /// at `at`: a download of `v` for host gradients, device copies for device ones.
    pub fn put(&mut self, b: &B, v: &B::F32, at: usize) -> Result<(), GpuError> {
        match self {
            Grads::Host(g) => ops::scatter(b, v, at, g),
            Grads::Device(g) => {
                let len = B::len_f32(v) / g.len().max(1);
                for (t, g) in g.iter_mut().enumerate() {
                    b.copy_f32(v, t * len, g, at, len)?;
                }
                Ok(())
            }
        }
    }

    /// The host gradients. Panics on device ones: a pass asked for host gradients gets them.
    pub fn into_host(self) -> Vec<Vec<f32>> {
        match self {
            Grads::Host(g) => g,
            Grads::Device(_) => unreachable!("a pass for host gradients filled device buffers"),
        }
    }

    /// The device gradients. Panics on host ones, as [`Grads::into_host`].
    pub fn into_device(self) -> Vec<B::F32> {
        match self {
            Grads::Device(g) => g,
            Grads::Host(_) => unreachable!("a pass for device gradients filled host vectors"),
        }
    }
}
