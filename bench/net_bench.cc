// Guest networking throughput, measured in the same run against its own baseline.
//
//   http:  GET / of a busybox httpd pod (tee none, QEMU TCG), 2 connections at a time, in 10
//          alternating 2 s windows per path; medians. Published: from a "client" namespace through
//          the host's published port 10.200.0.1:8080 (veth, DNAT, forward). Direct: from the
//          daemon's namespace straight to the pod's address 10.89.0.2:80 (the firewall rightly
//          refuses unsolicited traffic from outside to pod addresses, so the direct baseline runs
//          where it is allowed; the published path pays the veth hop on top). Ratio
//          published/direct, target >= 0.9.
//   bulk:  32 MiB pushed to a `nc -l` sink in the pod: through its tap (10.89.0.2:5001) and,
//          for a second pod on QEMU user networking, through QEMU's host forward
//          (127.0.0.1:15001). Ratio tap/user, reported.
// Rounds alternate and medians are printed. Everything runs in network namespaces this
// driver makes; no traffic leaves them.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/bus.h"
#include "tests/support/netns.h"
#include "tests/support/process.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace t = confpod::testing;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Joins the named namespace on the calling thread (setns is per thread); false when it cannot.
bool enter(const std::string& netns) {
  if (netns.empty()) return true;
  int fd = ::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
  const bool ok = fd >= 0 && ::setns(fd, CLONE_NEWNET) == 0;
  if (fd >= 0) ::close(fd);
  return ok;
}

int connect_to(const char* address, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, address, &sa.sin_addr);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool http_get(const char* address, int port) {
  int fd = connect_to(address, port);
  if (fd < 0) return false;
  const char request[] = "GET / HTTP/1.0\r\n\r\n";
  bool ok = ::send(fd, request, sizeof request - 1, MSG_NOSIGNAL) == sizeof request - 1;
  std::string reply;
  char buf[4096];
  ssize_t n;
  while (ok && (n = ::recv(fd, buf, sizeof buf, 0)) > 0)
    reply.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return reply.rfind("HTTP/1.", 0) == 0 && reply.find(" 200 ") != std::string::npos;
}

// Requests per second with `clients` connections at a time for `span`.
double http_rate(const std::string& netns, const char* address, int port, int clients,
                 std::chrono::seconds span) {
  std::atomic<long> done{0}, failed{0};
  const auto end = Clock::now() + span;
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&] {
      if (!enter(netns)) return;
      while (Clock::now() < end) (http_get(address, port) ? done : failed)++;
    });
  for (auto& th : threads) th.join();
  if (failed > done / 10)
    std::fprintf(stderr, "net_bench: %ld of %ld requests failed\n", failed.load(),
                 done.load() + failed.load());
  return static_cast<double>(done) / static_cast<double>(span.count());
}

