// confpodd under load, against baselines measured in the same run: a real dbus-daemon with a
// system-bus-like policy and the real confpodd (tests/support/bus.h), 200 tee "none" pods
// created (not started), an sd-bus client in this process.
//
//   ListPods / GetPod: call latency p50/p99 over ITERATIONS calls each, interleaved with the
//     same number of org.freedesktop.DBus.Peer.Ping calls to confpodd (answered by sd-bus
//     itself: the round trip through dbus-daemon, no confpod code). ListPods reads the whole
//     reply (200 entries). Target: ListPods p99 < 5 ms.
//   RSS: confpodd's VmRSS (/proc/<pid>/status) with the 200 pods, beside its VmRSS before the
//     first pod. Target < 30 MiB.
//   StartPod to QEMU: two instants, both from inotify on the pod's runtime directory,
//     - "QMP socket bound" (the target): the IN_CREATE of <runtime_dir>/pods/<name>/qmp.sock,
//       which QEMU makes when it sets up its -qmp chardev, i.e. once it was exec'd, linked and
//       parsed its command line. Daemon side: from just before StartPod is sent until then.
//       Baseline: posix_spawn of the SAME argv (read from /proc/<pid>/cmdline of a pod QEMU
//       the daemon started) in this process, from just before the spawn until the same event.
//     - "exec'd" (report only): daemon side until the IN_MOVED_TO of qemu.pid, which the
//       supervisor renames into place right after posix_spawn returned from a successful
//       execve; baseline until its own posix_spawn returns. Also
//       printed: when confpodd made the pod's runtime directory (IN_CREATE in pods/), its
//       first step on disk, after the D-Bus call, authorization and spec to argv.
//     Runs come in pairs, daemon first in odd pairs and direct first in even ones, so drift on
//     a shared machine hits both alike. Printed: the median of each side and the median of
//     the per-pair ratios (robust against load that changes between pairs). Target: < 1.1.
//   Load: 16 threads, each with its own bus connection, issue a mixed stream of ListPods,
//     GetPod, CreatePod and RemovePod (of the pods that client created) against the 200 pods:
//     paced, 50 calls/s per client at Poisson arrivals, for LOAD_SECONDS (60); then the two
//     report-only paced phases below; last back to back with no think time for 10 s
//     (saturation). Printed for each: calls by kind and per second, errors (target 0; the first
//     is shown), ListPods p50/p99 beside the idle p99 above (target p99 < 5 ms for the first
//     paced phase; report only otherwise), and confpodd's VmRSS after all of them.
//     Paced, also (report only; what a ListPods' tail is made of): a 17th client's Peer.Ping to
//     dbus-daemon itself at the same Poisson rate, from the planned instant (the bus and this
//     machine under the load, no confpodd), how late the clients' own timers woke them (or
//     their previous call ended) after the planned instant, CreatePod and RemovePod latency from
//     their send, GetPod latency from the planned instant.
//     Then the same paced load with reads only (ListPods and GetPod in the same proportion, at
//     the same call rate) for up to 20 s (report only): the tail without the writes (their
//     commits on confpodd's event loop and their disk flushes; docs/testing.md).
//     Then the mixed paced load again for up to 20 s with one SCHED_IDLE spinning thread pinned
//     to each CPU (report only; the label says how many spin): the CPUs never halt, so the
//     difference to the first phase is what waking idle (virtual) CPUs adds to the tail. The
//     spinners run only when nothing else wants their CPU (SCHED_IDLE still gets a sliver of
//     time, and a cgroup CPU quota would count them).
//
// Usage: daemon_bench [ITERATIONS] [START_RUNS] [LOAD_SECONDS]   (defaults: 500, 20, 60)
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/machine_costs.h"
#include "bench/spawn.h"
#include "tests/support/bus.h"

