// confpodctl: the command-line client of confpod.
//
// Exit codes (stable, scripts depend on them):
//   0  success
//   1  the evidence or request was rejected (one line on stderr names the failed check)
//   2  unusable arguments or unreadable input files
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "daemon/ctl/launch.h"
#include "daemon/ctl/verify.h"

int main(int argc, char** argv) {
  CLI::App app{"confpodctl: control confpod and verify attestation evidence offline", "confpodctl"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every command");

  confpod::ctl::VerifySnpArgs snp_args;
  confpod::ctl::VerifyTdxArgs tdx_args;

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
  if (*tdx) return confpod::ctl::verify_tdx(tdx_args, std::cout, std::cerr);
  if (*qemu_argv) return confpod::ctl::qemu_argv(argv_args, std::cout, std::cerr);
  if (*host_probe) return confpod::ctl::host_probe(probe_args, std::cout, std::cerr);
  return confpod::ctl::kExitUsage;
}
