//! Outputs are written to a hidden temporary name beside their final path and renamed only when
//! complete, so nothing half-written is ever left at an output path.

use std::path::{Path, PathBuf};

use crate::error::RunError;

/// A temporary output file that is removed unless [`TempOutput::commit`] renames it into place.
#[derive(Debug)]
pub struct TempOutput {
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl TempOutput {
    /// Checks that `target` may be written (absent, or `overwrite`) and creates the temporary
    /// file beside it, which proves the folder is writable before any work starts. The
    /// temporary name keeps the extension, since ffmpeg picks the container from it.
    pub fn create(target: &Path, overwrite: bool) -> Result<TempOutput, RunError> {
        if target.is_dir() {
            return Err(RunError::OutputUnwritable {
                path: target.to_path_buf(),
                reason: "it is a folder".into(),
            });
        }
        if target.exists() && !overwrite {
            return Err(RunError::OutputExists {
                path: target.to_path_buf(),
            });
        }
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(RunError::OutputUnwritable {
                path: target.to_path_buf(),
                reason: format!("folder {} does not exist", dir.display()),
            });
        }
        let stem = target
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        let ext = target
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        // Host, process and a random part: two machines writing to one shared folder (often
        // both as process 1, in containers) never share a temporary file.
        let partial = crate::chunk::partial_path(&dir.join(format!(".{stem}")));
        let unique = partial
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .replace(crate::chunk::PARTIAL_MARK, ".fresco~")
            })
            .unwrap_or_default();
        let temp = dir.join(format!("{unique}{ext}"));
        std::fs::File::create(&temp).map_err(|e| RunError::OutputUnwritable {
            path: target.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(TempOutput {
            temp,
            target: target.to_path_buf(),
            committed: false,
        })
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// The final path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Renames the finished file into place (atomic on one filesystem).
    pub fn commit(mut self) -> Result<PathBuf, RunError> {
        std::fs::rename(&self.temp, &self.target).map_err(|e| RunError::OutputUnwritable {
            path: self.target.clone(),
            reason: e.to_string(),
        })?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uncommitted_output_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.mp4");
        {
            let temp = TempOutput::create(&target, false).unwrap();
            std::fs::write(temp.path(), b"partial").unwrap();
            assert!(temp.path().to_string_lossy().ends_with(".mp4"));
        }
        assert!(!target.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn commit_renames_and_existing_outputs_need_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.png");
        let temp = TempOutput::create(&target, false).unwrap();
        std::fs::write(temp.path(), b"done").unwrap();
        temp.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"done");
        let err = TempOutput::create(&target, false).unwrap_err();
        assert!(err.to_string().contains("--overwrite"), "{err}");
        assert!(TempOutput::create(&target, true).is_ok());
    }

    #[test]
    fn a_missing_folder_is_named() {
        let err = TempOutput::create(Path::new("/nonexistent-dir/x.mp4"), false).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
