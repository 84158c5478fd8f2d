//! `latchkey-permissions [CONFIG]`: the permission API (docs/permission-api.md). The configuration
//! file is the first argument or `LATCHKEY_PERMISSIONS_CONFIG`.

use std::{path::PathBuf, process::ExitCode};

use latchkey::permission::{PermissionApi, PermissionConfig, http};

#[actix_web::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let Some(path) = std::env::args_os().nth(1).or_else(|| std::env::var_os("LATCHKEY_PERMISSIONS_CONFIG")).map(PathBuf::from) else {
        eprintln!("usage: latchkey-permissions CONFIG.toml (or LATCHKEY_PERMISSIONS_CONFIG)");
        return ExitCode::from(2);
    };
    let api = match PermissionConfig::load(&path) {
        Ok(config) => match PermissionApi::start(config).await {
            Ok(api) => api,
            Err(error) => {
                eprintln!("latchkey-permissions: {error}");
                return ExitCode::FAILURE;
            }
        },
        Err(error) => {
            eprintln!("latchkey-permissions: {error}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(listen = %api.config.listen, resource = %api.config.resource, "permission API ready");
    match http::serve(api).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("latchkey-permissions: {error}");
            ExitCode::FAILURE
        }
    }
}
