// Guest networking end to end, with real traffic, in network namespaces this test makes:
//
//   "host"    confpodd, its bridges, taps, nftables table and the pods' QEMUs (the machine a
//             site runs confpod on); a listener on :9999 stands for the host's own services
//   "client"  a machine on the site's network, joined to "host" by a veth (10.200.0.2 ->
//             10.200.0.1)
//
// The machine's own namespace is never touched: confpodd is started inside "host" (setns),
// every address and rule lives in these namespaces, and traffic goes only between them.
//
// One set of booted guests serves every assertion (the tests run in one process, in order):
//   web          busybox httpd, guest port 80 published as host port 8080, network default
//   probe-same   network default: tries the web pod, the KBS, and host addresses every 2 s
//   probe-other  network "other": the same
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/support/bus.h"
#include "tests/support/netns.h"
#include "tests/support/process.h"

namespace confpod {
namespace {

using namespace std::chrono_literals;
using testing::ProcessResult;

constexpr const char* kHostAddr = "10.200.0.1";
constexpr int kKbsPort = 8081;

// What a probe pod prints every round: "R [secret=OK] web=OK kbs=OK gw=NO host=NO othergw=NO". A
// target is OK when an HTTP GET through busybox nc gets a 200 status line within 2 s.
std::string probe_command() {
  auto check = [](const std::string& label, const std::string& host, const std::string& port,
                  const std::string& path) {
    // The request stays open a moment: some servers (the KBS's) drop a client that half-closes
    // before they answer.
    return "if { printf 'GET " + path + " HTTP/1.0\\r\\nHost: " + host +
           "\\r\\n\\r\\n'; sleep 1; } | busybox nc -w 2 " + host + " " + port +
           " 2>/dev/null | busybox head -n 1 | busybox grep -q ' 200 '; then r=\"$r " + label +
           "=OK\"; else r=\"$r " + label + "=NO\"; fi; ";
  };
  return "while true; do r=R; if [ -s /run/secrets/token ]; then r=\"$r secret=OK\"; fi; " +
         check("web", "10.89.0.2", "80", "/") +
         check("kbs", "$GW", std::to_string(kKbsPort), "/kbs/v0/.well-known/jwks.json") +
         check("gw", "$GW", "9999", "/") + check("host", kHostAddr, "9999", "/") +
         check("othergw", "$OTHERGW", "9999", "/") +
         // IPv6 where the network has it: the address is configured and the gateway answers.
         "if [ -n \"$GW6\" ]; then if busybox ping -6 -c 1 -W 2 $GW6 >/dev/null 2>&1; then "
         "r=\"$r v6=OK\"; else r=\"$r v6=NO\"; fi; fi; echo \"$r\"; sleep 2; done";
}

std::string pod_toml(const std::string& name, const std::string& network,
                     const testing::OciImage& image, const std::string& command,
                     const std::string& env, const std::string& ports) {
  nlohmann::json argv = {"/bin/sh", "-c", command};
  return "name = \"" + name + "\"\ntee = \"none\"\nnetwork = \"" + network +
         "\"\n[vm]\nvcpus = 1\nmemory_mib = 192\n[[containers]]\nname = \"main\"\nimage = "
         "\"oci-archive:" +
         image.archive + "@" + image.digest + "\"\ncommand = " + argv.dump() + "\nenv = { " + env +
         " }\n" + ports;
}

class NetworkE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    host_ = new testing::NamedNetns("host");
    client_ = new testing::NamedNetns("client");
    testing::connect_veth(*host_, std::string(kHostAddr) + "/24", *client_, "10.200.0.2/24", "cpv");
    bus_ = new testing::PrivateBus();
    testing::DaemonOptions options;
    options.netns = host_->name();
    options.stop_timeout_seconds = 5;
    options.kbs_toml =
        "[kbs]\nenabled = true\nlisten = \"127.0.0.1:" + std::to_string(kKbsPort) + "\"\n";
    options.network_toml =
        "[network]\npod_network = \"default\"\ndns = [\"10.89.0.1\"]\n"
        "[[networks]]\nname = \"other\"\nbridge = \"cpother\"\nsubnet = \"10.90.0.0/24\"\n"
        "subnet6 = \"fd00:90::/64\"\n";
    daemon_ = new testing::DaemonProcess(*bus_, options);

