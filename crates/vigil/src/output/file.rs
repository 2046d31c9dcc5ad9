//! The export file: size-based rotation (`path`, `path.1` ... `path.N`),
//! created with mode 0600 since events name what users ran.
use std::{
    fs::{self, File, OpenOptions},
    io::{self, BufWriter, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    max_backups: u32,
    size: u64,
    out: BufWriter<File>,
}

impl RotatingFile {
    /// `max_bytes` 0 disables rotation.
    pub fn open(path: &Path, max_bytes: u64, max_backups: u32) -> io::Result<Self> {
        let file = open_0600(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_owned(),
            max_bytes,
            max_backups,
            size,
            out: BufWriter::with_capacity(1 << 16, file),
        })
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self.max_backups == 0 {
            fs::remove_file(&self.path)?;
        } else {
            for n in (1..self.max_backups).rev() {
                let from = backup(&self.path, n);
                if from.exists() {
                    fs::rename(&from, backup(&self.path, n + 1))?;
                }
            }
            fs::rename(&self.path, backup(&self.path, 1))?;
        }
        self.out = BufWriter::with_capacity(1 << 16, open_0600(&self.path)?);
        self.size = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    /// Callers write whole lines, so a rotation never splits one.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.max_bytes > 0 && self.size > 0 && self.size + buf.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.out.write_all(buf)?;
        self.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn backup(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn open_0600(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn rotates_by_size_and_keeps_n_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.log");
        let mut f = RotatingFile::open(&path, 100, 2).unwrap();
        for i in 0..10 {
            f.write_all(format!("{:039}\n", i).as_bytes()).unwrap();
        }
        f.flush().unwrap();
        let lines = |p: &Path| fs::read_to_string(p).unwrap().lines().count();
        assert_eq!(lines(&path), 2);
        assert_eq!(lines(&backup(&path, 1)), 2);
        assert_eq!(lines(&backup(&path, 2)), 2);
        assert!(!backup(&path, 3).exists());
        assert!(fs::read_to_string(&path).unwrap().ends_with("0009\n"));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
