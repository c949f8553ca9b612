#include "vmm/accel_check.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "vmm/supervisor.h"

namespace confpod::vmm {
namespace {

Error check_error(const std::string& message) { return make_error("vmm.boot_check", message); }

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The last non-empty line of QEMU's own output (its reason for refusing to start).
std::string last_line(const std::string& text) {
  std::istringstream in(text);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last.substr(0, 300);
}

// What the cache depends on: a different QEMU, guest or CPU model may give another answer.
std::string cache_key(const HostProbe& probe, const BootCheckOptions& o) {
  auto stamp = [](const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return path + "@missing";
    return path + "@" + std::to_string(st.st_size) + "." + std::to_string(st.st_mtim.tv_sec);
  };
  return stamp(o.qemu_binary) + " " + stamp(o.kernel) + " " + stamp(o.initrd) +
         " cpu=" + o.cpu_model + " kvm=" + (probe.dev_kvm ? "1" : "0");
}

}  // namespace

Result<std::chrono::milliseconds> boot_check(const BootCheckOptions& o) {
  if (o.kernel.empty() || o.initrd.empty())
    return check_error("no guest kernel and initrd to boot");
  std::string base = o.scratch_dir;
  if (base.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    base = tmp && *tmp ? tmp : "/tmp";
  }
  std::string dir = base + "/confpod-bootcheck-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr)
    return check_error("cannot create a directory under " + base);
  struct RemoveDir {
    std::string path;
    ~RemoveDir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } cleanup{dir};

  SupervisorOptions s;
  s.qmp_socket = dir + "/qmp.sock";
  s.pidfile = dir + "/qemu.pid";
  s.log_file = dir + "/qemu.log";
  s.qmp_timeout = std::chrono::seconds(20);  // QEMU's own start, not the guest's boot
  const std::string console = dir + "/console.log";
  const std::string cpu = o.cpu_model.empty() ? (o.accel == "kvm" ? "host" : "max") : o.cpu_model;
  s.argv = {o.qemu_binary, "-accel", o.accel, "-cpu", cpu, "-machine", "q35", "-m", "256", "-smp",
            "1", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-serial",
            "file:" + console, "-kernel", o.kernel, "-initrd", o.initrd,
            // The first process powers the VM off: the kernel got to user space and back.
            "-append", "console=ttyS0 panic=-1 loglevel=7 rdinit=/bin/poweroff -- -f", "-qmp",
            "unix:" + s.qmp_socket + "," + kQmpServerOptions};
  const auto began = std::chrono::steady_clock::now();
  auto sup = Supervisor::start(s);
  if (!sup.ok()) {
    const std::string said = last_line(read_all(s.log_file));
    return check_error("QEMU with -accel " + o.accel + " -cpu " + cpu + " did not start" +
                       (said.empty() ? ": " + sup.error().message : ": " + said));
  }
  auto exited = sup->wait_exit(o.timeout);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - began);
  if (!exited.ok()) {
    (void)sup->kill();
    return check_error("the test guest under " + o.accel + " had not powered off after " +
                       std::to_string(o.timeout.count()) + " ms");
  }
  const std::string log = read_all(console);
  const bool ran_init = log.find("Run /bin/poweroff as init process") != std::string::npos;
  if (exited->cause != ExitCause::kGuestShutdown || !ran_init) {
    const std::string said = last_line(read_all(s.log_file));
    return check_error("the test guest under " + o.accel + " ended with " +
                       std::string(to_string(exited->cause)) +
                       (ran_init ? "" : " before its first process ran") +
                       (said.empty() ? "" : " (QEMU: " + said + ")"));
  }
  return took;
}

AccelChoice choose_tee_none_accel(const HostProbe& probe, BootCheckOptions options) {
  if (!probe.dev_kvm) return {"tcg", "no /dev/kvm on this host"};
  options.accel = "kvm";
  auto booted = boot_check(options);
  if (!booted.ok()) return {"tcg", "KVM did not run a test guest: " + booted.error().message};
  return {"kvm", "a test guest booted and powered off under KVM in " +
                     std::to_string(booted->count()) + " ms"};
}

AccelChoice cached_tee_none_accel(const HostProbe& probe, const BootCheckOptions& options,
                                  const std::string& cache_file) {
  const std::string key = cache_key(probe, options);
  auto cached = nlohmann::json::parse(read_all(cache_file), nullptr, false);
  auto text = [&](const char* name) {
    auto it = cached.is_object() ? cached.find(name) : cached.end();
    return it != cached.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (text("key") == key && (text("accel") == "kvm" || text("accel") == "tcg"))
    return {text("accel"), text("reason")};
  AccelChoice choice = choose_tee_none_accel(probe, options);
  nlohmann::json j = {{"key", key}, {"accel", choice.accel}, {"reason", choice.reason}};
  const std::string tmp = cache_file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2) << "\n";
  }
  std::error_code ec;
  std::filesystem::rename(tmp, cache_file, ec);  // a cache that cannot be written: next time again
  return choice;
}

}  // namespace confpod::vmm
