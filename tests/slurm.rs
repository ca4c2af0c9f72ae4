//! A real single-node Slurm: this test starts munged, slurmctld and slurmd on a private
//! configuration in a temporary folder (own munge socket and key, own ports), submits a
//! 4-variant sweep of a tiny sinusoid experiment with `metalab sweep --slurm`, waits for the
//! array job, and checks that the four variants' run directories are complete and aggregate
//! over their seeds. It stops exactly the daemons it started, on failure too.
//!
//! It installs nothing: `.ci/run` installs `slurm-wlm` where apt-get can. Without the programs,
//! or without root (the configuration runs slurmd as root, as ../shared/notes/slurm.md found
//! works in these containers), it prints why it is skipped and passes. Where the daemons are
//! installed but do not start, it skips too, unless METALAB_REQUIRE_SLURM=1 makes that a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use metalab::runs::{self, RunStatus};
use metalab::sweep::{self, aggregate};

const TINY: &str = r#"Experiment(
    name: "tiny-slurm",
    family: Sinusoid(shots: 5, queries: 5),
    model: Mlp(hidden: [16]),
    arms: [
        Arm(name: "fomaml", algorithm: Fomaml),
        Arm(name: "reptile", algorithm: Reptile(), inner_steps: 2),
    ],
    train: Train(iterations: 200, meta_batch: 4, log_every: 10),
    eval: Eval(every: 50, tasks: 20, periodic_tasks: 5, tracked_tasks: 2),
)
"#;

const SWEEP: &str = r#"Sweep(
    name: "slurm-test",
    experiment: "tiny.ron",
    axes: [Axis(path: "seed", values: [1, 2, 3, 4])],
)
"#;

