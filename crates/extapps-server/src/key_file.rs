//! Where the server's key ring comes from: the `EXTAPPS_KEY_RING`
//! environment variable (for orchestrators that inject secrets), a key file
//! (`--key-file`), or, for the embedded SQLite default only, a key file next
//! to the database, created on first start. A PostgreSQL deployment must
//! name its key ring: its replicas have to share it.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use crate::config::GlobalOptions;
use crate::domain::{clock::Clock, key_ring::KeyRing};

/// The key file beside an SQLite database file: `extapps.db` ->
/// `extapps.keys`. `None` for other databases and in-memory SQLite.
pub fn beside_database(database_url: &str) -> Option<PathBuf> {
    sqlite_file(database_url).map(|file| file.with_extension("keys"))
}

/// The file of an SQLite database URL; `None` for in-memory and others.
fn sqlite_file(database_url: &str) -> Option<PathBuf> {
    let rest = database_url.strip_prefix("sqlite:")?;
    let path = rest.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Whether the SQLite database file already exists.
fn database_exists(database_url: &str) -> bool {
    sqlite_file(database_url).is_some_and(|file| file.exists())
}

/// The key file the options name, or the one beside an SQLite database.
pub fn path(global: &GlobalOptions) -> Option<PathBuf> {
    global
        .key_file
        .clone()
        .or_else(|| beside_database(&global.database_url))
}

/// The key ring `serve` runs with; creates the file beside an SQLite
/// database if there is none yet.
pub fn load_for_serving(global: &GlobalOptions, clock: &dyn Clock) -> Result<KeyRing, String> {
    if let Some(text) = &global.key_ring {
        return KeyRing::parse(text).map_err(|e| format!("EXTAPPS_KEY_RING: {e}"));
    }
    if let Some(file) = &global.key_file {
        return read(file);
    }
    match beside_database(&global.database_url) {
        Some(file) if file.exists() => read(&file),
        Some(file) => {
            let ring = KeyRing::generate(clock.now()).map_err(|e| e.to_string())?;
            create(&file, &ring)?;
            if database_exists(&global.database_url) {
                // Right on an upgrade from a version that kept its keys in the
                // database; after a restore without the key file it ends every
                // live token.
                tracing::warn!(file = %file.display(), "the database exists but had no key file beside it: created a new key ring; tokens sealed under another ring are no longer accepted");
            } else {
                tracing::info!(file = %file.display(), "created the key ring (keep it with the database, and secret)");
            }
            Ok(ring)
        }
        None if global.database_url.starts_with("sqlite:") => {
            // An in-memory database lives as long as the process: so may its keys.
            KeyRing::generate(clock.now()).map_err(|e| e.to_string())
        }
        None => Err(
            "a PostgreSQL deployment needs a key ring that every replica shares, and that is \
             not in the database: create one with `extapps-server key-ring create --key-file \
             /etc/extapps/keys.toml`, give every replica that file with `--key-file` (or \
             EXTAPPS_KEY_FILE), or put its content in EXTAPPS_KEY_RING"
                .into(),
        ),
    }
}

/// The key ring for commands that seal nothing (`keys`, `migrate`): the
/// configured one if any, else, for an SQLite database, the one beside it,
/// created with the database; else a throwaway ring.
pub fn load_for_commands(global: &GlobalOptions, clock: &dyn Clock) -> Result<KeyRing, String> {
    if global.key_ring.is_some()
        || global.key_file.is_some()
        || beside_database(&global.database_url).is_some()
    {
        return load_for_serving(global, clock);
    }
    KeyRing::generate(clock.now()).map_err(|e| e.to_string())
}

/// Reads a key file.
pub fn read(file: &Path) -> Result<KeyRing, String> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        format!(
            "cannot read key file {}: {e} (create one with `extapps-server key-ring create`)",
            file.display()
        )
    })?;
    warn_if_readable_by_others(file);
    KeyRing::parse(&text).map_err(|e| format!("key file {}: {e}", file.display()))
}

#[cfg(unix)]
fn warn_if_readable_by_others(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(file)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(file = %file.display(), "the key file is readable by others than its owner: chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

fn options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Writes a new key file (mode 0600); refuses to overwrite one.
pub fn create(file: &Path, ring: &KeyRing) -> Result<(), String> {
    let text = ring.to_toml().map_err(|e| e.to_string())?;
    let mut out = options()
        .open(file)
        .map_err(|e| format!("cannot create key file {}: {e}", file.display()))?;
    out.write_all(text.as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(|e| format!("cannot write key file {}: {e}", file.display()))
}

/// Replaces a key file with `ring`, atomically: a reader sees the old file
/// or the new one, never half of one.
pub fn replace(file: &Path, ring: &KeyRing) -> Result<(), String> {
    let mut staging = file.as_os_str().to_owned();
    staging.push(".new");
    let staging = PathBuf::from(staging);
    let _ = std::fs::remove_file(&staging);
    create(&staging, ring)?;
    keep_owner(file, &staging)?;
    std::fs::rename(&staging, file)
        .map_err(|e| format!("cannot replace key file {}: {e}", file.display()))?;
    // The rename itself is durable only once its directory is.
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Gives `staging` the owner of `file`: rotating as root must not leave a
/// file the server's own user cannot read.
#[cfg(unix)]
fn keep_owner(file: &Path, staging: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(file)
        .map_err(|e| format!("cannot read key file {}: {e}", file.display()))?;
    std::os::unix::fs::chown(staging, Some(meta.uid()), Some(meta.gid()))
        .map_err(|e| format!("cannot give the new key file its owner: {e}"))
}

#[cfg(not(unix))]
fn keep_owner(_: &Path, _: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_sits_beside_an_sqlite_file_only() {
        assert_eq!(
            beside_database("sqlite://extapps.db?mode=rwc"),
            Some(PathBuf::from("extapps.keys"))
        );
        assert_eq!(
            beside_database("sqlite:///var/lib/extapps/data.db"),
            Some(PathBuf::from("/var/lib/extapps/data.keys"))
        );
        assert_eq!(beside_database("sqlite::memory:"), None);
        assert_eq!(beside_database("postgres://u:p@h/db"), None);
    }
}
