// A pod from `confpodctl run` to its container's first output line, against a bare boot of
// the same guest, measured in the same run.
//
//   pod:  a real dbus-daemon, the real confpodd (tests/support/bus.h), confpodctl run of a tee
//         "none" pod whose container (the examples/hello busybox image) prints one line at once.
//         Timed from just before confpodctl is spawned until that line is in the pod's
//         containers.log: CLI, D-Bus, spec, measurement, QEMU start, TCG boot, the agent's
//         hello, init-data check, image verification and unpacking, namespaces, exec.
//   bare: the same kernel + initramfs under QEMU started directly (fork + exec of the argv
//         vm_config_from_spec + qemu_argv give for the same pod), timed from fork until the
//         agent's hello frame arrives on the channel. The guest boot dominates both.
//   Runs alternate (pod first in odd pairs, bare first in even ones). Printed: medians and the
//   median of the per-pair ratios pod/bare: what confpod adds on top of booting the guest.
//   kvm:  where KVM really runs a guest here (vmm/accel_check.h), the same pod run under a
//         second daemon with accel = "kvm", against the TCG runs above: both medians and the
//         ratio kvm/tcg. Elsewhere one line says why it was not measured.
//
// Usage: pod_bench [RUNS]   (default 3)
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "daemon/spec/init_data.h"
#include "daemon/spec/spec.h"
#include "daemon/spec/vm_from_spec.h"
#include "guest/protocol/messages.h"
#include "tests/support/bus.h"
#include "tests/support/process.h"
#include "vmm/accel_check.h"
#include "vmm/channel.h"
#include "vmm/qemu_argv.h"
#include "vmm/qmp.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using confpod::testing::DaemonProcess;
using confpod::testing::PrivateBus;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string pod_spec(const std::string& name, const confpod::testing::OciImage& image) {
  return "name = \"" + name + "\"\ntee = \"none\"\n[vm]\nvcpus = 1\nmemory_mib = 256\n" +
         "[[containers]]\nname = \"first\"\nimage = \"oci-archive:" + image.archive + "@" +
         image.digest + "\"\ncommand = [\"/bin/sh\", \"-c\", \"echo first line\"]\n";
}

std::uint64_t file_size(const std::string& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size;
}