namespace {

using Clock = std::chrono::steady_clock;
using confpod::testing::BusPtr;
using confpod::testing::DaemonOptions;
using confpod::testing::DaemonProcess;
using confpod::testing::PrivateBus;

constexpr int kPods = 200;
constexpr const char* kName = "org.confpod1";
constexpr const char* kPath = "/org/confpod1";
constexpr const char* kManager = "org.confpod1.Manager";
constexpr auto kEventTimeout = std::chrono::seconds(30);

double ms_since(Clock::time_point t0, Clock::time_point t1) {
  return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

std::string pod_name(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "bench-%03d", i);
  return buf;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// VmRSS of `pid` in MiB.
double rss_mib(pid_t pid) {
  std::istringstream status(read_file("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  }
  throw std::runtime_error("no VmRSS for pid " + std::to_string(pid));
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

double median(const std::vector<double>& v) { return percentile(v, 50); }

// --- D-Bus client ------------------------------------------------------------------------------

// Calls a confpodd method; throws with the D-Bus error on failure. `fill` appends the arguments.
template <class Fill>
sd_bus_message* call(sd_bus* bus, const char* path, const char* interface, const char* member,
                     Fill fill) {
  sd_bus_message* m = nullptr;
  int r = sd_bus_message_new_method_call(bus, &m, kName, path, interface, member);
  if (r >= 0) r = fill(m);
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  if (r >= 0) r = sd_bus_call(bus, m, 60'000'000, &error, &reply);
  sd_bus_message_unref(m);
  if (r < 0) {
    std::string what =
        std::string(member) + ": " +
        (error.name ? std::string(error.name) + ": " + (error.message ? error.message : "")
                    : std::strerror(-r));
    sd_bus_error_free(&error);
    throw std::runtime_error(what);
  }
  return reply;
}

sd_bus_message* call_s(sd_bus* bus, const char* member, const std::string& arg) {
  return call(bus, kPath, kManager, member,
              [&](sd_bus_message* m) { return sd_bus_message_append(m, "s", arg.c_str()); });
}

void ping(sd_bus* bus) {
  sd_bus_message_unref(
      call(bus, kPath, "org.freedesktop.DBus.Peer", "Ping", [](sd_bus_message*) { return 0; }));
}

// Peer.Ping to dbus-daemon itself: the bus and this machine, no confpodd.
void ping_bus(sd_bus* bus) {
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                             "org.freedesktop.DBus.Peer", "Ping", &error, &reply, "");
  sd_bus_error_free(&error);
  sd_bus_message_unref(reply);
  if (r < 0) throw std::runtime_error(std::string("Ping dbus-daemon: ") + std::strerror(-r));
}

// ListPods, reading every entry of the reply; returns how many there were.
int list_pods(sd_bus* bus) {
  sd_bus_message* reply = call(bus, kPath, kManager, "ListPods", [](sd_bus_message*) { return 0; });
  int n = 0;
  int r = sd_bus_message_enter_container(reply, 'a', "(ssso)");
  const char *name, *state, *tee, *path;
  // Field by field, as a client that cares about speed reads it (sd_bus_message_read parses
  // the signature string again for every entry).
  while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'r', "ssso")) > 0) {
    r = sd_bus_message_read_basic(reply, 's', &name);
    if (r > 0) r = sd_bus_message_read_basic(reply, 's', &state);
    if (r > 0) r = sd_bus_message_read_basic(reply, 's', &tee);
    if (r > 0) r = sd_bus_message_read_basic(reply, 'o', &path);
    if (r > 0) r = sd_bus_message_exit_container(reply);
    ++n;
  }
  if (r >= 0) r = sd_bus_message_exit_container(reply);
  sd_bus_message_unref(reply);
  if (r < 0) throw std::runtime_error(std::string("ListPods reply: ") + std::strerror(-r));
  return n;
}

void get_pod(sd_bus* bus, const std::string& name) {
  sd_bus_message* reply = call_s(bus, "GetPod", name);
  const char* path = nullptr;
  int r = sd_bus_message_read(reply, "o", &path);
  sd_bus_message_unref(reply);
  if (r < 0) throw std::runtime_error(std::string("GetPod reply: ") + std::strerror(-r));
}

void remove_pod(sd_bus* bus, const std::string& name) {
  sd_bus_message_unref(call(bus, kPath, kManager, "RemovePod", [&](sd_bus_message* m) {
    return sd_bus_message_append(m, "sb", name.c_str(), 0);
  }));
}

// --- inotify -----------------------------------------------------------------------------------

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Times, from inotify, when qmp.sock is bound and qemu.pid is renamed into place in one pod's
// runtime directory, which may not exist yet (the daemon creates it on the first start).
class PodDirWatch {
 public:
  PodDirWatch(const std::string& pods_dir, const std::string& name, bool want_pidfile)
      : fd_(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK)),
        dir_(pods_dir + "/" + name),
        name_(name),
        want_pidfile_(want_pidfile) {
    if (fd_.get() < 0) throw std::runtime_error("inotify_init1 failed");
    struct stat st {};
    if (::stat(dir_.c_str(), &st) == 0) {
      watch_dir();
    } else if (::inotify_add_watch(fd_.get(), pods_dir.c_str(), IN_CREATE) < 0) {
      throw std::runtime_error("inotify_add_watch " + pods_dir + ": " + std::strerror(errno));
    }
  }