// MB/s pushing `bytes` into a sink that closes when the sender does.
double push_rate(const char* address, int port, std::size_t bytes) {
  int fd = -1;
  for (int i = 0; i < 50 && fd < 0; ++i) {
    fd = connect_to(address, port);
    if (fd < 0) std::this_thread::sleep_for(200ms);
  }
  if (fd < 0) throw std::runtime_error(std::string("cannot connect to ") + address);
  std::vector<char> chunk(1 << 16, 'x');
  const auto t0 = Clock::now();
  std::size_t sent = 0;
  while (sent < bytes) {
    ssize_t n = ::send(fd, chunk.data(), std::min(chunk.size(), bytes - sent), MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error("send failed");
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  char buf[64];
  while (::recv(fd, buf, sizeof buf, 0) > 0) {
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  ::close(fd);
  return static_cast<double>(bytes) / s / 1e6;
}

std::string pod_toml(const std::string& name, const std::string& network, const t::OciImage& image,
                     const std::string& ports) {
  const std::string cmd =
      "mkdir -p /tmp/www && echo ok > /tmp/www/index.html && /bin/busybox httpd -p 80 -h /tmp/www "
      "&& while true; do /bin/busybox nc -l -p 5001 > /dev/null; done";
  return "name = \"" + name + "\"\ntee = \"none\"\nnetwork = \"" + network +
         "\"\n[vm]\nvcpus = 1\nmemory_mib = 192\n[[containers]]\nname = \"main\"\nimage = "
         "\"oci-archive:" +
         image.archive + "@" + image.digest + "\"\ncommand = [\"/bin/sh\", \"-c\", \"" + cmd +
         "\"]\n" + ports;
}

int run() {
  t::NamedNetns host("bench-host"), client("bench-client");
  t::connect_veth(host, "10.200.0.1/24", client, "10.200.0.2/24", "cpb");
  t::PrivateBus bus;
  t::DaemonOptions options;
  options.netns = host.name();
  options.network_toml = "[network]\npod_network = \"default\"\n";
  t::DaemonProcess daemon(bus, options);
  t::TempDir dir;
  const t::OciImage& image = t::shared_hello_image();
  auto run_pod = [&](const std::string& name, const std::string& toml) {
    const std::string path = dir.write(name + ".toml", toml);
    auto r = t::run_process({CONFPODCTL_PATH, "--address", bus.address(), "run", path});
    if (r.exit_code != 0) throw std::runtime_error("run " + name + ": " + r.err);
  };
  run_pod("web",
          pod_toml("web", "default", image, "[[ports]]\nhost_port = 8080\nguest_port = 80\n"));
  run_pod("webuser",
          pod_toml("webuser", "user", image,
                   "[[ports]]\nhost_port = 15001\nguest_port = 5001\nhost_ip = \"127.0.0.1\"\n"));

  // Wait until the web pod answers (TCG boot).
  bool up = false;
  std::thread waiter([&] {
    if (!enter(host.name())) return;
    const auto deadline = Clock::now() + 180s;
    while (Clock::now() < deadline && !(up = http_get("10.89.0.2", 80)))
      std::this_thread::sleep_for(500ms);
  });
  waiter.join();
  if (!up) {
    std::printf("net: could not measure: the web pod did not answer within 180 s\n");
    return 0;
  }

  // Short alternating windows: a TCG guest's speed drifts, and both paths see the same drift.
  std::vector<double> published, direct;
  for (int window = 0; window < 10; ++window) {
    published.push_back(http_rate(client.name(), "10.200.0.1", 8080, 2, 2s));
    direct.push_back(http_rate(host.name(), "10.89.0.2", 80, 2, 2s));
  }
  const double p = median(published), d = median(direct);
  if (d <= 0) {
    std::printf("net: could not measure HTTP: the guest stopped answering (see its serial log)\n");
    return 0;
  }
  std::printf(
      "net: http through the published port %.1f req/s vs direct to the guest %.1f req/s "
      "(medians of 10 alternating 2 s windows): ratio %.3f (target >= 0.9)\n",
      p, d, p / d);

  std::vector<double> tap, user;
  std::string bulk_error;
  std::thread bulk([&] {
    try {
      if (!enter(host.name())) throw std::runtime_error("setns " + host.name());
      for (int round = 0; round < 3; ++round) {
        tap.push_back(push_rate("10.89.0.2", 5001, 32u << 20));
        user.push_back(push_rate("127.0.0.1", 15001, 32u << 20));
      }
    } catch (const std::exception& e) {
      bulk_error = e.what();  // never out of the thread: that would abort the driver
    }
  });
  bulk.join();
  if (!bulk_error.empty()) {
    std::printf("net: could not measure bulk TCP: %s\n", bulk_error.c_str());
    return 0;
  }
  std::printf(
      "net: bulk TCP into the guest through its tap %.1f MB/s vs QEMU user mode %.1f MB/s: "
      "ratio %.2f\n",
      median(tap), median(user), median(user) > 0 ? median(tap) / median(user) : 0);
  return 0;
}

}  // namespace

int main() {
  if (::geteuid() != 0) {
    std::printf("net: skipped (needs root: network namespaces, bridges, nftables)\n");
    return 0;
  }
  try {
    return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "net_bench: %s\n", e.what());
    return 1;
  }
}
