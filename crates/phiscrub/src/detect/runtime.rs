//! ONNX Runtime, loaded at run time from a shared library the user has (the `onnxruntime`
//! PyPI wheel's), and the model files with their manifest. One runtime environment per
//! process; sessions are made per worker because `Session::run` needs `&mut`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;
use sha2::{Digest, Sha256};

use super::{Model, Tensor};
use crate::Error;

/// The ONNX Runtime release the project is built and tested against.
pub const ORT_VERSION: &str = "1.32.0";

/// The file name the wheel ships and `scripts/fetch-onnxruntime` installs.
pub const ORT_LIB_NAME: &str = "libonnxruntime.so.1.32.0";

/// Where the ONNX Runtime library was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrtSource {
    /// A path the caller gave ([`EngineConfig::ort_lib`](super::EngineConfig::ort_lib)).
    Given,
    /// The `ORT_DYLIB_PATH` environment variable.
    EnvVar,
    /// Beside the running executable.
    NextToExe,
    /// The install folder ([`install_dir`]).
    Installed,
}

impl std::fmt::Display for OrtSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OrtSource::Given => "the path given",
            OrtSource::EnvVar => "ORT_DYLIB_PATH",
            OrtSource::NextToExe => "next to the executable",
            OrtSource::Installed => "the install folder",
        })
    }
}

/// The folder the library is installed into (the project's install script puts it there):
/// `$PHISCRUB_HOME/onnxruntime`, else `$XDG_DATA_HOME/phiscrub/onnxruntime`, else
/// `$HOME/.local/share/phiscrub/onnxruntime`.
pub fn install_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = var("PHISCRUB_HOME")
        .or_else(|| var("XDG_DATA_HOME").map(|d| d.join("phiscrub")))
        .or_else(|| var("HOME").map(|h| h.join(".local/share/phiscrub")))?;
    Some(home.join("onnxruntime"))
}

/// Finds the ONNX Runtime library: `flag`, then `ORT_DYLIB_PATH`, then beside the executable,
/// then the install folder. An explicit path that does not exist is an error, not a reason to
/// look elsewhere.
pub fn locate(flag: Option<&Path>) -> Result<(PathBuf, OrtSource), Error> {
    if let Some(p) = flag {
        return existing(p, OrtSource::Given);
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
        return existing(Path::new(&p), OrtSource::EnvVar);
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join(ORT_LIB_NAME)));
    if let Some(p) = beside.filter(|p| p.is_file()) {
        return Ok((p, OrtSource::NextToExe));
    }
    if let Some(p) = install_dir().map(|d| d.join(ORT_LIB_NAME)) {
        if p.is_file() {
            return Ok((p, OrtSource::Installed));
        }
    }
    Err(Error::RuntimeNotFound {
        version: ORT_VERSION,
        library: ORT_LIB_NAME,
    })
}

fn existing(p: &Path, source: OrtSource) -> Result<(PathBuf, OrtSource), Error> {
    if p.is_file() {
        Ok((p.to_path_buf(), source))
    } else {
        Err(Error::Runtime(format!(
            "onnx runtime library {} (from {source}) does not exist",
            p.display()
        )))
    }
}

static ENVIRONMENT: OnceLock<(ort::environment::Environment, PathBuf)> = OnceLock::new();
/// Whether the shared arena was registered with the environment, or why not.
static ARENA: OnceLock<Result<(), String>> = OnceLock::new();

/// The process's ONNX Runtime environment, loading the library at `path` the first time.
/// Later calls return the first environment; asking for a different library then is an error,
/// since a process can hold only one.
pub fn environment(path: &Path) -> Result<&'static ort::environment::Environment, Error> {
    let same = |(env, loaded): &'static (ort::environment::Environment, PathBuf)| {
        if loaded == path {
            // Once, on the one environment kept, before a session is made from it here.
            ARENA
                .get_or_init(|| shared_arena(env).map_err(|e| e.to_string()))
                .clone()
                .map_err(|e| {
                    Error::Runtime(format!("cannot set up onnx runtime's memory arena: {e}"))
                })?;
            Ok(env)
        } else {
            Err(Error::Runtime(format!(
                "onnx runtime already loaded from {}, cannot also load {}",
                loaded.display(),
                path.display()
            )))
        }
    };
    if let Some(first) = ENVIRONMENT.get() {
        return same(first);
    }
    let fail = |e: &dyn std::fmt::Display| {
        Error::Runtime(format!(
            "cannot load onnx runtime from {}: {e}",
            path.display()
        ))
    };
    // A concurrent first call may race us here; OnceLock keeps exactly one environment.
    let env = ort::init_from(path)
        .map_err(|e| fail(&e))?
        .with_name("phiscrub")
        .build()
        .map_err(|e| fail(&e))?;
    same(ENVIRONMENT.get_or_init(|| (env, path.to_path_buf())))
}

