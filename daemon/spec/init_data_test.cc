// PodSpec -> init-data document, and the digest binding vm_config_from_spec derives from it.
#include "daemon/spec/init_data.h"

#include <gtest/gtest.h>

#include "attest/base/bytes.h"
#include "attest/crypto/crypto.h"

namespace confpod::spec {
namespace {

const std::string kDigest =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

PodSpec pod(vmm::Tee tee) {
  PodSpec s;
  s.name = "payroll";
  s.tee = tee;
  Container app;
  app.name = "app";
  app.image = {"oci-archive", "/srv/images/app.tar", kDigest};
  app.command = {"/bin/app", "--serve"};
  app.env = {{"MODE", "prod"}};
  app.workdir = "/srv";
  s.containers.push_back(app);
  Container side = app;
  side.name = "side";
  side.image.path = "/srv/images/other-copy.tar";
  s.containers.push_back(side);
  s.secrets.push_back({"payroll/keys/db", "/run/secrets/db", ""});
  return s;
}

HostDefaults host() {
  HostDefaults h;
  h.allow_insecure_tee = true;
  h.firmware_snp = "/usr/share/ovmf/AMDSEV.fd";
  h.firmware_tdx = "/usr/share/ovmf/OVMF.inteltdx.fd";
  h.kbs_guest_url = "http://10.0.2.2:8080";
  h.kernel_cmdline = "console=ttyS0";
  return h;
}

// What the containers may do is part of the attested document: the final capability set (not
// the spec's add/drop, so the guest need not know the defaults), the filter, the limits.
TEST(InitData, CarriesEachContainersConfinementAndLimits) {
  PodSpec s = pod(vmm::Tee::kSnp);
  s.containers[0].init = true;
  s.containers[0].user = "1000:1000";
  s.containers[0].read_only_rootfs = true;
  s.containers[0].tmpfs = {"/tmp"};
  s.containers[0].cap_drop = {"ALL"};
  s.containers[0].cap_add = {"CAP_NET_ADMIN"};
  s.containers[1].seccomp = "unconfined";
  s.containers[1].cpu_millis = 500;
  s.containers[1].memory_mib = 64;
  s.secrets.push_back({"payroll/keys/api", "", "API_KEY"});
  guest::InitData d = init_data_from_spec(s, host());
  EXPECT_TRUE(d.containers[0].init);
  EXPECT_EQ(d.containers[0].user, "1000:1000");
  EXPECT_TRUE(d.containers[0].read_only_rootfs);
  EXPECT_EQ(d.containers[0].tmpfs, (std::vector<std::string>{"/tmp"}));
  EXPECT_EQ(d.containers[0].capabilities, (std::vector<std::string>{"CAP_NET_ADMIN"}));
  EXPECT_EQ(d.containers[0].seccomp, "default");
  EXPECT_FALSE(d.containers[1].init);
  EXPECT_EQ(d.containers[1].capabilities.size(), 14u);
  EXPECT_EQ(d.containers[1].seccomp, "unconfined");
  EXPECT_EQ(d.containers[1].cpu_millis, 500u);
  EXPECT_EQ(d.containers[1].memory_mib, 64u);
  ASSERT_EQ(d.secrets.size(), 2u);
  EXPECT_EQ(d.secrets[1].env, "API_KEY");
  EXPECT_TRUE(guest::validate_init_data(d).ok());
  // A change of privileges is a change of the bound digest.
  PodSpec wider = s;
  wider.containers[1].cap_add = {"CAP_SYS_ADMIN"};
  EXPECT_NE(init_data_text(s, host()), init_data_text(wider, host()));
}

TEST(InitData, CarriesWhatTheGuestNeedsAndNoHostPaths) {
  guest::InitData d = init_data_from_spec(pod(vmm::Tee::kSnp), host());
  EXPECT_EQ(d.pod, "payroll");
  EXPECT_EQ(d.tee, "snp");
  EXPECT_EQ(d.kbs_url, "http://10.0.2.2:8080");
  EXPECT_EQ(d.network.address, "10.0.2.15/24");
  EXPECT_EQ(d.network.gateway, "10.0.2.2");
  ASSERT_EQ(d.containers.size(), 2u);
  EXPECT_EQ(d.containers[0].image.digest, kDigest);
  EXPECT_EQ(d.containers[0].image.disk, "image0");
  EXPECT_EQ(d.containers[1].image.disk, "image1");
  EXPECT_EQ(d.containers[0].command, (std::vector<std::string>{"/bin/app", "--serve"}));
  EXPECT_EQ(d.containers[0].env.at("MODE"), "prod");
  EXPECT_EQ(d.containers[0].workdir, "/srv");
  ASSERT_EQ(d.secrets.size(), 1u);
  EXPECT_EQ(d.secrets[0].path, "/run/secrets/db");
  EXPECT_FALSE(d.allow_exec);
  std::string text = init_data_text(pod(vmm::Tee::kSnp), host());
  EXPECT_EQ(text.find("/srv/images"), std::string::npos) << text;
  // The document the guest gets parses back to the same value.
  auto parsed = guest::parse_init_data(text);
  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  EXPECT_EQ(*parsed, d);
}

TEST(InitData, HostPathOfAnImageDoesNotChangeTheDigestButItsPinDoes) {
  PodSpec a = pod(vmm::Tee::kSnp);
  PodSpec b = a;
  b.containers[0].image.path = "/elsewhere/app.tar";
  EXPECT_EQ(init_data_text(a, host()), init_data_text(b, host()));
  b.containers[0].image.digest = "sha256:" + std::string(64, 'f');
  EXPECT_NE(init_data_text(a, host()), init_data_text(b, host()));
  b = a;
  b.allow_exec = true;
  EXPECT_NE(init_data_text(a, host()), init_data_text(b, host()));
}

TEST(InitData, NoSecretsMeansNoKbsUrl) {
  PodSpec s = pod(vmm::Tee::kNone);
  s.secrets.clear();
  EXPECT_EQ(init_data_from_spec(s, host()).kbs_url, "");
}

TEST(InitData, LaunchBindsTheDigestOfTheDocument) {
  const HostDefaults h = host();
  auto snp = vm_config_from_spec(pod(vmm::Tee::kSnp), h);
  ASSERT_TRUE(snp.ok()) << snp.error().describe();
  Bytes sha256 = crypto::sha256(as_bytes(init_data_text(pod(vmm::Tee::kSnp), h)));
  EXPECT_TRUE(std::equal(sha256.begin(), sha256.end(), snp->snp.host_data.begin()));

  auto tdx = vm_config_from_spec(pod(vmm::Tee::kTdx), h);
  ASSERT_TRUE(tdx.ok()) << tdx.error().describe();
  Bytes sha384 = crypto::sha384(as_bytes(init_data_text(pod(vmm::Tee::kTdx), h)));
  EXPECT_TRUE(std::equal(sha384.begin(), sha384.end(), tdx->tdx.mrconfigid.begin()));

  // tee none: the simulated binding on the kernel command line (proves nothing; same path).
  auto none = vm_config_from_spec(pod(vmm::Tee::kNone), h);
  ASSERT_TRUE(none.ok()) << none.error().describe();
  std::string want = "console=ttyS0 confpod.init_data_digest=" +
                     to_hex(crypto::sha256(as_bytes(init_data_text(pod(vmm::Tee::kNone), h))));
  EXPECT_EQ(none->kernel_cmdline, want);
}

}  // namespace
}  // namespace confpod::spec
