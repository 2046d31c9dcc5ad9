//! Policies added over the API, kept on disk so that they come back when the
//! agent restarts (`--persist-grpc-policies`): `<name>.yaml` holds the text
//! as it was added, `<name>.disabled` marks one that was disabled.
use std::{
    fs,
    io::{self, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

pub struct PersistedPolicies {
    dir: PathBuf,
}

/// One policy found on disk at start.
pub struct Persisted {
    pub path: PathBuf,
    pub yaml: String,
    pub disabled: bool,
}

impl PersistedPolicies {
    /// Creates the directory (0700) if needed.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        Ok(PersistedPolicies {
            dir: dir.to_owned(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every persisted policy, in name order.
    pub fn load(&self) -> io::Result<Vec<Persisted>> {
        let mut paths: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        paths.sort();
        paths
            .into_iter()
            .map(|path| {
                let yaml = fs::read_to_string(&path)?;
                let disabled = path.with_extension("disabled").exists();
                Ok(Persisted {
                    path,
                    yaml,
                    disabled,
                })
            })
            .collect()
    }

    /// Writes the policy's text (to a temporary file renamed into place, so
    /// a crash never leaves half a policy).
    pub fn save(&self, name: &str, yaml: &str) -> io::Result<()> {
        let path = self.path(name, "yaml");
        let tmp = self.path(name, "yaml.tmp");
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(yaml.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, &path)?;
        self.set_disabled(name, false)
    }

    pub fn forget(&self, name: &str) -> io::Result<()> {
        remove_if_present(&self.path(name, "yaml"))?;
        self.set_disabled(name, false)
    }

    pub fn set_disabled(&self, name: &str, disabled: bool) -> io::Result<()> {
        let marker = self.path(name, "disabled");
        if disabled {
            fs::write(marker, b"")
        } else {
            remove_if_present(&marker)
        }
    }

    fn path(&self, name: &str, extension: &str) -> PathBuf {
        self.dir.join(format!("{}.{extension}", file_stem(name)))
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A file name for a policy name: itself when it is a plain Kubernetes
/// name, else hex, so that no name can point outside the directory.
fn file_stem(name: &str) -> String {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if plain {
        name.to_owned()
    } else {
        let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
        format!("x-{hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_policies_come_back_with_their_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = PersistedPolicies::open(&dir.path().join("grpc")).unwrap();
        store.save("b-policy", "b").unwrap();
        store.save("a-policy", "a").unwrap();
        store.set_disabled("b-policy", true).unwrap();
        let found = store.load().unwrap();
        let seen: Vec<(&str, bool)> = found
            .iter()
            .map(|p| (p.yaml.as_str(), p.disabled))
            .collect();
        assert_eq!(seen, [("a", false), ("b", true)]);
        store.forget("b-policy").unwrap();
        assert_eq!(store.load().unwrap().len(), 1);
        assert_eq!(fs::read_dir(store.dir()).unwrap().count(), 1);
    }

    #[test]
    fn hostile_names_stay_inside_the_directory() {
        assert_eq!(file_stem("net-egress.v2"), "net-egress.v2");
        assert_eq!(file_stem("../etc/passwd"), "x-2e2e2f6574632f706173737764");
        assert_eq!(file_stem(".hidden"), "x-2e68696464656e");
    }
}
