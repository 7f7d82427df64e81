// Shared by the GPU tests: one context per process, and the skip when there is no GPU.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "device_info.cuh"
#include "lowbit.hpp"

namespace ipfsa::cuda::testing {

// The process-wide context on device 0, or null with `why` set when there is no usable GPU.
inline GpuContext* context(std::string* why) {
  static std::unique_ptr<GpuContext> ctx;
  static std::string reason;
  static bool tried = false;
  if (!tried) {
    tried = true;
    if (device_count() == 0) {
      reason = "no CUDA device (or no driver) on this machine";
    } else {
      auto c = GpuContext::create(0);
      if (c)
        ctx = std::move(c).value();
      else
        reason = c.error().message;
    }
  }
  *why = reason;
  return ctx.get();
}

}  // namespace ipfsa::cuda::testing

// In a test body: GpuContext& ctx = ... or GTEST_SKIP with the reason.
#define IPFSA_GPU_CONTEXT(name)                                                          \
  std::string ipfsa_why_;                                                                \
  ::ipfsa::cuda::GpuContext* name##_ptr_ = ::ipfsa::cuda::testing::context(&ipfsa_why_); \
  if (!name##_ptr_) GTEST_SKIP() << ipfsa_why_;                                          \
  ::ipfsa::cuda::GpuContext& name = *name##_ptr_
