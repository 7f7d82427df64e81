// cuBLAS loaded with dlopen (cublas_dl.cuh).
#include <dlfcn.h>

#include <string>

#include "cublas_dl.cuh"

#ifndef IPFSA_CUDA_LIBRARY_DIR
#define IPFSA_CUDA_LIBRARY_DIR "/usr/local/cuda/lib64"
#endif

namespace ipfsa::cuda::blas {

namespace {

Result<Api> load() {
  const std::string soname = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
  void* lib = nullptr;
  std::string why;
  for (const std::string& path :
       {soname, std::string(IPFSA_CUDA_LIBRARY_DIR) + "/" + soname, "/usr/local/cuda/lib64/" + soname}) {
    lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib) break;
    if (const char* e = dlerror()) why = e;
  }
  if (!lib) return infra_error("cuBLAS: cannot load " + soname + ": " + why);
  Api a;
  bool ok = true;
  auto sym = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
    if (!fn) {
      ok = false;
      why = name;
    }
  };
  sym(a.create, "cublasCreate_v2");
  sym(a.destroy, "cublasDestroy_v2");
  sym(a.set_stream, "cublasSetStream_v2");
  sym(a.gemm_ex, "cublasGemmEx");
  sym(a.status_name, "cublasGetStatusName");
  sym(a.status_string, "cublasGetStatusString");
  if (!ok) return infra_error("cuBLAS: " + soname + " has no symbol " + why);
  return a;
}

}  // namespace

Result<const Api*> api() {
  static const Result<Api> loaded = load();
  if (!loaded) return loaded.error();
  return &loaded.value();
}

}  // namespace ipfsa::cuda::blas
