//! A run's task embeddings at its latest evaluation (issue 21): an arm that adapts a task
//! embedding (CAVIA's context) records, at every periodic evaluation, each validation task's
//! adapted embedding with what is known of the task (its parameters, or its group), in
//! `embeddings.json`, rewritten atomically (`RunDir::write_embeddings`). The workbench's task-embedding view and `metalab
//! export` read it back; `metalab eval`'s `embeddings.csv` is the test tasks' at the end.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::files;
use super::names::EMBEDDINGS_RECORD;
use crate::algo::embedding::TaskProperty;
use crate::experiment::FamilySpec;
use crate::tasks::{Task, TaskFamily};

/// The embeddings of one evaluation's tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingRecord {
    /// The iteration of the evaluation.
    pub iteration: usize,
    /// Adaptation steps behind each embedding.
    pub steps: usize,
    /// Which tasks, in words.
    pub tasks_from: String,
    /// The parameters every task has, in the order of each task's `values`.
    pub properties: Vec<TaskProperty>,
    pub tasks: Vec<TaskEmbedding>,
}

/// One task's adapted embedding and what is known of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskEmbedding {
    pub embedding: Vec<f32>,
    /// One value per [`EmbeddingRecord::properties`].
    pub values: Vec<f64>,
    /// The task's group, in a family of named groups (mixed regression: its function kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// What a scatter of the embeddings can be coloured by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colouring {
    /// The record's `properties[i]`: a continuous scale.
    Property(usize),
    /// The task's group: one colour each.
    Group,
}

impl EmbeddingRecord {
    /// The record of `tasks[i]`'s embedding `embeddings[i]`; `group_names[g]` names group `g`.
    pub fn new(
        iteration: usize,
        steps: usize,
        tasks_from: String,
        tasks: &[Task],
        embeddings: Vec<Vec<f32>>,
        group_names: &[String],
    ) -> EmbeddingRecord {
        let props: Vec<Vec<(TaskProperty, f64)>> = tasks.iter().map(TaskProperty::of).collect();
        let properties: Vec<TaskProperty> = props
            .first()
            .map(|p| p.iter().map(|(k, _)| *k).collect())
            .unwrap_or_default();
        // Only what every task has: a property one task lacks cannot colour them all.
        let shared = props
            .iter()
            .all(|p| p.iter().map(|(k, _)| *k).eq(properties.iter().copied()));
        let properties = if shared { properties } else { vec![] };
        let tasks = tasks
            .iter()
            .zip(props)
            .zip(embeddings)
            .map(|((t, p), embedding)| TaskEmbedding {
                embedding,
                values: if shared {
                    p.iter().map(|(_, v)| *v).collect()
                } else {
                    vec![]
                },
                group: t.group().map(|g| {
                    group_names
                        .get(g)
                        .cloned()
                        .unwrap_or_else(|| format!("group {g}"))
                }),
            })
            .collect();
        EmbeddingRecord {
            iteration,
            steps,
            tasks_from,
            properties,
            tasks,
        }
    }

    /// Values in each embedding.
    pub fn width(&self) -> usize {
        self.tasks.first().map_or(0, |t| t.embedding.len())
    }

    /// Every way the tasks can be coloured: each parameter, then the group where tasks have one.
    pub fn colourings(&self) -> Vec<Colouring> {
        let mut c: Vec<Colouring> = (0..self.properties.len())
            .map(Colouring::Property)
            .collect();
        if self.tasks.iter().any(|t| t.group.is_some()) {
            c.push(Colouring::Group);
        }
        c
    }

    /// The groups the tasks belong to, in order of first appearance.
    pub fn groups(&self) -> Vec<String> {
        let mut out: Vec<String> = vec![];
        for g in self.tasks.iter().filter_map(|t| t.group.as_ref()) {
            if !out.contains(g) {
                out.push(g.clone());
            }
        }
        out
    }