/// Registers one CPU arena with the environment, which every session then allocates from
/// (`OrtModel::new` asks for it). Each session otherwise keeps an arena of its own, grown to
/// its largest run and never given back: with four models on each of two workers, that is
/// eight arenas at their peaks, where one shared arena only ever holds what runs at once.
fn shared_arena(env: &ort::environment::Environment) -> ort::Result<()> {
    use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
    use ort::AsPointer;
    let info = MemoryInfo::new(
        AllocationDevice::CPU,
        0,
        AllocatorType::Arena,
        MemoryType::Default,
    )?;
    let api = ort::api();
    // SAFETY: the keys are NUL-terminated literals, the values as many; the config made is
    // released below whatever happens, after ONNX Runtime has copied it into the arena.
    unsafe {
        let keys = [c"arena_extend_strategy".as_ptr()];
        // kSameAsRequested: grow by what a run needs. Growing to the next power of two, the
        // shared arena peaked at 1.29 GB on the 30-photo folder; this way at 0.79 GB.
        let values = [1usize];
        let mut cfg = std::ptr::null_mut();
        ort::Error::result_from_status((api.CreateArenaCfgV2)(
            keys.as_ptr(),
            values.as_ptr(),
            keys.len(),
            &mut cfg,
        ))?;
        let status = (api.CreateAndRegisterAllocator)(env.ptr().cast_mut(), info.ptr(), cfg);
        (api.ReleaseArenaCfg)(cfg);
        ort::Error::result_from_status(status)
    }
}

/// One model's manifest entry, as `models/MANIFEST` records it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ManifestEntry {
    /// File name inside the models folder.
    pub file: String,
    /// sha256 of that file, lowercase hex.
    pub sha256: String,
    /// PyPI package the source model comes from.
    pub source_package: String,
    /// Its version.
    pub source_version: String,
    /// Licence of the model.
    pub licence: String,
}

/// The manifest compiled into the binary, and the default models it describes.
pub const EMBEDDED_MANIFEST: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/MANIFEST"
));
#[cfg(feature = "embedded-models")]
const EMBEDDED_CENTERFACE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/centerface.onnx"
));
#[cfg(feature = "embedded-models")]
const EMBEDDED_PPOCR_DET: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/ppocr_det.onnx"
));
#[cfg(feature = "embedded-models")]
const EMBEDDED_PPOCR_REC: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/ppocr_rec.onnx"
));
#[cfg(feature = "embedded-models")]
const EMBEDDED_YUNET: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/yunet.onnx"
));

/// A model file whose sha256 matched its manifest entry.
#[derive(Debug, Clone)]
pub struct ModelFile {
    /// The manifest's name for it (`centerface`).
    pub name: String,
    /// The checked bytes.
    pub bytes: std::sync::Arc<[u8]>,
    /// Its sha256, lowercase hex.
    pub sha256: String,
    /// Where it came from: `embedded` or the file's path.
    pub origin: String,
}

/// Loads model `name`: from `dir` (its `MANIFEST` and file) when given, else the copy built
/// into the binary. Refuses a file whose sha256 differs from the manifest.
pub fn load_model(name: &str, dir: Option<&Path>) -> Result<ModelFile, Error> {
    let (manifest, origin_dir) = match dir {
        Some(d) => {
            let path = d.join("MANIFEST");
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Error::Model(format!("{}: cannot read manifest: {e}", path.display()))
            })?;
            (text, Some(d))
        }
        None => (EMBEDDED_MANIFEST.to_string(), None),
    };
    let table: std::collections::BTreeMap<String, ManifestEntry> = toml::from_str(&manifest)
        .map_err(|e| Error::Model(format!("models manifest is not valid: {e}")))?;
    let entry = table
        .get(name)
        .ok_or_else(|| Error::Model(format!("models manifest has no entry for {name}")))?;
    let (bytes, origin): (std::sync::Arc<[u8]>, String) = match origin_dir {
        Some(d) => {
            let path = d.join(&entry.file);
            let b = std::fs::read(&path)
                .map_err(|e| Error::Model(format!("{}: cannot read model: {e}", path.display())))?;
            (b.into(), path.display().to_string())
        }
        None => (embedded(name)?.into(), "embedded".to_string()),
    };
    let sha256 = hex(&Sha256::digest(&bytes));
    if !sha256.eq_ignore_ascii_case(&entry.sha256) {
        return Err(Error::Model(format!(
            "{origin}: sha256 {sha256} does not match the manifest's {} for {name}; \
             the model must be re-created from its source package",
            entry.sha256
        )));
    }
    Ok(ModelFile {
        name: name.to_string(),
        bytes,
        sha256,
        origin,
    })
}

