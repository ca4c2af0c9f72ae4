//! Expansion: a sweep file becomes a list of fully specified, validated experiments.
//!
//! Overrides are applied to the parsed base experiment through a `serde_json::Value` round trip,
//! so any field the schema has can be an axis and the schema's own deserializer judges the
//! value's type; the experiment's own validation then judges each variant as a whole.

use std::path::{Path, PathBuf};

use rand::{Rng as _, SeedableRng};
use serde_json::Value;

use super::spec::{axis_position, parse_spec, Axis, Sample, SweepError, SweepIssue, SweepSpec};
use crate::experiment::{self, Experiment};

/// One point of the sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Position in the expansion (the Slurm array index).
    pub index: usize,
    /// `<sweep>-<index>-<hash>`: stable across invocations and machines. The hash is of the
    /// resolved experiment, so editing the base or an axis never matches old runs to a new config.
    pub name: String,
    /// (path, value) for every axis, in axis order.
    pub overrides: Vec<(String, Value)>,
    pub experiment: Experiment,
}

impl Variant {
    /// `seed=2 train.meta_lr=0.003`.
    pub fn label(&self) -> String {
        describe(&self.overrides)
    }

    /// The overrides except the seed: what the variant's seed group shares.
    pub fn group_label(&self) -> String {
        let rest: Vec<_> = self
            .overrides
            .iter()
            .filter(|(p, _)| p != "seed")
            .cloned()
            .collect();
        describe(&rest)
    }
}

