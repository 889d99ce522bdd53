//! Schema Packages a host installs on top of the bootstrap profile.
//!
//! Additive, unlike the engine's `install_and_activate` (whose lock names
//! exactly the packages given): a package activated once stays in force when
//! a later open does not list it, so vocabulary is never withdrawn from under
//! stored data by leaving a flag off. Every check runs before the first
//! write, so a refused package leaves the store as it was.

// KipError is the engine's own error, which every engine call here returns unboxed.
#![allow(clippy::result_large_err)]
use anda_cognitive_nexus::{
    CognitiveNexus,
    nexus::DEFAULT_SPACE,
    schema::{
        PackageState, SchemaEnvironment, SchemaLock, SchemaPackage, contracts, symbol::SymbolKind,
    },
};
use anda_kip::{KipError, KipErrorCode};
use serde_json::{Value, json};
use std::sync::Arc;

const SYMBOL_KINDS: [SymbolKind; 5] = [
    SymbolKind::ConceptType,
    SymbolKind::PredicateType,
    SymbolKind::Facet,
    SymbolKind::StructuralField,
    SymbolKind::Enum,
];

/// One Schema Package artifact (JSON text) and where it came from (a file
/// path, or a label), recorded on the installed package row.
#[derive(Clone, Debug)]
pub struct PackageSource {
    pub source: String,
    pub artifact: String,
}

/// Installs `packages` and, with `activate`, adds them to the default
/// Space's Schema Lock beside everything already in force. Returns
/// `{"installed": [refs], "schema_environment_version": n, "active": {id: version}}`.
pub async fn install(
    nexus: &CognitiveNexus,
    packages: &[PackageSource],
    activate: bool,
) -> Result<Value, KipError> {
    let mut parsed = Vec::with_capacity(packages.len());
    for entry in packages {
        let package = SchemaPackage::parse(&entry.artifact)
            .and_then(|package| {
                contracts::verify_artifact(&package.artifact()?)?;
                contracts::validate_package(&package)?;
                Ok(package)
            })
            .map_err(|err| in_package(&entry.source, err))?;
        parsed.push((entry, package));
    }

    let current = nexus.store.schema_environment(DEFAULT_SPACE).await?;
    let mut available = nexus.store.installed_packages().await?;
    let mut lock = current.lock.clone();
    let mut installed = Vec::with_capacity(parsed.len());
    for (entry, package) in &parsed {
        let package_ref = package.package_ref()?;
        let key = package_ref.to_string();
        if let Some(existing) = available.get(&key)
            && digest(existing)? != digest(package)?
        {
            return Err(in_package(
                &entry.source,
                KipError::new(
                    KipErrorCode::DigestMismatch,
                    format!(
                        "{key} is already installed with different content; a package version \
                         is immutable, so publish the change under a new version"
                    ),
                ),
            ));
        }
        available.insert(key.clone(), Arc::new(package.clone()));
        if activate {
            lock.packages.insert(
                package_ref.package_id.clone(),
                package_ref.version.to_string(),
            );
            lock.states
                .insert(package_ref.package_id.clone(), PackageState::Active);
        }
        installed.push(key);
    }

    // Resolved before anything is written: the lock must name installable,
    // valid packages, and no local name may mean two things.
    let environment = SchemaEnvironment::resolve(current.version + 1, lock.clone(), &available)?;
    for (entry, package) in &parsed {
        check_names(&environment, &lock, package).map_err(|err| in_package(&entry.source, err))?;
    }

    for (entry, package) in &parsed {
        nexus
            .install_package(package, &entry.source)
            .await
            .map_err(|err| in_package(&entry.source, err))?;
    }
    let environment = if activate {
        nexus.ensure_schema(DEFAULT_SPACE, lock).await?
    } else {
        current
    };
    Ok(json!({
        "installed": installed,
        "schema_environment_version": environment.version,
        "active": environment.lock.packages,
    }))
}

/// Refuses a package whose local names another package in the lock also
/// defines: a bare `Product` would stop resolving (`SchemaSymbolAmbiguous`)
/// for every command that used it.
fn check_names(
    environment: &SchemaEnvironment,
    lock: &SchemaLock,
    package: &SchemaPackage,
) -> Result<(), KipError> {
    let own = package.package_ref()?;
    for (package_id, version) in &lock.packages {
        if *package_id == own.package_id {
            continue;
        }
        let other_ref = format!("{package_id}@{version}");
        let Some(other) = environment.artifact(&other_ref) else {
            continue;
        };
        for kind in SYMBOL_KINDS {
            if let Some(name) = package
                .symbols(kind)
                .into_iter()
                .find(|name| other.defines(kind, name))
            {
                return Err(KipError::new(
                    KipErrorCode::SchemaSymbolConflict,
                    format!(
                        "{own} defines {name:?} ({}), which {other_ref} already defines in this \
                         store; rename it in the package",
                        kind.section()
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn digest(package: &SchemaPackage) -> Result<String, KipError> {
    Ok(anda_cognitive_nexus::store::schema::content_digest(
        &package.artifact()?,
    ))
}

fn in_package(source: &str, err: KipError) -> KipError {
    KipError::new(
        err.code,
        format!("schema package from {source}: {}", err.message),
    )
}
