//! Model names: a local checkpoint folder, or a Hugging Face hub id resolved through the standard
//! Hugging Face cache, downloading into it when allowed.
//!
//! [`resolve`] turns `gpt2`, `gpt2-medium`, `gpt2-large`, `gpt2-xl` (short for
//! `openai-community/<name>`), any `owner/name`, or a folder path into a local folder holding
//! `config.json` and the weights ([`crate::checkpoint::weight_files`]). The cache layout is the one
//! `huggingface_hub` (Python) and the `hf-hub` crate share:
//! `CACHE/models--owner--name/{refs/main, snapshots/<revision>/<files>, blobs/<etag>}`, so a model
//! downloaded by either is found offline by the other.
//!
//! Cache folder, first found: [`HubOptions::cache_dir`], `$HF_HUB_CACHE`, `$HF_HOME/hub`,
//! `~/.cache/huggingface/hub`. Downloads are off when [`HubOptions::offline`] is set or
//! `$HF_HUB_OFFLINE` is `1`/`true`/`yes`/`on`. `$HF_ENDPOINT` and `$HF_TOKEN` (else the token file
//! beside the cache) are honoured when downloading.
//!
//! Non-goals: revisions other than `main`, `pytorch_model.bin`-only repositories, progress bars
//! (the library prints nothing; downloads run silently).
//!
//! Reference: `huggingface_hub` cache layout and environment variables
//! (`constants.py`: `HF_HUB_CACHE`, `HF_HOME`, `HF_HUB_OFFLINE`), the `hf-hub` crate.

use std::path::{Path, PathBuf};

use crate::checkpoint::{self, CONFIG_FILE, INDEX_FILE, WEIGHTS_FILE};

/// Errors from resolving a model name. Each says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// A local folder that lacks a file a checkpoint needs.
    #[error("{dir} is not a GPT-2 checkpoint folder: {file} is missing")]
    MissingFile {
        /// The folder.
        dir: PathBuf,
        /// The missing file (e.g. `config.json`).
        file: String,
    },
    /// A path that exists but is a file, not a folder.
    #[error("{path} is a file; pass the folder that holds config.json and model.safetensors")]
    NotAFolder {
        /// The path given.
        path: PathBuf,
    },
    /// A name that is neither an existing folder nor a hub id.
    #[error(
        "`{model}` is not an existing folder nor a Hugging Face model id; expected a folder with \
         config.json and model.safetensors, gpt2, gpt2-medium, gpt2-large, gpt2-xl, or owner/name"
    )]
    BadName {
        /// The name given.
        model: String,
    },
    /// No cache folder could be determined (no `HF_HUB_CACHE`, `HF_HOME` or home folder).
    #[error(
        "cannot find the Hugging Face cache for `{model}`: set HF_HOME or HF_HUB_CACHE, or pass a \
         folder with config.json and model.safetensors"
    )]
    NoCacheDir {
        /// The name given.
        model: String,
    },
    /// The model is not cached and downloads are off.
    #[error(
        "model `{model}` is not in the Hugging Face cache at {} and downloads are off{reason}; \
         download config.json and model.safetensors from https://huggingface.co/{repo_id} into a \
         folder and pass --model FOLDER, or run once with network access",
        cache.display()
    )]
    NotCached {
        /// The name given.
        model: String,
        /// The hub repository, e.g. `openai-community/gpt2`.
        repo_id: String,
        /// The cache folder that was searched.
        cache: PathBuf,
        /// Why downloads are off, e.g. ` (HF_HUB_OFFLINE is set)`; may be empty.
        reason: String,
    },
    /// The model is not cached and downloading it failed.
    #[error(
        "model `{model}` is not in the Hugging Face cache at {} and downloading {file} from \
         https://huggingface.co/{repo_id} failed: {error}; download config.json and \
         model.safetensors from there into a folder and pass --model FOLDER, or retry with \
         network access",
        cache.display()
    )]
    Download {
        /// The name given.
        model: String,
        /// The hub repository, e.g. `openai-community/gpt2`.
        repo_id: String,
        /// The cache folder downloads go to.
        cache: PathBuf,
        /// The file being downloaded.
        file: String,
        /// The underlying error's text.
        error: String,
    },
}

/// How [`resolve`] finds and fetches models.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubOptions {
    /// The hub cache folder (the one holding `models--*`); `None` means the standard one
    /// (see [`default_cache_dir`]).
    pub cache_dir: Option<PathBuf>,
    /// Never touch the network: resolve from the cache or fail with [`HubError::NotCached`].
    pub offline: bool,
}

