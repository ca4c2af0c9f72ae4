//! The execution strategy of an arm: long-lived workers, each owning one device and one
//! evaluator, or one worker driving the GPU engine (`gpu::GpuTasks`) with whole meta-batches.
//!
//! Spawning threads per meta-batch gains nothing on small tasks, and a CUDA device cannot move
//! between threads, so workers live as long as the arm. Results come back in item order, so a
//! meta-batch's sum does not depend on which worker ran which task (runs are reproducible across
//! thread counts).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use thiserror::Error;

use crate::experiment::{DeviceSpec, ModelSpec};
use crate::gpu::{Cuda, GpuError, GpuTasks, Host, Meter, Metered};
use crate::model::{Evaluator, LockStepModel, ModelError, Network, SerialTasks};

type Job = Box<dyn FnOnce(&mut Worker) + Send>;
type Answer<R> = (usize, Result<R, PoolError>);

/// Why per-task work did not come back.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PoolError {
    /// The work itself panicked (a bug, or a shape the model did not expect); the message is
    /// the panic's.
    #[error("a worker panicked: {0}")]
    Panicked(String),
    /// The GPU engine ran out of device memory; the message is `GpuError::OutOfMemory`'s, with
    /// the tasks per call that fit. A run that stops on it can resume from its checkpoint.
    #[error("{0}")]
    OutOfMemory(String),
    /// Another error of the GPU engine (a failed launch, a lost device).
    #[error("{0}")]
    Gpu(String),
    #[error("the worker threads have exited")]
    Exited,
}

/// Work on one chunk of a meta-batch in lock-step, on whichever backend the pool runs: the CPU
/// workers' [`SerialTasks`] or the GPU engine's [`GpuTasks`]. A trait, not a closure, because
/// the work is generic over the backend ([`crate::algo`]'s rules are).
pub trait LockStepWork: Send + Sync + 'static {
    type Item: Send + 'static;
    type Out: Send + 'static;
    /// One result per item of `chunk`, in order.
    fn run<M: LockStepModel + ?Sized>(&self, m: &mut M, chunk: Vec<Self::Item>) -> Vec<Self::Out>;
}

/// Where `device: Cuda(n)` runs the GPU engine's kernels. Not an experiment setting: users
/// always get the GPU; `Host` runs the same kernels on the CPU (`gpu::Host`: a block's threads
/// as OS threads, slow by design), so tests can run the whole engine without a GPU.
#[derive(Debug, Clone, Default)]
pub enum GpuKernels {
    #[default]
    Device,
    Host,
    /// On the CPU, the engine's buffers counted by this meter, whose cap (which the caller
    /// may move while a run goes on) stands for the GPU's memory: the out-of-memory path
    /// without a GPU.
    HostMetered(Arc<Meter>),
}

/// The GPU engine on one of its backends, its buffers counted (`gpu::Metered`).
enum GpuEngine {
    /// The kernels run on the CPU: what the tests run the whole engine on.
    Host(Box<GpuTasks<Metered<Host>>>),
    Cuda(Box<GpuTasks<Metered<Cuda>>>),
}

/// What a worker thread owns.
enum Worker {
    Cpu(Box<dyn Evaluator>),
    /// The GPU engine runs the lock-step work; `cpu` runs [`WorkerPool::map`]'s per-task work
    /// (the task affinities' lookahead losses), which has no batched form yet.
    Gpu {
        engine: GpuEngine,
        cpu: Box<dyn Evaluator>,
    },
}

impl Worker {
    fn evaluator(&mut self) -> &mut dyn Evaluator {
        match self {
            Worker::Cpu(ev) | Worker::Gpu { cpu: ev, .. } => ev.as_mut(),
        }
    }

    fn lockstep<W: LockStepWork>(&mut self, work: &W, chunk: Vec<W::Item>) -> Vec<W::Out> {
        match self {
            Worker::Cpu(ev) => work.run(&mut SerialTasks::new(ev.as_mut()), chunk),
            Worker::Gpu {
                engine: GpuEngine::Host(t),
                ..
            } => work.run(t.as_mut(), chunk),
            Worker::Gpu {
                engine: GpuEngine::Cuda(t),
                ..
            } => work.run(t.as_mut(), chunk),
        }
    }
}

