//! Results over seeds: runs that share everything but the seed form a group, reported as the
//! mean of the seeds' test results with a 95% t-interval across seeds, next to each seed's own.
//!
//! Groups are found from the runs' frozen configs, not from sweep bookkeeping, so runs made by
//! hand, by a sweep, or copied in from other machines all group the same way.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::experiment::Experiment;
use crate::runs::{self, RunMeta, RunStatus};
use crate::stats::MeanCi;

/// One seed's final test result.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedResult {
    pub seed: u64,
    /// Mean over the test tasks (MSE, or accuracy in [0, 1]).
    pub value: f64,
    /// That run's own CI over test tasks.
    pub ci95: f64,
    pub run_id: String,
    pub host: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub experiment: String,
    pub arm: String,
    /// The config fields that set this group apart from others of the same experiment and arm.
    pub differs: String,
    pub classification: bool,
    /// Seeds in ascending order, one result each.
    pub seeds: Vec<SeedResult>,
    /// Over seeds, with Student's t.
    pub summary: MeanCi,
    /// Every run of the group, also those a newer run of the same seed supersedes.
    pub members: Vec<String>,
}

impl Group {
    pub fn metric(&self) -> &'static str {
        if self.classification {
            "test accuracy"
        } else {
            "test MSE"
        }
    }
}

/// A finished run with its frozen config.
pub struct LoadedRun {
    pub meta: RunMeta,
    pub config: Experiment,
}

/// Every finished run under `root` with a final result (unreadable ones are skipped).
pub fn load_finished(root: &Path) -> Vec<LoadedRun> {
    runs::list_runs(root)
        .into_iter()
        .filter(|r| r.status == RunStatus::Finished)
        .filter_map(|r| {
            let meta = runs::load_meta(&r.dir).ok()?;
            meta.final_eval.as_ref()?;
            let config = runs::load_config(&r.dir).ok()?;
            Some(LoadedRun { meta, config })
        })
        .collect()
}

/// What must be equal for two runs to be seeds of one configuration.
pub fn key_config(e: &Experiment) -> Value {
    let mut e = e.clone();
    e.seed = 0;
    e.threads = 0;
    e.description.clear();
    serde_json::to_value(&e).expect("experiment serializes")
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, x, out);
            }
        }
        Value::Array(a) if a.iter().all(Value::is_object) && !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// (experiment, arm, config without seed as JSON text).
type GroupKey = (String, String, String);

pub fn group(runs: &[LoadedRun]) -> Vec<Group> {
    // (experiment, arm, config) → seed → newest run: a rerun of one seed is not a second seed.
    let mut by_key: BTreeMap<GroupKey, (Value, BTreeMap<u64, &LoadedRun>)> = BTreeMap::new();
    let mut members: BTreeMap<GroupKey, Vec<String>> = BTreeMap::new();
    for r in runs {
        let cfg = key_config(&r.config);
        let k = (
            r.meta.experiment.clone(),
            r.meta.arm.clone(),
            cfg.to_string(),
        );
        members
            .entry(k.clone())
            .or_default()
            .push(r.meta.id.clone());
        let entry = by_key.entry(k).or_insert_with(|| (cfg, BTreeMap::new()));
        let slot = entry.1.entry(r.meta.seed).or_insert(r);
        // Newest wins; a tie (two runs started in the same second) goes to the larger id, so
        // the choice does not depend on the order the folder is read in.
        if (r.meta.started_unix, &r.meta.id) > (slot.meta.started_unix, &slot.meta.id) {
            *slot = r;
        }
    }
    // Per experiment/arm, the flattened fields whose values differ between its groups.
    let mut flat: BTreeMap<(String, String), Vec<BTreeMap<String, String>>> = BTreeMap::new();
    for ((e, a, _), (cfg, _)) in &by_key {
        let mut f = BTreeMap::new();
        flatten("", cfg, &mut f);
        flat.entry((e.clone(), a.clone())).or_default().push(f);
    }
    let mut out = vec![];
    for (key, (cfg, seeds)) in &by_key {
        let (e, a, _) = key;
        let mut mine = BTreeMap::new();
        flatten("", cfg, &mut mine);
        let siblings = &flat[&(e.clone(), a.clone())];
        let differs: Vec<String> = mine
            .iter()
            .filter(|(k, v)| siblings.iter().any(|s| s.get(*k) != Some(*v)))
            .map(|(k, v)| format!("{}={}", short_path(k), v.trim_matches('"')))
            .collect();
        let results: Vec<SeedResult> = seeds
            .values()
            .filter_map(|r| {
                let fe = r.meta.final_eval.as_ref()?;
                let m = fe.accuracy.unwrap_or(fe.loss);
                Some(SeedResult {
                    seed: r.meta.seed,
                    value: m.mean,
                    ci95: m.ci95,
                    run_id: r.meta.id.clone(),
                    host: r.meta.host.clone(),
                })
            })
            .collect();
        let classification = seeds.values().any(|r| {
            r.meta
                .final_eval
                .as_ref()
                .is_some_and(|f| f.accuracy.is_some())
        });
        let values: Vec<f64> = results.iter().map(|s| s.value).collect();
        out.push(Group {
            experiment: e.clone(),
            arm: a.clone(),
            differs: differs.join(" "),
            classification,
            summary: MeanCi::of_t(&values),
            seeds: results,
            members: members.get(key).cloned().unwrap_or_default(),
        });
    }
    out
}