/// The hub repository for a model name: the four OpenAI sizes map to `openai-community/<name>`,
/// `owner/name` is kept as is. `None` for anything else.
pub fn repo_id(model: &str) -> Option<String> {
    match model {
        "gpt2" | "gpt2-medium" | "gpt2-large" | "gpt2-xl" => {
            return Some(format!("openai-community/{model}"));
        }
        _ => {}
    }
    let (owner, name) = model.split_once('/')?;
    let ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (ok(owner) && ok(name)).then(|| model.to_string())
}

/// The standard hub cache folder: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `~/.cache/huggingface/hub`; `None` when none of these is known.
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    cache_dir_from(
        var("HF_HUB_CACHE"),
        var("HF_HOME"),
        var("HOME").or_else(|| var("USERPROFILE")),
    )
}

/// [`default_cache_dir`] from given variables, for tests.
fn cache_dir_from(
    hf_hub_cache: Option<PathBuf>,
    hf_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    hf_hub_cache
        .or_else(|| hf_home.map(|h| h.join("hub")))
        .or_else(|| home.map(|h| h.join(".cache").join("huggingface").join("hub")))
}

/// Whether `$HF_HUB_OFFLINE` turns downloads off (`1`, `true`, `yes`, `on`, any case).
fn env_offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// Whether `dir` holds a complete checkpoint: config.json and loadable weight files.
fn is_complete(dir: &Path) -> bool {
    dir.join(CONFIG_FILE).is_file() && checkpoint::weight_files(dir).is_ok()
}

/// The cached snapshot folder of `repo_id` in the hub cache `cache`, if it holds a complete
/// checkpoint: the revision `refs/main` names, else the newest complete snapshot.
pub fn cached_snapshot(cache: &Path, repo_id: &str) -> Option<PathBuf> {
    let repo = hf_hub::Repo::model(repo_id.to_string());
    let root = cache.join(repo.folder_name());
    let snapshots = root.join("snapshots");
    if let Ok(rev) = std::fs::read_to_string(root.join("refs").join("main")) {
        let dir = snapshots.join(rev.trim());
        if !rev.trim().is_empty() && is_complete(&dir) {
            return Some(dir);
        }
    }
    std::fs::read_dir(&snapshots)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| is_complete(p))
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
}

/// Resolves `model` to a local folder with `config.json` and weights.
///
/// - An existing folder is returned as is, once it is checked to hold config.json and weights.
/// - A hub id (`gpt2`, `gpt2-medium`, `gpt2-large`, `gpt2-xl`, `owner/name`) is looked up in the
///   cache (see the module doc) and its snapshot folder returned without network access.
/// - Otherwise, unless offline, config.json and model.safetensors (or the index and its shards)
///   are downloaded into the cache with `hf-hub`, silently.
///
/// Errors: [`HubError::MissingFile`], [`HubError::NotAFolder`], [`HubError::BadName`],
/// [`HubError::NoCacheDir`], [`HubError::NotCached`], [`HubError::Download`].
pub fn resolve(model: &str, opts: &HubOptions) -> Result<PathBuf, crate::Error> {
    Ok(resolve_inner(model, opts)?)
}

fn resolve_inner(model: &str, opts: &HubOptions) -> Result<PathBuf, HubError> {
    let path = Path::new(model);
    if path.is_dir() {
        return check_folder(path);
    }
    if path.exists() {
        return Err(HubError::NotAFolder {
            path: path.to_path_buf(),
        });
    }
    let looks_like_path = model.starts_with('.')
        || model.starts_with('/')
        || model.starts_with('~')
        || model.contains('\\')
        || model.matches('/').count() > 1;
    let repo_id = match repo_id(model) {
        Some(id) if !looks_like_path => id,
        _ => {
            return Err(HubError::BadName {
                model: model.to_string(),
            })
        }
    };
    let cache = opts
        .cache_dir
        .clone()
        .or_else(default_cache_dir)
        .ok_or_else(|| HubError::NoCacheDir {
            model: model.to_string(),
        })?;
    if let Some(dir) = cached_snapshot(&cache, &repo_id) {
        return Ok(dir);
    }
    let reason = if opts.offline {
        Some(String::new())
    } else if env_offline() {
        Some(" (HF_HUB_OFFLINE is set)".to_string())
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(HubError::NotCached {
            model: model.to_string(),
            repo_id,
            cache,
            reason,
        });
    }
    download(model, &repo_id, &cache)
}

