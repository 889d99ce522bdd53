//! `anda-bench-native WORKLOAD.json`: the native half of the benchmark.
//!
//! Loads the workload into an in-memory store and times every query through
//! `EmbeddedNexus::execute`, the call the Python binding makes, on a tokio
//! runtime built like the binding's. Prints raw samples as JSON on stdout; the
//! Python driver computes the statistics for both sides the same way.
use anda_embedded::{
    EmbeddedNexus, Execution, ExecutionMode, KipOperation, Location, OpenOptions, Operation,
    Principal, WriteCommand,
};
use anda_engine::memory::KipArgs;
use serde_json::{Map, Value, json};
use std::time::Instant;

type Json = Map<String, Value>;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: anda-bench-native WORKLOAD.json");
    let workload: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("workload is readable"))
            .expect("workload is JSON");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(16 << 20)
        .enable_all()
        .build()
        .expect("runtime");
    let report = runtime.block_on(run(&workload));
    println!("{report}");
}

/// The tool arguments for one command or batch, as the binding builds them.
fn args(command: &Value, parameters: Option<&Value>, execution: Option<&str>) -> KipArgs {
    let parameters = parameters.and_then(Value::as_object).cloned();
    let mut args = KipArgs {
        parameters,
        dry_run: Some(false),
        ..KipArgs::default()
    };
    match command {
        Value::String(text) => args.command = Some(text.clone()),
        Value::Array(items) => {
            args.operations = Some(
                items
                    .iter()
                    .map(|item| match item {
                        Value::String(text) => KipOperation::Command(text.clone()),
                        other => {
                            let text = other["command"].as_str().expect("command").to_string();
                            let params: Json =
                                other["parameters"].as_object().cloned().unwrap_or_default();
                            KipOperation::Operation(Box::new(
                                Operation::new(text).with_parameters(params),
                            ))
                        }
                    })
                    .collect(),
            );
            args.execution = Some(Execution::new(match execution.unwrap_or("sequence") {
                "independent" => ExecutionMode::Independent,
                _ => ExecutionMode::Sequence,
            }));
        }
        other => panic!("bad command {other}"),
    }
    args
}

async fn run(workload: &Value) -> Value {
    let store = EmbeddedNexus::open(Location::InMemory, &OpenOptions::default())
        .await
        .expect("store opens");

    let started = Instant::now();
    // The bulk path: each chunk of writes is one transaction, as the binding's
    // `bulk_write` commits it.
    for chunk in workload["load"].as_array().expect("load chunks") {
        let writes: Vec<WriteCommand> = chunk
            .as_array()
            .expect("a chunk of writes")
            .iter()
            .map(|write| {
                let command = write[0].as_str().expect("command").to_string();
                (command, write[1].as_object().cloned())
            })
            .collect();
        let response = store
            .write_all(&writes, false, &Principal::anonymous())
            .await
            .expect("the writes combine");
        assert_eq!(
            serde_json::to_value(response.status).unwrap(),
            json!("succeeded"),
            "load failed: {:?}",
            response
                .error
                .or_else(|| response.results.iter().find_map(|r| r.error.clone()))
        );
    }
    let load_seconds = started.elapsed().as_secs_f64();

    let warmup = workload["warmup"].as_u64().unwrap_or(3) as usize;
    let iterations = workload["iterations"].as_u64().expect("iterations") as usize;
    let mut queries = Map::new();
    for query in workload["queries"].as_array().expect("queries") {
        let name = query["name"].as_str().expect("name");
        let sets = query["parameter_sets"].as_array().expect("parameter_sets");
        let execution = query["execution"].as_str();
        let mut samples = Vec::with_capacity(iterations);
        for i in 0..warmup + iterations {
            let call = args(&query["command"], Some(&sets[i % sets.len()]), execution);
            let t = Instant::now();
            let response = store.execute(call, false, &Principal::anonymous()).await;
            // The binding hands the caller plain values; the native side's
            // equivalent is the serialised response.
            let value = serde_json::to_value(&response).expect("response encodes");
            let elapsed = t.elapsed().as_nanos() as u64;
            assert_eq!(value["status"], json!("succeeded"), "{name}: {value}");
            if i >= warmup {
                samples.push(elapsed);
            }
        }
        queries.insert(name.to_string(), json!(samples));
    }
    json!({
        "load_seconds": load_seconds,
        "peak_rss_kib": peak_rss_kib(),
        "samples_ns": queries,
    })
}

/// Peak resident set size of this process (Linux; `null` elsewhere).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