pub fn describe(overrides: &[(String, Value)]) -> String {
    overrides
        .iter()
        .map(|(p, v)| match v {
            Value::String(s) => format!("{p}={s}"),
            v => format!("{p}={v}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone)]
pub struct Sweep {
    pub spec: SweepSpec,
    /// The sweep file, absolute.
    pub path: PathBuf,
    /// The base experiment file, absolute.
    pub base_path: PathBuf,
    pub variants: Vec<Variant>,
}

impl Sweep {
    /// Where the sweep keeps its bookkeeping (variant configs, Slurm script and logs) inside
    /// a runs folder; it holds no `run.json`, so run listings pass over it.
    pub fn folder(&self, runs_root: &Path) -> PathBuf {
        runs_root.join("sweeps").join(&self.spec.name)
    }
}

pub fn load(path: &Path) -> Result<Sweep, SweepError> {
    // The experiment files' reader: opened once, regular files only, size capped.
    let text = experiment::read_text(path).map_err(|e| match e {
        experiment::ExperimentError::Io { path, source } => SweepError::Io { path, source },
        experiment::ExperimentError::Syntax {
            path,
            line,
            col,
            message,
            hint,
        } => SweepError::Syntax {
            path,
            line,
            col,
            message,
            hint,
        },
        // read_text only reads and decodes: it reports no other kind.
        other => SweepError::Base {
            path: path.to_path_buf(),
            source: other,
        },
    })?;
    expand_str(&text, path)
}

/// Parse, expand and validate a sweep; `path` locates the base experiment and names the file.
pub fn expand_str(text: &str, path: &Path) -> Result<Sweep, SweepError> {
    let spec = parse_spec(text, path)?;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let base_path = abs
        .parent()
        .unwrap_or(Path::new("."))
        .join(&spec.experiment);
    let mut issues = vec![];
    let at = |name: &str| experiment::field_position(text, name);
    if !is_safe(&spec.name) {
        issues.push(SweepIssue {
            position: at("name"),
            message: format!(
                "sweep name {:?} cannot be used in run and folder names",
                spec.name
            ),
            fix: "use letters, digits, '-' and '_' only".into(),
        });
    }
    if !base_path.is_file() {
        return Err(invalid(
            path,
            vec![SweepIssue {
                position: at("experiment"),
                message: format!("no base experiment at {}", base_path.display()),
                fix: "give the experiment file's path relative to the sweep file, e.g. experiment: \"sinusoid-compare.ron\"".into(),
            }],
        ));
    }
    let base = experiment::load_file(&base_path).map_err(|source| SweepError::Base {
        path: path.to_path_buf(),
        source,
    })?;
    let base_json = serde_json::to_value(&base).expect("experiment serializes");
    // Axis problems do not stop the expansion: the values' problems are reported with them.
    issues.extend(check_axes(&spec, text, &base_json));
    let points = match &spec.sample {
        Sample::Grid => grid(&spec.axes),
        Sample::Random { count, seed } => random(&spec.axes, *count, *seed),
    };
    let mut variants = vec![];
    for (index, overrides) in points.into_iter().enumerate() {
        match build(&base_json, &overrides, &spec.axes, text) {
            Ok(exp) => variants.push(Variant {
                index,
                name: format!("{}-{index:03}-{}", spec.name, short_hash(&exp)),
                overrides,
                experiment: exp,
            }),
            Err(mut found) => {
                for i in &mut found {
                    i.message =
                        format!("variant {index} ({}): {}", describe(&overrides), i.message);
                }
                issues.extend(found);
            }
        }
    }
    if variants.is_empty() && issues.is_empty() {
        issues.push(SweepIssue {
            position: at("axes"),
            message: "the sweep expands to no variants".into(),
            fix: "give every axis at least one value (and Random a count of 1 or more)".into(),
        });
    }
    if !issues.is_empty() {
        // One line per distinct problem, not one per variant that shares it.
        let mut seen = std::collections::BTreeSet::new();
        issues.retain(|i| seen.insert((i.position, strip_variant(&i.message))));
        return Err(invalid(path, issues));
    }
    Ok(Sweep {
        spec,
        path: abs,
        base_path,
        variants,
    })
}

fn strip_variant(m: &str) -> String {
    m.split_once("): ").map_or(m, |(_, r)| r).to_string()
}

fn invalid(path: &Path, issues: Vec<SweepIssue>) -> SweepError {
    SweepError::Invalid {
        path: path.to_path_buf(),
        issues,
    }
}

fn is_safe(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 48
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Axis-level problems: a path that leads nowhere, a missing or doubled value source, a range
/// used with a grid.
fn check_axes(spec: &SweepSpec, text: &str, base: &Value) -> Vec<SweepIssue> {
    let mut issues = vec![];
    let mut seen = std::collections::BTreeSet::new();
    for axis in &spec.axes {
        let position = axis_position(text, &axis.path);
        let mut problems = vec![];
        if !seen.insert(axis.path.clone()) {
            problems.push((
                "the path is given twice".to_string(),
                "merge the two axes' values into one".to_string(),
            ));
        }
        problems.extend(value_source_problems(axis, &spec.sample));
        let mut probe = base.clone();
        let leads_somewhere = match set_path(&mut probe, &axis.path, Value::Null) {
            Err((message, fix)) => {
                let prefix = format!("axis `{}`: ", axis.path);
                problems.push((message.trim_start_matches(&prefix).to_string(), fix));
                false
            }
            Ok(_) => true,
        };
        issues.extend(problems.into_iter().map(|(message, fix)| SweepIssue {
            position,
            message: format!("axis `{}`: {message}", axis.path),
            fix,
        }));
        if leads_somewhere {
            issues.extend(value_issues(axis, base, position));
        }
    }
    if let Sample::Random { count: 0, .. } = spec.sample {
        issues.push(SweepIssue {
            position: experiment::field_position(text, "sample"),
            message: "Random(count: 0) draws nothing".into(),
            fix: "use count: 1 or more".into(),
        });
    }
    issues
}

/// What is wrong with where an axis's values come from (a list, or a range to draw from), as
/// (message, fix).
fn value_source_problems(axis: &Axis, sample: &Sample) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut fail = |message: String, fix: &str| out.push((message, fix.to_string()));
    let sources = [
        axis.values.is_some(),
        axis.uniform.is_some(),
        axis.log_uniform.is_some(),
    ];
    match sources.iter().filter(|s| **s).count() {
        1 => {}
        0 => fail("no values".into(), "add values: [..] (or uniform: (lo, hi) / log_uniform: (lo, hi) with sample: Random(..))"),
        _ => fail("more than one of values, uniform, log_uniform".into(), "keep one"),
    }
    if axis.values.as_ref().is_some_and(|v| v.is_empty()) {
        fail("an empty list of values".into(), "give at least one value");
    }
    let range = axis.uniform.or(axis.log_uniform);
    if range.is_some() && *sample == Sample::Grid {
        fail(
            "a range needs random sampling".into(),
            "use sample: Random(count: 8, seed: 1), or list values: [..]",
        );
    }
    if let Some((lo, hi)) = range {
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            fail(
                format!("the range ({lo}, {hi}) is not lo <= hi"),
                "write (lo, hi) with lo <= hi",
            );
        } else if axis.log_uniform.is_some() && lo <= 0.0 {
            fail(
                format!("log_uniform needs a positive range, not ({lo}, {hi})"),
                "use e.g. log_uniform: (1e-4, 1e-2)",
            );
        }
    }
    if axis.path == "seed" && range.is_some() {
        fail(
            "seeds are listed, not drawn".into(),
            "use values: [1, 2, 3, 4, 5]",
        );
    }
    if axis.path == "name" {
        fail(
            "the experiment name cannot vary".into(),
            "runs of a sweep keep the base name; their variant is recorded in run.json",
        );
    }
    out
}

/// Each listed value on its own in the base experiment, so every bad value is named, not only
/// the first variant's first.
fn value_issues(axis: &Axis, base: &Value, position: Option<(usize, usize)>) -> Vec<SweepIssue> {
    let mut issues = vec![];
    for v in axis.values.iter().flatten().map(to_json) {
        let mut probe = base.clone();
        let _ = set_path(&mut probe, &axis.path, v.clone());
        match serde_json::from_value::<Experiment>(probe) {
            Err(e) => issues.push(SweepIssue {
                position,
                message: format!("axis `{}`: the value {v} does not fit: {e}", axis.path),
                fix: FIT_FIX.into(),
            }),
            Ok(exp) => {
                issues.extend(
                    experiment::validate(&exp, "")
                        .into_iter()
                        .map(|e| SweepIssue {
                            position,
                            message: format!("`{}`: {}", e.field, e.message),
                            fix: e.fix,
                        }),
                )
            }
        }
    }
    issues
}

const FIT_FIX: &str =
    "use a value of the field's type (enum variants by name, as strings: \"Tanh\")";

fn grid(axes: &[Axis]) -> Vec<Vec<(String, Value)>> {
    let mut points: Vec<Vec<(String, Value)>> = vec![vec![]];
    for axis in axes {
        let values: Vec<Value> = axis.values.iter().flatten().map(to_json).collect();
        points = points
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push((axis.path.clone(), v.clone()));
                    q
                })
            })
            .collect();
    }
    points
}

