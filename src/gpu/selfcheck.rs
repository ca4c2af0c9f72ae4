//! Every op of [`super::ops`] once on seeded random inputs, on any backend, returning what each
//! wrote. The GPU check runs it on `Cuda` and on `Host` with the same seed and compares; on the
//! CPU, two runs must agree bit for bit (the reductions have a fixed order).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::ops::{self, Act, Affine, ConvGeom, DenseGeom, Kinks, PoolGrads, ReluKinks};
use super::{GpuError, Kernels};

/// One op's output, downloaded.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    F32(Vec<f32>),
    /// Kink codes: compared exactly.
    U8(Vec<u8>),
    /// Second-order MAML's f64 arithmetic, which rounds as IEEE says on every device: compared
    /// exactly.
    F64(Vec<f64>),
}

fn uniform(r: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| r.gen_range(-scale..scale)).collect()
}

type Outputs = Vec<(String, Output)>;

fn push_f32<B: Kernels>(b: &B, name: &str, v: &B::F32, out: &mut Outputs) -> Result<(), GpuError> {
    out.push((name.to_string(), Output::F32(b.download_f32(v)?)));
    Ok(())
}

/// Runs a conv block (forward with batch norm, kinks recorded, backward) and a ReLU dense layer
/// with both losses and its backward for `tasks` tasks; returns `(name, output)` in a fixed order.
pub fn run<B: Kernels>(b: &B, seed: u64, tasks: usize) -> Result<Outputs, GpuError> {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let mut out = vec![];
    conv_block(b, &mut r, tasks, &mut out)?;
    dense(b, &mut r, tasks, &mut out)?;
    params(b, &mut r, tasks, &mut out)?;
    b.synchronize()?;
    Ok(out)
}

fn conv_block<B: Kernels>(
    b: &B,
    r: &mut ChaCha8Rng,
    tasks: usize,
    out: &mut Outputs,
) -> Result<(), GpuError> {
    let f32s = |name: &str, v: &B::F32, out: &mut Outputs| push_f32(b, name, v, out);

    let g = ConvGeom {
        tasks,
        cin: 3,
        cout: 8,
        n: 6,
        h: 10,
        w: 10,
    };
    let x = b.upload_f32(&uniform(r, g.in_len(), 1.0))?;
    let w = b.upload_f32(&uniform(r, g.weight_len(), 0.5))?;
    let (mut col, mut y) = (b.zeros_f32(g.col_len())?, b.zeros_f32(g.conv_len())?);
    ops::conv_forward(b, &g, &x, &w, &mut col, &mut y)?;
    f32s("conv forward (im2col + sgemm)", &y, out)?;
    let c = g.channel_len();
    let gamma = b.upload_f32(&uniform(r, c, 1.0))?;
    let beta = b.upload_f32(&uniform(r, c, 1.0))?;
    let affine = Affine::BatchNorm {
        gamma: &gamma,
        beta: &beta,
    };
    let (mut mean, mut invstd) = (b.zeros_f32(c)?, b.zeros_f32(c)?);
    let (mut pooled, mut code) = (b.zeros_f32(g.pooled_len())?, b.zeros_u8(g.pooled_len())?);
    ops::norm_relu_pool(
        b,
        &g,
        &y,
        &affine,
        &mut mean,
        &mut invstd,
        &mut pooled,
        &mut code,
        Kinks::Record,
    )?;
    f32s("batch-norm mean", &mean, out)?;
    f32s("batch-norm invstd", &invstd, out)?;
    f32s("norm + relu + pool", &pooled, out)?;
    out.push(("pool kink codes".into(), Output::U8(b.download_u8(&code)?)));
    let gout = b.upload_f32(&uniform(r, g.pooled_len(), 1.0))?;
    let (mut dgamma, mut dbeta, mut dbias) = (b.zeros_f32(c)?, b.zeros_f32(c)?, b.zeros_f32(c)?);
    let (mut coef, mut dy) = (b.zeros_f32(3 * c)?, b.zeros_f32(g.conv_len())?);
    let grads = PoolGrads {
        dgamma: &mut dgamma,
        dbeta: &mut dbeta,
        dbias: &mut dbias,
        coef: &mut coef,
        dy: &mut dy,
    };
    ops::norm_relu_pool_backward(b, &g, &y, &affine, &mean, &invstd, &code, &gout, grads)?;
    f32s("pool backward ∂γ", &dgamma, out)?;
    f32s("pool backward ∂conv output", &dy, out)?;
    let (mut dw, mut dcol, mut dx) = (
        b.zeros_f32(g.weight_len())?,
        b.zeros_f32(g.col_len())?,
        b.zeros_f32(g.in_len())?,
    );
    ops::conv_backward(b, &g, &col, &w, &dy, &mut dw, Some((&mut dcol, &mut dx)))?;
    f32s("conv backward ∂w (sgemm)", &dw, out)?;
    f32s("conv backward ∂x (sgemm + col2im)", &dx, out)?;

    Ok(())
}

