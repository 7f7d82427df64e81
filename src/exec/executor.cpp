// Isolated execution (M4): the executor process (executor_main) and the worker's supervisor of it
// (ExecutorClient). The contract is in executor.hpp; the framing in exec_wire.hpp.
#include "exec/executor.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/kinds.hpp"
#include "exec/exec_wire.hpp"

extern char** environ;  // NOLINT: POSIX

namespace ipfsa::exec {

namespace {

using Clock = std::chrono::steady_clock;

// The executor checks that its parent is still the process that spawned it (PR_SET_PDEATHSIG only
// covers a parent that dies after the prctl call).
constexpr const char* kParentEnv = "IPFSA_EXECUTOR_PARENT";

// Executor exit codes. kExitOk also follows an oom reply: the executor retires so that the next
// task starts in a fresh process, whatever state the failed allocation left behind.
constexpr int kExitOk = 0;
constexpr int kExitProtocol = 2;  // malformed frame from the worker
constexpr int kExitIo = 3;        // the pipes failed
constexpr int kExitOrphaned = 4;  // the worker was gone before we started

constexpr std::size_t kReadChunk = 64 << 10;

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string errno_text(int err) {
  return std::strerror(err);
}

// ---------------------------------------------------------------------------------------------
// Executor side
// ---------------------------------------------------------------------------------------------

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// /proc/self files, opened once and re-read with pread: these reads happen around every task.
class ProcSelf {
 public:
  ProcSelf()
      : statm_(::open("/proc/self/statm", O_RDONLY | O_CLOEXEC)),
        status_(::open("/proc/self/status", O_RDONLY | O_CLOEXEC)),
        clear_refs_(::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC)),
        page_bytes_(static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE))) {}
  ~ProcSelf() {
    for (int fd : {statm_, status_, clear_refs_})
      if (fd >= 0) ::close(fd);
  }
  ProcSelf(const ProcSelf&) = delete;
  ProcSelf& operator=(const ProcSelf&) = delete;

  // Virtual size in bytes (VmSize), 0 when unknown.
  std::uint64_t vm_size() const {
    char buf[128];
    const ssize_t n = read_at_zero(statm_, buf, sizeof(buf) - 1);
    if (n <= 0) return 0;
    buf[n] = '\0';
    return std::strtoull(buf, nullptr, 10) * page_bytes_;
  }

  // Peak resident size in bytes since the last reset_peak() (VmHWM), 0 when unknown.
  std::uint64_t peak_rss() const {
    char buf[4096];
    const ssize_t n = read_at_zero(status_, buf, sizeof(buf) - 1);
    if (n <= 0) return 0;
    buf[n] = '\0';
    const char* p = std::strstr(buf, "\nVmHWM:");
    if (p == nullptr) return 0;
    return std::strtoull(p + 7, nullptr, 10) * 1024;
  }

  // Resets VmHWM to the current RSS (proc(5), clear_refs value 5). Without it (an old kernel), the
  // peak is the executor's since it started, which still bounds the task's.
  void reset_peak() const {
    if (clear_refs_ >= 0) {
      [[maybe_unused]] const ssize_t n = ::pwrite(clear_refs_, "5", 1, 0);
    }
  }

 private:
  static ssize_t read_at_zero(int fd, char* buf, std::size_t n) {
    if (fd < 0) return -1;
    ssize_t r;
    do r = ::pread(fd, buf, n, 0);
    while (r < 0 && errno == EINTR);
    return r;
  }

  int statm_;
  int status_;
  int clear_refs_;
  std::uint64_t page_bytes_;
};

// Sets RLIMIT_AS for one task and puts the previous limit back.
class AddressSpaceLimit {
 public:
  // Soft limit = current virtual size + memory_mb, capped by the current limit; nothing when
  // memory_mb is 0 (no limit requested) or the size is unknown.
  AddressSpaceLimit(const ProcSelf& proc, std::uint64_t memory_mb) {
    if (memory_mb == 0 || ::getrlimit(RLIMIT_AS, &saved_) != 0) return;
    const std::uint64_t base = proc.vm_size();
    if (base == 0) return;
    const std::uint64_t extra = std::min<std::uint64_t>(memory_mb, std::uint64_t{1} << 40) << 20;
    rlimit limit = saved_;
    // Never above the limit already in force (a user's `ulimit -v` stays the stricter one).
    limit.rlim_cur = static_cast<rlim_t>(std::min<std::uint64_t>(base + extra, saved_.rlim_cur));
    active_ = ::setrlimit(RLIMIT_AS, &limit) == 0;
  }
  ~AddressSpaceLimit() { restore(); }
  AddressSpaceLimit(const AddressSpaceLimit&) = delete;
  AddressSpaceLimit& operator=(const AddressSpaceLimit&) = delete;

