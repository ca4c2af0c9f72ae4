//! The workbench. (Being written.)

pub fn run(_project: &std::path::Path) -> anyhow::Result<()> {
    anyhow::bail!("the workbench is not written yet")
}
