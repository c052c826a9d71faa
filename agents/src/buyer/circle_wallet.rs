//! A Circle developer-controlled wallet as an alloy [`Signer`]: this module owns the Circle W3S client that signs
//! EIP-712 typed data (`POST /v1/w3s/developer/sign/typedData`), the entity-secret ciphertext every such request
//! carries (RSA-OAEP SHA-256 under Circle's entity public key, fetched once and cached, encrypted afresh for each
//! request), the parsing of Circle's answers and errors into a typed [`CircleWalletError`], and the check that
//! what Circle signed recovers to the wallet address this signer was configured with. Circle cannot sign bare
//! hashes, so [`Signer::sign_hash`] is refused and payments go through [`Signer::sign_dynamic_typed_data`], as
//! `protocol::eip3009::sign` does. The API key and the entity secret never appear in `Debug` output or errors.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use alloy::dyn_abi::TypedData;
use alloy::primitives::{Address, B256, ChainId, Signature, U256, hex, uint};
use alloy::signers::{Error as SignerError, Signer, UnsupportedSignerOperation};
use base64::Engine as _;
use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{Oaep, RsaPublicKey};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;
use url::Url;

/// Circle's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.circle.com";

/// How long one request to Circle may take, connection included, unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

const PUBLIC_KEY_PATH: &str = "v1/w3s/config/entity/publicKey";
const SIGN_TYPED_DATA_PATH: &str = "v1/w3s/developer/sign/typedData";

/// The entity secret is 32 bytes.
const ENTITY_SECRET_LEN: usize = 32;

/// Circle's entity key is at least this large; a smaller one is refused rather than trusted with the secret.
const MIN_PUBLIC_KEY_BITS: usize = 2048;

/// The order of secp256k1: `r` and `s` of a valid signature lie in `1..N`.
const SECP256K1_N: U256 = uint!(0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141_U256);

/// How much of a non-JSON error body is kept in [`CircleWalletError::Status`].
const MAX_ERROR_BODY_CHARS: usize = 300;

/// Why Circle did not produce a usable signature.
#[derive(Debug, thiserror::Error)]
pub enum CircleWalletError {
    /// The configuration cannot work (the message never contains a secret).
    #[error("invalid Circle wallet configuration: {0}")]
    Config(String),
    /// Circle could not be reached, or did not answer within the timeout.
    #[error("Circle request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// Circle answered with an error status; `code` and `message` are from its `{"code", "message"}` body.
    #[error("Circle answered HTTP {status}{}: {message}", code_suffix(.code))]
    Status {
        status: u16,
        code: Option<i64>,
        message: String,
    },
    /// Circle answered 2xx, but not with the documented shape.
    #[error("Circle's answer is not the documented shape: {0}")]
    BadAnswer(String),
    /// Circle's entity public key is neither PKCS#1 nor SPKI PEM, or is too small.
    #[error("Circle's entity public key is unusable: {0}")]
    BadPublicKey(String),
    /// RSA-OAEP encryption of the entity secret failed.
    #[error("cannot encrypt the entity secret: {0}")]
    Encrypt(String),
    /// The typed data has no EIP-712 signing hash (so it is not sent to Circle).
    #[error("the typed data cannot be hashed: {0}")]
    TypedData(#[from] alloy::dyn_abi::Error),
    /// Circle's signature is valid but was made by another key than the configured wallet's.
    #[error("Circle's signature recovers to {got}, not to the configured wallet {expected}")]
    WrongSigner { expected: Address, got: Address },
}

fn code_suffix(code: &Option<i64>) -> String {
    code.map(|code| format!(" (code {code})")).unwrap_or_default()
}

/// What a [`CircleWalletSigner`] needs: the API key, the entity secret, and which wallet (its Circle id and its
/// on-chain address). `Debug` redacts the API key and the entity secret.
#[derive(Clone)]
pub struct CircleWalletConfig {
    /// Circle API key, sent as `Authorization: Bearer …`.
    pub api_key: String,
    /// The 32-byte entity secret as 64 hex digits (an optional `0x` is accepted).
    pub entity_secret: String,
    /// Circle's id of the developer-controlled wallet (a UUID).
    pub wallet_id: String,
    /// The wallet's address: every signature must recover to it.
    pub address: Address,
    /// Where Circle's API is; [`DEFAULT_BASE_URL`] unless changed.
    pub base_url: String,
    /// The limit on each request; [`DEFAULT_TIMEOUT`] unless changed.
    pub timeout: Duration,
}

impl CircleWalletConfig {
    /// A configuration against Circle's production API with the default timeout.
    pub fn new(
        api_key: impl Into<String>,
        entity_secret: impl Into<String>,
        wallet_id: impl Into<String>,
        address: Address,
    ) -> Self {
        Self {
            api_key: api_key.into(),
            entity_secret: entity_secret.into(),
            wallet_id: wallet_id.into(),
            address,
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same, against another base URL (a sandbox or a test server).
    #[must_use]
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// The same, with another per-request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl fmt::Debug for CircleWalletConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircleWalletConfig")
            .field("api_key", &"<redacted>")
            .field("entity_secret", &"<redacted>")
            .field("wallet_id", &self.wallet_id)
            .field("address", &self.address)
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A Circle developer-controlled (EOA) wallet that signs EIP-712 typed data through Circle's API. Cloning is
/// cheap and clones share the HTTP client and the cached entity public key.
#[derive(Clone)]
pub struct CircleWalletSigner {
    client: Arc<CircleClient>,
    address: Address,
    chain_id: Option<ChainId>,
}

/// The parts shared between clones. Holds the secrets, so it has no `Debug` of its own.
struct CircleClient {
    http: reqwest::Client,
    base_url: Url,
    api_key: String,
    entity_secret: [u8; ENTITY_SECRET_LEN],
    wallet_id: String,
    timeout: Duration,
    public_key: OnceCell<RsaPublicKey>,
}

impl fmt::Debug for CircleWalletSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircleWalletSigner")
            .field("wallet_id", &self.client.wallet_id)
            .field("address", &self.address)
            .field("chain_id", &self.chain_id)
            .field("base_url", &self.client.base_url.as_str())
            .field("timeout", &self.client.timeout)
            .field("api_key", &"<redacted>")
            .field("entity_secret", &"<redacted>")
            .finish()
    }
}

impl CircleWalletSigner {
    /// A signer with its own HTTP client. Building the client needs a rustls crypto provider installed as the
    /// process default (`rustls::crypto::ring::default_provider().install_default()`).
    pub fn new(config: CircleWalletConfig) -> Result<Self, CircleWalletError> {
        let http = reqwest::Client::builder().build()?;
        Self::with_http_client(config, http)
    }

