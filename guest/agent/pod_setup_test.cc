#include "guest/agent/pod_setup.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "attest/crypto/crypto.h"
#include "guest/agent/test_rootfs.h"

namespace confpod::guest::agent {
namespace {

namespace fs = std::filesystem;

const std::string kInitData =
    "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\npod = \"web\"\n";

// A guest root whose kernel command line carries `digest_hex`, read by the real sample
// evidence provider.
std::unique_ptr<EvidenceProvider> sample_provider(const testing::TempDir& root,
                                                  const std::string& cmdline) {
  fs::create_directories(root.path() + "/proc");
  std::ofstream(root.path() + "/proc/cmdline") << cmdline;
  auto p = make_evidence_provider("none", root.path());
  EXPECT_TRUE(p.ok()) << p.error().describe();
  return p.ok() ? std::move(*p) : nullptr;
}

TEST(VerifyInitDataDigest, MatchesOnlyTheDigestBoundAtLaunch) {
  testing::TempDir root;
  auto provider = sample_provider(root, "console=ttyS0 confpod.init_data_digest=" +
                                            to_hex(crypto::sha256(as_bytes(kInitData))) + "\n");
  ASSERT_TRUE(provider);
  EXPECT_TRUE(verify_init_data_digest(*provider, kInitData).ok());
  auto altered = verify_init_data_digest(*provider, kInitData + "# host was here\n");
  ASSERT_FALSE(altered.ok());
  EXPECT_EQ(altered.error().code, "agent.init_data.mismatch");
  EXPECT_NE(altered.error().message.find("SHA-256"), std::string::npos);

  testing::TempDir unbound_root;
  auto unbound = sample_provider(unbound_root, "console=ttyS0\n");
  ASSERT_TRUE(unbound);
  auto missing = verify_init_data_digest(*unbound, kInitData);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "agent.evidence");
}

TEST(FetchSecrets, FilesAndEnvironmentFromTheSourceWithoutAttesting) {
  testing::TempDir root;
  auto provider = sample_provider(root, "confpod.init_data_digest=00\n");
  InitData init;
  init.secrets = {{"default/db/password", "/run/secrets/db", ""},
                  {"default/api/token", "", "API_TOKEN"}};
  std::vector<std::string> asked;
  bool attested = false;
  auto secrets = fetch_secrets(
      init, kInitData, *provider,
      [&](const std::string& resource) -> Result<Bytes> {
        asked.push_back(resource);
        if (resource == "default/api/token") return Bytes{'t', 'o', 'k', 0, 'x'};
        return Bytes{'p', 'w'};
      },
      [&] { attested = true; });
  ASSERT_TRUE(secrets.ok()) << secrets.error().describe();
  EXPECT_FALSE(attested) << "a secret source stands in for the KBS: no attestation";
  EXPECT_EQ(asked, (std::vector<std::string>{"default/db/password", "default/api/token"}));
  ASSERT_EQ(secrets->files.size(), 1u);
  EXPECT_EQ(secrets->files[0].path, "/run/secrets/db");
  // An environment value is cut at its first NUL.
  EXPECT_EQ(secrets->env, (std::vector<std::string>{"API_TOKEN=tok"}));
  secrets->clear();
  EXPECT_TRUE(secrets->env.empty());
  EXPECT_TRUE(secrets->files.empty());
}

TEST(FetchSecrets, ErrorsNameTheResourceAndAKbsIsNeeded) {
  testing::TempDir root;
  auto provider = sample_provider(root, "confpod.init_data_digest=00\n");
  InitData init;
  init.secrets = {{"default/db/password", "/run/secrets/db", ""}};
  auto failed = fetch_secrets(
      init, kInitData, *provider,
      [](const std::string&) -> Result<Bytes> { return make_error("kbs.policy", "denied"); },
      nullptr);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, "agent.kbs");
  EXPECT_NE(failed.error().message.find("default/db/password"), std::string::npos);
  auto no_kbs = fetch_secrets(init, kInitData, *provider, nullptr, nullptr);
  ASSERT_FALSE(no_kbs.ok());
  EXPECT_NE(no_kbs.error().message.find("no kbs_url"), std::string::npos);
  // No secrets: nothing is asked of anyone.
  auto none = fetch_secrets(InitData{}, kInitData, *provider, nullptr, nullptr);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->files.empty());
}

TEST(UnpackContainerImage, RefusesAnUnpinnedArchiveAndAUsedDirectory) {
  testing::TempDir state;
  testing::TempDir disks;
  const std::string disk = disks.path() + "/img0";
  std::ofstream(disk) << "not an OCI archive";
  InitContainer c;
  c.name = "web";
  c.image.digest = "sha256:" + std::string(64, 'a');
  c.image.disk = "img0";
  auto bad = unpack_container_image(c, disk, state.path(), false, InitData{});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "agent.image");
  EXPECT_NE(bad.error().message.find("container web"), std::string::npos);
  EXPECT_NE(bad.error().message.find("disk img0"), std::string::npos);
  EXPECT_EQ(container_rootfs(state.path(), "web"), state.path() + "/containers/web/rootfs");
  // The rootfs must be a new empty directory: nothing the host left there is reused.
  std::ofstream(container_rootfs(state.path(), "web") + "/planted") << "x";
  auto used = unpack_container_image(c, disk, state.path(), false, InitData{});
  ASSERT_FALSE(used.ok());
  EXPECT_NE(used.error().message.find("not a new empty directory"), std::string::npos);
}

TEST(FindDiskBySerial, MatchesTheVirtioSerial) {
  testing::TempDir tmp;
  for (auto [dev, serial] :
       {std::pair{"vda", "other\n"}, std::pair{"vdb", "img0\n"}, std::pair{"sda", "img0\n"}}) {
    fs::create_directories(tmp.path() + "/sys/block/" + dev);
    std::ofstream(tmp.path() + "/sys/block/" + dev + "/serial") << serial;
  }
  auto found = find_disk_by_serial(tmp.path(), "img0");
  ASSERT_TRUE(found.ok()) << found.error().describe();
  EXPECT_EQ(*found, tmp.path() + "/dev/vdb");
  auto missing = find_disk_by_serial(tmp.path(), "img1");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "agent.image");
}

}  // namespace
}  // namespace confpod::guest::agent