fn dense<B: Kernels>(
    b: &B,
    r: &mut ChaCha8Rng,
    tasks: usize,
    out: &mut Outputs,
) -> Result<(), GpuError> {
    let f32s = |name: &str, v: &B::F32, out: &mut Outputs| push_f32(b, name, v, out);
    let d = DenseGeom {
        tasks,
        rows: 40,
        inputs: 12,
        outputs: 5,
    };
    let xin = b.upload_f32(&uniform(r, d.in_len(), 1.0))?;
    let wd = b.upload_f32(&uniform(r, d.weight_len(), 0.5))?;
    let bias = b.upload_f32(&uniform(r, d.bias_len(), 0.5))?;
    let (mut z, mut h, mut kinks) = (
        b.zeros_f32(d.out_len())?,
        b.zeros_f32(d.out_len())?,
        b.zeros_u8(d.out_len())?,
    );
    ops::dense_forward(
        b,
        &d,
        &xin,
        &wd,
        &bias,
        &mut z,
        &mut h,
        &mut kinks,
        (Act::Relu, ReluKinks::Record),
    )?;
    f32s("dense relu forward", &h, out)?;
    out.push((
        "dense relu kink codes".into(),
        Output::U8(b.download_u8(&kinks)?),
    ));
    let labels: Vec<i32> = (0..tasks * d.rows)
        .map(|_| r.gen_range(0..d.outputs as i32))
        .collect();
    let (mut dlogits, mut loss, mut correct) = (
        b.zeros_f32(d.out_len())?,
        b.zeros_f32(tasks)?,
        b.zeros_f32(tasks)?,
    );
    ops::softmax_xent(
        b,
        tasks,
        d.rows,
        d.outputs,
        &h,
        &b.upload_i32(&labels)?,
        &mut dlogits,
        &mut loss,
        &mut correct,
    )?;
    f32s("softmax cross-entropy loss", &loss, out)?;
    f32s("softmax cross-entropy ∂logits", &dlogits, out)?;
    let (mut dz, mut dwd, mut dbd, mut dxd) = (
        b.zeros_f32(d.out_len())?,
        b.zeros_f32(d.weight_len())?,
        b.zeros_f32(d.bias_len())?,
        b.zeros_f32(d.in_len())?,
    );
    ops::dense_backward(
        b,
        &d,
        &xin,
        &wd,
        &h,
        &kinks,
        &dlogits,
        (Act::Relu, ReluKinks::Replay),
        &mut dz,
        &mut dwd,
        &mut dbd,
        Some(&mut dxd),
    )?;
    f32s("dense backward ∂w", &dwd, out)?;
    f32s("dense backward ∂bias", &dbd, out)?;
    f32s("dense backward ∂x", &dxd, out)?;
    let target = b.upload_f32(&uniform(r, d.out_len(), 1.0))?;
    let (mut dout, mut mse) = (b.zeros_f32(d.out_len())?, b.zeros_f32(tasks)?);
    ops::mse(
        b,
        tasks,
        d.rows * d.outputs,
        &h,
        &target,
        &mut dout,
        &mut mse,
    )?;
    f32s("mse loss", &mse, out)?;
    f32s("mse ∂output", &dout, out)?;
    Ok(())
}