/// The copy of model `name` built into the library.
#[cfg(feature = "embedded-models")]
fn embedded(name: &str) -> Result<&'static [u8], Error> {
    match name {
        "centerface" => Ok(EMBEDDED_CENTERFACE),
        "ppocr_det" => Ok(EMBEDDED_PPOCR_DET),
        "ppocr_rec" => Ok(EMBEDDED_PPOCR_REC),
        "yunet" => Ok(EMBEDDED_YUNET),
        _ => Err(Error::Model(format!("no built-in model {name}"))),
    }
}

/// This build carries no models: the caller names a folder of them.
#[cfg(not(feature = "embedded-models"))]
fn embedded(name: &str) -> Result<&'static [u8], Error> {
    Err(Error::Model(format!(
        "{name}: this build has no models built in (built without embedded-models); name a \
         folder of models with their MANIFEST"
    )))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A model running in an ONNX Runtime session, one per worker thread.
pub struct OrtModel {
    session: Session,
}

impl OrtModel {
    /// Creates a session for `model` with `intra_threads` threads that do not spin while idle,
    /// planning no memory per input shape.
    pub fn new(
        env: &ort::environment::Environment,
        model: &ModelFile,
        intra_threads: usize,
    ) -> Result<OrtModel, Error> {
        let fail = |e: &dyn std::fmt::Display| {
            Error::Model(format!("{} ({}): {e}", model.name, model.origin))
        };
        let session = Session::builder(env)
            .map_err(|e| fail(&e))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| fail(&e))?
            .with_intra_threads(intra_threads.max(1))
            .map_err(|e| fail(&e))?
            .with_inter_threads(1)
            .map_err(|e| fail(&e))?
            .with_intra_op_spinning(false)
            .map_err(|e| fail(&e))?
            .with_inter_op_spinning(false)
            .map_err(|e| fail(&e))?
            // Windows and tiles come in many sizes, and a memory pattern is planned and kept
            // per input shape: with it a folder run at two workers peaked at 2.2 GB. Without
            // an arena it peaked at 1.07 GB but took 23.4 s instead of 17.1 s. With one
            // arena per session (eight at two workers) the 30-photo folder peaked at 1.14 GB
            // in 16.8 s; with the one shared arena (`shared_arena`) at 0.75 GB in 17.0 s.
            .with_memory_pattern(false)
            .map_err(|e| fail(&e))?
            .with_env_allocators()
            .map_err(|e| fail(&e))?
            .commit_from_memory(&model.bytes)
            .map_err(|e| fail(&e))?;
        Ok(OrtModel { session })
    }
}

impl Model for OrtModel {
    fn run(&mut self, input: &Tensor) -> Result<Vec<Tensor>, String> {
        let shape: Vec<i64> = input.shape.iter().map(|&d| d as i64).collect();
        let value =
            TensorRef::from_array_view((shape, &input.data[..])).map_err(|e| e.to_string())?;
        let outputs = self
            .session
            .run(ort::inputs![value])
            .map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(outputs.len());
        for (_, v) in outputs.iter() {
            let (shape, data) = v.try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
            out.push(Tensor {
                shape: shape.iter().map(|&d| d.max(0) as usize).collect(),
                data: data.to_vec(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "embedded-models")]
    fn built_in_models_match_their_manifest() {
        for name in ["centerface", "ppocr_det", "ppocr_rec", "yunet"] {
            let m = load_model(name, None).unwrap();
            assert_eq!(m.origin, "embedded");
            assert_eq!(m.sha256.len(), 64);
        }
    }

    #[test]
    #[cfg(feature = "embedded-models")]
    fn a_model_that_does_not_match_its_manifest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("MANIFEST"), EMBEDDED_MANIFEST).unwrap();
        let mut bytes = EMBEDDED_CENTERFACE.to_vec();
        bytes[1000] ^= 1;
        std::fs::write(dir.path().join("centerface.onnx"), bytes).unwrap();
        let e = load_model("centerface", Some(dir.path())).unwrap_err();
        assert!(e.to_string().contains("does not match the manifest"), "{e}");
        assert_eq!(e.code(), "model");
    }

    #[test]
    fn an_explicit_runtime_path_that_does_not_exist_is_an_error() {
        let e = locate(Some(Path::new("/nonexistent/libonnxruntime.so"))).unwrap_err();
        assert!(
            e.to_string().contains("/nonexistent/libonnxruntime.so"),
            "{e}"
        );
    }
}
