// The tee-none accelerator check with the real guest image and the real QEMU: the tiny boot
// (kernel to its first process and back off) works under TCG here, a missing KVM or kernel is
// a named failure, a slow guest is a timeout, and the verdict is cached by its inputs. Host-
// independent: on a machine with working KVM the verdict is kvm, without it tcg, and either
// way it is what boot_check() under KVM says.
#include "vmm/accel_check.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/bus.h"
#include "tests/support/process.h"

namespace confpod::vmm {
namespace {

BootCheckOptions options_for(const testing::GuestImage& image) {
  BootCheckOptions o;
  o.kernel = image.kernel;
  o.initrd = image.initrd;
  o.timeout = std::chrono::seconds(60);  // TCG on a loaded CI machine
  return o;
}

TEST(AccelCheck, TheTestGuestBootsToItsFirstProcessAndPowersOffUnderTcg) {
  testing::GuestImage image = testing::guest_image();
  BootCheckOptions o = options_for(image);
  o.accel = "tcg";
  auto took = boot_check(o);
  ASSERT_TRUE(took.ok()) << took.error().describe();
  EXPECT_GT(took->count(), 0);
}

TEST(AccelCheck, FailuresSayWhatHappened) {
  testing::GuestImage image = testing::guest_image();
  BootCheckOptions o = options_for(image);
  o.accel = "tcg";
  o.kernel = "/nonexistent/vmlinuz";
  auto no_kernel = boot_check(o);
  ASSERT_FALSE(no_kernel.ok());
  EXPECT_EQ(no_kernel.error().code, "vmm.boot_check");
  EXPECT_NE(no_kernel.error().message.find("did not start"), std::string::npos)
      << no_kernel.error().message;

  o = options_for(image);
  o.accel = "tcg";
  o.timeout = std::chrono::milliseconds(200);  // TCG needs seconds to boot a kernel
  auto slow = boot_check(o);
  ASSERT_FALSE(slow.ok());
  EXPECT_NE(slow.error().message.find("had not powered off after 200 ms"), std::string::npos)
      << slow.error().message;

  if (::access("/dev/kvm", F_OK) != 0) {
    o = options_for(image);
    auto kvm = boot_check(o);
    ASSERT_FALSE(kvm.ok());
    EXPECT_NE(kvm.error().message.find("-accel kvm"), std::string::npos) << kvm.error().message;
  }
}

TEST(AccelCheck, TheVerdictFollowsWhatKvmReallyDoes) {
  testing::GuestImage image = testing::guest_image();
  ProbeOptions probe_options;
  probe_options.run_qemu = false;
  HostProbe probe = probe_host(probe_options);
  AccelChoice choice = choose_tee_none_accel(probe, options_for(image));
  if (!probe.dev_kvm) {
    EXPECT_EQ(choice, (AccelChoice{"tcg", "no /dev/kvm on this host"}));
    return;
  }
  BootCheckOptions kvm = options_for(image);
  kvm.accel = "kvm";
  const bool boots = boot_check(kvm).ok();
  EXPECT_EQ(choice.accel, boots ? "kvm" : "tcg") << choice.reason;
  EXPECT_NE(choice.reason.find(boots ? "booted and powered off under KVM" : "KVM did not run"),
            std::string::npos)
      << choice.reason;
}

TEST(AccelCheck, TheVerdictIsCachedForTheSameInputs) {
  testing::GuestImage image = testing::guest_image();
  testing::TempDir dir;
  const std::string cache = dir.path() + "/accel.json";
  HostProbe no_kvm;
  no_kvm.dev_kvm = false;
  BootCheckOptions o = options_for(image);
  EXPECT_EQ(cached_tee_none_accel(no_kvm, o, cache).accel, "tcg");
  // Same inputs: the file answers (made to say kvm here to tell it from a fresh check).
  auto j = nlohmann::json::parse(testing::read_text_file(cache));
  j["accel"] = "kvm";
  j["reason"] = "from the cache";
  std::ofstream(cache, std::ios::trunc) << j.dump();
  EXPECT_EQ(cached_tee_none_accel(no_kvm, o, cache), (AccelChoice{"kvm", "from the cache"}));
  // Another CPU model: checked again.
  o.cpu_model = "EPYC-v4";
  EXPECT_EQ(cached_tee_none_accel(no_kvm, o, cache).accel, "tcg");
  // A broken cache file is ignored.
  std::ofstream(cache, std::ios::trunc) << "{not json";
  EXPECT_EQ(cached_tee_none_accel(no_kvm, o, cache).accel, "tcg");
}

}  // namespace
}  // namespace confpod::vmm