  // Blocks until every wanted event was seen; throws after kEventTimeout.
  void wait() {
    auto deadline = Clock::now() + kEventTimeout;
    while (!done()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) throw std::runtime_error("no QEMU events in " + dir_ + " within 30 s");
      pollfd pfd{fd_.get(), POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
      alignas(inotify_event) char buf[4096];
      ssize_t n = ::read(fd_.get(), buf, sizeof buf);
      auto now = Clock::now();
      for (char* p = buf; n > 0 && p < buf + n;) {
        auto* event = reinterpret_cast<inotify_event*>(p);
        std::string file = event->len ? event->name : "";
        if (event->wd == dir_wd_) {
          if ((event->mask & IN_CREATE) && file == "qmp.sock" && !qmp_) qmp_ = now;
          if ((event->mask & IN_MOVED_TO) && file == "qemu.pid" && !pidfile_) pidfile_ = now;
        } else if (dir_wd_ < 0 && (event->mask & IN_CREATE) && file == name_) {
          made_ = now;
          watch_dir();
          // Whatever appeared before the watch existed: seen now (at the latest).
          if (!qmp_ && ::access((dir_ + "/qmp.sock").c_str(), F_OK) == 0) qmp_ = now;
          if (!pidfile_ && ::access((dir_ + "/qemu.pid").c_str(), F_OK) == 0) pidfile_ = now;
        }
        p += sizeof(inotify_event) + event->len;
      }
    }
  }

  Clock::time_point qmp() const { return *qmp_; }
  Clock::time_point pidfile() const { return *pidfile_; }
  // When the daemon made the pod's runtime directory (unset when it existed already).
  std::optional<Clock::time_point> made() const { return made_; }

 private:
  void watch_dir() {
    dir_wd_ = ::inotify_add_watch(fd_.get(), dir_.c_str(), IN_CREATE | IN_MOVED_TO);
    if (dir_wd_ < 0)
      throw std::runtime_error("inotify_add_watch " + dir_ + ": " + std::strerror(errno));
  }
  bool done() const { return qmp_ && (!want_pidfile_ || pidfile_); }

  Fd fd_;
  std::string dir_;
  std::string name_;
  bool want_pidfile_;
  int dir_wd_ = -1;
  std::optional<Clock::time_point> qmp_, pidfile_, made_;
};

// argv of a running process.
std::vector<std::string> cmdline_of(pid_t pid) {
  std::string raw = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> argv;
  for (std::size_t start = 0; start < raw.size();) {
    std::size_t end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    argv.push_back(raw.substr(start, end - start));
    start = end + 1;
  }
  if (argv.empty()) throw std::runtime_error("empty /proc/" + std::to_string(pid) + "/cmdline");
  return argv;
}

// --- StartPod against a bare spawn --------------------------------------------------------------

struct StartSample {
  double exec_ms;     // until QEMU was exec'd
  double qmp_ms;      // until its QMP socket was bound
  double mkdir_ms{};  // daemon: until it made the pod's runtime directory (its first file step)
};

int on_reply(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* result = static_cast<std::string*>(userdata);
  const sd_bus_error* error = sd_bus_message_get_error(m);
  *result = error ? std::string(error->name) + ": " + (error->message ? error->message : "") : "ok";
  return 0;
}

