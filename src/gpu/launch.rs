//! Grid shapes, shared by both backends so that a kernel runs with the same blocks on the CPU as
//! on the GPU (the reduction kernels' sums depend on it; the element-wise ones do not).

/// Grid and block dimensions of one launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launch {
    pub grid: (u32, u32, u32),
    pub block: (u32, u32, u32),
}

/// Threads per block of every kernel (`ML_REDUCE_THREADS` in `kernels/common.cuh`).
pub const THREADS: u32 = 256;

impl Launch {
    /// An element-wise kernel over `total` elements in grid-stride loops: at most `max_grid`
    /// blocks (the backend's choice; results do not depend on it).
    pub fn elementwise(total: usize, max_grid: u32) -> Launch {
        let blocks = total
            .div_ceil(THREADS as usize)
            .clamp(1, max_grid.max(1) as usize) as u32;
        Launch {
            grid: (blocks, 1, 1),
            block: (THREADS, 1, 1),
        }
    }

    /// A reduction kernel: one block of [`THREADS`] per `(x, y)`, e.g. (channel, task).
    pub fn reduce(x: usize, y: usize) -> Launch {
        Launch {
            grid: (x.max(1) as u32, y.max(1) as u32, 1),
            block: (THREADS, 1, 1),
        }
    }
}

impl From<Launch> for cudarc::driver::LaunchConfig {
    fn from(l: Launch) -> Self {
        cudarc::driver::LaunchConfig {
            grid_dim: l.grid,
            block_dim: l.block,
            shared_mem_bytes: 0,
        }
    }
}