/// The daemons this test started, stopped (by pid, in reverse order) when dropped.
struct Daemons {
    dir: PathBuf,
    conf: PathBuf,
    started: Vec<(&'static str, Child)>,
    job: Option<String>,
}

impl Drop for Daemons {
    fn drop(&mut self) {
        if let Some(job) = &self.job {
            // Leave no tasks behind if the test failed half-way.
            let _ = Command::new("scancel")
                .arg(job)
                .env("SLURM_CONF", &self.conf)
                .status();
        }
        for (name, child) in self.started.iter_mut().rev() {
            // SAFETY: signalling a child we spawned and have not reaped.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Ok(None) = child.try_wait() {
                eprintln!("slurm test: {name} did not stop on SIGTERM; killing it");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Daemons {
    fn log_tails(&self) -> String {
        let mut out = String::new();
        for f in [
            "munged.out",
            "slurmctld.out",
            "slurmd.out",
            "ctld.log",
            "d.log",
        ] {
            let t = std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
            let tail: Vec<&str> = t.lines().rev().take(15).collect();
            out += &format!(
                "--- {f}\n{}\n",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        out
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }
}

fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(program).is_file())
}

fn program(name: &str) -> PathBuf {
    for d in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let p = Path::new(d).join(name);
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from(name)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Result<(), String> {
    let start = Instant::now();
    while !ok() {
        if start.elapsed() > limit {
            return Err(format!(
                "timed out after {}s waiting for {what}",
                limit.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Skip (pass with a reason) or, with METALAB_REQUIRE_SLURM=1, fail.
fn skip(reason: &str) {
    if std::env::var("METALAB_REQUIRE_SLURM").is_ok_and(|v| v == "1") {
        panic!("METALAB_REQUIRE_SLURM=1 but: {reason}");
    }
    println!("skipped: {reason}");
    eprintln!("slurm test skipped: {reason}");
}

fn start(dir: &Path) -> Result<Daemons, String> {
    let munge = dir.join("munge");
    for d in [&munge, &dir.join("state"), &dir.join("spool")] {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    let key = munge.join("munge.key");
    let socket = munge.join("munge.sock");
    let st = Command::new(program("mungekey"))
        .arg("-c")
        .arg("-k")
        .arg(&key)
        .output()
        .map_err(|e| format!("mungekey: {e}"))?;
    if !st.status.success() {
        return Err(format!("mungekey -c failed: {}", text(&st)));
    }
    let host = runs::local_host()
        .split('.')
        .next()
        .unwrap_or("localhost")
        .to_string();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let conf = dir.join("slurm.conf");
    let d = dir.display();
    let text = format!(
        "ClusterName=metalabtest\nSlurmctldHost={host}\nSlurmctldPort={}\nSlurmdPort={}\n\
         SlurmUser=root\nSlurmdUser=root\nAuthType=auth/munge\nCredType=cred/munge\n\
         AuthInfo=socket={}\nStateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
         SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
         SlurmctldLogFile={d}/ctld.log\nSlurmdLogFile={d}/d.log\nProctrackType=proctrack/linuxproc\n\
         TaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\nSchedulerType=sched/builtin\n\
         SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\nReturnToService=2\nMpiDefault=none\n\
         NodeName={host} CPUs={cpus} RealMemory=1024 State=UNKNOWN\n\
         PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
        free_port(),
        free_port(),
        socket.display()
    );
    std::fs::write(&conf, text).map_err(|e| e.to_string())?;
    let mut daemons = Daemons {
        dir: dir.to_path_buf(),
        conf: conf.clone(),
        started: vec![],
        job: None,
    };
    let spawn = |name: &'static str,
                 args: Vec<String>,
                 out: &str|
     -> Result<(&'static str, Child), String> {
        let log = std::fs::File::create(dir.join(out)).map_err(|e| e.to_string())?;
        let child = Command::new(program(name))
            .args(args)
            .env("SLURM_CONF", &conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{name}: {e}"))?;
        Ok((name, child))
    };
    let m = munge.display();
    daemons.started.push(spawn(
        "munged",
        vec![
            "-F".into(),
            "--force".into(),
            format!("--socket={m}/munge.sock"),
            format!("--key-file={m}/munge.key"),
            format!("--pid-file={m}/munged.pid"),
            format!("--log-file={m}/munged.log"),
            format!("--seed-file={m}/munged.seed"),
        ],
        "munged.out",
    )?);
    wait_until("munged's socket", Duration::from_secs(15), || {
        socket.exists()
    })
    .map_err(|e| format!("munged did not start: {e}\n{}", daemons.log_tails()))?;
    let f = conf.display().to_string();
    daemons.started.push(spawn(
        "slurmctld",
        vec!["-D".into(), "-f".into(), f.clone()],
        "slurmctld.out",
    )?);
    daemons.started.push(spawn(
        "slurmd",
        vec!["-D".into(), "-f".into(), f],
        "slurmd.out",
    )?);
    let sinfo = || {
        daemons
            .cmd("sinfo")
            .args(["--noheader", "--format=%T"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    wait_until(
        "the node to be idle in sinfo",
        Duration::from_secs(60),
        || sinfo() == "idle",
    )
    .map_err(|e| {
        format!(
            "slurm did not come up: {e} (sinfo says {:?})\n{}",
            sinfo(),
            daemons.log_tails()
        )
    })?;
    Ok(daemons)
}

#[test]
fn a_sweep_runs_as_a_slurm_array_job_on_a_real_single_node_cluster() {
    if !cfg!(target_os = "linux") {
        return skip("the single-node Slurm setup is for Linux");
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip("needs root: this private one-node cluster runs slurmd as root (see ../shared/notes/slurm.md)");
    }
    let missing: Vec<&str> = [
        "munged",
        "mungekey",
        "slurmctld",
        "slurmd",
        "sbatch",
        "squeue",
        "sinfo",
        "scontrol",
    ]
    .into_iter()
    .filter(|p| !have(p))
    .collect();
    if !missing.is_empty() {
        return skip(&format!(
            "Slurm is not installed ({} missing); `apt-get install slurm-wlm` installs it, as .ci/run does where it can",
            missing.join(", ")
        ));
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut daemons = match start(&tmp.path().join("slurm")) {
        Ok(d) => d,
        Err(e) => return skip(&format!("the Slurm daemons could not be started here: {e}")),
    };

    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("tiny.ron"), TINY).unwrap();
    std::fs::write(project.join("s.sweep.ron"), SWEEP).unwrap();
    let runs_root = project.join("shared-runs");
    let metalab = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_metalab"))
            .args(args)
            .current_dir(&project)
            .env("SLURM_CONF", &daemons.conf)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let runs_arg = runs_root.display().to_string();
    let out = metalab(&[
        "sweep",
        "s.sweep.ron",
        "--slurm",
        "--cpus-per-task",
        "1",
        "--time",
        "00:10:00",
        "--runs",
        &runs_arg,
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out),
        daemons.log_tails()
    );
    let job = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .to_string();
    assert!(
        job.chars().all(|c| c.is_ascii_digit()) && !job.is_empty(),
        "no job id in:\n{}",
        text(&out)
    );
    daemons.job = Some(job.clone());
    println!("submitted array job {job}");

    let squeue = || {
        daemons
            .cmd("squeue")
            .args(["--noheader", "--jobs", &job])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let waited = Instant::now();
    wait_until(
        "the array job to leave the queue",
        Duration::from_secs(600),
        || squeue().is_empty(),
    )
    .unwrap_or_else(|e| panic!("{e}\nsqueue: {}\n{}", squeue(), daemons.log_tails()));
    println!(
        "array job {job} done after {:.0}s",
        waited.elapsed().as_secs_f64()
    );

    // Four variants, each arm exactly one complete run directory.
    let s = sweep::load(&project.join("s.sweep.ron")).unwrap();
    assert_eq!(s.variants.len(), 4);
    let logs = runs_root.join("sweeps/slurm-test/slurm");
    for v in &s.variants {
        let found = sweep::variant_runs(&runs_root, &v.name);
        let task_log = std::fs::read_to_string(logs.join(format!("{job}_{}.out", v.index)))
            .unwrap_or_default();
        assert_eq!(
            found.len(),
            2,
            "{}: {found:?}\ntask log:\n{task_log}",
            v.name
        );
        for (dir, meta) in &found {
            assert_eq!(
                meta.status,
                RunStatus::Finished,
                "{}\n{task_log}",
                dir.display()
            );
            assert_eq!(meta.iteration, 200);
            assert_eq!(meta.seed, v.experiment.seed);
            assert!(meta.final_eval.is_some());
            for f in [runs::CONFIG, runs::META, runs::METRICS, runs::CHECKPOINT] {
                assert!(dir.join(f).is_file(), "{} lacks {f}", dir.display());
            }
            let m = runs::load_metrics(dir).unwrap();
            assert_eq!(m.train.last().map(|p| p.iteration), Some(200));
        }
        assert!(
            task_log.contains(&format!("metalab sweep task {}", v.index)),
            "task log:\n{task_log}"
        );
    }
    // Aggregated: one group per arm, four seeds, the mean of the four runs' own results.
    let groups = aggregate::group(&aggregate::load_finished(&runs_root));
    assert_eq!(groups.len(), 2, "{groups:?}");
    for g in &groups {
        assert_eq!(
            g.seeds.iter().map(|s| s.seed).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        let mean = g.seeds.iter().map(|s| s.value).sum::<f64>() / 4.0;
        assert!((g.summary.mean - mean).abs() < 1e-12);
        assert!(g.summary.ci95.is_finite() && g.summary.ci95 > 0.0);
    }
    let out = metalab(&["sweep", "s.sweep.ron", "--status", "--runs", &runs_arg]);
    assert!(out.status.success(), "{}", text(&out));
    let status = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(status.contains("4 finished"), "{status}");
    assert!(status.contains(&format!("slurm job {job}")), "{status}");
    println!("{status}");
    // Resubmitting a finished sweep submits nothing.
    let out = metalab(&["sweep", "s.sweep.ron", "--slurm", "--runs", &runs_arg]);
    assert!(text(&out).contains("nothing to submit"), "{}", text(&out));

    // Requeue (what preemption does): Slurm sends the running task SIGTERM, metalab
    // checkpoints and stops, the task runs again and resumes the same run directories, and the
    // result equals an uninterrupted local run of the same variant.
    let slow = TINY.replace("hidden: [16]", "hidden: [40, 40]").replace(
        "iterations: 200, meta_batch: 4",
        "iterations: 3000, meta_batch: 10",
    );
    std::fs::write(project.join("slow.ron"), slow).unwrap();
    std::fs::write(
        project.join("requeue.sweep.ron"),
        SWEEP
            .replace("slurm-test", "slurm-requeue")
            .replace("tiny.ron", "slow.ron")
            .replace("[1, 2, 3, 4]", "[7]"),
    )
    .unwrap();
    let out = metalab(&[
        "sweep",
        "requeue.sweep.ron",
        "--slurm",
        "--cpus-per-task",
        "2",
        "--runs",
        &runs_arg,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let job = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .to_string();
    daemons.job = Some(job.clone());
    let r = sweep::load(&project.join("requeue.sweep.ron")).unwrap();
    let name = r.variants[0].name.clone();
    let progress = || {
        sweep::variant_runs(&runs_root, &name)
            .iter()
            .map(|(_, m)| m.iteration)
            .min()
            .unwrap_or(0)
    };
    wait_until(
        "a first checkpoint of both arms",
        Duration::from_secs(300),
        || progress() >= 50,
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}
{}",
            daemons.log_tails()
        )
    });
    let st = daemons
        .cmd("scontrol")
        .args(["requeue", &format!("{job}_0")])
        .output()
        .unwrap();
    assert!(st.status.success(), "scontrol requeue: {}", text(&st));
    let before = progress();
    println!("requeued task {job}_0 at iteration {before}");
    let squeue = || {
        daemons
            .cmd("squeue")
            .args(["--noheader", "--jobs", &job])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    // Slurm holds a requeued job back (its begin time moves ~2 minutes ahead); a real
    // preemption would wait too. Here, let it start as soon as it is pending again.
    let state = || {
        daemons
            .cmd("squeue")
            .args(["--noheader", "--format=%T", "--jobs", &job])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    if wait_until(
        "the task to be pending again",
        Duration::from_secs(60),
        || state() == "PENDING",
    )
    .is_ok()
    {
        let _ = daemons
            .cmd("scontrol")
            .args(["update", &format!("JobId={job}_0"), "StartTime=now"])
            .output();
    }
    wait_until(
        "the requeued task to finish",
        Duration::from_secs(600),
        || squeue().is_empty(),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}
squeue: {}
{}",
            squeue(),
            daemons.log_tails()
        )
    });
    let task_log =
        std::fs::read_to_string(runs_root.join(format!("sweeps/slurm-requeue/slurm/{job}_0.out")))
            .unwrap_or_default();
    println!("task log:\n{task_log}");
    let found = sweep::variant_runs(&runs_root, &name);
    assert_eq!(found.len(), 2, "{found:?}\n{task_log}");
    assert!(
        task_log.contains("restart 1"),
        "the task did not run twice:\n{task_log}"
    );
    assert!(
        task_log.contains("resuming"),
        "the second attempt did not resume:\n{task_log}"
    );
    // The same variant, uninterrupted, on this machine without Slurm.
    let out = metalab(&[
        "sweep",
        "requeue.sweep.ron",
        "--task",
        "0",
        "--runs",
        "local-ref",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    for (dir, meta) in &found {
        assert_eq!(meta.status, RunStatus::Finished);
        let (ref_dir, _) = sweep::variant_runs(&project.join("local-ref"), &name)
            .into_iter()
            .find(|(_, m)| m.arm == meta.arm)
            .unwrap();
        assert_eq!(
            runs::deterministic_metrics(dir).unwrap(),
            runs::deterministic_metrics(&ref_dir).unwrap(),
            "{}: requeued run differs from the uninterrupted one",
            meta.arm
        );
    }
    daemons.job = None;
}