    /// A signer that sends its requests through `http` (the per-request timeout of the config still applies).
    pub fn with_http_client(config: CircleWalletConfig, http: reqwest::Client) -> Result<Self, CircleWalletError> {
        if config.api_key.trim().is_empty() {
            return Err(CircleWalletError::Config("the API key is empty".to_owned()));
        }
        if config.wallet_id.trim().is_empty() {
            return Err(CircleWalletError::Config("the wallet id is empty".to_owned()));
        }
        if config.timeout.is_zero() {
            return Err(CircleWalletError::Config("the request timeout is zero".to_owned()));
        }
        let entity_secret = parse_entity_secret(&config.entity_secret)?;
        let base_url = parse_base_url(&config.base_url)?;
        Ok(Self {
            client: Arc::new(CircleClient {
                http,
                base_url,
                api_key: config.api_key,
                entity_secret,
                wallet_id: config.wallet_id,
                timeout: config.timeout,
                public_key: OnceCell::new(),
            }),
            address: config.address,
            chain_id: None,
        })
    }

    /// Circle's id of the wallet.
    pub fn wallet_id(&self) -> &str {
        &self.client.wallet_id
    }

    /// Circle's entity public key, fetched on first use and cached for the life of this signer and its clones.
    pub async fn entity_public_key(&self) -> Result<&RsaPublicKey, CircleWalletError> {
        self.client.entity_public_key().await
    }

    /// A fresh `entitySecretCiphertext` (base64 of RSA-OAEP SHA-256 of the entity secret): Circle refuses a
    /// ciphertext it has seen before, so every mutating request needs a new one.
    pub async fn entity_secret_ciphertext(&self) -> Result<String, CircleWalletError> {
        self.client.entity_secret_ciphertext().await
    }

    /// Asks Circle to sign `data` (EIP-712) with this wallet, and checks the signature recovers to the configured
    /// address. The signature is returned in low-`s` form.
    pub async fn sign_typed_data_with_circle(&self, data: &TypedData) -> Result<Signature, CircleWalletError> {
        let hash = data.eip712_signing_hash()?;
        let document = serde_json::to_string(data)
            .map_err(|e| CircleWalletError::BadAnswer(format!("the typed data does not serialize: {e}")))?;
        let signature = self.client.sign_typed_data(document).await?;
        check_signer(&signature, &hash, self.address)?;
        Ok(signature)
    }
}

impl CircleClient {
    fn url(&self, path: &str) -> Result<Url, CircleWalletError> {
        self.base_url
            .join(path)
            .map_err(|e| CircleWalletError::Config(format!("cannot join {path} to the base URL: {e}")))
    }