    // The host's own service on every address of its namespace: no pod may reach it.
    www_ = new testing::TempDir();
    www_->write("index.html", "host-only\n");
    listener_ =
        spawn(host_->exec({"/bin/busybox", "httpd", "-f", "-p", "9999", "-h", www_->path()}));

    const testing::OciImage& image = testing::shared_hello_image();
    const std::string web_cmd =
        "mkdir -p /tmp/www && echo \"hello from pod $(hostname)\" > /tmp/www/index.html && "
        "exec /bin/busybox httpd -f -p 80 -h /tmp/www";
    write_spec("web", pod_toml("web", "default", image, web_cmd, "",
                               "[[ports]]\nhost_port = 8080\nguest_port = 80\n"));
    // probe-same also gets a secret: its agent attests to the KBS through the gateway first.
    ProcessResult put =
        ctl({"secret", "put", "default/net/token", www_->write("token", "t0k3n\n")});
    if (put.exit_code != 0) setup_error_ += "secret put: " + put.err + "\n";
    write_spec("probe-same", pod_toml("probe-same", "default", image, probe_command(),
                                      "GW = \"10.89.0.1\", OTHERGW = \"10.90.0.1\"",
                                      "[[secrets]]\nresource = \"default/net/token\"\n"
                                      "path = \"/run/secrets/token\"\n"));
    write_spec("probe-other",
               pod_toml("probe-other", "other", image, probe_command(),
                        "GW = \"10.90.0.1\", OTHERGW = \"10.89.0.1\", GW6 = \"fd00:90::1\"", ""));
    for (const char* pod : {"web", "probe-same", "probe-other"}) {
      ProcessResult r = ctl({"run", spec_path(pod)});
      if (r.exit_code != 0) setup_error_ += std::string(pod) + ": " + r.err + "\n";
    }
  }
  static void TearDownTestSuite() {
    if (listener_ > 0) {
      ::kill(listener_, SIGKILL);
      ::waitpid(listener_, nullptr, 0);
    }
    delete daemon_;  // and the QEMUs it left
    delete bus_;
    delete www_;
    delete client_;
    delete host_;
  }
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: network namespaces, bridges, nftables";
    ASSERT_TRUE(setup_error_.empty()) << setup_error_ << daemon_->log();
  }

  static pid_t spawn(const std::vector<std::string>& args) {
    pid_t pid = ::fork();
    if (pid == 0) {
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      int devnull = ::open("/dev/null", O_RDWR);
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    return pid;
  }
  static std::string spec_path(const std::string& pod) {
    return daemon_->dir() + "/" + pod + ".toml";
  }
  static void write_spec(const std::string& pod, const std::string& toml) {
    std::ofstream(spec_path(pod)) << toml;
  }
  static ProcessResult ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {CONFPODCTL_PATH, "--address", bus_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::run_process(argv);
  }
  static nlohmann::json inspect(const std::string& pod) {
    auto j = nlohmann::json::parse(ctl({"inspect", pod}).out, nullptr, false);
    return j.is_discarded() ? nlohmann::json::object() : j;
  }
  static std::string containers_log(const std::string& pod) {
    return testing::read_text_file(daemon_->runtime_dir() + "/pods/" + pod + "/containers.log");
  }
  // From the client namespace, as a machine on the site's network.
  static ProcessResult fetch_from_client(const std::string& url) {
    return testing::run_process(client_->exec({"/usr/bin/curl", "-sS", "-m", "5", url}));
  }
  static std::string nft_table() {
    return testing::run_process(host_->exec({"/usr/sbin/nft", "list", "table", "inet", "confpod"}))
        .out;
  }
  static std::string links_in_host() {
    return testing::run_process(host_->exec({"/usr/sbin/ip", "-br", "link"})).out;
  }

  static testing::NamedNetns* host_;
  static testing::NamedNetns* client_;
  static testing::PrivateBus* bus_;
  static testing::DaemonProcess* daemon_;
  static testing::TempDir* www_;
  static pid_t listener_;
  static std::string setup_error_;
};

