// What a worker knows about its machine: capabilities at join (M3) and health in every
// heartbeat (M2) — CPU load, memory, disk, network, GPU memory. Linux /proc based; GPU through
// cuda/device_info.cuh when built with CUDA. Functions never fail: unknown values read as 0.
// Thread-safety: all functions are reentrant.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/scheduler.hpp"

namespace ipfsa::sys {

struct Health {
  double load1 = 0;  // 1-minute load average
  std::uint64_t mem_total_bytes = 0;
  std::uint64_t mem_available_bytes = 0;
  std::uint64_t disk_free_bytes = 0;  // of the filesystem holding the run's output
  std::uint64_t net_rx_bytes = 0;     // all non-loopback interfaces, since boot
  std::uint64_t net_tx_bytes = 0;
  std::uint64_t gpu_mem_used_bytes = 0;
  std::uint64_t gpu_mem_total_bytes = 0;
  std::uint64_t rss_bytes = 0;  // of the calling process
};

// Capabilities of this machine as seen by rank `rank`; `gpu_device` is the device the rank binds
// to (node-local rank modulo device count), or -1 for none. With a GPU, gpu_driver is the NVIDIA
// kernel driver version from /proc/driver/nvidia/version (empty when that file is missing).
core::WorkerInfo probe_worker_info(std::int32_t rank, int gpu_device);
// The driver version ("550.54.15") in the text of /proc/driver/nvidia/version: the first token of
// its "NVRM version:" line that is digits and dots with at least one dot; empty when none. Pure.
std::string nvidia_driver_version(std::string_view proc_version_text);
// Health right now; `disk_path` selects the filesystem for disk_free_bytes.
Health probe_health(const std::string& disk_path, int gpu_device);
// GPU devices visible to this process (0 without CUDA support or devices).
int gpu_device_count();
std::string host_name();

}  // namespace ipfsa::sys
