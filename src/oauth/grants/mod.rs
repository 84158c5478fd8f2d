//! One file per grant type (RFC 6749 §4.1.3, §6, §4.4; RFC 8693; RFC 8628; OpenID CIBA Core).

pub mod authorization_code;
pub mod ciba;
pub mod device_code;
pub mod client_credentials;
pub mod refresh_token;
pub mod token_exchange;