/// The execution strategy of an arm: CPU workers, one chunk of a meta-batch each, or one
/// thread driving the GPU engine with the whole meta-batch in each call.
pub struct WorkerPool {
    jobs: Option<Sender<Job>>,
    handles: Vec<JoinHandle<()>>,
    chunking: Chunking,
    /// The GPU engine's count of its device buffers (none on CPU workers).
    meter: Option<Arc<Meter>>,
}

/// How [`WorkerPool::lockstep`] cuts a meta-batch into jobs. A lock-step backend keeps every
/// task of its chunk alive across the inner loop (fast weights and each step's kink codes), so
/// the chunk's size is a trade between fewer jobs and a working set that fits the cache.
/// Measured on the 2-core machine (docs/results.md, issue 19): with one chunk per worker the
/// conv net's `omniglot-maml2-5step` ran 8 % slower than with one task per job (16 tasks × 5
/// steps of kink codes stop fitting), while the MLP's sinusoid workloads, whose tasks take
/// microseconds, ran 2–15 % faster with fewer jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunking {
    /// One contiguous chunk per worker: small tasks, and the GPU (one worker, the whole batch).
    PerWorker,
    /// One task per job, taken by whichever worker is free: tasks with megabytes of state.
    PerTask,
}

impl Chunking {
    fn for_cpu(net: &Network) -> Chunking {
        match net.spec {
            ModelSpec::Mlp(_) => Chunking::PerWorker,
            ModelSpec::Conv(_) => Chunking::PerTask,
        }
    }
}

impl WorkerPool {
    /// `device: Cpu`: `threads` workers, each building its own evaluator in its own thread.
    /// `device: Cuda(n)`: the GPU engine on device `n` (one thread; `threads` is not used).
    pub fn new(
        net: &Network,
        device: DeviceSpec,
        seed: u64,
        threads: usize,
    ) -> Result<WorkerPool, ModelError> {
        WorkerPool::with_kernels(net, device, GpuKernels::Device, seed, threads)
    }

    /// [`WorkerPool::new`], with `device: Cuda(n)`'s kernels run where `kernels` says.
    pub fn with_kernels(
        net: &Network,
        device: DeviceSpec,
        kernels: GpuKernels,
        seed: u64,
        threads: usize,
    ) -> Result<WorkerPool, ModelError> {
        match (device, &kernels) {
            (DeviceSpec::Cpu, _) => {
                let mut pool = WorkerPool::spawn(net, threads, move |net, w| {
                    Ok(Worker::Cpu(
                        net.evaluator(DeviceSpec::Cpu, seed.wrapping_add(w as u64))?,
                    ))
                })?;
                pool.chunking = Chunking::for_cpu(net);
                Ok(pool)
            }
            (DeviceSpec::Cuda(ordinal), GpuKernels::Device) => {
                let meter = Meter::new();
                let counted = Arc::clone(&meter);
                let mut pool = WorkerPool::spawn(net, 1, move |net, _| {
                    let cuda = Metered::new(Cuda::open(ordinal)?, Arc::clone(&counted));
                    Ok(Worker::Gpu {
                        engine: GpuEngine::Cuda(Box::new(GpuTasks::new(cuda, net)?)),
                        cpu: net.evaluator(DeviceSpec::Cpu, seed)?,
                    })
                })?;
                pool.meter = Some(meter);
                Ok(pool)
            }
            (DeviceSpec::Cuda(_), GpuKernels::Host | GpuKernels::HostMetered(_)) => {
                let meter = match &kernels {
                    GpuKernels::HostMetered(m) => Arc::clone(m),
                    _ => Meter::new(),
                };
                let counted = Arc::clone(&meter);
                let mut pool = WorkerPool::spawn(net, 1, move |net, _| {
                    let host = Metered::new(Host, Arc::clone(&counted));
                    Ok(Worker::Gpu {
                        engine: GpuEngine::Host(Box::new(GpuTasks::new(host, net)?)),
                        cpu: net.evaluator(DeviceSpec::Cpu, seed)?,
                    })
                })?;
                pool.meter = Some(meter);
                Ok(pool)
            }
        }
    }

