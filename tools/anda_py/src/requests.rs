//! The requests an `anda.Client` sends, built by the code `NativeNexus` runs
//! for the same call: values are checked by `convert` (the same errors with
//! the same messages), and the envelope is the one the engine's own tool
//! builds from its arguments.
//!
//! Every call travels as `execute_kip`, the one method any KIP 2.0 server
//! knows. A read-only call is proven to read first, locally, by the engine's
//! own read-only gate: a write is refused here with the response the gate
//! gives; a call the gate cannot prove (an operation that does not parse
//! here, so its verb is unknown) goes to `execute_kip_readonly` instead, for
//! the server to judge.
use crate::{args, convert, job};
use anda_embedded::{ToolName, tool_args};
use anda_engine::memory::KipArgs;
use anda_kip::{Command, Executor, Operation, Request, Response, execute_request_readonly};
use pyo3::prelude::*;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};

const READ_WRITE: &str = "execute_kip";
const READONLY: &str = "execute_kip_readonly";
const READONLY_VIOLATION: &str = "ReadonlyViolation";

/// What to send, as Python gets it: `(method, envelope)`, or `(None,
/// response)` for a call refused without reaching any server.
type Prepared<'py> = (Option<&'static str>, Bound<'py, PyAny>);

/// The failed response a call earns without reaching any server (boxed: a
/// `Response` is large, and a refusal is the rare path).
type Refusal = Box<Response>;

fn refused(response: impl Into<Response>) -> Refusal {
    Box::new(response.into())
}

/// The wire request for `NativeNexus.execute`'s arguments (see
/// `anda.Nexus.execute_kip`); `readonly` takes the read-only path.
#[pyfunction]
#[pyo3(signature = (command, parameters, dry_run, execution, readonly))]
pub fn kip_request<'py>(
    py: Python<'py>,
    command: &Bound<'py, PyAny>,
    parameters: &Bound<'py, PyAny>,
    dry_run: bool,
    execution: Option<&str>,
    readonly: bool,
) -> PyResult<Prepared<'py>> {
    let mut args = args::kip_args(command, parameters, dry_run, execution)?;
    if !dry_run {
        // The default, which the wire leaves unsaid.
        args.dry_run = None;
    }
    let prepared = args_request(args, readonly)
        .and_then(|(method, request)| Ok((method, to_value(&request)?)));
    outcome(py, prepared)
}

/// The wire request for a model's tool call (see `anda.Nexus.call_tool`):
/// arguments the engine's tool refuses come back as its failed response.
#[pyfunction]
#[pyo3(signature = (name, arguments, readonly))]
pub fn tool_request<'py>(
    py: Python<'py>,
    name: &str,
    arguments: &Bound<'py, PyAny>,
    readonly: bool,
) -> PyResult<Prepared<'py>> {
    let tool = args::tool_name(name)?;
    let prepared = args::tool_arguments(arguments)
        .and_then(|arguments| tool_args(arguments).map_err(Box::new))
        .and_then(|args| args_request(args, readonly || tool == ToolName::ExecuteKipReadonly))
        .and_then(|(method, request)| Ok((method, to_value(&request)?)));
    outcome(py, prepared)
}

/// The wire request for a whole envelope (see `anda.Nexus.execute_request`),
/// sent as it was given once its values pass.
#[pyfunction]
#[pyo3(signature = (request, readonly))]
pub fn envelope_request<'py>(
    py: Python<'py>,
    request: &Bound<'py, PyAny>,
    readonly: bool,
) -> PyResult<Prepared<'py>> {
    let prepared = args::envelope_json(request).and_then(|envelope| {
        if !envelope.is_object() {
            // Never an envelope, on any server: refused as the engine reads it.
            return Err(Request::from_value(envelope).err().map_or_else(
                || {
                    refused(anda_kip::KipError::invalid_request_envelope(
                        "not an object",
                    ))
                },
                refused,
            ));
        }
        if !readonly {
            return Ok((READ_WRITE, envelope));
        }
        // One the engine cannot read here is for the server to judge.
        let method = match Request::from_value(envelope.clone()) {
            Ok(parsed) => gate(parsed)?.0,
            Err(_) => READONLY,
        };
        Ok((method, envelope))
    });
    outcome(py, prepared)
}

fn args_request(args: KipArgs, readonly: bool) -> Result<(&'static str, Request), Refusal> {
    if readonly {
        gate(args.into_readonly_request().map_err(refused)?)
    } else {
        Ok((READ_WRITE, args.into_request().map_err(refused)?))
    }
}

/// Runs `request` through the engine's read-only gate with nothing behind
/// it: refused if it writes; `execute_kip` once every operation is seen to
/// read.
fn gate(request: Request) -> Result<(&'static str, Request), Refusal> {
    let reads = Reads(AtomicUsize::new(0));
    let response = futures::executor::block_on(execute_request_readonly(&reads, &request));
    if response
        .error
        .as_ref()
        .is_some_and(|error| error.code == READONLY_VIOLATION)
    {
        return Err(Box::new(response));
    }
    let seen = reads.0.load(Ordering::Relaxed);
    let method = if seen == request.operations.len() {
        READ_WRITE
    } else {
        READONLY
    };
    Ok((method, request))
}

/// Counts the operations the read-only gate let through, running none.
struct Reads(AtomicUsize);

#[async_trait::async_trait]
impl Executor for Reads {
    async fn execute(&self, _command: Command, _request: &Request, _op: &Operation) -> Response {
        self.0.fetch_add(1, Ordering::Relaxed);
        Response::ok(Value::Null)
    }
}

fn to_value(request: &Request) -> Result<Value, Refusal> {
    serde_json::to_value(request).map_err(|err| {
        refused(anda_kip::KipError::invalid_request_envelope(format!(
            "cannot encode the request: {err}"
        )))
    })
}

fn outcome<'py>(
    py: Python<'py>,
    prepared: Result<(&'static str, Value), Refusal>,
) -> PyResult<Prepared<'py>> {
    match prepared {
        Ok((method, envelope)) => Ok((Some(method), convert::to_python(py, &envelope)?)),
        Err(response) => {
            let response = serde_json::to_value(&*response).map_err(job::encode_error)?;
            Ok((None, convert::to_python(py, &response)?))
        }
    }
}