/// Checks that the local folder `dir` is a checkpoint and returns it.
fn check_folder(dir: &Path) -> Result<PathBuf, HubError> {
    if !dir.join(CONFIG_FILE).is_file() {
        return Err(HubError::MissingFile {
            dir: dir.to_path_buf(),
            file: CONFIG_FILE.into(),
        });
    }
    match checkpoint::weight_files(dir) {
        Ok(_) => Ok(dir.to_path_buf()),
        Err(checkpoint::CheckpointError::NoWeights { .. }) => Err(HubError::MissingFile {
            dir: dir.to_path_buf(),
            file: format!("{WEIGHTS_FILE} (or {INDEX_FILE} and its shards)"),
        }),
        Err(e) => Err(HubError::MissingFile {
            dir: dir.to_path_buf(),
            file: e.to_string(),
        }),
    }
}

/// Downloads config.json and the weights of `repo_id` into `cache`; returns the snapshot folder.
fn download(model: &str, repo_id: &str, cache: &Path) -> Result<PathBuf, HubError> {
    use hf_hub::api::sync::ApiBuilder;

    let fail = |file: &str, error: String| HubError::Download {
        model: model.to_string(),
        repo_id: repo_id.to_string(),
        cache: cache.to_path_buf(),
        file: file.to_string(),
        error,
    };
    let hf_cache = hf_hub::Cache::new(cache.to_path_buf());
    let token = std::env::var("HF_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| hf_cache.token());
    let mut builder = ApiBuilder::from_cache(hf_cache)
        .with_progress(false)
        .with_token(token);
    if let Ok(endpoint) = std::env::var("HF_ENDPOINT") {
        builder = builder.with_endpoint(endpoint);
    }
    let api = builder
        .build()
        .map_err(|e| fail(CONFIG_FILE, e.to_string()))?;
    let repo = api.model(repo_id.to_string());
    let get = |file: &str| repo.get(file).map_err(|e| (file.to_string(), e));
    let result = (|| {
        let config = get(CONFIG_FILE)?;
        // A repository has model.safetensors or a sharded index: when the first fails for any
        // reason (404, network), try the index, and report the first error if that fails too.
        if let Err(first) = get(WEIGHTS_FILE) {
            let index = get(INDEX_FILE).map_err(|_| first)?;
            for shard in shard_names(&index) {
                get(&shard)?;
            }
        }
        Ok(config)
    })();
    let config = result.map_err(|(file, e)| fail(&file, e.to_string()))?;
    let dir = config
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| fail(CONFIG_FILE, "downloaded file has no folder".into()))?;
    match checkpoint::weight_files(&dir) {
        Ok(_) => Ok(dir),
        Err(e) => Err(fail(WEIGHTS_FILE, e.to_string())),
    }
}

