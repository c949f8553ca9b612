// The guest image confpodd builds when confpod.toml names none: the real builder
// (guest/image/build-initramfs) with the real agent, and its failures.
#include "daemon/pods/guest_image.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/process.h"

namespace confpod::pods {
namespace {

TEST(GuestImage, BuildsTheImageAndFindsItAgainInItsCache) {
  testing::TempDir dir;
  GuestImageBuild build;
  build.builder = CONFPOD_BUILD_INITRAMFS;
  build.agent = CONFPOD_AGENT_BINARY;
  build.out_dir = dir.path() + "/guest";
  auto first = build_guest_image(build);
  ASSERT_TRUE(first.ok()) << first.error().describe();
  EXPECT_TRUE(std::filesystem::is_regular_file(first->initrd)) << first->initrd;
  EXPECT_EQ(first->initrd.rfind(build.out_dir + "/", 0), 0u) << first->initrd;
  EXPECT_TRUE(std::filesystem::exists(first->kernel)) << first->kernel;
  auto built_at = std::filesystem::last_write_time(first->initrd);
  // Same inputs: the same file, not rebuilt.
  auto second = build_guest_image(build);
  ASSERT_TRUE(second.ok()) << second.error().describe();
  EXPECT_EQ(second->initrd, first->initrd);
  EXPECT_EQ(std::filesystem::last_write_time(second->initrd), built_at);
}

TEST(GuestImage, FailuresNameTheProblem) {
  testing::TempDir dir;
  GuestImageBuild build;
  build.builder = dir.path() + "/no-such-builder";
  build.agent = CONFPOD_AGENT_BINARY;
  build.out_dir = dir.path() + "/guest";
  auto missing = build_guest_image(build);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "guest.image");
  EXPECT_NE(missing.error().message.find("no-such-builder is not executable"), std::string::npos)
      << missing.error().message;

  // The builder runs and fails: its own words come back.
  build.builder = CONFPOD_BUILD_INITRAMFS;
  build.agent = dir.write("not-an-agent", "plain text");
  auto failed = build_guest_image(build);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, "guest.image");
  EXPECT_NE(failed.error().message.find("failed (status 1)"), std::string::npos)
      << failed.error().message;
  EXPECT_NE(failed.error().message.find("not-an-agent is not an executable file"),
            std::string::npos)
      << failed.error().message;
}

}  // namespace
}  // namespace confpod::pods
