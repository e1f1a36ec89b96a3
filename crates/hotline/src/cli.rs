//! Command line (clap): global flags that override the config file, and the subcommands.
//!
//! Flag values are parsed into the config's types ([`SocketAddr`], [`RtpPorts`], [`DatabaseUrl`],
//! [`LogFormat`]) by clap, so a bad value is reported by clap naming the flag
//! (`invalid value '9-1' for '--rtp-ports <LOW-HIGH>': …`) before any file is read.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{self, DatabaseUrl, LogFormat, Overrides, RtpPorts};

/// Counter-trafficking hotline: SIP IVR, operator queue and console in one process.
#[derive(Debug, Parser)]
#[command(name = "hotline", version, propagate_version = true)]
pub struct Cli {
    /// Configuration file. If it is the default and missing, defaults are used.
    #[arg(long, global = true, value_name = "FILE", default_value = config::DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,

    /// SIP listen address for UDP and TCP (overrides sip.listen). Port 0 picks a free port.
    #[arg(long, global = true, value_name = "ADDR:PORT")]
    pub sip: Option<SocketAddr>,

    /// Console and API listen address (overrides http.listen). Port 0 picks a free port.
    #[arg(long, global = true, value_name = "ADDR:PORT")]
    pub http: Option<SocketAddr>,

    /// UDP ports for RTP, inclusive (overrides rtp.port_range).
    #[arg(long, global = true, value_name = "LOW-HIGH")]
    pub rtp_ports: Option<RtpPorts>,

    /// Directory for recordings and the default SQLite file (overrides storage.data_dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// sqlite://… or postgres://… (overrides storage.database_url).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<DatabaseUrl>,

    /// Prompts directory, holding LANG/PROMPT-ID.wav (overrides ivr.prompts_dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub prompts: Option<PathBuf>,

    /// Log line format (overrides log.format).
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run everything: SIP/RTP, IVR, operator queue, console. Applies migrations first.
    Serve,
    /// Validate config, flow and prompts; exit non-zero naming the file and key that is wrong.
    Check,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage console users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `hotline user …`
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum UserCommand {
    /// Create a console user; prints a generated password once unless --password-stdin is given.
    Add(UserAdd),
}

/// `hotline user add NAME --role ROLE [--password-stdin]`
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct UserAdd {
    /// User name; an operator's softphone registers as sip:NAME@DOMAIN (sip.domain).
    pub name: String,
    /// What the user may do in the console.
    #[arg(long)]
    pub role: Role,
    /// Read the password from the first line of standard input instead of generating one.
    #[arg(long)]
    pub password_stdin: bool,
}

/// A console user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Role {
    /// Takes calls; sees only what the operator views need.
    Operator,
    /// Also sees and reviews recordings.
    Supervisor,
    /// Also manages users.
    Admin,
}

/// `hotline token …`
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum TokenCommand {
    /// Print a new API token for a user (`Authorization: Bearer TOKEN`).
    Create {
        /// The user the token acts as.
        name: String,
    },
}

impl Cli {
    /// The flags that replace values from the config file.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            sip_listen: self.sip,
            http_listen: self.http,
            rtp_ports: self.rtp_ports,
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            prompts_dir: self.prompts.clone(),
            log_format: self.log_format,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("hotline").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_with_defaults() {
        let cli = parse(&["serve"]).unwrap();
        assert_eq!(cli.command, Command::Serve);
        assert_eq!(cli.config, PathBuf::from(config::DEFAULT_CONFIG_PATH));
        assert_eq!(cli.sip, None);
        assert_eq!(cli.rtp_ports, None);
    }

    #[test]
    fn global_flags_before_or_after_the_subcommand() {
        let args = [
            "--sip",
            "127.0.0.1:0",
            "--http=127.0.0.1:0",
            "--rtp-ports",
            "40000-40100",
            "--data-dir",
            "/tmp/d",
            "--database-url",
            "postgres://db/hotline",
            "--prompts",
            "/tmp/p",
            "--log-format",
            "json",
            "--config",
            "/etc/hotline.toml",
        ];
        let before: Vec<&str> = args.iter().copied().chain(["check"]).collect();
        let after: Vec<&str> = ["check"].into_iter().chain(args.iter().copied()).collect();
        for argv in [before, after] {
            let cli = parse(&argv).unwrap();
            assert_eq!(cli.command, Command::Check);
            assert_eq!(cli.config, PathBuf::from("/etc/hotline.toml"));
            let o = cli.overrides();
            assert_eq!(o.sip_listen, Some("127.0.0.1:0".parse().unwrap()));
            assert_eq!(o.http_listen, Some("127.0.0.1:0".parse().unwrap()));
            assert_eq!(o.rtp_ports, Some(RtpPorts::new(40000, 40100).unwrap()));
            assert_eq!(o.data_dir, Some(PathBuf::from("/tmp/d")));
            assert_eq!(
                o.database_url.as_ref().map(DatabaseUrl::as_str),
                Some("postgres://db/hotline")
            );
            assert_eq!(o.prompts_dir, Some(PathBuf::from("/tmp/p")));
            assert_eq!(o.log_format, Some(LogFormat::Json));
        }
    }

    #[test]
    fn bad_flag_values_name_the_flag() {
        for (flag, value) in [
            ("--rtp-ports", "9-1"),
            ("--rtp-ports", "10000"),
            ("--sip", "localhost:5060"),
            ("--http", "8080"),
            ("--database-url", "mysql://db/x"),
            ("--database-url", ""),
            ("--log-format", "xml"),
        ] {
            let e = parse(&[flag, value, "serve"]).unwrap_err();
            assert!(
                matches!(
                    e.kind(),
                    ErrorKind::InvalidValue | ErrorKind::ValueValidation
                ),
                "{flag} {value}: {e}"
            );
            assert!(e.to_string().contains(&format!("for '{flag} ")), "{e}");
        }
    }

    #[test]
    fn user_add_and_token_create() {
        let cli = parse(&[
            "user",
            "add",
            "ana",
            "--role",
            "supervisor",
            "--password-stdin",
        ])
        .unwrap();
        let expected = UserAdd {
            name: "ana".into(),
            role: Role::Supervisor,
            password_stdin: true,
        };
        assert_eq!(cli.command, Command::User(UserCommand::Add(expected)));
        let cli = parse(&["user", "add", "luis", "--role", "operator"]).unwrap();
        let Command::User(UserCommand::Add(add)) = cli.command else {
            panic!("not user add")
        };
        assert!(!add.password_stdin);
        assert!(
            parse(&["user", "add", "luis"]).is_err(),
            "--role is required"
        );
        assert!(parse(&["user", "add", "luis", "--role", "root"]).is_err());
        let cli = parse(&["token", "create", "ana"]).unwrap();
        assert_eq!(
            cli.command,
            Command::Token(TokenCommand::Create { name: "ana".into() })
        );
    }

    #[test]
    fn a_subcommand_is_required() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--sip", "127.0.0.1:0"]).is_err());
    }
}
