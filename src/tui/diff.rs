//! Which config fields differ between arms: the compare table shows only those.

use std::collections::BTreeMap;

use crate::experiment::Experiment;

/// Flatten each one-arm experiment (overrides resolved) to `field = value` and keep fields
/// whose values are not all equal. The arm's name is left out: it always differs.
pub fn differing_fields(configs: &[Experiment]) -> Vec<(String, Vec<String>)> {
    if configs.len() < 2 {
        return Vec::new();
    }
    let flat: Vec<BTreeMap<String, String>> = configs.iter().map(flatten_config).collect();
    let mut keys: Vec<&String> = flat.iter().flat_map(|m| m.keys()).collect();
    // Shared settings first; one algorithm's own parameters (absent in the others) last.
    keys.sort_by_key(|k| (k.starts_with("arm.algorithm."), k.as_str()));
    keys.dedup();
    keys.into_iter()
        .filter(|k| k.as_str() != "arm.name")
        .filter_map(|k| {
            let vals: Vec<String> = flat
                .iter()
                .map(|m| m.get(k).cloned().unwrap_or_else(|| "–".into()))
                .collect();
            (vals.iter().any(|v| v != &vals[0])).then(|| (k.clone(), vals))
        })
        .collect()
}

fn flatten_config(e: &Experiment) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut e = e.clone();
    // Resolve the arm's overrides into the train section so "meta_lr" compares like with like.
    if let Some(arm) = e.arms.first().cloned() {
        let s = e.arm_settings(&arm);
        e.train.inner_steps = s.inner_steps;
        e.train.inner_lr = s.inner_lr;
        e.train.meta_lr = s.meta_lr;
        let mut arm = arm;
        arm.inner_steps = None;
        arm.inner_lr = None;
        arm.meta_lr = None;
        e.arms = vec![arm];
    }
    let v = serde_json::to_value(&e).unwrap_or_default();
    walk("", &v, &mut out);
    if let Some(arm) = e.arms.first() {
        out.insert("arms.0.algorithm".into(), arm.algorithm.label().into());
    }
    // `arms.0.algorithm...` reads better as `arm.algorithm...`.
    out.into_iter()
        .filter(|(k, _)| k != "name" && k != "description")
        .map(|(k, v)| (k.replacen("arms.0", "arm", 1), v))
        .collect()
}

fn walk(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                walk(&join(k), v, out);
            }
        }
        serde_json::Value::Array(a) if a.iter().any(|x| x.is_object()) => {
            for (i, v) in a.iter().enumerate() {
                walk(&join(&i.to_string()), v, out);
            }
        }
        serde_json::Value::String(s) if !prefix.is_empty() => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}