// StartPod(name) as a client sends it, timed to the QEMU events; then KillPod. With `argv`,
// the command line of the QEMU it ran (from /proc/<pid>/cmdline) is stored there.
StartSample daemon_start(sd_bus* bus, const std::string& pods_dir, const std::string& name,
                         std::vector<std::string>* argv = nullptr) {
  PodDirWatch watch(pods_dir, name, true);
  sd_bus_message* m = nullptr;
  if (sd_bus_message_new_method_call(bus, &m, kName, kPath, kManager, "StartPod") < 0 ||
      sd_bus_message_append(m, "s", name.c_str()) < 0)
    throw std::runtime_error("cannot build StartPod");
  std::string result;
  sd_bus_slot* slot = nullptr;
  auto t0 = Clock::now();
  int r = sd_bus_call_async(bus, &slot, m, on_reply, &result, 60'000'000);
  if (r >= 0) r = sd_bus_flush(bus);
  sd_bus_message_unref(m);
  if (r < 0) throw std::runtime_error(std::string("StartPod send: ") + std::strerror(-r));
  watch.wait();
  // The reply comes once QMP answered; then the VM goes away again.
  while (result.empty()) {
    r = sd_bus_process(bus, nullptr);
    if (r < 0) throw std::runtime_error(std::string("sd_bus_process: ") + std::strerror(-r));
    if (r == 0 && sd_bus_wait(bus, 60'000'000) < 0) throw std::runtime_error("sd_bus_wait");
  }
  sd_bus_slot_unref(slot);
  if (result != "ok") throw std::runtime_error("StartPod " + name + ": " + result);
  if (argv != nullptr) {
    std::string pid = read_file(pods_dir + "/" + name + "/qemu.pid");
    *argv = cmdline_of(static_cast<pid_t>(std::atoi(pid.c_str())));
  }
  sd_bus_message_unref(call_s(bus, "KillPod", name));
  double mkdir_ms = watch.made() ? ms_since(t0, *watch.made()) : 0;
  return {ms_since(t0, watch.pidfile()), ms_since(t0, watch.qmp()), mkdir_ms};
}

// The same QEMU argv started by hand: posix_spawn (bench/spawn.h), nothing else.
StartSample direct_start(const std::vector<std::string>& argv_strings, const std::string& pods_dir,
                         const std::string& name) {
  PodDirWatch watch(pods_dir, name, false);
  auto t0 = Clock::now();
  pid_t pid = -1;
  if (int e = confpod::bench::spawn_quiet(argv_strings, pid); e != 0)
    throw std::runtime_error("posix_spawn " + argv_strings[0] + ": " + std::strerror(e));
  auto t_exec = Clock::now();
  try {
    watch.wait();
  } catch (...) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    throw;
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return {ms_since(t0, t_exec), ms_since(t0, watch.qmp())};
}

// --- mixed load from many clients -------------------------------------------------------------

constexpr int kLoadClients = 16;
// Calls per second per client in the paced phase: 16 clients make 800 calls/s, a busy site's
// tooling many times over (monitoring polls, confpodctl, fleet runs), about a sixth of what
// confpodd answers at saturation here.
constexpr double kPacedRate = 50;
constexpr int kSaturationSeconds = 10;
constexpr int kReadsOnlySeconds = 20;
constexpr int kAwakeSeconds = 20;

// One thread per CPU that spins under SCHED_IDLE, the policy the scheduler runs only when
// nothing else wants the CPU (a woken task preempts it at once), so the CPUs never go idle and
// never halt. On a virtual machine a halted vCPU is woken through the hypervisor; what that
// adds to a call's tail is the difference between a phase with and one without spinners.
class IdleSpinners {
 public:
  // Spinner i runs on CPU i; one that cannot be made SCHED_IDLE does not spin (it would
  // compete with the load). spinning() tells how many do.
  IdleSpinners() {
    const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
    try {
      for (unsigned i = 0; i < cpus; ++i)
        threads_.emplace_back([this, i] {
          cpu_set_t one;
          CPU_ZERO(&one);
          CPU_SET(i, &one);
          sched_param none{};
          const bool idle = pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0 &&
                            pthread_setschedparam(pthread_self(), SCHED_IDLE, &none) == 0;
          if (idle) ++spinning_;
          ++decided_;
          if (!idle) return;
          while (!stop_.load(std::memory_order_relaxed)) {
          }
        });
    } catch (...) {
      stop();
      throw;
    }
    // Until every thread has decided, so spinning() is final.
    while (decided_.load() < threads_.size()) std::this_thread::yield();
  }
  ~IdleSpinners() { stop(); }
  IdleSpinners(const IdleSpinners&) = delete;
  IdleSpinners& operator=(const IdleSpinners&) = delete;

