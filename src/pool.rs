//! Long-lived workers, each owning one device and one evaluator.
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

use crate::experiment::DeviceSpec;
use crate::model::{Evaluator, ModelError, Network, SerialTasks};

type Job = Box<dyn FnOnce(&mut dyn Evaluator) + Send>;
type Answer<R> = (usize, Result<R, PoolError>);

/// Why per-task work did not come back.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PoolError {
    /// The work itself panicked (a bug, or a shape the model did not expect); the message is
    /// the panic's.
    #[error("a worker panicked: {0}")]
    Panicked(String),
    #[error("the worker threads have exited")]
    Exited,
}

pub struct WorkerPool {
    jobs: Option<Sender<Job>>,
    handles: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    /// Start `threads` workers; each builds its own evaluator (and device) in its own thread.
    pub fn new(
        net: &Network,
        device: DeviceSpec,
        seed: u64,
        threads: usize,
    ) -> Result<WorkerPool, ModelError> {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let (ready_tx, ready_rx) = channel::<Result<(), ModelError>>();
        let mut handles = vec![];
        for w in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let net = net.clone();
            let ready = ready_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("metalab-worker-{w}"))
                .spawn(move || {
                    let mut eval = match net.evaluator(device, seed.wrapping_add(w as u64)) {
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
                            Ok(job) => job(eval.as_mut()),
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
        let n = items.len();
        let f = Arc::new(f);
        let (res_tx, res_rx): (Sender<Answer<R>>, Receiver<Answer<R>>) = channel();
        let jobs = self.jobs.as_ref().ok_or(PoolError::Exited)?;
        for (i, item) in items.into_iter().enumerate() {
            let f = Arc::clone(&f);
            let res_tx = res_tx.clone();
            let job: Job = Box::new(move |ev: &mut dyn Evaluator| {
                let r = catch_unwind(AssertUnwindSafe(|| f(ev, item))).map_err(panic_message);
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

    /// The items cut into one contiguous chunk per worker, each chunk given whole to `f` with
    /// its worker's evaluator as a lock-step backend ([`SerialTasks`]); results in item order.
    /// `f` returns one result per item of its chunk. How the items fall on the workers changes
    /// nothing, since a backend's jobs are independent (see `model::lockstep`).
    pub fn lockstep<T, R, F>(&self, items: Vec<T>, f: F) -> Result<Vec<R>, PoolError>
    where
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(&mut SerialTasks, Vec<T>) -> Vec<R> + Send + Sync + 'static,
    {
        let per_worker = items.len().div_ceil(self.workers()).max(1);
        let mut chunks = vec![];
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            chunks.push(items.by_ref().take(per_worker).collect::<Vec<_>>());
        }
        let answers = self.map(chunks, move |ev, chunk: Vec<T>| {
            let n = chunk.len();
            let out = f(&mut SerialTasks::new(ev), chunk);
            assert_eq!(out.len(), n, "one result per item of the chunk");
            out
        })?;
        Ok(answers.into_iter().flatten().collect())
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

fn panic_message(p: Box<dyn std::any::Any + Send>) -> PoolError {
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
    use crate::model::{LockStepModel, StepJob, StepOut};
    use crate::tasks::Batch;
    use crate::tasks::{FamilyShape, Rng, Targets, TaskKind};

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
            let got = pool
                .lockstep(tasks.clone(), |m, chunk| {
                    let mut jobs: Vec<StepJob<Vec<f32>>> = chunk
                        .iter()
                        .map(|(p, b, want)| StepJob {
                            grad: *want,
                            ..StepJob::loss(p, b)
                        })
                        .collect();
                    m.step(&mut jobs)
                })
                .unwrap();
            assert_eq!(got, expected, "{threads} threads");
        }
    }
}
