#include "tests/support/bus.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace confpod::testing {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string make_temp_dir(const char* prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + prefix + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

// Blocks until `pid` (our child) exits; returns its wait status.
int wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

// Waits up to `timeout` for our child to exit; true when it did (status in *status).
bool wait_child_for(pid_t pid, std::chrono::milliseconds timeout, int* status) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
}

void close_inherited_fds() { ::close_range(3, ~0U, 0); }

std::string toml_string(const std::string& value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// dbus-daemon configuration: system-bus-like, reduced to what confpod needs.
std::string bus_config(const std::string& socket_path) {
  return R"(<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=)" +
         socket_path + R"(</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Peer"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties" send_member="Get"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties" send_member="GetAll"/>
    <allow send_destination="org.confpod1"/>
    <allow send_destination="org.freedesktop.PolicyKit1"/>
  </policy>
  <policy user="root">
    <allow own="org.confpod1"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <!-- polkitd changes to its own user before it takes its name (as Debian's polkit-1.conf
       allows it on the real system bus). -->
  <policy user="polkitd">
    <allow own="org.freedesktop.PolicyKit1"/>
  </policy>
</busconfig>
)";
}

}  // namespace

GuestImage guest_image() {
  auto result = run_process({CONFPOD_BUILD_INITRAMFS, "--out-dir", CONFPOD_GUEST_IMAGE_DIR,
                             "--agent", CONFPOD_AGENT_BINARY});
  if (result.exit_code != 0) throw std::runtime_error("build-initramfs failed: " + result.err);
  std::map<std::string, std::string> values;
  std::istringstream lines(result.out);
  for (std::string line; std::getline(lines, line);) {
    auto eq = line.find('=');
    if (eq != std::string::npos) values[line.substr(0, eq)] = line.substr(eq + 1);
  }
  GuestImage image{values["initrd"], values["kernel"], values["kernel_version"]};
  if (image.initrd.empty() || image.kernel.empty())
    throw std::runtime_error("build-initramfs printed no initrd/kernel: " + result.out);
  return image;
}

namespace {
OciImage build_image(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {CONFPOD_HELLO_BUILD_IMAGE};
  argv.insert(argv.end(), args.begin(), args.end());
  auto result = run_process(argv);
  if (result.exit_code != 0) throw std::runtime_error("build-image failed: " + result.err);
  OciImage image;
  std::istringstream lines(result.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("archive=")) image.archive = line.substr(8);
    if (line.starts_with("digest=")) image.digest = line.substr(7);
  }
  if (image.archive.empty() || !image.digest.starts_with("sha256:"))
    throw std::runtime_error("build-image printed no archive/digest: " + result.out);
  return image;
}
}  // namespace

OciImage hello_image(const std::string& path) { return build_image({"--out", path}); }

OciImage probe_image(const std::string& path) {
  return build_image(
      {"--out", path, "--add", std::string(CONFPOD_PROBE_PATH) + ":/bin/confpod-probe"});
}

const OciImage& shared_hello_image() {
  static const TempDir dir;
  static const OciImage image = hello_image(dir.path() + "/hello.tar");
  return image;
}

std::string serving_container_toml(const std::string& name) {
  const OciImage& image = shared_hello_image();
  return "[[containers]]\nname = \"" + name + "\"\nimage = \"oci-archive:" + image.archive + "@" +
         image.digest + "\"\ncommand = [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; echo " +
         kServingReady + "; while :; do sleep 1; done\"]\n";
}