/// `arms[0].algorithm.Reptile.epsilon` → `arms[0].algorithm.epsilon`: the variant wrapper is noise.
fn short_path(p: &str) -> String {
    p.split('.')
        .filter(|s| !s.starts_with(|c: char| c.is_ascii_uppercase()))
        .collect::<Vec<_>>()
        .join(".")
}

fn fmt_value(v: f64, classification: bool) -> String {
    if classification {
        format!("{:.1}%", 100.0 * v)
    } else {
        format!("{v:.3}")
    }
}

fn fmt_ci(m: &MeanCi, classification: bool) -> String {
    if m.ci95.is_nan() {
        format!("{} (one seed: no CI)", fmt_value(m.mean, classification))
    } else if classification {
        format!("{:.1}% ± {:.1}", 100.0 * m.mean, 100.0 * m.ci95)
    } else {
        format!("{:.3} ± {:.3}", m.mean, m.ci95)
    }
}

/// The results table: one row per group, with the seed count and every seed's own result.
pub fn table(groups: &[Group]) -> String {
    if groups.is_empty() {
        return "no finished runs to aggregate\n".into();
    }
    let label = |g: &Group| {
        let mut l = format!("{}/{}", g.experiment, g.arm);
        if !g.differs.is_empty() {
            l += &format!(" [{}]", g.differs);
        }
        // Names come from run.json files, which may have been copied in from anywhere: one
        // row per group, whatever they hold.
        crate::runs::printable(&l).replace('\n', "?")
    };
    let w = groups
        .iter()
        .map(|g| label(g).len())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<w$}  {:>5}  {:<28}  PER SEED (seed: mean over test tasks)",
        "GROUP", "SEEDS", "MEAN ± 95% CI OVER SEEDS (t)"
    );
    for g in groups {
        let per: Vec<String> = g
            .seeds
            .iter()
            .map(|s| format!("{}: {}", s.seed, fmt_value(s.value, g.classification)))
            .collect();
        let _ = writeln!(
            out,
            "{:<w$}  {:>5}  {:<28}  {}",
            label(g),
            g.seeds.len(),
            format!(
                "{} {}",
                g.metric().trim_start_matches("test "),
                fmt_ci(&g.summary, g.classification)
            ),
            per.join("  ")
        );
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Long format: one `mean` row per group (CI across seeds, t), then one `seed` row per seed
/// (its CI across test tasks).
pub fn to_csv(groups: &[Group]) -> String {
    let mut out = String::from("experiment,arm,differs,metric,row,seed,value,ci95,n,run\n");
    for g in groups {
        let head = format!(
            "{},{},{},{}",
            csv_field(&g.experiment),
            csv_field(&g.arm),
            csv_field(&g.differs),
            g.metric().replace(' ', "_")
        );
        let _ = writeln!(
            out,
            "{head},mean,,{},{},{},",
            g.summary.mean, g.summary.ci95, g.summary.n
        );
        for s in &g.seeds {
            let _ = writeln!(
                out,
                "{head},seed,{},{},{},1,{}",
                s.seed,
                s.value,
                s.ci95,
                csv_field(&s.run_id)
            );
        }
    }
    out
}
