// confpodctl: the command-line client of confpod.
//
// Exit codes (stable, scripts depend on them; docs/cli.md):
//   0  success
//   1  the evidence or request was rejected (one line on stderr names the failed check), or
//      confpodd answered a D-Bus verb with an error ("confpodctl: <error name>: <message>")
//   2  unusable arguments, unreadable input files, or confpodd cannot be reached
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "daemon/ctl/collateral.h"
#include "daemon/ctl/exec.h"
#include "daemon/ctl/launch.h"
#include "daemon/ctl/measure.h"
#include "daemon/ctl/networks.h"
#include "daemon/ctl/pods.h"
#include "daemon/ctl/secrets.h"
#include "daemon/ctl/verify.h"

int main(int argc, char** argv) {
  CLI::App app{"confpodctl: control confpod and verify attestation evidence offline", "confpodctl"};
  app.set_version_flag("--version", std::string("confpodctl ") + CONFPOD_VERSION);
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every command");

  // Global options of the D-Bus verbs; fallthrough lets them follow the verb too
  // (`confpodctl ps --address ...`).
  confpod::ctl::BusArgs bus_args;
  app.fallthrough();
  app.add_option("--address", bus_args.address,
                 "D-Bus address of the bus confpodd is on (default: the system bus, or "
                 "$DBUS_SYSTEM_BUS_ADDRESS)");
  app.add_option("--timeout", bus_args.timeout_seconds,
                 "Seconds to wait for each reply of confpodd (start and stop reply when done)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 86400u));

  confpod::ctl::VerifySnpArgs snp_args;
  confpod::ctl::VerifyTdxArgs tdx_args;
  confpod::ctl::VerifySnpEvidenceArgs snp_evidence_args;

  CLI::App* verify = app.add_subcommand("verify", "Verify attestation evidence offline");
  verify->require_subcommand(1);

  CLI::App* snp = verify->add_subcommand("snp", "Verify an AMD SEV-SNP attestation report");
  snp->add_option("REPORT", snp_args.report, "Attestation report (1184 bytes)")->required();
  snp->add_option("--vcek", snp_args.vcek, "VCEK or VLEK certificate, PEM or DER")->required();
  snp->add_option("--ask", snp_args.ask,
                  "ASK (or ASVK) certificate, PEM; a KDS cert_chain bundle (ASK+ARK) also works");
  snp->add_option("--ark", snp_args.ark, "ARK certificate, PEM; must equal the pinned root");
  snp->add_option("--product", snp_args.product, "milan, genoa or turin (default: from the VCEK)")
      ->check(CLI::IsMember({"milan", "genoa", "turin"}));
  snp->add_flag("--allow-debug", snp_args.allow_debug, "Accept a guest whose policy allows debug");

  CLI::App* snp_evidence = verify->add_subcommand(
      "snp-evidence", "Verify SEV-SNP evidence in Trustee's JSON shape (report + cert_chain)");
  snp_evidence->add_option("FILE", snp_evidence_args.evidence, "Evidence JSON")->required();
  snp_evidence->add_option("--at", snp_evidence_args.at,
                           "Verification time, RFC 3339 (default: now)");
  snp_evidence->add_flag("--allow-debug", snp_evidence_args.allow_debug,
                         "Accept a guest whose policy allows debug");
  CLI::App* tdx = verify->add_subcommand("tdx", "Verify an Intel TDX DCAP quote");
  tdx->add_option("QUOTE", tdx_args.quote, "DCAP quote (v4 or v5)")->required();
  tdx->add_option("--collateral", tdx_args.collateral,
                  "Collateral JSON (tcb_info, qe_identity, CRLs and issuer chains)")
      ->required();
  tdx->add_option("--at", tdx_args.at, "Verification time, RFC 3339 (e.g. 2025-07-19T10:00:34Z)")
      ->required();
  tdx->add_flag("--allow-debug", tdx_args.allow_debug, "Accept a TD with the DEBUG attribute");

  confpod::ctl::QemuArgvArgs argv_args;
  CLI::App* qemu_argv = app.add_subcommand(
      "qemu-argv", "Print the QEMU command line for a pod spec, one argument a line");
  qemu_argv->add_option("SPEC", argv_args.spec, "Pod spec (TOML)")->required();
  qemu_argv->add_option("--tee", argv_args.tee_override, "Override the spec's tee")
      ->check(CLI::IsMember({"none", "snp", "tdx"}));

  confpod::ctl::HostProbeArgs probe_args;
  CLI::App* host_probe =
      app.add_subcommand("host-probe", "Print which TEEs this host supports, as JSON");
  host_probe->add_option("--qemu", probe_args.qemu_binary, "QEMU binary to probe");
  host_probe->add_option("--runtime-dir", probe_args.runtime_dir,
                         "confpodd's runtime_dir, where its accelerator verdict is kept");
  host_probe->add_option("--guest-kernel", probe_args.guest_kernel,
                         "With --guest-initrd: boot this guest under KVM now to decide");
  host_probe->add_option("--guest-initrd", probe_args.guest_initrd, "See --guest-kernel");

  confpod::ctl::MeasureSnpArgs measure_snp_args;
  confpod::ctl::MeasureTdxArgs measure_tdx_args;
  confpod::ctl::MeasureRtmrArgs measure_rtmr_args;
  CLI::App* measure =
      app.add_subcommand("measure", "Compute expected launch measurements from guest files");
  measure->require_subcommand(1);
  CLI::App* measure_snp_cmd =
      measure->add_subcommand("snp", "Print the expected SEV-SNP launch digest (hex)");
  measure_snp_cmd->add_option("--ovmf", measure_snp_args.ovmf, "OVMF firmware image")->required();
  measure_snp_cmd->add_option("--kernel", measure_snp_args.kernel,
                              "Kernel given to QEMU -kernel (measured via the SEV hashes table)");
  measure_snp_cmd->add_option("--initrd", measure_snp_args.initrd, "Initrd (needs --kernel)");
  measure_snp_cmd->add_option("--append", measure_snp_args.append,
                              "Kernel command line (needs --kernel)");
  measure_snp_cmd->add_option("--vcpus", measure_snp_args.vcpus, "Number of vCPUs")->required();
  measure_snp_cmd
      ->add_option("--vcpu-type", measure_snp_args.vcpu_type,
                   "QEMU -cpu model: EPYC, EPYC-v4, EPYC-Rome, EPYC-Milan, EPYC-Genoa, ...")
      ->required();
  measure_snp_cmd
      ->add_option("--guest-features", measure_snp_args.guest_features,
                   "VMSA SEV features, hex (e.g. 0x21)")
      ->capture_default_str();
  measure_snp_cmd->add_option("--vmm-type", measure_snp_args.vmm_type, "qemu or ec2")
      ->capture_default_str();
  CLI::App* measure_tdx_cmd =
      measure->add_subcommand("tdx", "Print the expected TDX MRTD of a TDVF image (hex)");
  measure_tdx_cmd->add_option("--firmware", measure_tdx_args.firmware, "TDVF image (e.g. OVMF.fd)")
      ->required();
  CLI::App* measure_rtmr_cmd =
      measure->add_subcommand("rtmr", "Replay a TDX CC event log: print rtmr0=.. to rtmr3=..");
  measure_rtmr_cmd
      ->add_option("--ccel-table", measure_rtmr_args.ccel_table,
                   "ACPI CCEL table (/sys/firmware/acpi/tables/CCEL)")
      ->required();
  measure_rtmr_cmd
      ->add_option("--ccel-data", measure_rtmr_args.ccel_data,
                   "CC event log area (/sys/firmware/acpi/tables/data/CCEL)")
      ->required();

  std::string spec_path;
  CLI::App* run = app.add_subcommand("run", "Create a pod from a spec and start it");
  run->add_option("SPEC", spec_path, "Pod spec (TOML)")->required();
  CLI::App* create = app.add_subcommand("create", "Create a pod from a spec (not started)");
  create->add_option("SPEC", spec_path, "Pod spec (TOML)")->required();

  std::string pod_name;
  CLI::App* start = app.add_subcommand("start", "Start a pod; returns once its VM runs");
  start->add_option("NAME", pod_name, "Pod name")->required();
  CLI::App* stop = app.add_subcommand(
      "stop", "Stop a pod (ACPI power-off, SIGKILL after the daemon's stop timeout)");
  stop->add_option("NAME", pod_name, "Pod name")->required();
  CLI::App* kill = app.add_subcommand("kill", "Kill a pod's VM at once (SIGKILL)");
  kill->add_option("NAME", pod_name, "Pod name")->required();
  bool force = false;
  CLI::App* rm = app.add_subcommand("rm", "Remove a pod that is not running");
  rm->add_option("NAME", pod_name, "Pod name")->required();
  rm->add_flag("-f,--force", force, "Kill the pod first if it runs");

  bool ps_json = false;
  CLI::App* ps = app.add_subcommand("ps", "List pods: NAME STATE TEE");
  ps->add_flag("--json", ps_json, "Print a JSON array instead of a table");
  CLI::App* inspect = app.add_subcommand("inspect", "Print every property of a pod as JSON");
  inspect->add_option("NAME", pod_name, "Pod name")->required();

  confpod::ctl::LogsArgs logs_args;
  CLI::App* logs = app.add_subcommand("logs", "Print a pod's QEMU log and serial console");
  logs->add_option("NAME", logs_args.name, "Pod name")->required();
  logs->add_flag("-f,--follow", logs_args.follow,
                 "Keep printing new output until the pod exits (or Ctrl-C)");

  // exec's command is everything after its "--", taken out of argv before CLI11 sees it (it
  // would read the command's own options as confpodctl's).
  confpod::ctl::ExecArgs exec_args;
  const int command_words = confpod::ctl::exec_command_words(argc, argv);
  if (command_words >= 0) {
    exec_args.command.assign(argv + argc - command_words, argv + argc);
    argc -= command_words + 1;
  }
  CLI::App* exec = app.add_subcommand(
      "exec", "Run a command in a running pod's container: exec [-it] POD [CONTAINER] -- CMD...");
  exec->add_flag("-i,--interactive", exec_args.interactive, "Send stdin to the command");
  exec->add_flag("-t,--tty", exec_args.tty, "Give the command a terminal (pty)");
  exec->add_option("POD", exec_args.name, "Pod name")->required();
  exec->add_option("CONTAINER", exec_args.container, "Container (default: the pod's first)");

  confpod::ctl::AttachArgs attach_args;
  CLI::App* attach = app.add_subcommand(
      "attach", "Print a running pod's container output as it comes, until it exits");
  attach->add_option("POD", attach_args.name, "Pod name")->required();
  attach->add_option("CONTAINER", attach_args.container, "Container (default: all)");

  CLI::App* network = app.add_subcommand("network", "Manage guest networks (bridges)");
  network->require_subcommand(1);
  bool network_json = false;
  CLI::App* network_ls = network->add_subcommand("ls", "List networks: NAME BRIDGE SUBNET PODS");
  network_ls->add_flag("--json", network_json, "Print a JSON array instead of a table");
  std::string network_name;
  CLI::App* network_inspect =
      network->add_subcommand("inspect", "Print every property of a network as JSON");
  network_inspect->add_option("NAME", network_name, "Network name")->required();
  confpod::ctl::NetworkCreateArgs network_args;
  CLI::App* network_create = network->add_subcommand("create", "Create a network");
  network_create->add_option("NAME", network_args.name, "Network name")->required();
  network_create->add_option("--subnet", network_args.subnet, "IPv4 subnet, e.g. 10.90.0.0/24")
      ->required();
  network_create->add_option("--bridge", network_args.bridge,
                             "Bridge interface name (default: cp-NAME)");
  network_create->add_option("--subnet6", network_args.subnet6, "IPv6 subnet, e.g. fd00:90::/64");
  network_create->add_flag("--no-masquerade", network_args.no_masquerade,
                           "Pods on it do not reach beyond the host");
  network_create->add_option("--dns", network_args.dns, "Nameserver handed to pods (repeatable)");
  CLI::App* network_rm = network->add_subcommand("rm", "Remove a network that has no pods");
  network_rm->add_option("NAME", network_name, "Network name")->required();
  CLI::App* port = app.add_subcommand("port", "List a pod's published ports");
  port->add_option("NAME", pod_name, "Pod name")->required();

  std::string secret_path;
  std::string secret_file;
  CLI::App* secret = app.add_subcommand("secret", "Manage the KBS resources (secrets)");
  secret->require_subcommand(1);
  CLI::App* secret_put =
      secret->add_subcommand("put", "Store a resource from FILE, or stdin for -, at most 1 MiB");
  secret_put->add_option("PATH", secret_path, "Resource path <repository>/<type>/<tag>")
      ->required();
  secret_put->add_option("FILE", secret_file, "File with the value, or - for stdin")->required();
  CLI::App* secret_rm = secret->add_subcommand("rm", "Delete a resource");
  secret_rm->add_option("PATH", secret_path, "Resource path")->required();
  CLI::App* secret_ls = secret->add_subcommand("ls", "List resource paths (never values)");

  std::vector<std::string> collateral_args;
  CLI::App* collateral = app.add_subcommand(
      "collateral",
      "Manage attestation collateral (AMD KDS, Intel PCS) for hosts without internet");
  collateral->require_subcommand(1);
  CLI::App* collateral_import = collateral->add_subcommand(
      "import", "Import certificates, CRLs, TCB info and QE identity from files or directories");
  collateral_import->add_option("PATH", collateral_args, "File or directory")->required();
  CLI::App* collateral_ls = collateral->add_subcommand(
      "ls", "List collateral: ID KIND EXPIRES SUBJECT (marks what expires within 30 days)");
  CLI::App* collateral_rm = collateral->add_subcommand("rm", "Remove collateral by id");
  collateral_rm->add_option("ID", collateral_args, "Id (or a unique prefix)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return confpod::ctl::kExitUsage;
  }

  if (*snp) return confpod::ctl::verify_snp(snp_args, std::cout, std::cerr);
  if (*snp_evidence)
    return confpod::ctl::verify_snp_evidence(snp_evidence_args, std::cout, std::cerr);
  if (*tdx) return confpod::ctl::verify_tdx(tdx_args, std::cout, std::cerr);
  if (*qemu_argv) return confpod::ctl::qemu_argv(argv_args, std::cout, std::cerr);
  if (*host_probe) return confpod::ctl::host_probe(probe_args, std::cout, std::cerr);
  if (*measure_snp_cmd) return confpod::ctl::measure_snp(measure_snp_args, std::cout, std::cerr);
  if (*measure_tdx_cmd) return confpod::ctl::measure_tdx(measure_tdx_args, std::cout, std::cerr);
  if (*measure_rtmr_cmd) return confpod::ctl::measure_rtmr(measure_rtmr_args, std::cout, std::cerr);

  using confpod::ctl::PodAction;
  if (*run) return confpod::ctl::pod_create(bus_args, spec_path, true, std::cout, std::cerr);
  if (*create) return confpod::ctl::pod_create(bus_args, spec_path, false, std::cout, std::cerr);
  if (*start)
    return confpod::ctl::pod_action(bus_args, PodAction::kStart, pod_name, std::cout, std::cerr);
  if (*stop)
    return confpod::ctl::pod_action(bus_args, PodAction::kStop, pod_name, std::cout, std::cerr);
  if (*kill)
    return confpod::ctl::pod_action(bus_args, PodAction::kKill, pod_name, std::cout, std::cerr);
  if (*rm) return confpod::ctl::pod_remove(bus_args, pod_name, force, std::cout, std::cerr);
  if (*ps) return confpod::ctl::pod_list(bus_args, ps_json, std::cout, std::cerr);
  if (*network_ls) return confpod::ctl::network_list(bus_args, network_json, std::cout, std::cerr);
  if (*network_inspect)
    return confpod::ctl::network_inspect(bus_args, network_name, std::cout, std::cerr);
  if (*network_create)
    return confpod::ctl::network_create(bus_args, network_args, std::cout, std::cerr);
  if (*network_rm)
    return confpod::ctl::network_remove(bus_args, network_name, std::cout, std::cerr);
  if (*port) return confpod::ctl::pod_ports(bus_args, pod_name, std::cout, std::cerr);
  if (*inspect) return confpod::ctl::pod_inspect(bus_args, pod_name, std::cout, std::cerr);
  if (*logs) return confpod::ctl::pod_logs(bus_args, logs_args, std::cout, std::cerr);
  if (*exec) {
    if (exec_args.command.empty()) {
      std::cerr << "confpodctl: exec: usage: confpodctl exec [-it] POD [CONTAINER] -- CMD...\n";
      return confpod::ctl::kExitUsage;
    }
    return confpod::ctl::pod_exec(bus_args, exec_args, std::cerr);
  }
  if (*attach) return confpod::ctl::pod_attach(bus_args, attach_args, std::cerr);
  if (*secret_put)
    return confpod::ctl::secret_put(bus_args, secret_path, secret_file, std::cout, std::cerr);
  if (*secret_rm) return confpod::ctl::secret_remove(bus_args, secret_path, std::cout, std::cerr);
  if (*secret_ls) return confpod::ctl::secret_list(bus_args, std::cout, std::cerr);
  if (*collateral_import)
    return confpod::ctl::collateral_import(bus_args, collateral_args, std::cout, std::cerr);
  if (*collateral_ls)
    return confpod::ctl::collateral_list(bus_args, confpod::now_unix(), std::cout, std::cerr);
  if (*collateral_rm)
    return confpod::ctl::collateral_remove(bus_args, collateral_args, std::cout, std::cerr);
  return confpod::ctl::kExitUsage;
}