/// `count` draws from a ChaCha8 stream seeded by the sweep (fixed across platforms and
/// versions), each crossed with every seed. Drawn floats are rounded to 4 significant digits
/// so names and tables stay readable; the rounded value is the one trained with.
fn random(axes: &[Axis], count: usize, seed: u64) -> Vec<Vec<(String, Value)>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let seeds: Vec<Value> = axes
        .iter()
        .find(|a| a.path == "seed")
        .map(|a| a.values.iter().flatten().map(to_json).collect())
        .unwrap_or_default();
    let mut points = vec![];
    for _ in 0..count {
        let mut point = vec![];
        for axis in axes.iter().filter(|a| a.path != "seed") {
            let v = if let Some(values) = &axis.values {
                to_json(&values[rng.gen_range(0..values.len())])
            } else if let Some((lo, hi)) = axis.uniform {
                round4(lo + (hi - lo) * rng.gen::<f64>())
            } else if let Some((lo, hi)) = axis.log_uniform {
                round4((lo.ln() + (hi.ln() - lo.ln()) * rng.gen::<f64>()).exp())
            } else {
                Value::Null
            };
            point.push((axis.path.clone(), v));
        }
        if seeds.is_empty() {
            points.push(point);
        } else {
            for s in &seeds {
                let mut p = vec![("seed".to_string(), s.clone())];
                p.extend(point.iter().cloned());
                points.push(p);
            }
        }
    }
    points
}

fn round4(x: f64) -> Value {
    let r: f64 = format!("{x:.3e}").parse().unwrap_or(x);
    serde_json::Number::from_f64(r).map_or(Value::Null, Value::Number)
}

/// RON values as JSON: numbers, strings (also enum variants by name), booleans, lists.
fn to_json(v: &ron::Value) -> Value {
    match v {
        ron::Value::Bool(b) => Value::Bool(*b),
        ron::Value::Char(c) => Value::String(c.to_string()),
        ron::Value::String(s) => Value::String(s.clone()),
        ron::Value::Number(ron::Number::Integer(i)) => Value::from(*i),
        ron::Value::Number(ron::Number::Float(f)) => {
            serde_json::Number::from_f64(f.get()).map_or(Value::Null, Value::Number)
        }
        ron::Value::Option(o) => o.as_deref().map_or(Value::Null, to_json),
        ron::Value::Seq(s) => Value::Array(s.iter().map(to_json).collect()),
        ron::Value::Unit => Value::Null,
        ron::Value::Map(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let key = match k {
                        ron::Value::String(s) => s.clone(),
                        other => format!("{other:?}"),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
    }
}

/// Apply the overrides one at a time, so a value the schema refuses is blamed on its own axis,
/// then validate the whole experiment.
fn build(
    base: &Value,
    overrides: &[(String, Value)],
    axes: &[Axis],
    text: &str,
) -> Result<Experiment, Vec<SweepIssue>> {
    let mut json = base.clone();
    for (path, v) in overrides {
        let position = axis_position(text, path);
        set_path(&mut json, path, v.clone()).map_err(|(message, fix)| {
            // Already reported by the axis check, with the same position and words.
            vec![SweepIssue {
                position,
                message,
                fix,
            }]
        })?;
        if let Err(e) = serde_json::from_value::<Experiment>(json.clone()) {
            return Err(vec![SweepIssue {
                position,
                message: format!("axis `{path}`: the value {v} does not fit: {e}"),
                fix: FIT_FIX.into(),
            }]);
        }
    }
    let exp: Experiment = serde_json::from_value(json).expect("checked after every override");
    let errors = experiment::validate(&exp, "");
    if errors.is_empty() {
        return Ok(exp);
    }
    Err(errors
        .into_iter()
        .map(|e| {
            let axis = blame(&e.field, axes);
            SweepIssue {
                position: axis
                    .and_then(|a| axis_position(text, &a.path))
                    .or_else(|| experiment::field_position(text, "experiment")),
                message: format!("`{}`: {}", e.field, e.message),
                fix: e.fix,
            }
        })
        .collect())
}

/// The axis a validation error on `field` (e.g. `arms[2].inner_lr`) most likely comes from.
fn blame<'a>(field: &str, axes: &'a [Axis]) -> Option<&'a Axis> {
    let leaf = |p: &str| p.rsplit('.').next().unwrap_or(p).to_string();
    axes.iter()
        .find(|a| a.path == field)
        .or_else(|| axes.iter().find(|a| leaf(&a.path) == leaf(field)))
}