  unsigned spinning() const { return spinning_.load(); }

 private:
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

  std::atomic<bool> stop_{false};
  std::atomic<unsigned> spinning_{0};
  std::atomic<std::size_t> decided_{0};
  std::vector<std::thread> threads_;
};

// What the load clients call: the mixed stream, or its reads alone (ListPods and GetPod in the
// same 40:30 proportion, at the same call rate), which shows what the writes add to the tail.
enum class Mix { kMixed, kReadsOnly };

struct LoadResult {
  std::vector<double> list_ms;
  std::vector<double> late_ms;
  std::vector<double> create_ms, remove_ms, get_ms;
  long lists = 0, gets = 0, creates = 0, removes = 0, errors = 0;
  std::string first_error;
};

using SpecFn = std::function<std::string(const std::string&)>;

// Poisson arrivals at `rate` per second from now until `until`, drawn from `random`: next()
// sleeps until the next planned instant and returns it, or nullopt when it falls at or past
// `until`.
class PoissonPacer {
 public:
  PoissonPacer(double rate, std::mt19937& random, Clock::time_point until)
      : random_(random), gap_(rate), until_(until), planned_(Clock::now()) {}
  std::optional<Clock::time_point> next() {
    planned_ +=
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap_(random_)));
    if (planned_ >= until_) return std::nullopt;
    std::this_thread::sleep_until(planned_);
    return planned_;
  }

 private:
  std::mt19937& random_;
  std::exponential_distribution<double> gap_;
  Clock::time_point until_;
  Clock::time_point planned_;
};

// One client on its own connection: a seeded mix of 40% ListPods, 30% GetPod, 15% CreatePod and
// 15% RemovePod (of pods it created itself; all removed before it returns, so the daemon ends
// with the 200 it had) until `until`. With `rate` > 0 calls are sent at Poisson arrivals of
// that mean rate and latency counts from the planned send instant (a late start is the
// server's delay too, no coordinated omission); with 0 they go back to back.
void load_client(const PrivateBus& bus, int client, double rate, Mix mix, Clock::time_point until,
                 const SpecFn& spec, LoadResult& out) {
  BusPtr conn = confpod::testing::open_bus(bus);
  sd_bus* b = conn.get();
  std::mt19937 random(static_cast<unsigned>(client) * 7919u + 1u);
  PoissonPacer pacer(rate > 0 ? rate : 1, random, until);
  std::vector<std::string> mine;
  int made = 0;
  auto attempt = [&](auto&& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      if (out.errors++ == 0) out.first_error = e.what();
    }
  };
  Clock::time_point planned;
  while (true) {
    if (rate > 0) {
      auto next = pacer.next();
      if (!next) break;
      planned = *next;
      out.late_ms.push_back(ms_since(planned, Clock::now()));
    } else {
      planned = Clock::now();
      if (planned >= until) break;
    }
    unsigned dice = random() % (mix == Mix::kReadsOnly ? 70 : 100);
    if (dice < 40) {
      attempt([&] {
        if (int n = list_pods(b); n < kPods)
          throw std::runtime_error("ListPods returned " + std::to_string(n) + " pods");
        out.list_ms.push_back(ms_since(planned, Clock::now()));
      });
      ++out.lists;
    } else if (dice < 70) {
      attempt([&] { get_pod(b, pod_name(static_cast<int>(random() % kPods))); });
      out.get_ms.push_back(ms_since(planned, Clock::now()));
      ++out.gets;
    } else if (dice < 85 || mine.empty()) {
      char name[32];
      std::snprintf(name, sizeof name, "load-%02d-%05d", client, made++);
      attempt([&] {
        auto t0 = Clock::now();
        sd_bus_message_unref(call_s(b, "CreatePod", spec(name)));
        out.create_ms.push_back(ms_since(t0, Clock::now()));
        mine.emplace_back(name);
      });
      ++out.creates;
    } else {
      std::string name = mine.back();
      mine.pop_back();
      auto t0 = Clock::now();
      attempt([&] { remove_pod(b, name); });
      out.remove_ms.push_back(ms_since(t0, Clock::now()));
      ++out.removes;
    }
  }
  for (const auto& name : mine) {
    attempt([&] { remove_pod(b, name); });
    ++out.removes;
  }
}