    /// `threads` worker threads, worker `w` owning what `make(net, w)` builds in its thread.
    fn spawn(
        net: &Network,
        threads: usize,
        make: impl Fn(&Network, usize) -> Result<Worker, ModelError> + Send + Sync + 'static,
    ) -> Result<WorkerPool, ModelError> {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let (ready_tx, ready_rx) = channel::<Result<(), ModelError>>();
        let make = Arc::new(make);
        let mut handles = vec![];
        for w in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let net = net.clone();
            let ready = ready_tx.clone();
            let make = Arc::clone(&make);
            let handle = std::thread::Builder::new()
                .name(format!("metalab-worker-{w}"))
                .spawn(move || {
                    let mut worker = match make(&net, w) {
                        Ok(e) => {
                            let _ = ready.send(Ok(()));
                            e
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    drop(ready);
                    loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut worker),
                            Err(_) => return,
                        }
                    }
                })
                .expect("spawn worker thread");
            handles.push(handle);
        }
        drop(ready_tx);
        let mut pool = WorkerPool {
            jobs: Some(tx),
            handles,
            chunking: Chunking::PerWorker,
            meter: None,
        };
        for r in ready_rx.iter() {
            if let Err(e) = r {
                pool.shutdown();
                return Err(e);
            }
        }
        Ok(pool)
    }

    /// Apply `f` to every item on the workers; results in item order. A panic inside `f` is
    /// returned as an error message instead of taking the arm down with it.
    pub fn map<T, R, F>(&self, items: Vec<T>, f: F) -> Result<Vec<R>, PoolError>
    where
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(&mut dyn Evaluator, T) -> R + Send + Sync + 'static,
    {
        self.run(items, move |w, item| f(w.evaluator(), item))
    }

    fn run<T, R, F>(&self, items: Vec<T>, f: F) -> Result<Vec<R>, PoolError>
    where
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(&mut Worker, T) -> R + Send + Sync + 'static,
    {
        let n = items.len();
        let f = Arc::new(f);
        let (res_tx, res_rx): (Sender<Answer<R>>, Receiver<Answer<R>>) = channel();
        let jobs = self.jobs.as_ref().ok_or(PoolError::Exited)?;
        for (i, item) in items.into_iter().enumerate() {
            let f = Arc::clone(&f);
            let res_tx = res_tx.clone();
            let job: Job = Box::new(move |w: &mut Worker| {
                let r = catch_unwind(AssertUnwindSafe(|| f(w, item))).map_err(panic_message);
                let _ = res_tx.send((i, r));
            });
            jobs.send(job).map_err(|_| PoolError::Exited)?;
        }
        drop(res_tx);
        let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
        for _ in 0..n {
            let (i, r) = res_rx.recv().map_err(|_| PoolError::Exited)?;
            out[i] = Some(r?);
        }
        Ok(out
            .into_iter()
            .map(|r| r.expect("every item answered"))
            .collect())
    }

    /// The items cut into chunks (one contiguous chunk per worker, or one item each for tasks
    /// with a large working set: see [`Chunking`]), each chunk given whole to `work` on
    /// its worker's lock-step backend ([`SerialTasks`] on a CPU worker, the GPU engine's
    /// [`GpuTasks`]); results in item order. How the items fall on the workers changes
    /// nothing, since a backend's jobs are independent (see `model::lockstep`).
    pub fn lockstep<W: LockStepWork>(
        &self,
        items: Vec<W::Item>,
        work: W,
    ) -> Result<Vec<W::Out>, PoolError> {
        let per_worker = match self.chunking {
            Chunking::PerWorker => items.len().div_ceil(self.workers()).max(1),
            Chunking::PerTask => 1,
        };
        let mut chunks = vec![];
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            chunks.push(items.by_ref().take(per_worker).collect::<Vec<_>>());
        }
        let answers = self.run(chunks, move |w, chunk: Vec<W::Item>| {
            let n = chunk.len();
            let out = w.lockstep(&work, chunk);
            assert_eq!(out.len(), n, "one result per item of the chunk");
            out
        })?;
        Ok(answers.into_iter().flatten().collect())
    }

    /// Sets the bytes the GPU engine's buffers may take (`gpu::memory::DEFAULT_BUDGET` unless
    /// set); nothing on CPU workers.
    pub fn set_gpu_budget(&self, bytes: u64) -> Result<(), PoolError> {
        self.run(vec![()], move |w, _| {
            if let Worker::Gpu { engine, .. } = w {
                match engine {
                    GpuEngine::Host(t) => t.set_budget(bytes),
                    GpuEngine::Cuda(t) => t.set_budget(bytes),
                }
            }
        })?;
        Ok(())
    }

    /// The GPU engine's count of its device buffers (live, peak, cap); `None` on the CPU.
    pub fn gpu_meter(&self) -> Option<&Arc<Meter>> {
        self.meter.as_ref()
    }

    /// How many worker threads run the jobs.
    pub fn workers(&self) -> usize {
        self.handles.len().max(1)
    }

    fn shutdown(&mut self) {
        self.jobs = None;
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A panic's payload as the error it carries: the GPU engine's [`GpuError`] (see `gpu::tasks`),
/// or a message.
fn panic_message(p: Box<dyn std::any::Any + Send>) -> PoolError {
    if let Some(e) = p.downcast_ref::<GpuError>() {
        return match e {
            GpuError::OutOfMemory { .. } => PoolError::OutOfMemory(e.to_string()),
            e if e.is_out_of_memory() => PoolError::OutOfMemory(e.to_string()),
            e => PoolError::Gpu(e.to_string()),
        };
    }
    PoolError::Panicked(
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "no message".into()),
    )
}

