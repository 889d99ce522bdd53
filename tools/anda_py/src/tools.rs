//! What the pinned engine gives a model: its KIP tools' function definitions
//! and the agent-facing documents anda_kip ships.
use anda_embedded::{ToolName, tool_definition};
use pyo3::prelude::*;

/// The engine's function definitions of its KIP tools, as the pinned crates
/// ship them: `execute_kip` then `execute_kip_readonly`, or only the latter
/// with `readonly`.
#[pyfunction]
#[pyo3(signature = (readonly))]
pub fn tool_definitions(py: Python<'_>, readonly: bool) -> PyResult<Vec<Bound<'_, PyAny>>> {
    let tools: &[ToolName] = if readonly {
        &[ToolName::ExecuteKipReadonly]
    } else {
        &[ToolName::ExecuteKip, ToolName::ExecuteKipReadonly]
    };
    tools
        .iter()
        .map(|tool| crate::convert::to_python(py, &tool_definition(*tool)))
        .collect()
}

/// The agent-facing documents anda_kip ships, by name.
#[pyfunction]
pub fn agent_texts() -> Vec<(&'static str, &'static str)> {
    anda_embedded::agent_texts().to_vec()
}
