//! The server side of the SASL mechanisms, on rsasl: the principal a PLAIN password or a SCRAM
//! proof identifies.
//!
//! PLAIN compares the password with the principal's token ([`Credentials::by_name_and_secret`]).
//! SCRAM never sees a password: at start every principal's first token is turned into the
//! salted keys RFC 5802 stores (a random salt per start and [`SCRAM_ITERATIONS`] rounds of
//! PBKDF2, for SHA-256 and SHA-512), and rsasl checks the client's proof against them, so a
//! client needs only the token, as with PLAIN.

use std::collections::HashMap;
use std::sync::Arc;

use rsasl::callback::{Context, Request, SessionCallback, SessionData};
use rsasl::mechanisms::scram::properties::ScramStoredPassword;
use rsasl::mechanisms::scram::tools::{derive_keys, hash_password};
use rsasl::prelude::SessionError;
use rsasl::property::{AuthId, AuthzId, Password};
use rsasl::validate::{Validate, Validation, ValidationError};
use sha2::digest::core_api::BlockSizeUser;
use sha2::digest::generic_array::GenericArray;
use sha2::digest::FixedOutputReset;
use sha2::{Digest, Sha256, Sha512};
use spindle_engine::access::{Credentials, Principal};

/// PBKDF2 rounds of the SCRAM keys: Kafka's minimum, and what its tools use by default.
pub(crate) const SCRAM_ITERATIONS: u32 = 4096;

/// What a finished exchange yields: the principal, or `None` for wrong credentials.
pub(crate) struct Authenticated;

impl Validation for Authenticated {
    type Value = Option<Principal>;
}

/// One digest's stored keys.
struct ScramKeys {
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

/// A principal's SCRAM credentials.
struct ScramEntry {
    principal: Principal,
    salt: [u8; 16],
    sha256: ScramKeys,
    sha512: ScramKeys,
}

/// The rsasl callback: answers SCRAM's request for a user's stored keys and decides who a
/// finished exchange authenticated.
pub(crate) struct Authority {
    credentials: Arc<Credentials>,
    scram: HashMap<String, ScramEntry>,
}

impl Authority {
    /// Derives every principal's SCRAM keys from its first token.
    pub fn new(credentials: Arc<Credentials>) -> Self {
        let mut scram = HashMap::new();
        for (token, principal) in credentials.entries() {
            if scram.contains_key(principal.name()) {
                continue;
            }
            let salt: [u8; 16] = rand::random();
            let entry = ScramEntry {
                principal: principal.clone(),
                salt,
                sha256: scram_keys::<Sha256>(token, &salt),
                sha512: scram_keys::<Sha512>(token, &salt),
            };
            scram.insert(principal.name().to_owned(), entry);
        }
        Self { credentials, scram }
    }
}

fn scram_keys<D>(password: &[u8], salt: &[u8]) -> ScramKeys
where
    D: Digest + BlockSizeUser + FixedOutputReset + Clone + Sync,
{
    let mut salted = GenericArray::default();
    hash_password::<D>(password, SCRAM_ITERATIONS, salt, &mut salted);
    let (client_key, server_key) = derive_keys::<D>(salted.as_slice());
    ScramKeys {
        stored_key: D::digest(client_key).to_vec(),
        server_key: server_key.to_vec(),
    }
}

impl SessionCallback for Authority {
    fn callback(
        &self,
        session_data: &SessionData,
        context: &Context,
        request: &mut Request<'_>,
    ) -> Result<(), SessionError> {
        let Some(entry) = context.get_ref::<AuthId>().and_then(|u| self.scram.get(u)) else {
            // An unknown user: rsasl answers SCRAM's unknown-user error.
            return Ok(());
        };
        let keys = match &**session_data.mechanism().mechanism {
            "SCRAM-SHA-256" => &entry.sha256,
            "SCRAM-SHA-512" => &entry.sha512,
            _ => return Ok(()),
        };
        request.satisfy::<ScramStoredPassword>(&ScramStoredPassword::new(
            SCRAM_ITERATIONS,
            &entry.salt,
            &keys.stored_key,
            &keys.server_key,
        ))?;
        Ok(())
    }

    fn validate(
        &self,
        session_data: &SessionData,
        context: &Context,
        validate: &mut Validate<'_>,
    ) -> Result<(), ValidationError> {
        let user = context.get_ref::<AuthId>().unwrap_or_default();
        // Acting as another identity is not offered: an authorization id must be the user's own.
        let own = context
            .get_ref::<AuthzId>()
            .is_none_or(|z| z.is_empty() || z == user);
        let principal = if !own || user.is_empty() {
            None
        } else if &**session_data.mechanism().mechanism == "PLAIN" {
            context
                .get_ref::<Password>()
                .and_then(|password| self.credentials.by_name_and_secret(user, password))
                .cloned()
        } else {
            // SCRAM validates only once the client's proof has matched the stored keys.
            self.scram.get(user).map(|e| e.principal.clone())
        };
        validate.with::<Authenticated, _>(|| Ok(principal))?;
        Ok(())
    }
}
