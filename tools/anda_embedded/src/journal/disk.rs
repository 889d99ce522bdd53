//! Every change the journal makes to a store directory, in one place.
//!
//! The journal's appends and syncs and a checkpoint's files all go through
//! [`Disk`], so that the power-cut harness (`tools/reliability/powercut.py`)
//! can record them: with `ANDA_POWERCUT_TRACE` naming a file, each change is
//! written there as one JSON line as it is made, and the harness builds
//! the disk states a power cut could leave from that record.
use super::format::Sealed;
use std::{
    fs::{self, File, OpenOptions},
    io::{self, IoSlice, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

/// Names the file a run's changes are recorded to (the power-cut harness).
const TRACE_VARIABLE: &str = "ANDA_POWERCUT_TRACE";
/// A file being written by a checkpoint: hidden from listings, which skip
/// names ending in `#` and digits, as object_store's own staging files.
const STAGING_SUFFIX: &str = "#0";

pub(crate) struct Disk {
    root: PathBuf,
    trace: Option<Mutex<File>>,
}

impl Disk {
    pub(crate) fn new(root: &Path) -> Self {
        let trace = std::env::var_os(TRACE_VARIABLE).and_then(|path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .ok()
                .map(Mutex::new)
        });
        Self {
            root: root.to_path_buf(),
            trace,
        }
    }

    /// Whether this run's changes are recorded (the power-cut harness).
    pub(crate) fn traced(&self) -> bool {
        self.trace.is_some()
    }

    /// Records one change (a JSON object's members) as it is made.
    fn record(&self, members: std::fmt::Arguments<'_>) {
        if let Some(trace) = &self.trace {
            let mut trace = trace.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(trace, "{{{members}}}");
        }
    }

    fn relative<'a>(&self, path: &'a Path) -> std::borrow::Cow<'a, str> {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .to_string_lossy()
    }

    /// Opens `name` at the top of the directory for appending, creating it.
    pub(crate) fn open_append(&self, name: &str) -> io::Result<File> {
        self.record(format_args!(r#""op":"create","path":{name:?}"#));
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join(name))
    }

    /// Appends `batch` at `offset`, the end of `file` (named `name`).
    pub(crate) fn append(
        &self,
        file: &mut File,
        name: &str,
        offset: u64,
        batch: &Sealed,
    ) -> io::Result<()> {
        self.record(format_args!(
            r#""op":"write","path":{name:?},"offset":{offset},"data":"{}""#,
            Hex(batch)
        ));
        let mut slices: Vec<IoSlice<'_>> = batch.slices().map(IoSlice::new).collect();
        let mut left = &mut slices[..];
        while !left.is_empty() {
            match file.write_vectored(left) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => IoSlice::advance_slices(&mut left, written),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Makes `name` at the top of the directory a file of `len` zeros,
    /// synced, for a journal to be written into later: writes into it
    /// then change no file size and allocate no blocks, so a sync flushes
    /// their data alone.
    pub(crate) fn prepare(&self, name: &str, len: u64) -> io::Result<()> {
        self.record(format_args!(r#""op":"create","path":{name:?}"#));
        let mut file = File::create(self.root.join(name))?;
        self.record(format_args!(r#""op":"extend","path":{name:?},"len":{len}"#));
        let zeros = vec![0u8; 1 << 20];
        let mut left = len;
        while left > 0 {
            let chunk = left.min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..chunk])?;
            left -= chunk as u64;
        }
        self.sync_file(&file, name)?;
        self.sync_root()
    }

    /// Opens the prepared file `name` for writing from its start.
    pub(crate) fn open_prepared(&self, name: &str) -> io::Result<File> {
        OpenOptions::new().write(true).open(self.root.join(name))
    }

    pub(crate) fn sync_file(&self, file: &File, name: &str) -> io::Result<()> {
        self.record(format_args!(r#""op":"fsync","path":{name:?}"#));
        file.sync_data()
    }

    /// Makes a directory's entries (files created, renamed, removed) durable.
    pub(crate) fn sync_directory(&self, dir: &Path) -> io::Result<()> {
        self.record(format_args!(
            r#""op":"fsync_dir","path":{:?}"#,
            self.relative(dir)
        ));
        #[cfg(unix)]
        File::open(dir)?.sync_all()?;
        Ok(())
    }

    pub(crate) fn sync_root(&self) -> io::Result<()> {
        self.sync_directory(&self.root.clone())
    }

    /// Replaces the file `key` (a path below the root) with `data`: written
    /// beside it, then renamed over it. Durable at the next [`Self::sync_all`].
    pub(crate) fn put(&self, key: &str, data: &[u8]) -> io::Result<()> {
        let path = self.root.join(key);
        let parent = path.parent().expect("a key names a file below the root");
        let staging = PathBuf::from(format!("{}{STAGING_SUFFIX}", path.display()));
        let staged = self.relative(&staging).into_owned();
        // Most parents exist (a replaced object's own directory): asking
        // first would cost every put a `statx`.
        let mut file = match File::create(&staging) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                self.create_directories(parent)?;
                File::create(&staging)?
            }
            created => created?,
        };
        self.record(format_args!(r#""op":"create","path":{staged:?}"#));
        self.record(format_args!(
            r#""op":"write","path":{staged:?},"offset":0,"data":"{}""#,
            Hex(data)
        ));
        file.write_all(data)?;
        if !cfg!(target_os = "linux") {
            file.sync_all()?;
        }
        self.record(format_args!(
            r#""op":"rename","from":{staged:?},"path":{key:?}"#
        ));
        fs::rename(&staging, &path)?;
        if !cfg!(target_os = "linux") {
            self.sync_directory(parent)?;
        }
        Ok(())
    }

    /// Makes `dir` and those above it that are missing, asking the disk
    /// nothing first: most exist, and a new object's needs one level.
    fn create_directories(&self, dir: &Path) -> io::Result<()> {
        let made = match fs::create_dir(dir) {
            Err(err) if err.kind() == io::ErrorKind::NotFound && dir != self.root => {
                self.create_directories(dir.parent().unwrap_or(&self.root))?;
                fs::create_dir(dir)
            }
            made => made,
        };
        match made {
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(err) => Err(err),
            Ok(()) => {
                self.record(format_args!(
                    r#""op":"mkdir","path":{:?}"#,
                    self.relative(dir)
                ));
                Ok(())
            }
        }
    }

    /// Removes the file `key` if it is there, and the directories it leaves
    /// empty (a retired generation's): durable at the next [`Self::sync_all`].
    pub(crate) fn delete(&self, key: &str) -> io::Result<()> {
        let path = self.root.join(key);
        self.record(format_args!(r#""op":"unlink","path":{key:?}"#));
        match fs::remove_file(&path) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            other => other?,
        }
        let mut dir = path.parent();
        while let Some(current) = dir.filter(|d| *d != self.root) {
            if fs::read_dir(current)?.next().is_some() {
                break;
            }
            self.record(format_args!(
                r#""op":"rmdir","path":{:?}"#,
                self.relative(current)
            ));
            fs::remove_dir(current)?;
            if !cfg!(target_os = "linux") {
                self.sync_directory(current.parent().unwrap_or(&self.root))?;
            }
            dir = current.parent();
        }
        if !cfg!(target_os = "linux") {
            self.sync_directory(path.parent().unwrap_or(&self.root))?;
        }
        Ok(())
    }

    /// Renames `from` to `to` at the top of the directory; durable with the
    /// next sync of the directory.
    pub(crate) fn rename_top(&self, from: &str, to: &str) -> io::Result<()> {
        self.record(format_args!(
            r#""op":"rename","from":{from:?},"path":{to:?}"#
        ));
        fs::rename(self.root.join(from), self.root.join(to))
    }

    /// Removes `name` at the top of the directory, durably.
    pub(crate) fn remove(&self, name: &str) -> io::Result<()> {
        self.record(format_args!(r#""op":"unlink","path":{name:?}"#));
        match fs::remove_file(self.root.join(name)) {
            Ok(()) => self.sync_root(),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Makes every change since the last call durable: one `syncfs` on
    /// Linux; the other systems synced each change as it was made.
    pub(crate) fn sync_all(&self) -> io::Result<()> {
        self.record(format_args!(r#""op":"syncfs""#));
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let dir = File::open(&self.root)?;
            // SAFETY: `syncfs` only reads the descriptor, which `dir` keeps open.
            if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Marks an acknowledgement in the record: the call that made it has
    /// told its caller "done".
    pub(crate) fn acknowledged(&self) {
        self.record(format_args!(r#""op":"ack""#));
    }
}

/// Bytes as lowercase hexadecimal, for the record.
struct Hex<'a, T: ?Sized>(&'a T);

impl std::fmt::Display for Hex<'_, [u8]> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl std::fmt::Display for Hex<'_, Sealed> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.slices().try_for_each(|slice| Hex(slice).fmt(f))
    }
}