  void restore() {
    if (active_) ::setrlimit(RLIMIT_AS, &saved_);
    active_ = false;
  }

 private:
  rlimit saved_{};
  bool active_ = false;
};

std::string known_kinds() {
  std::string s;
  for (const auto& name : engine::kind_names()) s += (s.empty() ? "" : ", ") + name;
  return s;
}

// Runs one request in this process: the limit, the kind, the exceptions, the peak memory.
ExecReply run_request(const ExecRequest& req, const ProcSelf& proc) {
  const core::TaskSpec& task = req.task;
  ExecReply reply;
  reply.task = task.index;
  reply.attempt = req.attempt;
  core::TaskOutcome& out = reply.outcome;

  const engine::Kind* kind = engine::find_kind(task.kind);
  if (kind == nullptr || kind->run == nullptr) {
    reply.started_unix = reply.ended_unix = wall_now();
    out.status = core::TaskStatus::kFailed;
    out.error = "unknown task kind '" + task.kind + "' (known: " + known_kinds() + ")";
    return reply;
  }

  {
    AddressSpaceLimit limit(proc, task.memory_mb);
    proc.reset_peak();
    reply.started_unix = wall_now();
    // The handlers lift the limit before they allocate their messages.
    try {
      out = kind->run(task);
    } catch (const std::bad_alloc&) {
      limit.restore();
      out = core::TaskOutcome{};
      out.status = core::TaskStatus::kOom;
      out.error =
          "out of memory: an allocation failed beyond memory_mb = " + std::to_string(task.memory_mb) + " MiB";
    } catch (const std::exception& e) {
      limit.restore();
      out = core::TaskOutcome{};
      out.status = core::TaskStatus::kFailed;
      out.error = task.kind + ": " + e.what();
    } catch (...) {
      limit.restore();
      out = core::TaskOutcome{};
      out.status = core::TaskStatus::kFailed;
      out.error = task.kind + ": unknown exception";
    }
    reply.ended_unix = wall_now();
  }
  if (out.peak_memory_bytes == 0) out.peak_memory_bytes = proc.peak_rss();
  return reply;
}

void executor_log(const std::string& message) {
  std::fprintf(stderr, "ipfs-accelerate __executor[%d]: %s\n", static_cast<int>(::getpid()), message.c_str());
}

// ---------------------------------------------------------------------------------------------
// Client side helpers
// ---------------------------------------------------------------------------------------------

std::string signal_name(int sig) {
  if (const char* abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
  return "unknown signal";
}

std::string seconds_text(double s) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%g", s);
  return buf;
}

// write(2) that cannot raise SIGPIPE in the worker: SIGPIPE is blocked around the call, and one
// raised by it is consumed before the mask is restored (the usual technique for libraries, which
// must not change the process-wide disposition).
ssize_t write_no_sigpipe(int fd, const char* p, std::size_t n) {
  sigset_t pipe_only, old_mask, pending;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old_mask);
  sigemptyset(&pending);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  const ssize_t w = ::write(fd, p, n);
  const int err = errno;
  if (w < 0 && err == EPIPE && !was_pending) {
    const timespec zero{};
    while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  errno = err;
  return w;
}

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

// The OOM killer's count for our memory cgroup (cgroup v2 memory.events or v1 memory.oom_control,
// field oom_kill), or nullopt when it cannot be read. An executor dies by a SIGKILL nobody sent
// it and this count grew while it lived: that is how an OOM kill is established.
std::optional<std::uint64_t> cgroup_oom_kills() {
  std::ifstream cgroups("/proc/self/cgroup");
  std::string line;
  std::vector<std::string> files;
  while (std::getline(cgroups, line)) {
    const auto c1 = line.find(':');
    const auto c2 = c1 == std::string::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string::npos) continue;
    const std::string controllers = line.substr(c1 + 1, c2 - c1 - 1);
    const std::string path = line.substr(c2 + 1);
    if (line.compare(0, c1, "0") == 0 && controllers.empty()) {
      files.push_back("/sys/fs/cgroup" + path + "/memory.events");
      files.push_back("/sys/fs/cgroup/memory.events");
    } else if (("," + controllers + ",").find(",memory,") != std::string::npos) {
      files.push_back("/sys/fs/cgroup/memory" + path + "/memory.oom_control");
      files.push_back("/sys/fs/cgroup/memory/memory.oom_control");
    }
  }
  for (const auto& file : files) {
    std::ifstream in(file);
    std::string key;
    std::uint64_t value = 0;
    while (in >> key >> value)
      if (key == "oom_kill") return value;
  }
  return std::nullopt;
}