int free_loopback_port() {
  struct Socket {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ~Socket() {
      if (fd >= 0) ::close(fd);
    }
  } sock;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (sock.fd < 0 || ::bind(sock.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(sock.fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error(std::string("cannot bind a loopback port: ") + std::strerror(errno));
  return ntohs(a.sin_port);
}

// ---------------------------------------------------------------------------------------------
// PrivateBus

PrivateBus::PrivateBus() {
  dir_ = make_temp_dir("confpod-bus");
  // uid 65534 must reach the socket: the directory is world-searchable (the socket itself is
  // created 0777 by dbus-daemon).
  ::chmod(dir_.c_str(), 0755);
  std::string config_path = dir_ + "/bus.conf";
  std::ofstream(config_path) << bus_config(dir_ + "/system_bus_socket");

  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  std::string log_path = dir_ + "/dbus-daemon.log";
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int devnull = ::open("/dev/null", O_RDONLY);
    int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(devnull, 0);
    ::dup2(out[1], 1);
    ::dup2(log, 2);
    close_inherited_fds();
    std::string config_arg = "--config-file=" + config_path;
    const char* argv[] = {"/usr/bin/dbus-daemon", config_arg.c_str(), "--nofork",
                          "--print-address=1", nullptr};
    ::execv(argv[0], const_cast<char* const*>(argv));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string line;
  char c;
  while (true) {
    ssize_t n = ::read(out[0], &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') break;
    line += c;
  }
  ::close(out[0]);
  if (line.empty()) {
    ::kill(pid_, SIGKILL);
    wait_child(pid_);
    throw std::runtime_error("dbus-daemon printed no address: " + read_file(log_path));
  }
  address_ = line;
}

PrivateBus::~PrivateBus() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    if (!wait_child_for(pid_, 5s, &status)) {
      ::kill(pid_, SIGKILL);
      wait_child(pid_);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

BusPtr open_bus(const PrivateBus& bus) {
  sd_bus* raw = nullptr;
  if (sd_bus_new(&raw) < 0) throw std::runtime_error("sd_bus_new failed");
  BusPtr conn(raw);
  int r = sd_bus_set_address(raw, bus.address().c_str());
  if (r >= 0) r = sd_bus_set_bus_client(raw, 1);
  if (r >= 0) r = sd_bus_start(raw);
  if (r < 0)
    throw std::runtime_error("cannot connect to " + bus.address() + ": " + std::strerror(-r));
  return conn;
}

ProcessResult busctl(const PrivateBus& bus, const std::vector<std::string>& args, bool as_nobody) {
  std::vector<std::string> argv;
  if (as_nobody) {
    argv = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"};
  }
  argv.push_back("/usr/bin/busctl");
  argv.push_back("--address=" + bus.address());
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv);
}

// ---------------------------------------------------------------------------------------------
// DaemonProcess

DaemonProcess::DaemonProcess(const PrivateBus& bus, DaemonOptions opts)
    : bus_(bus), opts_(std::move(opts)) {
  GuestImage image = opts_.daemon_builds_guest ? GuestImage{} : guest_image();
  std::filesystem::create_directories(state_dir());
  std::filesystem::create_directories(runtime_dir());
  std::ostringstream toml;
  toml << "# written by tests/support/bus.cc\n"
       << "state_dir = " << toml_string(state_dir()) << "\n"
       << "runtime_dir = " << toml_string(runtime_dir())
       << "\n"
       // tcg cannot run SNP/TDX, so confpod.toml only accepts it with allow_insecure_tee.
       << "accel = "
       << toml_string(!opts_.accel.empty()       ? opts_.accel
                      : opts_.allow_insecure_tee ? std::string("tcg")
                                                 : std::string("kvm"))
       << "\n"
       << "allow_insecure_tee = " << (opts_.allow_insecure_tee ? "true" : "false") << "\n"
       << "stop_timeout_seconds = " << opts_.stop_timeout_seconds << "\n"
       << (opts_.daemon_builds_guest
               ? "guest_builder = " + toml_string(CONFPOD_BUILD_INITRAMFS) + "\n" +
                     "guest_agent = " + toml_string(CONFPOD_AGENT_BINARY) + "\n"
               : "guest_kernel = " + toml_string(image.kernel) + "\n" +
                     "guest_initrd = " + toml_string(image.initrd) + "\n")
       << "kernel_cmdline = \"console=ttyS0 quiet panic=-1\"\n"
       << opts_.extra_toml << "\n"
       << "[vmm]\nchannel = " << toml_string(opts_.channel) << "\n"
       << opts_.vmm_toml << "\n"
       << opts_.kbs_toml << "\n"
       << opts_.network_toml;
  std::ofstream(config_path()) << toml.str();
  spawn();
  wait_for_name();
}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0) terminate();
  // The daemon leaves VMs running by design; the test must not.
  std::error_code ec;
  std::string pods = runtime_dir() + "/pods";
  std::vector<pid_t> qemus;
  for (const auto& entry : std::filesystem::directory_iterator(pods, ec)) {
    std::string name = entry.path().filename().string();
    pid_t pid = pod_qemu_pid(*this, name);
    if (pid <= 0) continue;
    std::string cmdline = read_file("/proc/" + std::to_string(pid) + "/cmdline");
    if (cmdline.find(runtime_dir()) == std::string::npos) continue;  // not ours (recycled)
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    qemus.push_back(pid);
  }
  for (pid_t pid : qemus) {
    auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline) {
      std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
      auto close = stat.rfind(')');
      if (close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] == 'Z') break;
      std::this_thread::sleep_for(20ms);
    }
    ::waitpid(pid, nullptr, WNOHANG);  // ours only if we are its subreaper
  }
}