/// Arithmetic on parameter handles (the inner SGD step, second-order MAML's backward vector)
/// and the axis swap.
fn params<B: Kernels>(
    b: &B,
    r: &mut ChaCha8Rng,
    tasks: usize,
    out: &mut Outputs,
) -> Result<(), GpuError> {
    // Not a multiple of a block, so the grid's tail is exercised.
    let n = tasks * 1000 + 7;
    let x = b.upload_f32(&uniform(r, n, 1.0))?;
    let g = b.upload_f32(&uniform(r, n, 1.0))?;
    let mut y = b.zeros_f32(n)?;
    ops::sgd_step(b, &x, &g, &mut y, 0.37)?;
    push_f32(b, "SGD step", &y, out)?;
    // The conv net's layout change between its channel-major blocks and its sample-major head.
    let (a, bdim, s) = (5, 3, 4);
    let x = b.upload_f32(&uniform(r, tasks * a * bdim * s, 1.0))?;
    let mut y = b.zeros_f32(tasks * a * bdim * s)?;
    ops::swap01(b, tasks, a, bdim, s, &x, &mut y)?;
    push_f32(b, "axis swap", &y, out)?;
    // Second-order MAML's backward vector: a gradient widened, stepped back, its norm's block
    // sums, and a shifted point.
    let g = b.upload_f32(&uniform(r, n, 1.0))?;
    let (gp, gm) = (
        b.upload_f32(&uniform(r, n, 1.0))?,
        b.upload_f32(&uniform(r, n, 1.0))?,
    );
    let mut v = b.zeros_f64(n)?;
    ops::widen(b, &g, &mut v)?;
    ops::step_back(b, &mut v, &gp, &gm, 2.0 * 0.013, 0.37)?;
    out.push(("step back".into(), Output::F64(b.download_f64(&v)?)));
    let block = crate::model::hvp::SUM_BLOCK;
    let mut partial = b.zeros_f64(n.div_ceil(block))?;
    ops::sumsq_blocks(b, &v, block, &mut partial)?;
    out.push((
        "sum of squares, per block".into(),
        Output::F64(b.download_f64(&partial)?),
    ));
    let x = b.upload_f32(&uniform(r, n, 1.0))?;
    let mut y = b.zeros_f32(n)?;
    ops::shift(b, &x, &v, -0.013, &mut y)?;
    push_f32(b, "HVP shifted point", &y, out)
}

/// ‖a − b‖ / max(‖b‖, 1e-12) for floats; the count of differing entries for codes.
pub fn difference(a: &Output, b: &Output) -> f64 {
    match (a, b) {
        (Output::F32(a), Output::F32(b)) if a.len() == b.len() => {
            let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
            let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
            num.sqrt() / den.sqrt().max(1e-12)
        }
        (Output::F64(a), Output::F64(b)) if a.len() == b.len() => {
            let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
            let den: f64 = b.iter().map(|y| y.powi(2)).sum();
            num.sqrt() / den.sqrt().max(1e-300)
        }
        (Output::U8(a), Output::U8(b)) if a.len() == b.len() => {
            a.iter().zip(b).filter(|(x, y)| x != y).count() as f64
        }
        _ => f64::INFINITY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Host;

    /// The emulated kernels are deterministic (fixed-order reductions, no atomics): two runs
    /// agree bit for bit, and a different seed gives different outputs.
    #[test]
    fn host_runs_are_bit_identical() {
        let a = run(&Host, 5, 2).unwrap();
        let b = run(&Host, 5, 2).unwrap();
        assert_eq!(a.len(), 23);
        assert_eq!(a, b);
        let c = run(&Host, 6, 2).unwrap();
        assert!(a.iter().zip(&c).all(|(x, y)| difference(&x.1, &y.1) > 0.0));
    }

    /// The GPU check compares what this self-check runs: a kernel added to the table and left
    /// out here would go unchecked on a lent GPU.
    #[test]
    fn the_self_check_launches_every_kernel_of_the_table() {
        let meter = crate::gpu::Meter::new();
        let b = crate::gpu::Metered::new(Host, std::sync::Arc::clone(&meter));
        run(&b, 5, 2).unwrap();
        let launched = meter.launches();
        let missing: Vec<&str> = crate::gpu::table::KERNELS
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| !launched.contains_key(name))
            .collect();
        assert!(missing.is_empty(), "never launched: {missing:?}");
    }
}
