//! Who a call runs as: a caller id turned into the Principal the engine binds.
use candid::Principal;

/// Prefix that keeps derived Principals apart from self-authenticating ones
/// made from real public keys.
const DERIVED_CALLER_DOMAIN: &[u8] = b"anda-caller-id:";

/// The Principal a caller id stands for.
///
/// A principal's text form (`"2vxsx-fae"`, `"aaaaa-aa"`, ...) is that
/// Principal. Any other string is hashed into a self-authenticating Principal
/// (SHA-224 of a fixed domain prefix and the id's UTF-8 bytes), so the same id
/// always reaches the same memory and two different ids never share one.
pub fn caller_principal(id: &str) -> Principal {
    Principal::from_text(id).unwrap_or_else(|_| {
        let mut input = Vec::with_capacity(DERIVED_CALLER_DOMAIN.len() + id.len());
        input.extend_from_slice(DERIVED_CALLER_DOMAIN);
        input.extend_from_slice(id.as_bytes());
        Principal::self_authenticating(input)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_text_is_that_principal() {
        assert_eq!(caller_principal("2vxsx-fae"), Principal::anonymous());
        assert_eq!(
            caller_principal("aaaaa-aa"),
            Principal::management_canister()
        );
    }

    #[test]
    fn other_ids_are_derived_deterministically_and_apart() {
        assert_eq!(caller_principal("alice"), caller_principal("alice"));
        assert_ne!(caller_principal("alice"), caller_principal("bob"));
        assert_ne!(caller_principal(""), Principal::anonymous());
    }
}
