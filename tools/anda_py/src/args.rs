//! A call's arguments, from the Python values the `anda` layer passes to the
//! store's own terms: KIP tool arguments, KML writes, a tool call's or an
//! envelope's JSON, where a store lives and how it is opened.
//!
//! Values are checked here, once, by `convert` under the engine's rules:
//! `anda.Nexus` and `anda.Client` (through `requests`) share these checks, so
//! the same input earns the same error with the same message from either.
use crate::convert::{self, ConversionError};
use anda_embedded::{
    BucketLocation, ExecutionMode, KipOperation, Location, Operation, PackageSource, Principal,
    Tenancy, ToolName, WriteCommand, caller_principal, invalid_arguments,
};
use anda_engine::memory::KipArgs;
use anda_kip::Response;
use pyo3::{
    exceptions::PyValueError,
    prelude::*,
    types::{PyList, PyString, PyTuple},
};
use serde_json::Value;
use std::path::PathBuf;

/// Builds the engine's tool arguments from the Python call: one command (a
/// `str`) or a batch (a list of `(command, parameters)` tuples).
pub(crate) fn kip_args(
    command: &Bound<'_, PyAny>,
    parameters: &Bound<'_, PyAny>,
    dry_run: bool,
    execution: Option<&str>,
) -> PyResult<KipArgs> {
    let parameters =
        convert::parameters_to_json(parameters).map_err(|err| err.into_pyerr("parameters"))?;
    let execution = execution.map(execution_mode).transpose()?;
    let mut args = KipArgs {
        parameters,
        dry_run: Some(dry_run),
        execution: execution.map(anda_embedded::Execution::new),
        ..KipArgs::default()
    };
    if let Ok(text) = command.cast::<PyString>() {
        args.command = Some(command_text(text).map_err(|err| err.into_pyerr("command"))?);
    } else {
        let batch = command.cast::<PyList>()?;
        let mut operations = Vec::with_capacity(batch.len());
        for (index, item) in batch.iter().enumerate() {
            let root = format!("commands[{index}]");
            let pair = item.cast::<PyTuple>()?;
            let text = command_text(pair.get_item(0)?.cast::<PyString>()?)
                .map_err(|err| err.into_pyerr(&root))?;
            let operation = match convert::parameters_to_json(&pair.get_item(1)?)
                .map_err(|err| err.into_pyerr(&format!("{root} parameters")))?
            {
                None => KipOperation::Command(text),
                Some(parameters) => KipOperation::Operation(Box::new(
                    Operation::new(text).with_parameters(parameters),
                )),
            };
            operations.push(operation);
        }
        args.operations = Some(operations);
    }
    Ok(args)
}

/// KML writes from Python `(command, parameters)` tuples, checked as the
/// engine's values.
pub(crate) fn write_commands(commands: &Bound<'_, PyList>) -> PyResult<Vec<WriteCommand>> {
    let mut writes = Vec::with_capacity(commands.len());
    for (index, item) in commands.iter().enumerate() {
        let root = format!("operations[{index}]");
        let pair = item.cast::<PyTuple>()?;
        let text = command_text(pair.get_item(0)?.cast::<PyString>()?)
            .map_err(|err| err.into_pyerr(&root))?;
        let parameters = convert::parameters_to_json(&pair.get_item(1)?)
            .map_err(|err| err.into_pyerr(&format!("{root} parameters")))?;
        writes.push((text, parameters));
    }
    Ok(writes)
}

/// One of the engine's tools, by the name a model called it.
pub(crate) fn tool_name(name: &str) -> PyResult<ToolName> {
    ToolName::from_name(name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown tool {name:?}: anda runs 'execute_kip' and 'execute_kip_readonly'"
        ))
    })
}

/// A model's tool arguments as JSON: text is parsed, anything else converted
/// under the engine's rules; what fails becomes the model's error result.
pub(crate) fn tool_arguments(arguments: &Bound<'_, PyAny>) -> Result<Value, Box<Response>> {
    let invalid = |detail: &str| Box::new(invalid_arguments(detail));
    if let Ok(text) = arguments.cast::<PyString>() {
        let text = convert::to_utf8(text).map_err(|err| invalid(&err.describe("arguments")))?;
        return serde_json::from_str(&text)
            .map_err(|err| invalid(&format!("not valid JSON: {err}")));
    }
    convert::to_json(arguments, 0).map_err(|err| invalid(&err.describe("arguments")))
}

/// A request envelope as JSON, under the engine's rules; one that is not
/// JSON becomes the failed response it earns.
pub(crate) fn envelope_json(envelope: &Bound<'_, PyAny>) -> Result<Value, Box<Response>> {
    convert::to_json(envelope, 0).map_err(|err| {
        let detail = err.describe("request");
        Box::new(Response::from(
            anda_kip::KipError::invalid_request_envelope(detail),
        ))
    })
}

/// The anonymous Principal when no caller is named.
pub(crate) fn principal(caller: Option<&str>) -> Principal {
    caller.map_or_else(Principal::anonymous, caller_principal)
}

/// Where a store lives, from the Python layer's parts of it.
pub(crate) fn location(
    path: Option<PathBuf>,
    url: Option<String>,
    options: Vec<(String, String)>,
) -> Location {
    match (path, url) {
        (_, Some(url)) => Location::Bucket(BucketLocation { url, options }),
        (None, None) => Location::InMemory,
        (Some(path), None) => Location::Directory(path),
    }
}

pub(crate) fn lease_duration(seconds: f64) -> PyResult<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(seconds)
        .map_err(|err| PyValueError::new_err(format!("lease_ttl: {err}")))
}

pub(crate) fn package_sources(packages: Vec<(String, String)>) -> Vec<PackageSource> {
    packages
        .into_iter()
        .map(|(source, artifact)| PackageSource { source, artifact })
        .collect()
}

pub(crate) fn tenancy_from_name(name: &str) -> PyResult<Tenancy> {
    match name {
        "shared" => Ok(Tenancy::Shared),
        "per_caller" => Ok(Tenancy::PerCallerSpace),
        other => Err(PyValueError::new_err(format!(
            "tenancy must be 'shared' or 'per_caller', not {other:?}"
        ))),
    }
}

pub(crate) fn tenancy_name(tenancy: Tenancy) -> &'static str {
    match tenancy {
        Tenancy::Shared => "shared",
        Tenancy::PerCallerSpace => "per_caller",
    }
}

fn command_text(text: &Bound<'_, PyString>) -> Result<String, ConversionError> {
    Ok(convert::to_utf8(text)?.into_owned())
}

fn execution_mode(name: &str) -> PyResult<ExecutionMode> {
    match name {
        "sequence" => Ok(ExecutionMode::Sequence),
        "independent" => Ok(ExecutionMode::Independent),
        "atomic" => Ok(ExecutionMode::Atomic),
        other => Err(PyValueError::new_err(format!(
            "execution must be 'sequence', 'independent' or 'atomic', not {other:?}"
        ))),
    }
}

/// Whether a location names an object-storage bucket (`s3://`, `gs://`,
/// `az://`, ...) rather than a directory.
#[pyfunction]
pub fn is_bucket_url(location: &str) -> bool {
    anda_embedded::is_bucket_url(location)
}

/// The Principal (as text) that a caller id runs as.
#[pyfunction]
#[pyo3(name = "caller_principal")]
pub fn caller_principal_text(caller: &str) -> String {
    caller_principal(caller).to_text()
}
