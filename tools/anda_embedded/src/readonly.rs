//! Refusing a write on a store opened read-only.
//!
//! The engine refuses a state-changing command sent to a read-only call
//! itself; installing a Schema Package and importing a Capsule are not
//! commands, so the store refuses them here, before anything runs. The
//! refusal is a `ReadonlyViolation` of anda's own: its message says what was
//! refused and it carries no hint, where the engine's would tell an agent to
//! re-send KML through another endpoint.
use anda_kip::KipErrorCode;
use serde_json::{Value, json};

/// A write that is not a KIP command, refused on a read-only store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreWrite {
    InstallSchemaPackage,
    ImportCapsule,
}

impl StoreWrite {
    fn what(self) -> &'static str {
        match self {
            StoreWrite::InstallSchemaPackage => "install a schema package",
            StoreWrite::ImportCapsule => "import a capsule",
        }
    }
}

/// Why a write was refused: the store is read-only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadonlyRefusal {
    message: String,
}

impl ReadonlyRefusal {
    /// What the refusal says.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The refusal as a failed KIP response: code, category and message.
    pub fn response(&self) -> Value {
        let code = KipErrorCode::ReadonlyViolation;
        json!({
            "status": "failed",
            "error": {
                "code": code.name(),
                "category": code.category(),
                "message": self.message,
            },
        })
    }
}

/// Refuses `write` when the store was opened `readonly`.
pub fn refuse_if_readonly(readonly: bool, write: StoreWrite) -> Result<(), ReadonlyRefusal> {
    if !readonly {
        return Ok(());
    }
    Err(ReadonlyRefusal {
        message: format!("this Nexus is read-only: cannot {}", write.what()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_store_refuses_with_anda_s_own_error() {
        assert_eq!(refuse_if_readonly(false, StoreWrite::ImportCapsule), Ok(()));
        let refused = refuse_if_readonly(true, StoreWrite::InstallSchemaPackage).unwrap_err();
        assert_eq!(
            refused.response(),
            json!({
                "status": "failed",
                "error": {
                    "code": "ReadonlyViolation",
                    "category": "protocol",
                    "message": "this Nexus is read-only: cannot install a schema package",
                },
            })
        );
        let refused = refuse_if_readonly(true, StoreWrite::ImportCapsule).unwrap_err();
        assert_eq!(
            refused.message(),
            "this Nexus is read-only: cannot import a capsule"
        );
    }
}