// One phase of the load; prints its lines under `label`.
void load_phase(const PrivateBus& bus, sd_bus* b, const char* label, double rate, Mix mix,
                int seconds, const SpecFn& spec, const std::vector<double>& idle_list_ms,
                const char* target) {
  std::vector<LoadResult> results(kLoadClients);
  auto until = Clock::now() + std::chrono::seconds(seconds);
  // Paced, one more client pings dbus-daemon itself at the same rate, its latency also from
  // the planned instant: what the bus and this machine give any call under this load.
  std::vector<double> bus_ping_ms;
  {
    std::vector<std::jthread> clients;
    for (int c = 0; c < kLoadClients; ++c)
      clients.emplace_back([&, c] {
        load_client(bus, c, rate, mix, until, spec, results[static_cast<std::size_t>(c)]);
      });
    if (rate > 0)
      clients.emplace_back([&] {
        BusPtr conn = confpod::testing::open_bus(bus);
        std::mt19937 random(4242);
        PoissonPacer pacer(rate, random, until);
        while (auto planned = pacer.next()) {
          ping_bus(conn.get());
          bus_ping_ms.push_back(ms_since(*planned, Clock::now()));
        }
      });
  }
  LoadResult total;
  for (auto& r : results) {
    total.list_ms.insert(total.list_ms.end(), r.list_ms.begin(), r.list_ms.end());
    total.late_ms.insert(total.late_ms.end(), r.late_ms.begin(), r.late_ms.end());
    total.create_ms.insert(total.create_ms.end(), r.create_ms.begin(), r.create_ms.end());
    total.remove_ms.insert(total.remove_ms.end(), r.remove_ms.begin(), r.remove_ms.end());
    total.get_ms.insert(total.get_ms.end(), r.get_ms.begin(), r.get_ms.end());
    total.lists += r.lists;
    total.gets += r.gets;
    total.creates += r.creates;
    total.removes += r.removes;
    total.errors += r.errors;
    if (total.first_error.empty()) total.first_error = r.first_error;
  }
  int left = list_pods(b);
  std::printf(
      "load %s: %d clients for %d s: ListPods %ld, GetPod %ld, CreatePod %ld, RemovePod %ld "
      "(%.0f calls/s), errors %ld (target 0)%s%s; pods after %d (want %d)\n",
      label, kLoadClients, seconds, total.lists, total.gets, total.creates, total.removes,
      static_cast<double>(total.lists + total.gets + total.creates + total.removes) / seconds,
      total.errors, total.errors ? ", first: " : "", total.first_error.c_str(), left, kPods);
  if (!total.list_ms.empty())
    std::printf(
        "load %s: ListPods p50 %.3f ms  p99 %.3f ms   idle p99 %.3f ms   ratio p99 %.2f   (%s)\n",
        label, percentile(total.list_ms, 50), percentile(total.list_ms, 99),
        percentile(idle_list_ms, 99), percentile(total.list_ms, 99) / percentile(idle_list_ms, 99),
        target);
  if (!bus_ping_ms.empty())
    std::printf(
        "load %s: Peer.Ping to dbus-daemon (no confpodd) p50 %.3f ms  p99 %.3f ms   ListPods "
        "p99 against it %.2f   (report only)\n",
        label, percentile(bus_ping_ms, 50), percentile(bus_ping_ms, 99),
        percentile(total.list_ms, 99) / percentile(bus_ping_ms, 99));
  if (!total.late_ms.empty())
    std::printf("load %s: client wake-up lateness p50 %.3f ms  p99 %.3f ms\n", label,
                percentile(total.late_ms, 50), percentile(total.late_ms, 99));
  auto show = [&](const char* what, const std::vector<double>& v) {
    if (!v.empty())
      std::printf("load %s: %s p50 %.3f ms  p99 %.3f ms  max %.3f ms\n", label, what,
                  percentile(v, 50), percentile(v, 99), *std::max_element(v.begin(), v.end()));
  };
  show("CreatePod (from send)", total.create_ms);
  show("RemovePod (from send)", total.remove_ms);
  show("GetPod (from planned)", total.get_ms);
  std::fflush(stdout);
}

