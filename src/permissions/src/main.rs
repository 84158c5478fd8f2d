//! `latchkey-permissions [CONFIG]`: the permission API (docs/permission-api.md). The configuration
//! file is the first argument or `LATCHKEY_PERMISSIONS_CONFIG`.

use std::{ffi::OsString, path::PathBuf, process::ExitCode};

use latchkey_permissions::{PermissionApi, PermissionConfig, http};

const USAGE: &str = "usage: latchkey-permissions CONFIG.toml (or LATCHKEY_PERMISSIONS_CONFIG)

The permission API: verifies Latchkey access tokens offline, decides each tool call by the
configuration's rules, signs a receipt and writes an audit row. See docs/permission-api.md.

Options:
  -h, --help     print this and exit
  -V, --version  print the version and exit";

/// What the command line asks for.
enum Invocation {
    Run(PathBuf),
    Help,
    Version,
    Usage(String),
}

fn invocation(args: &[OsString], env_config: Option<OsString>) -> Invocation {
    match args {
        [] => env_config.map_or_else(|| Invocation::Usage("no configuration file".into()), |p| Invocation::Run(p.into())),
        [one] if one == "-h" || one == "--help" => Invocation::Help,
        [one] if one == "-V" || one == "--version" => Invocation::Version,
        [one] if one.to_string_lossy().starts_with('-') => Invocation::Usage(format!("unknown option {}", one.to_string_lossy())),
        [one] => Invocation::Run(one.into()),
        _ => Invocation::Usage("one configuration file, nothing else".into()),
    }
}

#[actix_web::main]
async fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let path = match invocation(&args, std::env::var_os("LATCHKEY_PERMISSIONS_CONFIG")) {
        Invocation::Run(path) => path,
        Invocation::Help => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Invocation::Version => {
            println!("latchkey-permissions {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Invocation::Usage(why) => {
            eprintln!("latchkey-permissions: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
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