testing::NamedNetns* NetworkE2E::host_ = nullptr;
testing::NamedNetns* NetworkE2E::client_ = nullptr;
testing::PrivateBus* NetworkE2E::bus_ = nullptr;
testing::DaemonProcess* NetworkE2E::daemon_ = nullptr;
testing::TempDir* NetworkE2E::www_ = nullptr;
pid_t NetworkE2E::listener_ = -1;
std::string NetworkE2E::setup_error_;

TEST_F(NetworkE2E, PageFetchedThroughThePublishedPortNamesThePod) {
  std::string body;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        ProcessResult r = fetch_from_client(std::string("http://") + kHostAddr + ":8080/");
        body = r.out;
        return r.exit_code == 0;
      },
      90s))
      << "no answer on " << kHostAddr << ":8080\n"
      << daemon_->log() << containers_log("web");
  EXPECT_EQ(body, "hello from pod web\n");

  nlohmann::json web = inspect("web");
  EXPECT_EQ(web["Network"], "default");
  EXPECT_EQ(web["Address"], "10.89.0.2");
  EXPECT_EQ(web["Mac"], "02:cf:0a:59:00:02");
  ProcessResult port = ctl({"port", "web"});
  EXPECT_EQ(port.out, "80/tcp -> 0.0.0.0:8080\n");
  EXPECT_EQ(inspect("probe-other")["Address"], "10.90.0.2");
  EXPECT_EQ(inspect("probe-other")["Address6"], "fd00:90::2");
}

TEST_F(NetworkE2E, SameNetworkReachesDifferentNetworkDoesNotAndTheHostOnlyServesTheKbs) {
  // Each probe prints a round every 2 s; wait for two rounds after the web pod answered.
  auto rounds = [](const std::string& pod) {
    std::vector<std::string> out;
    std::istringstream in(containers_log(pod));
    for (std::string line; std::getline(in, line);)
      if (line.rfind("R ", 0) == 0 && line.find(" web=") != std::string::npos) out.push_back(line);
    return out;
  };
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto same = rounds("probe-same");
        return !same.empty() && same.back().find("web=OK") != std::string::npos &&
               rounds("probe-other").size() >= 2;
      },
      120s))
      << "probe-same:\n"
      << containers_log("probe-same") << "probe-other:\n"
      << containers_log("probe-other");
  auto same = rounds("probe-same");
  auto other = rounds("probe-other");
  // What the KBS says to the daemon's own namespace, for the record when a probe cannot reach it.
  const std::string kbs_local =
      testing::run_process(host_->exec({"/usr/bin/curl", "-sS", "-i", "-m", "3",
                                        "http://127.0.0.1:" + std::to_string(kKbsPort) +
                                            "/kbs/v0/.well-known/jwks.json"}))
          .out.substr(0, 200);
  EXPECT_NE(same.back().find("kbs=OK"), std::string::npos) << same.back() << "\n" << kbs_local;
  // The secret came from the KBS over the bridge, after attestation with its init-data.
  EXPECT_NE(same.back().find("secret=OK"), std::string::npos) << same.back();
  EXPECT_EQ(other.back().find("secret=OK"), std::string::npos) << other.back();
  // probe-other's network has subnet6: its agent configured fd00:90::2 and the gateway answers.
  EXPECT_NE(other.back().find("v6=OK"), std::string::npos) << other.back();
  EXPECT_NE(other.back().find("kbs=OK"), std::string::npos) << other.back() << "\n" << nft_table();
  for (const auto& line : same) {
    EXPECT_NE(line.find("gw=NO"), std::string::npos) << line;
    EXPECT_NE(line.find("host=NO"), std::string::npos) << line;
    EXPECT_NE(line.find("othergw=NO"), std::string::npos) << line;
  }
  for (const auto& line : other) {
    EXPECT_NE(line.find("web=NO"), std::string::npos) << line;
    EXPECT_NE(line.find("gw=NO"), std::string::npos) << line;
    EXPECT_NE(line.find("host=NO"), std::string::npos) << line;
    EXPECT_NE(line.find("othergw=NO"), std::string::npos) << line;
  }
  // The listener really serves on the host: the client reaches it, pods do not.
  EXPECT_EQ(fetch_from_client(std::string("http://") + kHostAddr + ":9999/").out, "host-only\n");
}