void run_load(const PrivateBus& bus, const DaemonProcess& daemon, sd_bus* b, int seconds,
              const SpecFn& spec, const std::vector<double>& idle_list_ms) {
  double rss_before = rss_mib(daemon.pid());
  char label[96];
  std::snprintf(label, sizeof label, "paced (%.0f calls/s per client)", kPacedRate);
  load_phase(bus, b, label, kPacedRate, Mix::kMixed, seconds, spec, idle_list_ms,
             "target p99 < 5 ms");
  std::snprintf(label, sizeof label, "paced, reads only (%.0f calls/s per client)", kPacedRate);
  load_phase(bus, b, label, kPacedRate, Mix::kReadsOnly, std::min(seconds, kReadsOnlySeconds), spec,
             idle_list_ms, "report only");
  {
    IdleSpinners awake;
    std::snprintf(label, sizeof label,
                  "paced, CPUs kept awake by %u spinners (%.0f calls/s per client)",
                  awake.spinning(), kPacedRate);
    load_phase(bus, b, label, kPacedRate, Mix::kMixed, std::min(seconds, kAwakeSeconds), spec,
               idle_list_ms, "report only");
  }
  load_phase(bus, b, "saturation (back to back)", 0, Mix::kMixed, kSaturationSeconds, spec,
             idle_list_ms, "report only");
  double rss_after = rss_mib(daemon.pid());
  std::printf("load: confpodd VmRSS %.1f MiB after, %.1f MiB before   ratio %.2f   (report only)\n",
              rss_after, rss_before, rss_after / rss_before);
}

// --- the run -----------------------------------------------------------------------------------

void latency_line(const char* what, const std::vector<double>& subject,
                  const std::vector<double>& ping, const char* target) {
  double s99 = percentile(subject, 99), b99 = percentile(ping, 99);
  std::printf(
      "%s, %zu calls: p50 %.3f ms  p99 %.3f ms   Peer.Ping baseline p50 %.3f ms  p99 %.3f ms   "
      "ratio p99 %.2f   (%s)\n",
      what, subject.size(), percentile(subject, 50), s99, percentile(ping, 50), b99, s99 / b99,
      target);
}

