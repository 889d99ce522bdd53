//! Records the versions of the anda crates this build links, read from the
//! workspace `Cargo.lock`, so they can be reported at run time without a
//! hand-maintained copy that could drift from the lock file.
use std::{env, fs, path::PathBuf};

const CRATES: [(&str, &str); 4] = [
    ("anda_engine", "ANDA_ENGINE_VERSION"),
    ("anda_kip", "ANDA_KIP_VERSION"),
    ("anda_cognitive_nexus", "ANDA_COGNITIVE_NEXUS_VERSION"),
    ("anda_db", "ANDA_DB_VERSION"),
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let lock_path = manifest_dir
        .ancestors()
        .map(|dir| dir.join("Cargo.lock"))
        .find(|path| path.exists())
        .expect("Cargo.lock not found above the crate");
    println!("cargo:rerun-if-changed={}", lock_path.display());
    let lock = fs::read_to_string(&lock_path).expect("Cargo.lock is readable");
    for (name, var) in CRATES {
        let version = locked_version(&lock, name)
            .unwrap_or_else(|| panic!("{name} is not in {}", lock_path.display()));
        println!("cargo:rustc-env={var}={version}");
    }
}

fn locked_version(lock: &str, name: &str) -> Option<String> {
    let header = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == header {
            let version = lines.next()?.trim();
            return Some(
                version
                    .strip_prefix("version = \"")?
                    .strip_suffix('"')?
                    .to_string(),
            );
        }
    }
    None
}