// How long finish() waits for an executor to exit before it sends SIGKILL, and again after.
constexpr int kExitWaitMs = 1000;
// How long a freshly spawned executor may take to send its ready frame.
constexpr double kStartupTimeoutS = 60.0;
// Requests are encoded ahead of the pipe up to this many bytes.
constexpr std::size_t kOutHighWater = 64 << 10;
// Without a pidfd, poll() wakes this often to notice an exit that closed no pipe.
constexpr int kNoPidfdWakeMs = 100;

}  // namespace

// ---------------------------------------------------------------------------------------------
// ExecutorClient
// ---------------------------------------------------------------------------------------------

struct ExecutorClient::Impl {
  enum class KillReason { kNone, kTimeout, kProtocol, kUnresponsive, kStartup };

  struct Pending {
    const core::TaskSpec* task = nullptr;
    std::uint32_t attempt = 0;
    std::uint64_t seq = 0;        // submission number: identifies the entry across restarts
    std::size_t frame_bytes = 0;  // size of its request frame once encoded
  };

  ExecutorOptions options;
  std::deque<Pending> queue;   // submitted, not completed, in submission order; front = head
  std::uint64_t next_seq = 1;  // 0 is "none" in killed_seq

  // The executor of the moment (pid == -1: none).
  pid_t pid = -1;
  int to_child = -1;
  int from_child = -1;
  int pidfd = -1;
  Clock::time_point spawned_at{};
  bool ready = false;          // its ready frame arrived
  bool output_closed = false;  // EOF on its stdout
  bool input_broken = false;   // EPIPE on its stdin
  bool exited = false;         // reaped; exit_status is valid (pid must not be signalled)
  bool pidfd_readable = false;
  int exit_status = 0;
  bool last_reply_oom = false;
  KillReason kill_reason = KillReason::kNone;
  std::uint64_t killed_seq = 0;  // the head when we killed it
  std::string protocol_error;
  std::optional<std::uint64_t> oom_kills_at_spawn;

  // Request stream to the executor: queue[0, encoded) have frames in `out` or already written;
  // queue[0, written) were written in full; `partial` bytes of queue[written]'s frame are written.
  std::string out;
  std::size_t out_pos = 0;
  std::size_t encoded = 0;
  std::size_t written = 0;
  std::size_t partial = 0;
  FrameBuffer in;

  // The head's clock (executor.hpp: starts when its request is in the pipe of a ready executor
  // and the previous reply has arrived).
  bool head_clock = false;
  Clock::time_point head_start{};
  double head_start_unix = 0.0;

  std::uint32_t started = 0;
  std::vector<pid_t> unreaped;  // executors that would not die in time; reaped later

  explicit Impl(ExecutorOptions o) : options(std::move(o)) {}

  ~Impl() {
    if (pid >= 0) {
      if (!exited) ::kill(pid, SIGKILL);
      if (!exited) wait_exit(kExitWaitMs);
      if (!exited) unreaped.push_back(pid);
      close_pipes();
    }
    reap_unreaped();
  }

  // ---- process lifetime ----

