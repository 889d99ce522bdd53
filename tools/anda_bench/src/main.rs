//! `anda-bench-native WORKLOAD.json`: the native half of the benchmark.
//!
//! Loads the workload into an in-memory store and times the queries the
//! driver asks for on stdin through `EmbeddedNexus::execute`, the call the
//! Python binding makes, polled on the calling thread inside a tokio runtime
//! built like the binding's (`handoff NAME COUNT`: what handing the call to
//! the runtime's workers adds). Answers with raw samples as JSON lines on
//! stdout; the Python driver computes the statistics for both sides the same
//! way.
//!
//! `anda-bench-native --write-amplification DIR N,N,...`: the native
//! reproduction of docs/write-amplification.md. Grows a directory store to
//! each size N (bulk writes), then measures what one single-write commit
//! costs there: bytes and write calls the process makes (`/proc/self/io`),
//! and time. Prints JSON.
use anda_embedded::{
    DEFAULT_CHUNK_SIZE, EmbeddedNexus, Execution, ExecutionMode, KipOperation, Location,
    OpenOptions, Operation, Principal, WriteCommand,
};
use anda_engine::memory::KipArgs;
use serde_json::{Map, Value, json};
use std::{path::PathBuf, sync::Arc, time::Instant};

type Json = Map<String, Value>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(16 << 20)
        .enable_all()
        .build()
        .expect("runtime");
    match args.get(1).map(String::as_str) {
        Some("--write-amplification") => {
            let usage = "usage: anda-bench-native --write-amplification DIR N,N,...";
            let dir = PathBuf::from(args.get(2).expect(usage));
            let sizes: Vec<usize> = args
                .get(3)
                .expect(usage)
                .split(',')
                .map(|n| n.parse().expect(usage))
                .collect();
            println!("{}", runtime.block_on(write_amplification(dir, &sizes)));
        }
        Some(path) => {
            let workload: Value =
                serde_json::from_str(&std::fs::read_to_string(path).expect("workload is readable"))
                    .expect("workload is JSON");
            // Polled by the calling thread, as the binding polls every
            // command, so the two sides differ only by the binding's own work.
            runtime.block_on(run(&workload));
        }
        None => panic!("usage: anda-bench-native WORKLOAD.json"),
    }
}

const UPSERT_PERSON: &str =
    r#"UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key } SET FIELDS { name: :name } }"#;
/// Single-write commits measured at each size.
const COMMITS_PER_SIZE: usize = 10;

/// Bytes and write calls of this process so far (`wchar`, `syscw`), and
/// bytes that reached the block layer (`write_bytes`).
fn io_counters() -> (u64, u64, u64) {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        io.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("wchar:"), field("syscw:"), field("write_bytes:"))
}

async fn write_amplification(dir: PathBuf, sizes: &[usize]) -> Value {
    let store = EmbeddedNexus::open(Location::Directory(dir), &OpenOptions::default())
        .await
        .expect("store opens");
    let caller = Principal::anonymous();
    let write = |key: String| -> WriteCommand {
        let name = format!("Person {key}");
        let mut parameters = Map::new();
        parameters.insert("key".into(), json!(key));
        parameters.insert("name".into(), json!(name));
        (UPSERT_PERSON.to_string(), Some(parameters))
    };
    let mut stored = 0;
    let mut rows = Vec::new();
    for &size in sizes {
        while stored < size {
            let chunk: Vec<WriteCommand> = (stored..size.min(stored + DEFAULT_CHUNK_SIZE))
                .map(|i| write(format!("p{i:06}")))
                .collect();
            stored += chunk.len();
            let response = store
                .write_all(&chunk, false, &caller)
                .await
                .expect("combines");
            store.acknowledge().await.expect("acknowledged");
            assert!(
                response.error.is_none(),
                "load failed: {:?}",
                response.error
            );
        }
        let (mut bytes, mut calls, mut disk, mut nanos) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..COMMITS_PER_SIZE {
            let (before_bytes, before_calls, before_disk) = io_counters();
            let started = Instant::now();
            let response = store
                .write_all(&[write(format!("single-{size}-{i}"))], false, &caller)
                .await
                .expect("combines");
            store.acknowledge().await.expect("acknowledged");
            nanos.push(started.elapsed().as_nanos() as u64);
            assert!(
                response.error.is_none(),
                "write failed: {:?}",
                response.error
            );
            let (after_bytes, after_calls, after_disk) = io_counters();
            bytes.push(after_bytes - before_bytes);
            calls.push(after_calls - before_calls);
            disk.push(after_disk - before_disk);
        }
        stored += COMMITS_PER_SIZE;
        rows.push(json!({
            "concepts": size,
            "bytes_written_per_commit": median(&bytes),
            "write_calls_per_commit": median(&calls),
            "disk_bytes_per_commit": median(&disk),
            "commit_ms": median(&nanos) as f64 / 1e6,
        }));
    }
    store.close().await.expect("store closes");
    json!({ "store": "directory", "commits_per_size": COMMITS_PER_SIZE, "sizes": rows })
}

fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2]
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

/// Loads the workload, reports the load as one JSON line, then times the
/// query each stdin line names (`NAME COUNT`: the workload's warm-up calls,
/// then COUNT timed ones) and answers with a JSON line of samples. At the end
/// of stdin, reports the peak RSS. The driver alternates this process and the
/// binding's query by query, so a drift of the machine hits both sides alike.
async fn run(workload: &Value) {
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
        store.acknowledge().await.expect("acknowledged");
        assert_eq!(
            serde_json::to_value(response.status).unwrap(),
            json!("succeeded"),
            "load failed: {:?}",
            response
                .error
                .or_else(|| response.results.iter().find_map(|r| r.error.clone()))
        );
    }
    reply(json!({"load_seconds": started.elapsed().as_secs_f64()}));

    let store = Arc::new(store);
    let warmup = workload["warmup"].as_u64().unwrap_or(3) as usize;
    for line in std::io::stdin().lines() {
        let line = line.expect("stdin is readable");
        let (name, count) = line.rsplit_once(' ').expect("NAME COUNT");
        let count: usize = count.parse().expect("COUNT is a number");
        let (name, handoff) = match name.strip_prefix("handoff ") {
            Some(name) => (name, true),
            None => (name, false),
        };
        let query = workload["queries"]
            .as_array()
            .expect("queries")
            .iter()
            .find(|query| query["name"] == name)
            .expect("a query of the workload");
        let sets = query["parameter_sets"].as_array().expect("parameter_sets");
        let execution = query["execution"].as_str();
        let call = |i: usize| args(&query["command"], Some(&sets[i % sets.len()]), execution);
        if handoff {
            reply(json!(
                handoff_differences(&store, call, warmup, count).await
            ));
            continue;
        }
        let mut samples = Vec::with_capacity(count);
        for i in 0..warmup + count {
            let call = call(i);
            let t = Instant::now();
            let value = answer(&store, call).await;
            let elapsed = t.elapsed().as_nanos() as u64;
            assert_eq!(value["status"], json!("succeeded"), "{name}: {value}");
            if i >= warmup {
                samples.push(elapsed);
            }
        }
        reply(json!(samples));
    }
    reply(json!({"peak_rss_kib": peak_rss_kib()}));
}

/// One call as the binding makes it. The binding hands the caller plain
/// values; the native side's equivalent is the serialised response.
async fn answer(store: &EmbeddedNexus, call: KipArgs) -> Value {
    let response = store.execute(call, false, &Principal::anonymous()).await;
    store.acknowledge().await.expect("acknowledged");
    serde_json::to_value(&response).expect("response encodes")
}

/// What handing a call to the runtime's workers costs natively, with no
/// Python: the call spawned from this thread, which sleeps until a worker
/// sends the result back, less the same call polled here, paired call by
/// call. Any async door that keeps its caller's loop free pays these two
/// thread wake-ups; `nox -s bench` sets the binding's async overhead beside it.
async fn handoff_differences(
    store: &Arc<EmbeddedNexus>,
    call: impl Fn(usize) -> KipArgs,
    warmup: usize,
    count: usize,
) -> Vec<i64> {
    let mut differences = Vec::with_capacity(count);
    for i in 0..warmup + count {
        let direct_call = call(i);
        let t = Instant::now();
        answer(store, direct_call).await;
        let direct = t.elapsed().as_nanos() as i64;
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let (spawned_store, spawned_call) = (store.clone(), call(i));
        let t = Instant::now();
        tokio::spawn(async move {
            let _ = sender.send(answer(&spawned_store, spawned_call).await);
        });
        // Blocking is the point: this thread waits as a parked caller does.
        receiver.recv().expect("the spawned call answers");
        let spawned = t.elapsed().as_nanos() as i64;
        if i >= warmup {
            differences.push(spawned - direct);
        }
    }
    differences
}

fn reply(value: Value) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{value}").expect("stdout is writable");
    stdout.flush().expect("stdout is writable");
}

/// Peak resident set size of this process (Linux; `null` elsewhere).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