void DaemonProcess::spawn() {
  std::string log_path = dir() + "/confpodd.log";
  std::vector<std::string> args = {CONFPODD_PATH, "--config", config_path(), "--bus-address",
                                   bus_.address()};
  args.insert(args.end(), opts_.extra_args.begin(), opts_.extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int devnull = ::open("/dev/null", O_RDONLY);
    int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(devnull, 0);
    ::dup2(log, 1);
    ::dup2(log, 2);
    close_inherited_fds();
    // Not under systemd here: sd_notify must stay silent.
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    for (const std::string& entry : opts_.env) {
      auto eq = entry.find('=');
      if (eq != std::string::npos)
        ::setenv(entry.substr(0, eq).c_str(), entry.substr(eq + 1).c_str(), 1);
    }
    if (!opts_.netns.empty()) {
      int ns = ::open(("/run/netns/" + opts_.netns).c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) ::_exit(126);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
}

void DaemonProcess::wait_for_name() {
  BusPtr conn = open_bus(bus_);
  auto deadline = Clock::now() + 90s;
  while (true) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("confpodd exited during start-up (status " + std::to_string(status) +
                               "):\n" + log());
    }
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call_method(conn.get(), "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "GetConnectionUnixProcessID", &error, &reply,
                               "s", "org.confpod1");
    sd_bus_error_free(&error);
    if (r >= 0) {
      std::uint32_t owner = 0;
      r = sd_bus_message_read(reply, "u", &owner);
      sd_bus_message_unref(reply);
      if (r >= 0 && static_cast<pid_t>(owner) == pid_) return;
    }
    if (Clock::now() >= deadline)
      throw std::runtime_error("confpodd did not take org.confpod1 within 90 s:\n" + log());
    std::this_thread::sleep_for(50ms);
  }
}

int DaemonProcess::wait_exit(std::chrono::milliseconds limit) {
  auto deadline = Clock::now() + limit;
  while (pid_ > 0) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    if (Clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(20ms);
  }
  return -1;
}

void DaemonProcess::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  wait_child(pid_);
  pid_ = -1;
}

int DaemonProcess::terminate() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  if (!wait_child_for(pid_, 60s, &status)) {
    ::kill(pid_, SIGKILL);
    status = wait_child(pid_);
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void DaemonProcess::restart() {
  if (pid_ > 0) terminate();
  spawn();
  wait_for_name();
}

const std::string& DaemonProcess::log() {
  log_ = read_file(dir() + "/confpodd.log");
  return log_;
}

pid_t pod_qemu_pid(const DaemonProcess& daemon, const std::string& pod_name) {
  std::string text = read_file(daemon.runtime_dir() + "/pods/" + pod_name + "/qemu.pid");
  if (text.empty()) return -1;
  char* end = nullptr;
  long pid = std::strtol(text.c_str(), &end, 10);
  return pid > 0 ? static_cast<pid_t>(pid) : -1;
}

}  // namespace confpod::testing
