//! `proofpool keygen`: the pool's Stratum V2 authority key pair.

use eyre::WrapErr;
use proofpool_pool::sv2::keys::AuthorityKey;
use std::path::PathBuf;

/// Arguments of `proofpool keygen`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where to write the new key pair (TOML, readable by its owner only;
    /// an existing file is never overwritten).
    #[arg(long, default_value = "proofpool-authority.toml")]
    out: PathBuf,
    /// Print the public key of an existing key file instead (after checking
    /// that it is its secret key's).
    #[arg(long, conflicts_with = "out")]
    show: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> eyre::Result<()> {
    let (key, path, made) = match args.show {
        Some(path) => (
            AuthorityKey::read(&path).wrap_err("cannot read the authority key")?,
            path,
            false,
        ),
        None => {
            let key = AuthorityKey::generate()?;
            key.write_new(&args.out).wrap_err(
                "cannot write the authority key (an existing file is never overwritten)",
            )?;
            (key, args.out, true)
        }
    };
    if made {
        println!(
            "wrote a new Stratum V2 authority key pair to {}",
            path.display()
        );
    }
    println!(
        "authority public key (miners and translators pin it, e.g. stratum2+tcp://HOST:PORT/{0}):\n{0}",
        key.public_b58()
    );
    Ok(())
}
