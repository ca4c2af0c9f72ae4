//! NVRTC compiles every kernel file for sm_90 through the same call and options the `Cuda`
//! backend uses at run time, and writes the PTX for `ptxas -v` (`.ci/gpu-compile-check.sh`
//! installs NVRTC from PyPI and runs this with `--ignored`; NVRTC needs no driver or GPU).

use metalab::gpu::cuda::compile;
use metalab::gpu::table::{KERNELS, SOURCES};

#[test]
#[ignore = "needs NVRTC (libnvrtc.so.13) on LD_LIBRARY_PATH: run .ci/gpu-compile-check.sh"]
fn nvrtc_compiles_every_kernel_for_sm_90() {
    // SAFETY: only looks for the library.
    assert!(
        unsafe { cudarc::nvrtc::sys::is_culib_present() },
        "libnvrtc.so.13 not found: put the nvidia-cuda-nvrtc wheel's lib/ on LD_LIBRARY_PATH"
    );
    let out = std::env::var_os("METALAB_PTX_DIR").map(std::path::PathBuf::from);
    for (file, source) in SOURCES {
        let ptx = compile(file, source, "sm_90").unwrap_or_else(|e| panic!("{e}"));
        let text = ptx.to_src();
        for (name, _) in KERNELS.iter().filter(|(_, f)| f == file) {
            assert!(
                text.contains(&format!(".entry {name}(")),
                "{file}: NVRTC's PTX has no entry {name}"
            );
        }
        if let Some(dir) = &out {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(file.replace(".cu", ".ptx")), text).unwrap();
        }
        eprintln!("{file}: compiled for sm_90");
    }
}
