//! Reload on change: a [`FileWatcher`] turns file-system events and SIGHUP into reasons
//! to reload, one per real change.
//!
//! File events only prompt a look: the watcher remembers a SHA-256 of each file's
//! content and gives a reason only when that digest changes. Reading a file (the
//! watcher's own look, the application's reload, a backup tool) makes no reason, nor does
//! rewriting it unchanged, so a reload can never cause the next one.

use std::ffi::OsString;
use std::fmt;
use std::future::{Future as _, poll_fn};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use aws_lc_rs::digest;
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

/// Why a [`FileWatcher`] asks for a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReloadReason {
    /// The process received SIGHUP (Unix only): an operator asked for a reload, whatever
    /// the files hold.
    Signal,
    /// This file's content changed since the watcher last saw it, or the file went away
    /// (the path as given to [`FileWatcher::new`]).
    File(PathBuf),
}

/// Watches files and SIGHUP, and yields one [`ReloadReason`] per real change.
///
/// Each file's directory is watched (not recursively), so that an editor's
/// save-by-rename and a symlink swapped in the directory (as Kubernetes does for mounted
/// ConfigMaps and Secrets) are seen. Any event there other than a read makes the watcher
/// look at the file's content once the directory has been quiet for the
/// [debounce](Self::debounce); the file yields a reason only if its SHA-256 differs from
/// the content it last yielded for (or found at start). A file that stays broken
/// therefore yields once, not on every event, and a file restored to an earlier content
/// yields again. SIGHUP always yields [`ReloadReason::Signal`], and the files' current
/// contents become the remembered ones.
///
/// Dropping the watcher stops it: the notify watcher and the signal listener go with it.
/// (tokio keeps its SIGHUP handler installed for the life of the process, so a later
/// SIGHUP is ignored rather than ending the process.)
///
/// ```no_run
/// use tower_jwt_auth::settings::{FileWatcher, ReloadReason};
///
/// # async fn run() -> std::io::Result<()> {
/// let mut watcher = FileWatcher::new(["api.toml"])?;
/// // ... read api.toml and serve ...
/// while let Some(reason) = watcher.changed().await {
///     match reason {
///         ReloadReason::Signal => { /* reload everything */ }
///         ReloadReason::File(path) => { /* reload what `path` holds */ }
///         _ => {}
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub struct FileWatcher {
    files: Vec<Watched>,
    events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    debounce: Duration,
    /// Fires once the watched directories have been quiet for the debounce.
    quiet: Option<Pin<Box<Sleep>>>,
    /// The quiet period has passed: the dirty files are looked at, one per reason.
    settled: bool,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
    _notify: RecommendedWatcher,
}

/// One watched file.
struct Watched {
    /// As the caller gave it: it is what a reason names, and what is read.
    path: PathBuf,
    /// The canonical directory, as the notify backend reports event paths.
    dir: PathBuf,
    name: OsString,
    /// SHA-256 of the content last yielded for; `None` while the file cannot be read.
    digest: Option<Vec<u8>>,
    /// Something happened in the directory since the last look.
    dirty: bool,
}

impl FileWatcher {
    /// How long the directories must stay quiet before a look, by default: editors save
    /// in several steps, and one look after the last sees the finished file.
    pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(200);