/// The shard file names an index lists (empty if unreadable: the later check reports it).
fn shard_names(index: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(index) else {
        return Vec::new();
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let mut names: Vec<String> = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.values()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_presets_and_owner_names() {
        assert_eq!(repo_id("gpt2").unwrap(), "openai-community/gpt2");
        assert_eq!(repo_id("gpt2-xl").unwrap(), "openai-community/gpt2-xl");
        assert_eq!(repo_id("someone/tiny-gpt2").unwrap(), "someone/tiny-gpt2");
        assert_eq!(repo_id("gpt3"), None);
        assert_eq!(repo_id("a/b/c"), None);
        assert_eq!(repo_id("../x"), None);
        assert_eq!(repo_id("/abs"), None);
    }

    fn offline(cache: &Path) -> HubOptions {
        HubOptions {
            cache_dir: Some(cache.to_path_buf()),
            offline: true,
        }
    }

    /// A tiny valid checkpoint in `dir` (created with its parents).
    fn write_checkpoint(dir: &Path) -> crate::Params {
        let cfg = crate::Gpt2Config {
            n_layer: 1,
            n_head: 2,
            n_embd: 4,
            n_positions: 3,
            vocab_size: 5,
            ..crate::Gpt2Config::gpt2()
        };
        let p = crate::Params::init_gpt2(&cfg, &mut crate::Rng::seed(1));
        std::fs::create_dir_all(dir).unwrap();
        checkpoint::save(&p, dir, checkpoint::SaveDtype::F32).unwrap();
        p
    }

    /// `CACHE/models--openai-community--gpt2/snapshots/abc123/` with refs/main = `rev_text`.
    fn fake_cache(cache: &Path, rev_text: &str) -> PathBuf {
        let repo = cache.join("models--openai-community--gpt2");
        let snap = repo.join("snapshots").join("abc123");
        write_checkpoint(&snap);
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs").join("main"), rev_text).unwrap();
        snap
    }

    #[test]
    fn finds_a_cached_snapshot_offline_by_short_and_full_id() {
        let tmp = tempfile::tempdir().unwrap();
        let snap = fake_cache(tmp.path(), "abc123");
        let opts = offline(tmp.path());
        assert_eq!(resolve("gpt2", &opts).unwrap(), snap);
        assert_eq!(resolve("openai-community/gpt2", &opts).unwrap(), snap);
        let p = checkpoint::load(&resolve("gpt2", &opts).unwrap()).unwrap();
        assert_eq!(p.cfg.n_embd, 4);
        // Other sizes are other repositories.
        let err = resolve("gpt2-medium", &opts).unwrap_err().to_string();
        assert!(err.contains("openai-community/gpt2-medium"), "{err}");
    }

    #[test]
    fn tolerates_a_newline_in_refs_main_and_a_missing_ref() {
        let tmp = tempfile::tempdir().unwrap();
        let snap = fake_cache(tmp.path(), "abc123\n");
        assert_eq!(resolve("gpt2", &offline(tmp.path())).unwrap(), snap);
        std::fs::remove_file(tmp.path().join("models--openai-community--gpt2/refs/main")).unwrap();
        assert_eq!(resolve("gpt2", &offline(tmp.path())).unwrap(), snap);
    }

    #[test]
    fn an_incomplete_snapshot_is_not_cached() {
        let tmp = tempfile::tempdir().unwrap();
        let snap = fake_cache(tmp.path(), "abc123");
        std::fs::remove_file(snap.join("model.safetensors")).unwrap();
        let err = resolve("gpt2", &offline(tmp.path())).unwrap_err();
        assert!(
            matches!(err, crate::Error::Hub(HubError::NotCached { .. })),
            "{err}"
        );
    }

    #[test]
    fn an_uncached_model_offline_says_what_to_download_and_where() {
        let tmp = tempfile::tempdir().unwrap();
        let err = resolve("someone/tiny-gpt2", &offline(tmp.path())).unwrap_err();
        assert!(
            matches!(err, crate::Error::Hub(HubError::NotCached { .. })),
            "{err}"
        );
        let msg = err.to_string();
        for part in [
            "`someone/tiny-gpt2`",
            &tmp.path().display().to_string(),
            "https://huggingface.co/someone/tiny-gpt2",
            "config.json",
            "model.safetensors",
            "--model",
        ] {
            assert!(msg.contains(part), "`{part}` not in: {msg}");
        }
        let msg = resolve("gpt2", &offline(tmp.path()))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("https://huggingface.co/openai-community/gpt2 "),
            "{msg}"
        );
    }

    #[test]
    fn a_local_folder_is_itself_once_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("model");
        write_checkpoint(&dir);
        let opts = offline(tmp.path());
        assert_eq!(resolve(dir.to_str().unwrap(), &opts).unwrap(), dir);

        std::fs::remove_file(dir.join("model.safetensors")).unwrap();
        let msg = resolve(dir.to_str().unwrap(), &opts)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("model.safetensors is missing") || msg.contains("model.safetensors (or"),
            "{msg}"
        );

        std::fs::remove_file(dir.join("config.json")).unwrap();
        let err = resolve(dir.to_str().unwrap(), &opts).unwrap_err();
        assert!(
            matches!(&err, crate::Error::Hub(HubError::MissingFile { file, .. }) if file == "config.json"),
            "{err}"
        );
        assert!(err.to_string().contains("config.json is missing"), "{err}");
    }

    #[test]
    fn files_and_bad_names_are_rejected_without_the_network() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("model.safetensors");
        std::fs::write(&file, b"x").unwrap();
        let opts = offline(tmp.path());
        let err = resolve(file.to_str().unwrap(), &opts).unwrap_err();
        assert!(
            matches!(err, crate::Error::Hub(HubError::NotAFolder { .. })),
            "{err}"
        );
        for name in ["gpt3", "./no-such-folder", "/no/such/folder", "a/b/c", ""] {
            let err = resolve(name, &opts).unwrap_err();
            assert!(
                matches!(err, crate::Error::Hub(HubError::BadName { .. })),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn cache_dir_precedence() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(cache_dir_from(p("/c"), p("/h"), p("/home/u")), p("/c"));
        assert_eq!(cache_dir_from(None, p("/h"), p("/home/u")), p("/h/hub"));
        assert_eq!(
            cache_dir_from(None, None, p("/home/u")),
            p("/home/u/.cache/huggingface/hub")
        );
        assert_eq!(cache_dir_from(None, None, None), None);
    }
}