#[cfg(test)]
mod tests {
    use rand::{Rng as _, SeedableRng};

    use super::*;
    use crate::experiment::{Activation, MlpSpec, ModelSpec};
    use crate::model::{StepJob, StepOut};
    use crate::tasks::Batch;
    use crate::tasks::{FamilyShape, Rng, Targets, TaskKind};

    /// Each item's loss, and its gradient where it asks, through the backend's `step`.
    struct Steps;

    impl LockStepWork for Steps {
        type Item = (Vec<f32>, Batch, bool);
        type Out = StepOut;
        fn run<M: LockStepModel + ?Sized>(
            &self,
            m: &mut M,
            chunk: Vec<Self::Item>,
        ) -> Vec<StepOut> {
            let params: Vec<M::Params> = chunk.iter().map(|(p, ..)| m.load(p.clone())).collect();
            let mut jobs: Vec<StepJob<M::Params>> = chunk
                .iter()
                .zip(&params)
                .map(|((_, b, want), p)| StepJob {
                    grad: *want,
                    ..StepJob::loss(p, b)
                })
                .collect();
            m.step(&mut jobs)
        }
    }

    /// A lock-step call over a pool gives, task by task and bit for bit, what one evaluator
    /// gives alone, however the tasks fall on the workers (1, 2 or 3 of them).
    #[test]
    fn lockstep_matches_one_evaluator_task_by_task() {
        let shape = FamilyShape {
            input: vec![3],
            outputs: 2,
            kind: TaskKind::Regression,
        };
        let spec = ModelSpec::Mlp(MlpSpec {
            hidden: vec![8],
            activation: Activation::Relu,
        });
        let net = Network::new(&spec, &shape).unwrap();
        let mut rng = Rng::seed_from_u64(4);
        let tasks: Vec<(Vec<f32>, Batch, bool)> = (0..7)
            .map(|i| {
                let params = net.init(&mut rng);
                let batch = Batch {
                    n: 5,
                    x: (0..15).map(|_| rng.gen_range(-1.0..1.0)).collect(),
                    y: Targets::Values((0..10).map(|_| rng.gen_range(-1.0..1.0)).collect()),
                };
                (params, batch, i % 3 != 0)
            })
            .collect();
        let mut alone = net.evaluator(DeviceSpec::Cpu, 0).unwrap();
        let expected: Vec<StepOut> = tasks
            .iter()
            .map(|(p, b, want)| {
                let mut grad = want.then(|| vec![0.0; p.len()]);
                let out = alone.evaluate(p, b, grad.as_deref_mut());
                StepOut { out, grad }
            })
            .collect();
        for threads in [1, 2, 3] {
            let pool = WorkerPool::new(&net, DeviceSpec::Cpu, 0, threads).unwrap();
            let got = pool.lockstep(tasks.clone(), Steps).unwrap();
            assert_eq!(got, expected, "{threads} threads");
        }
    }
}