TEST_F(NetworkE2E, BadRequestsGetNamedErrorsAndLeaveNothingBehind) {
  const std::string before = nft_table();
  write_spec("clash", pod_toml("clash", "default", testing::shared_hello_image(), "true", "",
                               "[[ports]]\nhost_port = 8080\nguest_port = 80\n"));
  ProcessResult clash = ctl({"create", spec_path("clash")});
  EXPECT_EQ(clash.exit_code, 1);
  EXPECT_NE(clash.err.find("org.confpod1.Error.PortInUse"), std::string::npos) << clash.err;
  EXPECT_NE(clash.err.find("already published by pod web"), std::string::npos) << clash.err;
  // The port pods reach the KBS on.
  write_spec("clash2", pod_toml("clash2", "default", testing::shared_hello_image(), "true", "",
                                "[[ports]]\nhost_port = " + std::to_string(kKbsPort) +
                                    "\nguest_port = 80\n"));
  ProcessResult host_port = ctl({"create", spec_path("clash2")});
  EXPECT_NE(host_port.err.find("org.confpod1.Error.PortInUse"), std::string::npos) << host_port.err;
  EXPECT_NE(host_port.err.find("the port pods reach the KBS on"), std::string::npos)
      << host_port.err;
  // An address of a pod network as host_ip.
  write_spec("clash3", pod_toml("clash3", "default", testing::shared_hello_image(), "true", "",
                                "[[ports]]\nhost_port = 8090\nguest_port = 80\n"
                                "host_ip = \"10.89.0.1\"\n"));
  ProcessResult gateway = ctl({"create", spec_path("clash3")});
  EXPECT_NE(gateway.err.find("is in pod network default"), std::string::npos) << gateway.err;

  ProcessResult overlap = ctl({"network", "create", "lab", "--subnet", "10.89.0.0/16"});
  EXPECT_NE(overlap.err.find("org.confpod1.Error.SubnetOverlap"), std::string::npos) << overlap.err;
  ProcessResult bad = ctl({"network", "create", "lab", "--subnet", "10.91.0.1/24"});
  EXPECT_NE(bad.err.find("org.confpod1.Error.InvalidNetwork"), std::string::npos) << bad.err;
  ProcessResult busy = ctl({"network", "rm", "other"});
  EXPECT_NE(busy.err.find("org.confpod1.Error.NetworkInUse"), std::string::npos) << busy.err;
  ProcessResult missing = ctl({"network", "inspect", "nosuch"});
  EXPECT_NE(missing.err.find("org.confpod1.Error.NoSuchNetwork"), std::string::npos) << missing.err;

  // A network made and removed over the API, seen in ls and inspect meanwhile.
  ProcessResult made =
      ctl({"network", "create", "lab", "--subnet", "10.91.0.0/24", "--dns", "10.91.0.1"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_NE(ctl({"network", "ls"}).out.find("lab                  cp-lab          10.91.0.0/24"),
            std::string::npos);
  auto lab = nlohmann::json::parse(ctl({"network", "inspect", "lab"}).out, nullptr, false);
  EXPECT_EQ(lab["Gateway"], "10.91.0.1");
  EXPECT_EQ(lab["Declared"], false);
  EXPECT_EQ(ctl({"network", "rm", "lab"}).exit_code, 0);
  EXPECT_EQ(ctl({"network", "inspect", "lab"}).exit_code, 1);

  EXPECT_EQ(nft_table(), before);  // nothing half-made
  EXPECT_EQ(inspect("clash").count("Name"), 0u);
}

TEST_F(NetworkE2E, AFlushedRulesetIsRestoredAtOnce) {
  const std::string table = nft_table();
  ASSERT_NE(table.find("dnat ip to 10.89.0.2:80"), std::string::npos) << table;
  // What `systemctl reload nftables` or an administrator's `nft flush ruleset` does.
  ASSERT_EQ(testing::run_process(host_->exec({"/usr/sbin/nft", "flush", "ruleset"})).exit_code, 0);
  ASSERT_TRUE(testing::wait_until([&] { return nft_table() == table; }, 5s))
      << nft_table() << daemon_->log();
  EXPECT_NE(daemon_->log().find("changed from outside; restoring"), std::string::npos);
  ProcessResult page = fetch_from_client(std::string("http://") + kHostAddr + ":8080/");
  EXPECT_EQ(page.out, "hello from pod web\n") << page.err;
}

TEST_F(NetworkE2E, KillNineKeepsAddressesPortsAndTheTable) {
  const std::string table = nft_table();
  ASSERT_NE(table.find("dnat ip to 10.89.0.2:80"), std::string::npos) << table;
  std::map<std::string, std::string> addresses;
  for (const char* pod : {"web", "probe-same", "probe-other"})
    addresses[pod] = inspect(pod)["Address"].get<std::string>();

  daemon_->kill9();
  daemon_->restart();
  for (const auto& [pod, address] : addresses) {
    nlohmann::json j = inspect(pod);
    EXPECT_EQ(j["State"], "running") << pod;
    EXPECT_EQ(j["Address"], address) << pod;
  }
  EXPECT_EQ(nft_table(), table);
  ProcessResult page = fetch_from_client(std::string("http://") + kHostAddr + ":8080/");
  EXPECT_EQ(page.out, "hello from pod web\n") << page.err;
}

TEST_F(NetworkE2E, CreateRemoveCyclesLeaveNoTapRuleOrLease) {
  const std::string table = nft_table();
  const testing::OciImage& image = testing::shared_hello_image();
  for (int i = 0; i < 20; ++i) {
    const std::string name = "cycle" + std::to_string(i);
    write_spec(name, pod_toml(name, i % 2 ? "other" : "default", image, "true", "",
                              "[[ports]]\nhost_port = " + std::to_string(9100 + i) +
                                  "\nguest_port = 80\n"));
    ProcessResult made = ctl({"create", spec_path(name)});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    EXPECT_NE(nft_table().find("dport " + std::to_string(9100 + i) + " dnat"), std::string::npos);
    ASSERT_EQ(ctl({"rm", name}).exit_code, 0);
  }
  // The last cycle also starts its pod (a tap), then removes it with force.
  write_spec("cycle-run", pod_toml("cycle-run", "default", image, "sleep 1000", "", ""));
  ASSERT_EQ(ctl({"run", spec_path("cycle-run")}).exit_code, 0);
  EXPECT_EQ(inspect("cycle-run")["Address"], "10.89.0.4");  // the lowest free
  EXPECT_NE(links_in_host().find("cpt0a590004"), std::string::npos);
  ASSERT_EQ(ctl({"rm", "-f", "cycle-run"}).exit_code, 0);

  EXPECT_EQ(nft_table(), table);
  EXPECT_EQ(links_in_host().find("cpt0a590004"), std::string::npos) << links_in_host();
  ProcessResult leases =
      testing::run_process({"/usr/bin/sqlite3", daemon_->state_dir() + "/confpod.db",
                            "SELECT count(*) FROM pods WHERE address != ''"});
  EXPECT_EQ(leases.out, "3\n") << leases.err;  // web, probe-same, probe-other

  // And all the way down: with every pod gone, no tap and no table.
  for (const char* pod : {"web", "probe-same", "probe-other"})
    EXPECT_EQ(ctl({"rm", "-f", pod}).exit_code, 0);
  EXPECT_EQ(links_in_host().find("cpt"), std::string::npos) << links_in_host();
  EXPECT_EQ(nft_table(), "");
}

}  // namespace
}  // namespace confpod
