//! The fault-injection hooks behind `anda.testing.FaultInjector`: rules for
//! `anda_object_store`'s fault wrapper, from the names the Python side uses,
//! on a store opened with `inject_faults` (`anda.testing.open_with_faults`).
use crate::nexus::NativeNexus;
use anda_embedded::{FaultEvent, FaultGate, FaultHandle, FaultKind, FaultOp, FaultRule};
use pyo3::{exceptions::PyValueError, prelude::*};

/// Adds a fault rule (see `anda.testing.FaultInjector.fail`).
#[pyfunction]
#[allow(clippy::too_many_arguments)] // one keyword each on the Python side
#[pyo3(signature = (nexus, op, kind, path_contains, skip, times, keep_bytes, delay_seconds))]
pub fn _fault_rule(
    nexus: &NativeNexus,
    op: &str,
    kind: &str,
    path_contains: Option<String>,
    skip: u64,
    times: u64,
    keep_bytes: usize,
    delay_seconds: f64,
) -> PyResult<()> {
    let rule = rule(
        op,
        kind,
        path_contains,
        skip,
        times,
        keep_bytes,
        delay_seconds,
    )?;
    nexus.fault_handle()?.push_rule(rule);
    Ok(())
}

/// Fails every request after `n` more attempted mutations (a power cut).
#[pyfunction]
pub fn _fault_crash_after(nexus: &NativeNexus, n: u64) -> PyResult<()> {
    nexus.fault_handle()?.crash_after_mutations(n);
    Ok(())
}

/// Removes every rule and restores power.
#[pyfunction]
pub fn _fault_reset(nexus: &NativeNexus) -> PyResult<()> {
    nexus.fault_handle()?.reset();
    Ok(())
}

/// What the wrapper saw: `(operation, path, outcome)` per mutation event.
#[pyfunction]
pub fn _fault_events(nexus: &NativeNexus) -> PyResult<Vec<(String, String, String)>> {
    Ok(events(&nexus.fault_handle()?))
}

const OPERATIONS: [(&str, FaultOp); 10] = [
    ("put", FaultOp::Put),
    ("get", FaultOp::Get),
    ("delete", FaultOp::Delete),
    ("list", FaultOp::List),
    ("copy", FaultOp::Copy),
    ("rename", FaultOp::Rename),
    ("multipart_start", FaultOp::MultipartStart),
    ("multipart_part", FaultOp::MultipartPart),
    ("multipart_complete", FaultOp::MultipartComplete),
    ("multipart_abort", FaultOp::MultipartAbort),
];

fn operation(name: &str) -> PyResult<FaultOp> {
    OPERATIONS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, op)| *op)
        .ok_or_else(|| PyValueError::new_err(format!("unknown storage operation {name:?}")))
}

fn operation_name(op: FaultOp) -> &'static str {
    OPERATIONS
        .iter()
        .find(|(_, known)| *known == op)
        .map_or("unknown", |(name, _)| name)
}

/// One rule. `kind` is `error` (fail before storage), `error_after` (storage
/// succeeds, the acknowledgement is lost), `torn` (a put keeps `keep_bytes`,
/// then fails), `crash` (this and every later request fail until reset) or
/// `delay` (the request waits `delay_seconds`, once).
fn rule(
    op: &str,
    kind: &str,
    path_contains: Option<String>,
    skip: u64,
    times: u64,
    keep_bytes: usize,
    delay_seconds: f64,
) -> PyResult<FaultRule> {
    let op = operation(op)?;
    let (kind, times) = match kind {
        "error" => (FaultKind::Error, times),
        "error_after" => (FaultKind::ErrorAfter, times),
        "torn" => (FaultKind::TornWrite { keep_bytes }, times),
        "crash" => (FaultKind::Crash, times),
        "delay" => {
            let delay = std::time::Duration::try_from_secs_f64(delay_seconds)
                .map_err(|err| PyValueError::new_err(err.to_string()))?;
            let gate = FaultGate::new();
            let opened = gate.clone();
            let runtime = crate::runtime::runtime()?;
            runtime.spawn(async move {
                opened.wait_entered().await;
                tokio::time::sleep(delay).await;
                opened.release();
            });
            // A gate opens once, so a delay rule fires once.
            (FaultKind::PauseBefore(gate), 1)
        }
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown fault kind {other:?}"
            )));
        }
    };
    Ok(FaultRule {
        op,
        path_contains,
        skip,
        times,
        kind,
    })
}

/// The wrapper's event log as `(operation, path, outcome)`.
fn events(handle: &FaultHandle) -> Vec<(String, String, String)> {
    handle
        .event_log()
        .into_iter()
        .map(
            |FaultEvent {
                 op, path, outcome, ..
             }| { (operation_name(op).to_string(), path, format!("{outcome:?}")) },
        )
        .collect()
}
