// confpodd: the confpod host daemon (docs/daemon.md, docs/dbus-api.md).
//
//   confpodd [--config PATH] [--bus-address ADDRESS] [--manage-group NAME] [--kbs-only]
//
// One sd-event loop: the D-Bus connection, signals, QEMU exit watches (pidfds), restart
// timers and the systemd watchdog all run on it. SIGTERM/SIGINT end the loop and leave every
// VM running; the next start re-attaches to them.
#include <pthread.h>
#include <signal.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "attest/kbs/kbs.h"
#include "daemon/bus/auth.h"
#include "daemon/bus/broker.h"
#include "daemon/bus/service.h"
#include "daemon/config/config.h"
#include "daemon/kbs/collateral_source.h"
#include "daemon/kbs/service.h"
#include "daemon/metrics/metrics.h"
#include "daemon/pods/guest_image.h"
#include "daemon/pods/log.h"
#include "daemon/pods/manager.h"
#include "daemon/store/collateral_store.h"
#include "daemon/store/resource_store.h"
#include "vmm/accel_check.h"
#include "vmm/probe.h"

namespace {

using confpod::pods::log_error;
using confpod::pods::log_info;
using confpod::pods::log_warning;

struct EventUnref {
  void operator()(sd_event* e) const { sd_event_unref(e); }
};
struct BusClose {
  void operator()(sd_bus* b) const { sd_bus_flush_close_unref(b); }
};
struct SourceUnref {
  void operator()(sd_event_source* s) const { sd_event_source_disable_unref(s); }
};
using EventPtr = std::unique_ptr<sd_event, EventUnref>;
using BusPtr = std::unique_ptr<sd_bus, BusClose>;
using SourcePtr = std::unique_ptr<sd_event_source, SourceUnref>;

struct Options {
  std::string config_path{confpod::config::kDefaultConfigPath};
  std::string bus_address;  // empty: the system bus (honours DBUS_SYSTEM_BUS_ADDRESS)
  std::string manage_group = "confpod";
  bool kbs_only = false;  // serve only the KBS (and the Broker): no QEMU probe, no pods
};

int fail(const std::string& what, int r) {
  log_error(what, {{"error", std::strerror(-r)}});
  return 1;
}

BusPtr connect_bus(const std::string& address, int* error) {
  sd_bus* raw = nullptr;
  int r;
  if (address.empty()) {
    r = sd_bus_open_system(&raw);
  } else {
    r = sd_bus_new(&raw);
    if (r >= 0) r = sd_bus_set_address(raw, address.c_str());
    if (r >= 0) r = sd_bus_set_bus_client(raw, 1);
    if (r >= 0) r = sd_bus_start(raw);
  }
  *error = r;
  BusPtr bus(raw);
  return r < 0 ? nullptr : std::move(bus);
}

int run(const Options& opts) {
  auto config = confpod::config::load_config(opts.config_path);
  if (!config.ok()) {
    log_error("bad configuration",
              {{"path", opts.config_path}, {"error", config.error().describe()}});
    return 1;
  }
  // What this host can launch, asked once: CreatePod checks every spec's TEE against it.
  confpod::vmm::ProbeOptions probe_options;
  probe_options.qemu_binary = config->host.qemu_binary;
  probe_options.scratch_dir = config->host.runtime_dir;
  std::error_code ec;
  std::filesystem::create_directories(config->host.runtime_dir, ec);
  // No guest image configured: build one here (cached by its inputs, so usually a lookup). A
  // failure is logged and leaves pods unable to start, each saying why; the daemon still runs.
  if (!opts.kbs_only && config->host.kernel.empty() && config->host.initrd.empty()) {
    confpod::pods::GuestImageBuild build;
    build.builder = config->guest_builder;
    build.agent = config->guest_agent;
    build.out_dir = config->state_dir + "/guest";
    auto image = confpod::pods::build_guest_image(build);
    if (image.ok()) {
      config->host.kernel = image->kernel;
      config->host.initrd = image->initrd;
      log_info("guest image built", {{"kernel", image->kernel}, {"initrd", image->initrd}});
    } else {
      log_error("no guest image: pods cannot start", {{"error", image.error().describe()}});
    }
  }
  confpod::pods::ManagerOptions manager_options;
  if (!opts.kbs_only) manager_options.probe = confpod::vmm::probe_host(probe_options);
  // accel = "auto": whether tee-none pods get KVM depends on KVM really running a guest here.
  if (!opts.kbs_only && config->host.accel == "auto") {
    confpod::vmm::BootCheckOptions check;
    check.qemu_binary = config->host.qemu_binary;
    check.kernel = config->host.kernel;
    check.initrd = config->host.initrd;
    check.cpu_model = config->host.cpu_model;
    std::error_code ec;
    std::filesystem::create_directories(config->host.runtime_dir, ec);
    const auto choice = confpod::vmm::cached_tee_none_accel(
        manager_options.probe, check, config->host.runtime_dir + "/tee-none-accel.json");
    config->host.tee_none_accel = choice.accel;
    log_info("tee-none pods use " + choice.accel, {{"reason", choice.reason}});
  }
  manager_options.config = *config;
  manager_options.agent_hello_timeout = std::chrono::seconds(config->agent_hello_timeout_seconds);
  if (!opts.kbs_only && !manager_options.probe.qemu.runs)
    log_warning("QEMU does not run", {{"binary", config->host.qemu_binary},
                                      {"error", manager_options.probe.qemu.error}});

  // A peer that goes away is an error on the write, never the end of the daemon: libvirt's
  // client writes to libvirtd's socket without MSG_NOSIGNAL, so a restarting libvirtd would
  // otherwise kill confpodd with SIGPIPE (found by the libvirtd-restart test).
  ::signal(SIGPIPE, SIG_IGN);
  // Signals go to the loop (signalfd), and worker threads inherit the blocked mask.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);

  sd_event* raw_event = nullptr;
  int r = sd_event_new(&raw_event);
  if (r < 0) return fail("sd_event_new", r);
  EventPtr event(raw_event);
  sd_event_source* raw_source = nullptr;
  r = sd_event_add_signal(raw_event, &raw_source, SIGTERM, nullptr, nullptr);
  if (r < 0) return fail("sd_event_add_signal", r);
  SourcePtr sigterm(raw_source);
  r = sd_event_add_signal(raw_event, &raw_source, SIGINT, nullptr, nullptr);
  if (r < 0) return fail("sd_event_add_signal", r);
  SourcePtr sigint(raw_source);
  // Pings WATCHDOG=1 from the loop when WatchdogSec= is set: a stuck loop gets us restarted.
  r = sd_event_set_watchdog(raw_event, 1);
  if (r < 0) return fail("sd_event_set_watchdog", r);

  auto manager = confpod::pods::Manager::create(raw_event, std::move(manager_options));
  if (!manager.ok()) {
    log_error("cannot open the pod store", {{"error", manager.error().describe()}});
    return 1;
  }
  confpod::pods::Manager& pods = **manager;

  BusPtr bus = connect_bus(opts.bus_address, &r);
  if (!bus) return fail("cannot connect to the bus", r);
  r = sd_bus_attach_event(bus.get(), raw_event, SD_EVENT_PRIORITY_NORMAL);
  if (r < 0) return fail("sd_bus_attach_event", r);

  confpod::bus::AuthPolicy auth;
  auth.manage_group = opts.manage_group;
  auth.manage_gid = confpod::bus::lookup_group(opts.manage_group);
  if (!auth.manage_gid)
    log_info("management group missing: only root (or polkit) may change pods",
             {{"group", opts.manage_group}});
  auto update_status = [&pods]() {
    std::string status = "STATUS=" + std::to_string(pods.list().size()) + " pods, " +
                         std::to_string(pods.running_count()) + " running";
    sd_notify(0, status.c_str());
  };
  auto service = confpod::bus::BusService::create(bus.get(), pods, auth, update_status);
  if (!service.ok()) {
    log_error("cannot register D-Bus objects", {{"error", service.error().describe()}});
    return 1;
  }

  // --- KBS core and its admin interface (org.confpod1.Broker). Resources live in the pod
  // database (schema 2, 0600); the signing key in state_dir/kbs-signing-key.pem (0600). The
  // HTTP server and the pods' reference values (daemon/kbs) use this `kbs` and `resources`.
  const std::string state_dir = config->state_dir;
  auto opened_resources = confpod::store::SqliteResourceStore::open(state_dir + "/confpod.db");
  if (!opened_resources.ok()) {
    log_error("cannot open the resource store", {{"error", opened_resources.error().describe()}});
    return 1;
  }
  std::shared_ptr<confpod::store::SqliteResourceStore> resources =
      std::move(opened_resources).value();
  auto signing_key =
      confpod::kbs_http::load_or_create_signing_key(state_dir + "/kbs-signing-key.pem");
  if (!signing_key.ok()) {
    log_error("cannot load the KBS signing key", {{"error", signing_key.error().describe()}});
    return 1;
  }
  // Collateral for evidence that arrives without it (docs/collateral.md): the same database.
  auto opened_collateral = confpod::store::SqliteCollateralStore::open(state_dir + "/confpod.db");
  if (!opened_collateral.ok()) {
    log_error("cannot open the collateral store",
              {{"error", opened_collateral.error().describe()}});
    return 1;
  }
  std::unique_ptr<confpod::store::SqliteCollateralStore> collateral =
      std::move(opened_collateral).value();
  confpod::kbs_http::CollateralSource collateral_source(*collateral);
  confpod::kbs::Options kbs_options;
  kbs_options.allow_insecure = config->host.allow_insecure_tee;
  kbs_options.snp_vek = [&collateral_source](const confpod::snp::Report& report) {
    return collateral_source.snp_vek(report);
  };
  kbs_options.snp_revocation = [&collateral_source, require = config->kbs.require_crl](
                                   const confpod::snp::VerifiedChain& chain,
                                   confpod::UnixSeconds now) {
    return collateral_source.snp_revocation(chain, now, require);
  };
  kbs_options.tdx_collateral = [&collateral_source](const confpod::tdx::Quote& quote,
                                                    confpod::UnixSeconds now) {
    return collateral_source.tdx_collateral(quote, now);
  };
  confpod::kbs::Kbs kbs(std::move(kbs_options), std::move(signing_key).value(), resources);
  confpod::bus::Broker broker(kbs, *resources, *collateral, auth);
  // Metrics (docs/operations.md): kept always (cheap), served only where [metrics] listen says.
  confpod::metrics::Metrics metrics;
  // What expires within 30 days is logged now and every day after.
  auto expiry_to_metrics = [&metrics](const std::vector<confpod::store::CollateralEntry>& all) {
    std::vector<std::pair<std::string, std::int64_t>> items;
    for (const auto& e : all)
      items.emplace_back(confpod::collateral::kind_name(e.item.kind), e.item.not_after);
    metrics.collateral_expiry(items);
  };
  auto expiry_check =
      confpod::kbs_http::watch_collateral_expiry(raw_event, *collateral, expiry_to_metrics);
  // And at once on every import and removal.
  broker.on_collateral_change([&collateral, expiry_to_metrics] {
    if (auto all = collateral->list(); all.ok()) expiry_to_metrics(*all);
  });
  if (!expiry_check.ok()) {
    log_error("cannot schedule the collateral expiry check",
              {{"error", expiry_check.error().describe()}});
    return 1;
  }
  if (auto added = confpod::bus::add_broker(bus.get(), broker); !added.ok()) {
    log_error("cannot register D-Bus objects", {{"error", added.error().describe()}});
    return 1;
  }
  // --- end KBS

  // Re-attach to the VMs that ran when the previous daemon ended (blocks briefly per pod,
  // before we serve anything).
  auto recovered = opts.kbs_only ? confpod::ok_status() : pods.recover();
  if (!recovered.ok()) {
    log_error("cannot load pods", {{"error", recovered.error().describe()}});
    return 1;
  }
  // The pods' reference values follow the pod table (created, measured, started, removed).
  confpod::kbs_http::PodSync pod_sync(kbs, pods, config->host.allow_insecure_tee);
  if (!opts.kbs_only) {
    pods.add_listener(&pod_sync);
    pod_sync.sync_all();
    for (const auto* pod : pods.list()) metrics.pod_added(*pod);
    pods.add_listener(&metrics);
  }
  std::unique_ptr<confpod::metrics::Endpoint> metrics_endpoint;
  if (!config->metrics.listen.empty()) {
    auto serving = confpod::metrics::Endpoint::start(config->metrics.listen, metrics.registry());
    if (!serving.ok()) {
      log_error("cannot serve metrics", {{"error", serving.error().describe()}});
      return 1;
    }
    metrics_endpoint = std::move(serving).value();
    log_info("metrics serving", {{"listen", config->metrics.listen}});
  }
  std::unique_ptr<confpod::kbs_http::Server> kbs_server;
  if (config->kbs.enabled) {
    confpod::kbs_http::ServerOptions server_options =
        confpod::kbs_http::server_options(config->kbs);
    server_options.observe = [&metrics](std::string_view route, int status, double seconds) {
      metrics.kbs_request(route, status, seconds);
    };
    auto started = confpod::kbs_http::Server::start(kbs, std::move(server_options));
    if (!started.ok()) {
      log_error("cannot serve the KBS", {{"error", started.error().describe()}});
      return 1;
    }
    kbs_server = std::move(started).value();
  } else if (opts.kbs_only) {
    log_error("--kbs-only with [kbs] enabled = false: nothing to serve");
    return 1;
  }

  r = sd_bus_request_name(bus.get(), confpod::bus::kBusName, 0);
  if (r < 0) return fail(std::string("cannot own ") + confpod::bus::kBusName, r);
  log_info("confpodd ready", {{"pods", std::to_string(pods.list().size())},
                              {"running", std::to_string(pods.running_count())}});
  sd_notify(0, "READY=1");
  update_status();

  r = sd_event_loop(raw_event);
  sd_notify(0, "STOPPING=1\nSTATUS=Stopping; pods keep running");
  log_info("confpodd stopping; VMs keep running");
  // Objects off the bus first, then the manager (joins in-flight start/stop workers), then
  // the connection (flushed and closed by its deleter).
  if (kbs_server) kbs_server->stop();
  metrics_endpoint.reset();
  pods.remove_listener(&metrics);
  pods.remove_listener(&pod_sync);
  service->reset();
  manager->reset();
  return r < 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  CLI::App app{"confpodd: confidential pod host daemon"};
  app.set_version_flag("--version", std::string("confpodd ") + CONFPOD_VERSION);
  app.add_option("--config", opts.config_path, "confpod.toml")->capture_default_str();
  app.add_option("--bus-address", opts.bus_address,
                 "D-Bus address to serve on instead of the system bus");
  app.add_option("--manage-group", opts.manage_group,
                 "group whose members may change pods (besides root)")
      ->capture_default_str();
  app.add_flag("--kbs-only", opts.kbs_only,
               "serve only the Key Broker Service and its D-Bus admin interface (no pods)");
  CLI11_PARSE(app, argc, argv);
  return run(opts);
}
