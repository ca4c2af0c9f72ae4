//! `metalab bench`: fixed workloads, seconds per meta-iteration. (Being written.)

pub fn run(_quick: bool, _json: bool, _only: Option<&str>) -> anyhow::Result<()> {
    anyhow::bail!("bench is not written yet")
}