/// Set the value at a dotted path. Enum variants are looked through (`family.shots` reaches
/// `Sinusoid.shots`), arms are addressed by name (`arms.maml.inner_lr`) or `*` for all.
pub fn set_path(root: &mut Value, path: &str, v: Value) -> Result<(), (String, String)> {
    let segs: Vec<&str> = path.split('.').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err((
            format!("axis `{path}`: an empty path segment"),
            "write paths like train.meta_lr".into(),
        ));
    }
    set_at(root, &segs, &v, path, 0)
}

fn set_at(
    cur: &mut Value,
    segs: &[&str],
    v: &Value,
    path: &str,
    depth: usize,
) -> Result<(), (String, String)> {
    let here = segs[..depth].join(".");
    let seg = segs[depth];
    let last = depth + 1 == segs.len();
    match cur {
        Value::Object(map) => {
            if let Some(next) = map.get_mut(seg) {
                if last {
                    *next = v.clone();
                    return Ok(());
                }
                return set_at(next, segs, v, path, depth + 1);
            }
            // An enum variant with fields serializes as { "Variant": { ... } }: look through it.
            if map.len() == 1 {
                let (k, inner) = map.iter_mut().next().expect("one entry");
                if k.starts_with(|c: char| c.is_ascii_uppercase()) && inner.is_object() {
                    return set_at(inner, segs, v, path, depth);
                }
            }
            let fields: Vec<&str> = map.keys().map(String::as_str).collect();
            Err((
                format!(
                    "axis `{path}`: no field `{seg}` in `{}`",
                    if here.is_empty() {
                        "the experiment"
                    } else {
                        &here
                    }
                ),
                format!("use one of: {}", fields.join(", ")),
            ))
        }
        Value::Array(items) => {
            let names: Vec<String> = items
                .iter()
                .filter_map(|i| i.get("name").and_then(Value::as_str).map(str::to_string))
                .collect();
            let targets: Vec<usize> = if seg == "*" {
                (0..items.len()).collect()
            } else if let Some(i) = items
                .iter()
                .position(|i| i.get("name").and_then(Value::as_str) == Some(seg))
            {
                vec![i]
            } else {
                return Err((
                    format!("axis `{path}`: no arm named `{seg}` in `{here}`"),
                    format!("use one of: {}, or * for every arm", names.join(", ")),
                ));
            };
            if last {
                return Err((
                    format!("axis `{path}`: a whole arm cannot be an axis value"),
                    format!("name a field of it, e.g. {here}.{seg}.inner_lr"),
                ));
            }
            for i in targets {
                set_at(&mut items[i], segs, v, path, depth + 1)?;
            }
            Ok(())
        }
        other => Err((
            format!("axis `{path}`: `{here}` is {other}, which has no field `{seg}`"),
            format!("vary `{here}` itself, or pick a variant with fields first"),
        )),
    }
}

/// A 6-hex-digit FNV-1a hash of the experiment's settings (not its name, description or
/// thread count, which do not change results). FNV is fixed by definition, unlike std's hasher.
fn short_hash(e: &Experiment) -> String {
    let mut e = e.clone();
    e.description.clear();
    e.threads = 0;
    let text = serde_json::to_string(&e).expect("experiment serializes");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:06x}", h & 0xff_ffff)
}