    async fn entity_public_key(&self) -> Result<&RsaPublicKey, CircleWalletError> {
        self.public_key.get_or_try_init(|| self.fetch_public_key()).await
    }

    async fn fetch_public_key(&self) -> Result<RsaPublicKey, CircleWalletError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct PublicKeyAnswer {
            public_key: String,
        }
        tracing::debug!(base_url = %self.base_url, "fetching Circle's entity public key");
        let response = self
            .http
            .get(self.url(PUBLIC_KEY_PATH)?)
            .bearer_auth(&self.api_key)
            .timeout(self.timeout)
            .send()
            .await?;
        let answer: PublicKeyAnswer = read_data(response).await?;
        parse_public_key(&answer.public_key)
    }

    async fn entity_secret_ciphertext(&self) -> Result<String, CircleWalletError> {
        let key = self.entity_public_key().await?;
        let ciphertext = key
            .encrypt(
                &mut rsa::rand_core::OsRng,
                Oaep::new::<sha2::Sha256>(),
                &self.entity_secret,
            )
            .map_err(|e| CircleWalletError::Encrypt(e.to_string()))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(ciphertext))
    }

    /// A mutating request: `body` gains a fresh `entitySecretCiphertext` and an `idempotencyKey` (UUID v4).
    async fn post_mutation<T: DeserializeOwned>(
        &self,
        path: &str,
        mut body: serde_json::Map<String, serde_json::Value>,
    ) -> Result<T, CircleWalletError> {
        let url = self.url(path)?;
        body.insert(
            "entitySecretCiphertext".to_owned(),
            self.entity_secret_ciphertext().await?.into(),
        );
        body.insert("idempotencyKey".to_owned(), uuid::Uuid::new_v4().to_string().into());
        let response = self
            .http
            .post(url)
            .bearer_auth(&self.api_key)
            .timeout(self.timeout)
            .json(&body)
            .send()
            .await?;
        read_data(response).await
    }

    async fn sign_typed_data(&self, document: String) -> Result<Signature, CircleWalletError> {
        #[derive(Deserialize)]
        struct SignatureAnswer {
            signature: String,
        }
        tracing::debug!(wallet_id = %self.wallet_id, "asking Circle to sign EIP-712 typed data");
        let mut body = serde_json::Map::new();
        body.insert("walletId".to_owned(), self.wallet_id.clone().into());
        body.insert("data".to_owned(), document.into());
        let answer: SignatureAnswer = self.post_mutation(SIGN_TYPED_DATA_PATH, body).await?;
        parse_signature(&answer.signature)
    }
}

/// Circle's `{"data": …}` envelope of a successful answer, or its `{"code", "message"}` error.
async fn read_data<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, CircleWalletError> {
    #[derive(Deserialize)]
    struct Envelope<T> {
        data: T,
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(default)]
        code: Option<serde_json::Value>,
        #[serde(default)]
        message: Option<String>,
    }

    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(error) => (
                error.code.as_ref().and_then(error_code),
                error.message.unwrap_or_else(|| reason(status)),
            ),
            Err(_) => {
                let text = String::from_utf8_lossy(&body);
                let text = text.trim();
                let message = if text.is_empty() {
                    reason(status)
                } else {
                    text.chars().take(MAX_ERROR_BODY_CHARS).collect()
                };
                (None, message)
            }
        };
        return Err(CircleWalletError::Status {
            status: status.as_u16(),
            code,
            message,
        });
    }
    serde_json::from_slice::<Envelope<T>>(&body)
        .map(|envelope| envelope.data)
        .map_err(|e| CircleWalletError::BadAnswer(e.to_string()))
}