// confpodctl run; returns ms until containers.log has a complete line.
double time_pod(const PrivateBus& bus, DaemonProcess& daemon, const std::string& spec_path,
                const std::string& name) {
  const std::string log = daemon.runtime_dir() + "/pods/" + name + "/containers.log";
  auto t0 = Clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    // Its "pod is INSECURE" warning and the pod name would only clutter the report.
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 1), ::dup2(null, 2);
    ::execl(CONFPODCTL_PATH, CONFPODCTL_PATH, "--address", bus.address().c_str(), "run",
            spec_path.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  if (pid < 0) throw std::runtime_error("fork failed");
  while (true) {
    if (file_size(log) > 0) {
      std::ifstream in(log);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (text.find('\n') != std::string::npos) break;
    }
    if (ms_since(t0) > 300000) throw std::runtime_error("no container output in 300 s: " + log);
    std::this_thread::sleep_for(2ms);
  }
  double ms = ms_since(t0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("confpodctl run failed for " + name);
  // The container ends at once and the agent powers the VM off: wait for that, so no guest
  // still runs while the next measurement (or the next benchmark) does.
  const pid_t qemu = confpod::testing::pod_qemu_pid(daemon, name);
  auto deadline = Clock::now() + 60s;
  while (qemu > 0 && ::kill(qemu, 0) == 0 && Clock::now() < deadline) {
    std::ifstream stat("/proc/" + std::to_string(qemu) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    auto close = text.rfind(')');
    if (close == std::string::npos || close + 2 >= text.size() || text[close + 2] == 'Z') break;
    std::this_thread::sleep_for(20ms);
  }
  return ms;
}

// QEMU from fork + exec of `argv` until the agent's hello frame arrives on `agent_socket`.
// QEMU waits for a QMP client before it builds the machine (vmm::kQmpServerOptions), so the
// baseline connects one too, as any launcher of this argv must.
double time_bare(const std::vector<std::string>& argv, const std::string& qmp_socket,
                 const std::string& agent_socket) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  auto t0 = Clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0), ::dup2(null, 1), ::dup2(null, 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  if (pid < 0) throw std::runtime_error("fork failed");
  // However this ends (a throw included), the VM goes with it.
  struct KillGroup {
    pid_t pid;
    ~KillGroup() {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } kill_group{pid};
  auto qmp = confpod::vmm::QmpClient::connect(qmp_socket, 30s);
  if (!qmp.ok()) throw std::runtime_error(qmp.error().describe());
  auto channel = confpod::vmm::GuestChannel::connect(agent_socket, 30s);
  if (!channel.ok()) throw std::runtime_error(channel.error().describe());
  auto frame = channel->read_frame(300s);
  double ms = ms_since(t0);
  if (!frame.ok()) throw std::runtime_error("no hello: " + frame.error().describe());
  auto hello = confpod::guest::parse_guest_message(*frame);
  if (!hello.ok() || hello->kind != confpod::guest::GuestMessage::Kind::kHello)
    throw std::runtime_error("first frame is not hello");
  return ms;
}

int run(int runs) {
  PrivateBus bus;
  DaemonProcess daemon(bus);
  confpod::testing::TempDir dir;
  auto image = confpod::testing::hello_image(dir.path() + "/hello.tar");
  confpod::testing::GuestImage guest = confpod::testing::guest_image();

  std::vector<double> pod_ms, bare_ms, ratios;
  for (int i = 0; i < runs; ++i) {
    const std::string name = "bench-" + std::to_string(i);
    const std::string spec_text = pod_spec(name, image);
    const std::string spec_path = dir.write(name + ".toml", spec_text);

    // The bare VM: what the daemon would launch for the same pod, under a private directory.
    auto spec = confpod::spec::parse_pod_spec(spec_text);
    if (!spec.ok()) throw std::runtime_error(spec.error().describe());
    confpod::spec::HostDefaults host;
    host.accel = "tcg";
    host.allow_insecure_tee = true;
    host.kernel = guest.kernel;
    host.initrd = guest.initrd;
    host.kernel_cmdline = "console=ttyS0 quiet panic=-1";
    host.runtime_dir = dir.path() + "/bare-" + std::to_string(i);
    auto vm = confpod::spec::vm_config_from_spec(*spec, host);
    if (!vm.ok()) throw std::runtime_error(vm.error().describe());
    std::filesystem::create_directories(confpod::spec::pod_paths(host.runtime_dir, name).vm_dir);
    auto argv = confpod::vmm::qemu_argv(*vm);
    if (!argv.ok()) throw std::runtime_error(argv.error().describe());

    double p = 0, b = 0;
    if (i % 2 == 0) {
      p = time_pod(bus, daemon, spec_path, name);
      b = time_bare(*argv, vm->qmp_socket, vm->channels[0].socket_path);
    } else {
      b = time_bare(*argv, vm->qmp_socket, vm->channels[0].socket_path);
      p = time_pod(bus, daemon, spec_path, name);
    }
    std::printf("run %d: pod run->first line %.0f ms, bare boot->hello %.0f ms, ratio %.3f\n", i, p,
                b, p / b);
    std::fflush(stdout);
    pod_ms.push_back(p), bare_ms.push_back(b), ratios.push_back(p / b);
  }
  std::printf(
      "pod_bench: confpodctl run -> first container line median %.0f ms; bare QEMU boot -> "
      "agent hello median %.0f ms; median pair ratio %.3f (%d runs)\n",
      median(pod_ms), median(bare_ms), median(ratios), runs);
  std::fflush(stdout);

  // The same pods under KVM, where KVM runs a guest on this machine.
  confpod::vmm::ProbeOptions probe_options;
  probe_options.run_qemu = false;
  confpod::vmm::BootCheckOptions check;
  check.kernel = guest.kernel;
  check.initrd = guest.initrd;
  const auto choice =
      confpod::vmm::choose_tee_none_accel(confpod::vmm::probe_host(probe_options), check);
  if (choice.accel != "kvm") {
    std::printf("pod_bench: kvm vs tcg: not measured here (%s)\n", choice.reason.c_str());
    return 0;
  }
  PrivateBus kvm_bus;
  confpod::testing::DaemonOptions kvm_options;
  kvm_options.accel = "kvm";
  DaemonProcess kvm_daemon(kvm_bus, kvm_options);
  std::vector<double> kvm_ms;
  for (int i = 0; i < runs; ++i) {
    const std::string name = "bench-kvm-" + std::to_string(i);
    const std::string spec_path = dir.write(name + ".toml", pod_spec(name, image));
    kvm_ms.push_back(time_pod(kvm_bus, kvm_daemon, spec_path, name));
    std::printf("kvm run %d: pod run->first line %.0f ms\n", i, kvm_ms.back());
  }
  std::printf(
      "pod_bench: confpodctl run -> first container line under kvm median %.0f ms, under tcg "
      "median %.0f ms; ratio kvm/tcg %.3f (%d runs each)\n",
      median(kvm_ms), median(pod_ms), median(kvm_ms) / median(pod_ms), runs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 3;
  if (runs < 1) {
    std::fprintf(stderr, "pod_bench: usage: pod_bench [RUNS >= 1]\n");
    return 2;
  }
  try {
    return run(runs);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pod_bench: %s\n", e.what());
    return 1;
  }
}