  Result<void> spawn() {
    reap_unreaped();
    int in_pipe[2], out_pipe[2];
    if (::pipe2(in_pipe, O_CLOEXEC) != 0) return infra_error("executor: pipe: " + errno_text(errno));
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
      const int err = errno;
      ::close(in_pipe[0]);
      ::close(in_pipe[1]);
      return infra_error("executor: pipe: " + errno_text(err));
    }

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    // Inherited descriptors of the worker (MPI sockets, HDF5 files) stay out of the executor.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
#endif
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);    // the worker's blocked signals are not the executor's
    posix_spawnattr_setsigdefault(&attr, &all);  // nor its ignored ones (SIGPIPE, SIGCHLD)
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    std::vector<char*> argv;
    argv.push_back(options.program.data());
    for (auto& a : options.args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> own_vars = {std::string(kParentEnv) + "=" + std::to_string(::getpid())};
    for (const std::string& var : options.env) {
      IPFSA_EXPECTS(var.find('=') != std::string::npos, "ExecutorOptions::env: NAME=VALUE");
      own_vars.push_back(var);
    }
#if defined(__SANITIZE_ADDRESS__)
    // AddressSanitizer builds: let crashes be the signals they are (ASan's handlers would turn them
    // into exit code 1), so the executor reports the same outcomes as in a normal build.
    const char* asan = std::getenv("ASAN_OPTIONS");
    own_vars.push_back(std::string("ASAN_OPTIONS=") + (asan != nullptr ? asan : "") +
                       ":handle_segv=0:handle_abort=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0");
#endif
    std::vector<char*> envp;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      const std::string_view var(*e);
      const bool replaced = std::any_of(own_vars.begin(), own_vars.end(), [&](const std::string& own) {
        return var.substr(0, var.find('=') + 1) == std::string_view(own).substr(0, own.find('=') + 1);
      });
      if (!replaced) envp.push_back(*e);
    }
    for (auto& own : own_vars) envp.push_back(own.data());
    envp.push_back(nullptr);

    pid_t child = -1;
    const int rc = ::posix_spawn(&child, options.program.c_str(), &actions, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(in_pipe[0]);
    ::close(out_pipe[1]);
    if (rc != 0) {
      ::close(in_pipe[1]);
      ::close(out_pipe[0]);
      return infra_error("cannot start executor '" + options.program + "': " + errno_text(rc));
    }

    pid = child;
    to_child = in_pipe[1];
    from_child = out_pipe[0];
    ::fcntl(to_child, F_SETFL, ::fcntl(to_child, F_GETFL) | O_NONBLOCK);
    ::fcntl(from_child, F_SETFL, ::fcntl(from_child, F_GETFL) | O_NONBLOCK);
    pidfd = open_pidfd(child);
    spawned_at = Clock::now();
    ready = output_closed = input_broken = exited = pidfd_readable = last_reply_oom = false;
    kill_reason = KillReason::kNone;
    protocol_error.clear();
    oom_kills_at_spawn = cgroup_oom_kills();
    out.clear();
    out_pos = encoded = written = partial = 0;
    in.clear();
    head_clock = false;
    ++started;
    return {};
  }

  void close_pipes() {
    for (int* fd : {&to_child, &from_child, &pidfd}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
  }

  bool try_reap() {
    if (exited) return true;
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      exited = true;
      exit_status = status;
    } else if (r < 0 && errno == ECHILD) {
      // Reaped by someone else (SIGCHLD ignored process-wide): the status is lost.
      exited = true;
      exit_status = -1;
    }
    return exited;
  }

  // Waits up to `ms` for the executor to exit; true when it was reaped.
  bool wait_exit(int ms) {
    const auto until = Clock::now() + std::chrono::milliseconds(ms);
    while (!try_reap()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      if (left <= 0) return false;
      if (pidfd >= 0) {
        pollfd p{pidfd, POLLIN, 0};
        ::poll(&p, 1, static_cast<int>(std::min<long long>(left, kExitWaitMs)));
      } else {
        const timespec one_ms{0, 1000000};
        ::nanosleep(&one_ms, nullptr);
      }
    }
    return true;
  }

  void reap_unreaped() {
    std::erase_if(unreaped, [](pid_t p) {
      int status;
      const pid_t r = ::waitpid(p, &status, WNOHANG);
      return r == p || (r < 0 && errno == ECHILD);
    });
  }

  void kill_executor(KillReason reason) {
    if (kill_reason == KillReason::kNone) {
      kill_reason = reason;
      killed_seq = queue.empty() ? 0 : queue.front().seq;
    }
    if (!exited) ::kill(pid, SIGKILL);
  }

  // ---- requests ----

  void write_requests() {
    while (!input_broken) {
      if (out_pos == out.size()) {
        out.clear();
        out_pos = 0;
      }
      while (encoded < queue.size() && out.size() - out_pos < kOutHighWater) {
        Pending& p = queue[encoded++];
        p.frame_bytes = append_frame(out, ExecRequest{*p.task, p.attempt});
      }
      if (out_pos == out.size()) return;
      const ssize_t w = write_no_sigpipe(to_child, out.data() + out_pos, out.size() - out_pos);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) input_broken = true;  // EPIPE: it is exiting
        return;
      }
      out_pos += static_cast<std::size_t>(w);
      partial += static_cast<std::size_t>(w);
      while (written < encoded && partial >= queue[written].frame_bytes)
        partial -= queue[written++].frame_bytes;
    }
  }

  bool wants_to_write() const {
    return !input_broken && (out_pos < out.size() || encoded < queue.size());
  }

  // ---- replies ----

  // Reads everything available. Sets output_closed at EOF; stops at a protocol error.
  void read_replies(std::vector<ExecReply>& done) {
    while (!output_closed && protocol_error.empty()) {
      char* space = in.space(kReadChunk);
      const ssize_t r = ::read(from_child, space, kReadChunk);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        output_closed = true;  // EIO and the like: treat as the end of the stream
        return;
      }
      if (r == 0) {
        output_closed = true;
        return;
      }
      in.commit(static_cast<std::size_t>(r));
      parse_replies(done);
    }
  }

  void parse_replies(std::vector<ExecReply>& done) {
    std::string_view body;
    for (;;) {
      const auto next = in.next(body);
      if (next == FrameBuffer::Next::kNeedMore) return;
      if (next == FrameBuffer::Next::kTooLarge) return fail_protocol("oversized frame");
      if (body.empty()) {
        if (ready) return fail_protocol("second ready frame");
        ready = true;
        start_head_clock();
        continue;
      }
      if (!ready) return fail_protocol("a reply before the ready frame (is it an executor?)");
      auto reply = wire::decode<ExecReply>(body);
      if (!reply) return fail_protocol(reply.error().message);
      if (queue.empty() || written == 0)
        return fail_protocol("reply for task " + std::to_string(reply->task) + " that was not sent");
      const Pending& head = queue.front();
      if (reply->task != head.task->index || reply->attempt != head.attempt)
        return fail_protocol("reply for task " + std::to_string(reply->task) + " attempt " +
                             std::to_string(reply->attempt) + ", expected task " +
                             std::to_string(head.task->index) + " attempt " + std::to_string(head.attempt));
      last_reply_oom = reply->outcome.status == core::TaskStatus::kOom;
      done.push_back(std::move(*reply));
      queue.pop_front();
      --encoded;
      --written;
      head_clock = false;
      start_head_clock();
    }
  }

  void fail_protocol(std::string message) {
    if (protocol_error.empty()) protocol_error = std::move(message);
    kill_executor(KillReason::kProtocol);
  }

  void start_head_clock() {
    if (head_clock || !ready || written == 0 || queue.empty()) return;
    head_clock = true;
    head_start = Clock::now();
    head_start_unix = wall_now();
  }

  // Seconds until the head (or, before the ready frame, the start-up) must be done; +inf if never.
  double seconds_to_deadline(Clock::time_point now) const {
    if (pid < 0 || exited) return INFINITY;
    if (!ready) return kStartupTimeoutS - std::chrono::duration<double>(now - spawned_at).count();
    if (!head_clock) return INFINITY;
    const double limit = queue.front().task->timeout_s;
    if (!(limit > 0.0)) return INFINITY;
    return limit + options.kill_grace_s - std::chrono::duration<double>(now - head_start).count();
  }

  // ---- the end of an executor ----

  // The executor is dead, dying or just killed: reap it (bounded), collect the replies it wrote,
  // give the head the outcome of its death, and start a new executor for the tasks left.
  void finish(std::vector<ExecReply>& done) {
    if (!wait_exit(kExitWaitMs)) {
      kill_executor(KillReason::kUnresponsive);
      wait_exit(kExitWaitMs);
    }
    read_replies(done);  // replies written before the end are still in the pipe
    if (!queue.empty() && !last_reply_oom) blame_head(done);
    close_pipes();
    if (!exited) unreaped.push_back(pid);
    pid = -1;
    if (!queue.empty()) start_or_fail_all(done);
  }

  void blame_head(std::vector<ExecReply>& done) {
    const Pending& head = queue.front();
    core::TaskOutcome o;
    o.status = core::TaskStatus::kCrashed;
    if (!protocol_error.empty()) {
      o.error = "executor protocol error: " + protocol_error;
    } else if (kill_reason == KillReason::kTimeout) {
      // The task timed out unless its reply slipped in just before the kill: then the head is a
      // task that was only waiting in the pipe, and it is re-sent instead.
      if (killed_seq != head.seq) return;
      o.status = core::TaskStatus::kTimeout;
      o.error = "timed out after " + seconds_text(head.task->timeout_s) + " s";
    } else if (kill_reason == KillReason::kStartup) {
      o.error = "executor did not start within " + seconds_text(kStartupTimeoutS) + " s";
    } else if (!exited) {
      o.error = "executor could not be killed";
    } else if (exit_status == -1) {
      o.error = "executor exited; its status was lost (SIGCHLD ignored?)";
    } else if (WIFSIGNALED(exit_status)) {
      const int sig = WTERMSIG(exit_status);
      const auto oom_kills = cgroup_oom_kills();
      if (sig == SIGKILL && kill_reason == KillReason::kNone && oom_kills && oom_kills_at_spawn &&
          *oom_kills > *oom_kills_at_spawn) {
        o.status = core::TaskStatus::kOom;
        o.error = "killed by the kernel OOM killer (SIGKILL; cgroup oom_kill " +
                  std::to_string(*oom_kills_at_spawn) + " -> " + std::to_string(*oom_kills) + ")";
      } else {
        o.signal = sig;
        o.error = "killed by signal " + std::to_string(sig) + " (" + signal_name(sig) + ")";
        if (kill_reason == KillReason::kUnresponsive) o.error += " after it stopped responding";
      }
    } else {
      o.error = "executor exited with code " + std::to_string(WEXITSTATUS(exit_status));
    }
    ExecReply r;
    r.task = head.task->index;
    r.attempt = head.attempt;
    r.started_unix = head_clock ? head_start_unix : wall_now();
    r.ended_unix = wall_now();
    r.outcome = std::move(o);
    done.push_back(std::move(r));
    queue.pop_front();
  }

  // Starts an executor for the queued tasks; when that fails, they all complete as crashed (they
  // cannot run here, and the worker must not wait for them forever).
  bool start_or_fail_all(std::vector<ExecReply>& done) {
    auto started_ok = spawn();
    if (started_ok) return true;
    const double now = wall_now();
    for (const Pending& p : queue) {
      ExecReply r;
      r.task = p.task->index;
      r.attempt = p.attempt;
      r.started_unix = r.ended_unix = now;
      r.outcome.status = core::TaskStatus::kCrashed;
      r.outcome.error = started_ok.error().message;
      done.push_back(std::move(r));
    }
    queue.clear();
    return false;
  }

  // ---- one round of non-blocking work ----

  void service(std::vector<ExecReply>& done) {
    read_replies(done);
    if (protocol_error.empty()) write_requests();
    start_head_clock();
    if (pidfd < 0 || pidfd_readable) try_reap();
    pidfd_readable = false;
    if (!protocol_error.empty() || output_closed || input_broken || exited) return finish(done);
    if (seconds_to_deadline(Clock::now()) <= 0.0) {
      kill_executor(ready ? KillReason::kTimeout : KillReason::kStartup);
      finish(done);
    }
  }

  std::vector<ExecReply> poll(int timeout_ms) {
    std::vector<ExecReply> done;
    const auto call_end = Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
    for (;;) {
      if (pid < 0 && queue.empty()) {
        // Nothing can happen until a submit(); wait anyway, so that a caller looping on poll()
        // does not spin.
        const auto left = call_end - Clock::now();
        if (left > Clock::duration::zero()) std::this_thread::sleep_for(left);
        return done;
      }
      if (pid < 0 && !start_or_fail_all(done)) return done;
      service(done);
      if (!done.empty() || pid < 0) return done;

      const auto now = Clock::now();
      double wait_s = std::chrono::duration<double>(call_end - now).count();
      if (wait_s <= 0.0) return done;
      wait_s = std::min(wait_s, std::max(seconds_to_deadline(now), 0.0));
      int wait_ms = static_cast<int>(std::ceil(wait_s * 1000.0));
      if (pidfd < 0) wait_ms = std::min(wait_ms, kNoPidfdWakeMs);

      pollfd fds[3];
      nfds_t n = 0;
      fds[n++] = pollfd{from_child, POLLIN, 0};
      const nfds_t pidfd_slot = n;
      if (pidfd >= 0) fds[n++] = pollfd{pidfd, POLLIN, 0};
      if (wants_to_write()) fds[n++] = pollfd{to_child, POLLOUT, 0};
      if (::poll(fds, n, wait_ms) > 0 && pidfd >= 0) pidfd_readable = (fds[pidfd_slot].revents & POLLIN) != 0;
    }
  }
};