/// Circle's error codes are integers; a numeric string is taken too.
fn error_code(code: &serde_json::Value) -> Option<i64> {
    match code {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn reason(status: reqwest::StatusCode) -> String {
    status.canonical_reason().unwrap_or("no message").to_owned()
}

fn parse_entity_secret(text: &str) -> Result<[u8; ENTITY_SECRET_LEN], CircleWalletError> {
    // The decoder's own error names the offending character: it is not passed on, as it is part of the secret.
    let invalid = || CircleWalletError::Config("the entity secret must be 32 bytes written as 64 hex digits".into());
    let bytes = hex::decode(text.trim()).map_err(|_| invalid())?;
    bytes.as_slice().try_into().map_err(|_| invalid())
}

fn parse_base_url(text: &str) -> Result<Url, CircleWalletError> {
    let mut url = Url::parse(text.trim()).map_err(|e| CircleWalletError::Config(format!("base URL {text:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(CircleWalletError::Config(format!(
            "base URL {text:?} is not an http(s) URL"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(CircleWalletError::Config(format!(
            "base URL {text:?} has a query or fragment"
        )));
    }
    // `Url::join` replaces the last segment unless the path ends in a slash.
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Circle's entity public key: PKCS#1 (`BEGIN RSA PUBLIC KEY`, what Circle serves) or SPKI (`BEGIN PUBLIC KEY`).
fn parse_public_key(pem: &str) -> Result<RsaPublicKey, CircleWalletError> {
    let pem = pem.trim();
    let key = if pem.contains("BEGIN RSA PUBLIC KEY") {
        RsaPublicKey::from_pkcs1_pem(pem).map_err(|e| CircleWalletError::BadPublicKey(format!("PKCS#1 PEM: {e}")))?
    } else if pem.contains("BEGIN PUBLIC KEY") {
        RsaPublicKey::from_public_key_pem(pem).map_err(|e| CircleWalletError::BadPublicKey(format!("SPKI PEM: {e}")))?
    } else {
        return Err(CircleWalletError::BadPublicKey(
            "neither a PKCS#1 nor an SPKI PEM public key".to_owned(),
        ));
    };
    let bits = key.size() * 8;
    if bits < MIN_PUBLIC_KEY_BITS {
        return Err(CircleWalletError::BadPublicKey(format!(
            "a {bits}-bit key is smaller than {MIN_PUBLIC_KEY_BITS} bits"
        )));
    }
    Ok(key)
}

/// Circle's 65-byte `r || s || v` hex signature, `v` as 27/28 or 0/1, returned in low-`s` form.
fn parse_signature(text: &str) -> Result<Signature, CircleWalletError> {
    let bytes =
        hex::decode(text.trim()).map_err(|e| CircleWalletError::BadAnswer(format!("the signature is not hex: {e}")))?;
    let bytes: &[u8; 65] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| CircleWalletError::BadAnswer(format!("a signature is 65 bytes, Circle's is {}", bytes.len())))?;
    let y_parity = match bytes[64] {
        0 | 27 => false,
        1 | 28 => true,
        v => {
            return Err(CircleWalletError::BadAnswer(format!(
                "signature v must be 0, 1, 27 or 28, it is {v}"
            )));
        }
    };
    let r = U256::from_be_slice(&bytes[..32]);
    let s = U256::from_be_slice(&bytes[32..64]);
    if r.is_zero() || r >= SECP256K1_N || s.is_zero() || s >= SECP256K1_N {
        return Err(CircleWalletError::BadAnswer(
            "the signature's r or s is outside 1..n".to_owned(),
        ));
    }
    Ok(Signature::new(r, s, y_parity).normalized_s())
}

fn check_signer(signature: &Signature, hash: &B256, expected: Address) -> Result<(), CircleWalletError> {
    let got = signature
        .recover_address_from_prehash(hash)
        .map_err(|e| CircleWalletError::BadAnswer(format!("no address recovers from Circle's signature: {e}")))?;
    if got == expected {
        Ok(())
    } else {
        Err(CircleWalletError::WrongSigner { expected, got })
    }
}

impl From<CircleWalletError> for SignerError {
    fn from(error: CircleWalletError) -> Self {
        match error {
            CircleWalletError::TypedData(e) => SignerError::DynAbiError(e),
            other => SignerError::other(other),
        }
    }
}

/// The future an `#[async_trait]` method returns.
type SignerFuture<'a> = Pin<Box<dyn Future<Output = alloy::signers::Result<Signature>> + Send + 'a>>;

// alloy's `Signer` is an `#[async_trait]` trait; its methods are written here in their expanded form (a boxed
// `Send` future), which spares this crate a dependency on the `async-trait` macro.
impl Signer for CircleWalletSigner {
    /// Refused: Circle signs typed data and messages, never a bare 32-byte hash.
    fn sign_hash<'life0, 'life1, 'async_trait>(&'life0 self, _hash: &'life1 B256) -> SignerFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async { Err(SignerError::UnsupportedOperation(UnsupportedSignerOperation::SignHash)) })
    }

    /// Refused: only EIP-712 typed data is signed through Circle here.
    fn sign_message<'life0, 'life1, 'async_trait>(&'life0 self, _message: &'life1 [u8]) -> SignerFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async {
            Err(SignerError::UnsupportedOperation(
                UnsupportedSignerOperation::SignMessage,
            ))
        })
    }

    /// Signs through Circle's `sign/typedData`; errors are [`CircleWalletError`]s inside [`SignerError::Other`].
    fn sign_dynamic_typed_data<'life0, 'life1, 'async_trait>(
        &'life0 self,
        payload: &'life1 TypedData,
    ) -> SignerFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move { Ok(self.sign_typed_data_with_circle(payload).await?) })
    }

    fn address(&self) -> Address {
        self.address
    }

    fn chain_id(&self) -> Option<ChainId> {
        self.chain_id
    }

    fn set_chain_id(&mut self, chain_id: Option<ChainId>) {
        self.chain_id = chain_id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PKCS1: &str = include_str!("../../tests/fixtures/circle_entity_public.pem");
    const SPKI: &str = include_str!("../../tests/fixtures/circle_entity_public_spki.pem");

    #[test]
    fn both_pem_forms_of_the_entity_key_parse_to_the_same_key() {
        let pkcs1 = parse_public_key(PKCS1).unwrap();
        let spki = parse_public_key(SPKI).unwrap();
        assert_eq!(pkcs1, spki);
        assert!(matches!(
            parse_public_key("hello"),
            Err(CircleWalletError::BadPublicKey(_))
        ));
    }

    #[test]
    fn signatures_with_v_as_27_28_or_0_1_parse_alike() {
        let mut bytes = [0x11u8; 65];
        for (v, parity) in [(27u8, false), (28, true), (0, false), (1, true)] {
            bytes[64] = v;
            let signature = parse_signature(&hex::encode_prefixed(bytes)).unwrap();
            assert_eq!(signature.v(), parity);
            assert_eq!(signature.r(), U256::from_be_slice(&[0x11; 32]));
        }
        bytes[64] = 37;
        assert!(matches!(
            parse_signature(&hex::encode(bytes)),
            Err(CircleWalletError::BadAnswer(_))
        ));
        assert!(matches!(
            parse_signature("0x1234"),
            Err(CircleWalletError::BadAnswer(_))
        ));
        assert!(matches!(parse_signature("0xzz"), Err(CircleWalletError::BadAnswer(_))));
    }

    #[test]
    fn a_high_s_signature_is_returned_in_low_s_form() {
        let mut bytes = [0x80u8; 65];
        bytes[64] = 27;
        let signature = parse_signature(&hex::encode(bytes)).unwrap();
        assert!(signature.normalize_s().is_none());
        assert_eq!(signature.s(), SECP256K1_N - U256::from_be_slice(&[0x80; 32]));
        assert!(signature.v());
        bytes[32..64].copy_from_slice(&[0xff; 32]);
        assert!(matches!(
            parse_signature(&hex::encode(bytes)),
            Err(CircleWalletError::BadAnswer(_))
        ));
    }

    #[test]
    fn the_entity_secret_is_64_hex_digits_and_errors_do_not_echo_it() {
        let secret = "ab".repeat(32);
        assert_eq!(parse_entity_secret(&secret).unwrap(), [0xab; 32]);
        assert_eq!(parse_entity_secret(&format!("0x{secret}")).unwrap(), [0xab; 32]);
        let almost = format!("{}q", "c".repeat(63));
        let error = parse_entity_secret(&almost).unwrap_err().to_string();
        assert!(!error.contains("cc") && !error.contains('q'), "{error}");
        assert!(parse_entity_secret("abcd").is_err());
    }

    #[test]
    fn the_base_url_keeps_its_path_when_endpoints_are_joined() {
        let url = parse_base_url("http://127.0.0.1:1234/circle").unwrap();
        assert_eq!(
            url.join(PUBLIC_KEY_PATH).unwrap().as_str(),
            "http://127.0.0.1:1234/circle/v1/w3s/config/entity/publicKey"
        );
        let url = parse_base_url(DEFAULT_BASE_URL).unwrap();
        assert_eq!(
            url.join(SIGN_TYPED_DATA_PATH).unwrap().as_str(),
            "https://api.circle.com/v1/w3s/developer/sign/typedData"
        );
        assert!(parse_base_url("ftp://example.com").is_err());
        assert!(parse_base_url("not a url").is_err());
    }

    #[test]
    fn circle_error_codes_are_read_from_numbers_or_numeric_strings() {
        assert_eq!(error_code(&serde_json::json!(156004)), Some(156004));
        assert_eq!(error_code(&serde_json::json!("2")), Some(2));
        assert_eq!(error_code(&serde_json::json!("x")), None);
        let error = CircleWalletError::Status {
            status: 401,
            code: Some(401),
            message: "Malformed authorization.".into(),
        };
        assert_eq!(
            error.to_string(),
            "Circle answered HTTP 401 (code 401): Malformed authorization."
        );
    }
}