    /// One row per task: `task,e0,…,e{w−1}`, its parameters, and `group` where there are groups.
    pub fn to_csv(&self) -> String {
        let groups = self.tasks.iter().any(|t| t.group.is_some());
        let mut header: Vec<String> = vec!["task".into()];
        header.extend((0..self.width()).map(|j| format!("e{j}")));
        header.extend(self.properties.iter().map(|p| p.name().to_string()));
        if groups {
            header.push("group".into());
        }
        let mut out = header.join(",");
        out.push('\n');
        for (i, t) in self.tasks.iter().enumerate() {
            let mut row = vec![i.to_string()];
            row.extend(t.embedding.iter().map(|v| v.to_string()));
            row.extend(t.values.iter().map(|v| v.to_string()));
            if groups {
                // Group names are the family's own words (no commas or quotes in them).
                row.push(t.group.clone().unwrap_or_default());
            }
            out.push_str(&row.join(","));
            out.push('\n');
        }
        out
    }
}

impl EmbeddingRecord {
    /// Gives each class task without a group the one folder all its classes' labels share,
    /// by its last name (an Omniglot task drawn within one alphabet: the alphabet, e.g.
    /// `Latin`), so the tasks can be coloured by it; a task whose classes span folders keeps
    /// none.
    pub fn group_by_class_folder(&mut self, family: &dyn TaskFamily, tasks: &[Task]) {
        for (t, task) in self.tasks.iter_mut().zip(tasks) {
            if t.group.is_none() {
                t.group = class_folder(family, task);
            }
        }
    }
}

/// The folder (the label up to its last `/`) shared by all of a class task's classes, by its
/// last name.
fn class_folder(family: &dyn TaskFamily, task: &Task) -> Option<String> {
    let Task::Classes { classes, .. } = task else {
        return None;
    };
    let mut folders = classes.iter().map(|&c| {
        family
            .class_label(c)
            .and_then(|l| l.rsplit_once('/').map(|(dir, _)| dir.to_string()))
    });
    let first = folders.next()??;
    if !folders.all(|f| f.as_deref() == Some(first.as_str())) {
        return None;
    }
    let name = first.rsplit('/').next().unwrap_or(&first);
    Some(name.to_string())
}

impl Colouring {
    /// Its name in the view and the figure: the parameter's, or "group".
    pub fn name(self, r: &EmbeddingRecord) -> &'static str {
        match self {
            Colouring::Property(i) => r.properties.get(i).map_or("?", |p| p.name()),
            Colouring::Group => "group",
        }
    }
}

/// The names of a family's task groups, by group index (none for families without groups).
pub fn group_names(family: &FamilySpec) -> Vec<String> {
    match family {
        FamilySpec::Mixed(m) => crate::tasks::mixed::Mixed::group_names(&m.groups),
        _ => vec![],
    }
}

/// The embedding record of the run in `dir`, if it has one (a figure's data: an unreadable
/// file reads as none).
pub fn load_embeddings(dir: &Path) -> Option<EmbeddingRecord> {
    files::read_text(&dir.join(EMBEDDINGS_RECORD))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::FunctionKind;

    #[test]
    fn sine_tasks_keep_their_parameters_and_function_tasks_their_group() {
        let sines = [
            Task::Sinusoid {
                amplitude: 1.0,
                phase: 0.0,
            },
            Task::Sinusoid {
                amplitude: 4.0,
                phase: 1.0,
            },
        ];
        let r = EmbeddingRecord::new(
            500,
            1,
            "x".into(),
            &sines,
            vec![vec![0.5, -1.0], vec![2.0, 0.25]],
            &[],
        );
        assert_eq!(r.width(), 2);
        assert_eq!(r.properties[0], TaskProperty::Amplitude);
        assert_eq!(r.tasks[1].values[0], 4.0);
        assert_eq!(r.colourings()[0], Colouring::Property(0));
        assert!(!r.colourings().contains(&Colouring::Group));
        let csv = r.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "task,e0,e1,amplitude,sin_phase,cos_phase,sin_coefficient,cos_coefficient"
        );
        assert!(lines[2].starts_with("1,2,0.25,4,"), "{}", lines[2]);
        let back: EmbeddingRecord =
            serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);

        let f = |group| Task::Function {
            kind: FunctionKind::Line,
            group,
            fixed: None,
            coefficients: [0.0; 3],
        };
        let names = vec!["line".to_string(), "line#2".to_string()];
        let r = EmbeddingRecord::new(10, 1, "x".into(), &[f(1), f(0)], vec![vec![1.0]; 2], &names);
        assert!(r.properties.is_empty());
        assert_eq!(r.colourings(), [Colouring::Group]);
        assert_eq!(r.groups(), ["line#2", "line"]);
        assert!(r.to_csv().ends_with("1,1,line\n"), "{}", r.to_csv());
    }
}