ExecutorClient::ExecutorClient(ExecutorOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

ExecutorClient::~ExecutorClient() = default;

Result<void> ExecutorClient::start() {
  if (impl_->pid >= 0) return {};
  return impl_->spawn();
}

void ExecutorClient::submit(const core::TaskSpec& task, std::uint32_t attempt) {
  impl_->queue.push_back(Impl::Pending{&task, attempt, impl_->next_seq++, 0});
}

std::vector<ExecReply> ExecutorClient::poll(int timeout_ms) {
  return impl_->poll(timeout_ms);
}

std::size_t ExecutorClient::queued() const {
  return impl_->queue.size();
}

pid_t ExecutorClient::pid() const {
  return impl_->pid;
}

std::uint32_t ExecutorClient::restarts() const {
  return impl_->started > 0 ? impl_->started - 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Executor process
// ---------------------------------------------------------------------------------------------

int executor_main() {
  // Die with the worker (Linux sends it when the spawning *thread* exits; see README.md).
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (const char* parent = std::getenv(kParentEnv)) {
    if (std::to_string(::getppid()) != parent) return kExitOrphaned;
  } else if (::getppid() == 1) {
    return kExitOrphaned;
  }
  ::signal(SIGPIPE, SIG_IGN);  // a dead worker shows up as EPIPE
  // Crashing is this process's job: no core files (they would take long and fill disks).
  rlimit core_limit{};
  if (::getrlimit(RLIMIT_CORE, &core_limit) == 0) {
    core_limit.rlim_cur = 0;
    ::setrlimit(RLIMIT_CORE, &core_limit);
  }

  // The protocol moves to private descriptors; fd 0 becomes /dev/null and fd 1 the log (stderr),
  // so nothing a kind reads or prints can corrupt the stream.
  const int in = ::fcntl(0, F_DUPFD_CLOEXEC, 3);
  const int out = ::fcntl(1, F_DUPFD_CLOEXEC, 3);
  if (in < 0 || out < 0) {
    executor_log("cannot set up its pipes: " + errno_text(errno));
    return kExitIo;
  }
  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0) ::dup2(null_fd, 0);
  if (::dup2(2, 1) < 0 && null_fd >= 0) ::dup2(null_fd, 1);  // no stderr: output goes nowhere
  if (null_fd >= 0) ::close(null_fd);

  ProcSelf proc;
  std::string frame;
  append_frame_header(frame, 0);  // ready
  if (!write_all(out, frame.data(), frame.size())) return kExitIo;

  FrameBuffer buffer;
  for (;;) {
    char* space = buffer.space(kReadChunk);
    const ssize_t r = ::read(in, space, kReadChunk);
    if (r < 0) {
      if (errno == EINTR) continue;
      executor_log("read: " + errno_text(errno));
      return kExitIo;
    }
    if (r == 0) {
      if (buffer.buffered() == 0) return kExitOk;
      executor_log("the worker closed the pipe in the middle of a frame");
      return kExitProtocol;
    }
    buffer.commit(static_cast<std::size_t>(r));
    std::string_view body;
    for (;;) {
      const auto next = buffer.next(body);
      if (next == FrameBuffer::Next::kNeedMore) break;
      if (next == FrameBuffer::Next::kTooLarge) {
        executor_log("oversized frame from the worker");
        return kExitProtocol;
      }
      auto request = wire::decode<ExecRequest>(body);
      if (!request) {
        executor_log(request.error().message);
        return kExitProtocol;
      }
      const ExecReply reply = run_request(*request, proc);
      frame.clear();
      append_frame(frame, reply);
      if (!write_all(out, frame.data(), frame.size())) return kExitIo;
      if (reply.outcome.status == core::TaskStatus::kOom) return kExitOk;  // retire (see kExitOk)
    }
  }
}

}  // namespace ipfsa::exec
