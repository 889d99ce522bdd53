//! The two KIP tools an agent is given, and the texts that teach a model KIP,
//! exactly as the pinned crates ship them (never copied into this project).
use anda_engine::memory::{FUNCTION_DEFINITION, KipArgs, READONLY_FUNCTION_DEFINITION};
use anda_kip::{KipError, Response};
use serde_json::Value;

/// One of the engine's KIP tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolName {
    /// `execute_kip`: reads and writes (refused writes on a read-only store).
    ExecuteKip,
    /// `execute_kip_readonly`: reads only, whatever the store allows.
    ExecuteKipReadonly,
}

impl ToolName {
    /// The tool a model called by this name, if it is one of ours.
    pub fn from_name(name: &str) -> Option<Self> {
        if name == FUNCTION_DEFINITION.name {
            Some(Self::ExecuteKip)
        } else if name == READONLY_FUNCTION_DEFINITION.name {
            Some(Self::ExecuteKipReadonly)
        } else {
            None
        }
    }
}

/// The engine's function definition of a tool (`name`, `description`,
/// `parameters` as a JSON schema).
pub fn tool_definition(tool: ToolName) -> Value {
    let definition = match tool {
        ToolName::ExecuteKip => &*FUNCTION_DEFINITION,
        ToolName::ExecuteKipReadonly => &*READONLY_FUNCTION_DEFINITION,
    };
    serde_json::to_value(definition).expect("a function definition is JSON")
}

/// The agent-facing documents anda_kip ships, by the names anda exposes them.
pub fn agent_texts() -> [(&'static str, &'static str); 6] {
    [
        ("kip_syntax", anda_kip::KIP_SYNTAX),
        ("self_instructions", anda_kip::SELF_INSTRUCTIONS),
        ("system_instructions", anda_kip::SYSTEM_INSTRUCTIONS),
        (
            "cognitive_memory_profile",
            anda_kip::COGNITIVE_MEMORY_PROFILE,
        ),
        // The two cards the self instructions say to load with them.
        ("kip_recall_card", anda_kip::KIP_RECALL_CARD),
        ("kip_formation_card", anda_kip::KIP_FORMATION_CARD),
    ]
}

/// Reads a model's tool arguments the way the engine's tool reads them
/// (`KipArgs`, unknown fields refused). Arguments that do not fit become the
/// failed response the model is shown, so it can correct its call.
#[allow(clippy::result_large_err)] // the engine's own error type, as in anda_engine
pub fn tool_args(arguments: Value) -> Result<KipArgs, Response> {
    if !arguments.is_object() {
        return Err(invalid_arguments("the arguments must be a JSON object"));
    }
    serde_json::from_value(arguments).map_err(|err| invalid_arguments(&err.to_string()))
}

/// A failed response for arguments that never reached the engine.
pub fn invalid_arguments(detail: &str) -> Response {
    Response::from(KipError::invalid_request_envelope(format!(
        "invalid tool arguments: {detail}"
    )))
}