    /// Starts watching `paths`, remembering their current contents, and (on Unix)
    /// listening for SIGHUP.
    ///
    /// Create the watcher before the first read of the files: a change between the two
    /// then yields a reason instead of going unseen.
    ///
    /// # Errors
    ///
    /// There is no current tokio runtime; a path has no file name; a file's directory
    /// does not exist or cannot be watched; the SIGHUP listener cannot be installed.
    ///
    /// # Panics
    ///
    /// On Unix, inside a tokio runtime built without its IO driver (tokio's signal
    /// listener needs it; [`changed`](Self::changed) also needs the time driver).
    pub fn new<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) -> io::Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other(
                "a FileWatcher must be created inside a tokio runtime",
            ));
        }
        let mut files: Vec<Watched> = Vec::new();
        for path in paths {
            let path = path.as_ref();
            if files.iter().any(|file| file.path == path) {
                continue;
            }
            files.push(Watched::new(path)?);
        }
        let (sender, events) = mpsc::unbounded_channel();
        let mut notify =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // Opening, reading and closing a file change nothing; inotify reports them all,
                // so each look at the file would otherwise prompt the next. A close after
                // writing is kept: it is the surest sign a writer has finished.
                if let Ok(event) = &event
                    && event.kind.is_access()
                    && event.kind
                        != notify::EventKind::Access(notify::event::AccessKind::Close(
                            notify::event::AccessMode::Write,
                        ))
                {
                    return;
                }
                // The receiver is gone only when the watcher is being dropped.
                let _ = sender.send(event);
            })
            .map_err(io_error)?;
        let mut dirs: Vec<&Path> = files.iter().map(|file| file.dir.as_path()).collect();
        dirs.sort();
        dirs.dedup();
        for dir in dirs {
            notify
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(io_error)?;
        }
        Ok(Self {
            files,
            events,
            debounce: Self::DEFAULT_DEBOUNCE,
            quiet: None,
            settled: false,
            #[cfg(unix)]
            hangup: Some(tokio::signal::unix::signal(
                tokio::signal::unix::SignalKind::hangup(),
            )?),
            _notify: notify,
        })
    }

    /// Sets how long the directories must stay quiet after an event before the files are
    /// looked at ([`DEFAULT_DEBOUNCE`](Self::DEFAULT_DEBOUNCE) unless set). An event
    /// naming a watched file restarts the wait; other events in its directory only start
    /// it, so a busy directory cannot put a look off for ever.
    #[must_use]
    pub fn debounce(mut self, quiet: Duration) -> Self {
        self.debounce = quiet;
        self
    }

    /// The next reason to reload.
    ///
    /// Cancel safe: dropping the future before it completes (a `select!` branch that
    /// lost) loses nothing the watcher has seen. `None` only if the notify backend has
    /// stopped delivering events, after which nothing more will come.
    pub async fn changed(&mut self) -> Option<ReloadReason> {
        poll_fn(|cx| self.poll_changed(cx)).await
    }

    fn poll_changed(&mut self, cx: &mut Context<'_>) -> Poll<Option<ReloadReason>> {
        #[cfg(unix)]
        if let Some(hangup) = &mut self.hangup {
            match hangup.poll_recv(cx) {
                Poll::Ready(Some(())) => {
                    self.remember_all();
                    return Poll::Ready(Some(ReloadReason::Signal));
                }
                // tokio documents that this never ends; if it did, files still count.
                Poll::Ready(None) => self.hangup = None,
                Poll::Pending => {}
            }
        }
        loop {
            match self.events.poll_recv(cx) {
                Poll::Ready(Some(event)) => self.note(event),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => break,
            }
        }
        loop {
            if self.settled {
                if let Some(path) = self.next_change() {
                    return Poll::Ready(Some(ReloadReason::File(path)));
                }
                self.settled = false;
            }
            let Some(quiet) = &mut self.quiet else {
                return Poll::Pending;
            };
            ready!(quiet.as_mut().poll(cx));
            self.quiet = None;
            self.settled = true;
        }
    }

    /// Marks the files an event may concern and starts (or extends) the quiet wait.
    fn note(&mut self, event: notify::Result<notify::Event>) {
        let event = match event {
            Ok(event) if !event.need_rescan() => event,
            Ok(_) => {
                // The backend lost events: any file may have changed.
                self.mark_all();
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "file watcher error; looking at every watched file");
                self.mark_all();
                return;
            }
        };
        let (mut touched, mut named) = (false, false);
        for file in &mut self.files {
            for path in &event.paths {
                if path.parent() == Some(file.dir.as_path()) {
                    file.dirty = true;
                    touched = true;
                    named |= path.file_name() == Some(file.name.as_os_str());
                }
            }
        }
        if touched {
            self.wait_for_quiet(named);
        }
    }

    fn mark_all(&mut self) {
        for file in &mut self.files {
            file.dirty = true;
        }
        self.wait_for_quiet(true);
    }

    fn wait_for_quiet(&mut self, restart: bool) {
        self.settled = false;
        // A debounce too long to add is as good as a day: it never ends in practice.
        let now = Instant::now();
        let deadline = now
            .checked_add(self.debounce)
            .unwrap_or_else(|| now + Duration::from_secs(24 * 3600));
        match &mut self.quiet {
            Some(quiet) if restart => quiet.as_mut().reset(deadline),
            Some(_) => {}
            None => self.quiet = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }

    /// The first dirty file whose content changed, now remembered; dirty files found
    /// unchanged are cleared on the way.
    fn next_change(&mut self) -> Option<PathBuf> {
        for file in &mut self.files {
            if !std::mem::take(&mut file.dirty) {
                continue;
            }
            let digest = fingerprint(&file.path);
            if digest == file.digest {
                tracing::debug!(
                    path = %file.path.display(),
                    "file event without a content change; no reload"
                );
                continue;
            }
            file.digest = digest;
            return Some(file.path.clone());
        }
        None
    }

    /// After SIGHUP the application reloads every file: what they hold now is what it
    /// loads, and events already seen need no look of their own.
    fn remember_all(&mut self) {
        for file in &mut self.files {
            file.digest = fingerprint(&file.path);
            file.dirty = false;
        }
        self.quiet = None;
        self.settled = false;
    }
}

impl fmt::Debug for FileWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileWatcher")
            .field(
                "paths",
                &self.files.iter().map(|file| &file.path).collect::<Vec<_>>(),
            )
            .field("debounce", &self.debounce)
            .finish_non_exhaustive()
    }
}

impl Watched {
    fn new(path: &Path) -> io::Result<Self> {
        let name = path.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a file name", path.display()),
            )
        })?;
        let parent = path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = std::fs::canonicalize(parent)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", parent.display())))?;
        Ok(Self {
            path: path.to_path_buf(),
            dir,
            name: name.to_owned(),
            digest: fingerprint(path),
            dirty: false,
        })
    }
}

/// SHA-256 of the file's content, or `None` while it cannot be read. The read blocks:
/// the files watched are settings and keys, small, and their reload reads them
/// synchronously right after anyway.
fn fingerprint(path: &Path) -> Option<Vec<u8>> {
    let content = std::fs::read(path).ok()?;
    Some(digest::digest(&digest::SHA256, &content).as_ref().to_vec())
}

fn io_error(error: notify::Error) -> io::Error {
    let kind = match &error.kind {
        notify::ErrorKind::Io(inner) => inner.kind(),
        notify::ErrorKind::PathNotFound => io::ErrorKind::NotFound,
        notify::ErrorKind::MaxFilesWatch => io::ErrorKind::QuotaExceeded,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, error)
}
