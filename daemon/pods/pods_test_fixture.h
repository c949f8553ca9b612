// The pod manager's test fixture: a real store (SQLite in a temp dir) and real QEMU under TCG
// with the test guest (guest/image); each test drives the sd-event loop itself. Shared by
// manager_test.cc and pod_lifecycle_test.cc.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <systemd/sd-event.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/crypto/crypto.h"
#include "attest/measure/snp_measure.h"
#include "attest/measure/tdx_measure.h"
#include "daemon/pods/manager.h"
#include "daemon/pods/measurement.h"
#include "daemon/spec/init_data.h"
#include "daemon/spec/spec.h"
#include "daemon/spec/vm_from_spec.h"
#include "tests/support/bus.h"
#include "tests/support/fixtures.h"
#include "tests/support/process.h"
#include "vmm/probe.h"
#include "vmm/qemu_argv.h"

namespace confpod::pods::testing_support {

using namespace std::chrono_literals;
using store::PodState;

struct EventUnref {
  void operator()(sd_event* e) const { sd_event_unref(e); }
};

inline const vmm::HostProbe& host_probe() {
  static const vmm::HostProbe probe = [] {
    vmm::ProbeOptions options;
    return vmm::probe_host(options);
  }();
  return probe;
}

class PodsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sd_event* e = nullptr;
    ASSERT_GE(sd_event_new(&e), 0);
    event_.reset(e);
    image_path_ = dir_.write("app.tar", std::string(4096, '\0'));
  }

  ManagerOptions options(bool allow_insecure = true) {
    ManagerOptions o;
    o.config.state_dir = dir_.path() + "/state";
    o.config.host.runtime_dir = dir_.path() + "/run";
    o.config.host.accel = "tcg";
    o.config.channel = "virtio-serial";  // every machine has it; vsock tests say so
    o.config.host.allow_insecure_tee = allow_insecure;
    o.config.stop_timeout_seconds = 2;
    // QEMU user networking: this test runs in the machine's own network namespace.
    o.config.network.pod_network = "user";
    if (with_guest_) {
      testing::GuestImage image = testing::guest_image();
      o.config.host.kernel = image.kernel;
      o.config.host.initrd = image.initrd;
      o.config.host.kernel_cmdline = "console=ttyS0 quiet panic=-1";
    }
    o.probe = host_probe();
    o.restart_delay = 100ms;
    o.restart_delay_max = 400ms;
    return o;
  }

  std::unique_ptr<Manager> make_manager(ManagerOptions o) {
    auto m = Manager::create(event_.get(), std::move(o));
    EXPECT_TRUE(m.ok()) << m.error().describe();
    if (!m.ok()) return nullptr;
    auto manager = std::move(*m);
    Status recovered = manager->recover();
    EXPECT_TRUE(recovered.ok()) << recovered.error().describe();
    return manager;
  }

  std::string spec(const std::string& name, const std::string& restart = "no") {
    // The real hello image as a long-lived service: the guest agent verifies and runs it, so
    // the pod stays up until it is stopped.
    return "name = \"" + name + "\"\ntee = \"none\"\nrestart = \"" + restart +
           "\"\n[vm]\nvcpus = 1\nmemory_mib = 256\n" + testing::serving_container_toml();
  }

  // Runs the loop until `done` or the deadline.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 30s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      sd_event_run(event_.get(), 50000);
    }
    return true;
  }

  // Calls an async Manager operation and runs the loop until it is done.
  Status call(const std::function<void(Manager::Done)>& op) {
    std::optional<Status> result;
    op([&](Status s) { result = std::move(s); });
    EXPECT_TRUE(run_until([&] { return result.has_value(); }, 60s));
    return result.value_or(make_error("test.timeout", "no answer"));
  }

  pid_t qemu_pid(const std::string& name) {
    std::ifstream in(dir_.path() + "/run/pods/" + name + "/qemu.pid");
    long pid = -1;
    in >> pid;
    return static_cast<pid_t>(pid);
  }

  PodState state(Manager& m, const std::string& name) {
    const store::PodRecord* pod = m.find(name);
    return pod == nullptr ? PodState::kCreated : pod->state;
  }

  testing::TempDir dir_;
  std::unique_ptr<sd_event, EventUnref> event_;
  std::string image_path_;
  bool with_guest_ = true;
};

}  // namespace confpod::pods::testing_support