int run(int iterations, int start_runs, int load_seconds) {
  PrivateBus bus;
  DaemonOptions options;
  options.stop_timeout_seconds = 5;
  DaemonProcess daemon(bus, options);
  BusPtr conn = confpod::testing::open_bus(bus);
  sd_bus* b = conn.get();
  const std::string pods_dir = daemon.runtime_dir() + "/pods";

  std::string image = daemon.dir() + "/app.tar";
  std::ofstream(image) << std::string(4096, '\0');
  SpecFn spec = [&](const std::string& name) {
    return "name = \"" + name + "\"\ntee = \"none\"\n\n[[containers]]\nname = \"app\"\n" +
           "image = \"oci-archive:" + image + "@sha256:" + std::string(64, 'a') + "\"\n";
  };

  ping(b);
  double rss_idle = rss_mib(daemon.pid());
  std::vector<double> create_ms;
  for (int i = 0; i < kPods; ++i) {
    auto t0 = Clock::now();
    sd_bus_message_unref(call_s(b, "CreatePod", spec(pod_name(i))));
    create_ms.push_back(ms_since(t0, Clock::now()));
  }
  double rss_pods = rss_mib(daemon.pid());
  if (int n = list_pods(b); n != kPods)
    throw std::runtime_error("ListPods returned " + std::to_string(n) + " pods");

  // Warm-up, untimed: the bus paths, the QEMU binary and guest files in the page cache.
  for (int i = 0; i < 20; ++i) {
    ping(b);
    list_pods(b);
    get_pod(b, pod_name(i));
  }
  std::vector<double> list_ms, get_ms, ping_ms;
  for (int i = 0; i < iterations; ++i) {
    auto t0 = Clock::now();
    ping(b);
    auto t1 = Clock::now();
    list_pods(b);
    auto t2 = Clock::now();
    get_pod(b, pod_name(i % kPods));
    auto t3 = Clock::now();
    ping_ms.push_back(ms_since(t0, t1));
    list_ms.push_back(ms_since(t1, t2));
    get_ms.push_back(ms_since(t2, t3));
  }

  // Pod 0, started once untimed, gives the argv; its runtime directory then hosts every
  // direct run. Pods 1..start_runs are started by the daemon, each once.
  const std::string reference = pod_name(0);
  std::vector<std::string> argv;
  daemon_start(b, pods_dir, reference, &argv);
  direct_start(argv, pods_dir, reference);
  std::vector<double> d_exec, d_qmp, s_exec, s_qmp, s_mkdir;
  for (int i = 1; i <= start_runs; ++i) {
    auto daemon_run = [&] {
      StartSample s = daemon_start(b, pods_dir, pod_name(i));
      s_exec.push_back(s.exec_ms);
      s_qmp.push_back(s.qmp_ms);
      s_mkdir.push_back(s.mkdir_ms);
    };
    auto direct_run = [&] {
      StartSample s = direct_start(argv, pods_dir, reference);
      d_exec.push_back(s.exec_ms);
      d_qmp.push_back(s.qmp_ms);
    };
    if (i % 2) {
      daemon_run();
      direct_run();
    } else {
      direct_run();
      daemon_run();
    }
  }

  std::printf("confpodd with %d tee-none pods created (not started), private dbus-daemon\n", kPods);
  latency_line("ListPods (200 entries)", list_ms, ping_ms, "target p99 < 5 ms");
  latency_line("GetPod", get_ms, ping_ms, "report only");
  std::printf("CreatePod, %d calls: p50 %.3f ms  p99 %.3f ms   (report only)\n", kPods,
              percentile(create_ms, 50), percentile(create_ms, 99));
  std::printf(
      "confpodd VmRSS with %d pods: %.1f MiB   before the first pod %.1f MiB   ratio %.2f   "
      "(target < 30 MiB)\n",
      kPods, rss_pods, rss_idle, rss_pods / rss_idle);
  auto pair_ratio = [](const std::vector<double>& s, const std::vector<double>& d) {
    std::vector<double> r;
    for (std::size_t i = 0; i < s.size(); ++i) r.push_back(s[i] / d[i]);
    return median(r);
  };
  std::printf(
      "StartPod to QEMU QMP socket bound, %d pairs: median confpodd %.1f ms   direct spawn "
      "%.1f ms   median pair ratio %.3f   (target < 1.1)\n",
      start_runs, median(s_qmp), median(d_qmp), pair_ratio(s_qmp, d_qmp));
  std::vector<double> overhead;
  for (int i = 0; i < start_runs; ++i) overhead.push_back(s_exec[i] - d_exec[i]);
  std::printf(
      "StartPod to QEMU exec'd, %d pairs: median confpodd %.2f ms   direct spawn %.2f ms   "
      "median pair ratio %.2f   overhead %.2f ms   (report only; confpodd made the pod "
      "directory after %.2f ms)\n",
      start_runs, median(s_exec), median(d_exec), pair_ratio(s_exec, d_exec), median(overhead),
      median(s_mkdir));
  std::fflush(stdout);
  if (load_seconds > 0) run_load(bus, daemon, b, load_seconds, spec, list_ms);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = argc > 1 ? std::atoi(argv[1]) : 500;
  int start_runs = argc > 2 ? std::atoi(argv[2]) : 20;
  int load_seconds = argc > 3 ? std::atoi(argv[3]) : 60;
  if (iterations < 1 || start_runs < 1 || start_runs >= kPods || load_seconds < 0) {
    std::fprintf(stderr,
                 "daemon_bench: usage: daemon_bench [ITERATIONS] [START_RUNS < %d] "
                 "[LOAD_SECONDS, 0 for none]\n",
                 kPods);
    return 2;
  }
  try {
    confpod::bench::print_machine_costs("daemon_bench");
    return run(iterations, start_runs, load_seconds);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "daemon_bench: %s\n", e.what());
    return 1;
  }
}
