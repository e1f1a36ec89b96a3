//! `hotline`: the binary. Reads the command line and config, then runs a
//! subcommand (see ../shared/CONTRACT.md and `hotline --help`).

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use hotline::admin;
use hotline::cli::{Cli, Command, TokenCommand, UserCommand};
use hotline::config::{Config, LogFormat};
use hotline::serve;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.config, &cli.overrides()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hotline: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    match cli.command {
        Command::Check => {
            println!("{}: ok", cli.config.display());
            let (lines, ok) = hotline::prompts::check(&config);
            for line in lines {
                println!("{line}");
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Command::Serve => {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("hotline: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(serve_main(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hotline: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Migrate | Command::User(_) | Command::Token(_) => {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("hotline: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let result = rt.block_on(async {
                match &cli.command {
                    Command::Migrate => admin::migrate(&config).await,
                    Command::User(UserCommand::Add(args)) => admin::user_add(&config, args).await,
                    Command::Token(TokenCommand::Create { name }) => {
                        admin::token_create(&config, name).await
                    }
                    _ => Ok(()),
                }
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hotline: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve_main(config: Config) -> anyhow::Result<()> {
    let listeners = serve::Listeners::bind(&config).await?;
    {
        let mut out = std::io::stdout().lock();
        for line in listeners.describe()? {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }
    serve::run(config, listeners, serve::signal()).await
}

/// Human logs by default, JSON with `log.format = "json"` / `--log-format json`;
/// `RUST_LOG` wins over `log.filter`. Logs go to stderr; stdout carries only
/// the listener lines.
fn init_logging(config: &Config) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}
