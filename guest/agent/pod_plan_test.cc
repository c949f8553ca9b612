#include "guest/agent/pod_plan.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace confpod::guest::agent {
namespace {

oci::ImageConfig image() {
  oci::ImageConfig c;
  c.entrypoint = {"/bin/server"};
  c.cmd = {"--port", "80"};
  c.env = {"PATH=/opt/bin", "MODE=image"};
  c.working_dir = "/srv";
  c.user = "1000:1000";
  return c;
}

InitContainer container() {
  InitContainer c;
  c.name = "web";
  return c;
}

TEST(PlanContainer, TheImageConfigFillsWhatInitDataLeavesOpen) {
  auto plan = plan_container(container(), image(), {});
  ASSERT_TRUE(plan.ok()) << plan.error().describe();
  EXPECT_EQ(plan->name, "web");
  EXPECT_EQ(plan->argv, (std::vector<std::string>{"/bin/server", "--port", "80"}));
  EXPECT_EQ(plan->env, (std::vector<std::string>{"PATH=/opt/bin", "MODE=image"}));
  EXPECT_EQ(plan->workdir, "/srv");
  EXPECT_EQ(plan->user, "1000:1000");
  EXPECT_TRUE(plan->seccomp);
  EXPECT_TRUE(plan->capabilities.empty());
}

TEST(PlanContainer, InitDataOverridesTheImage) {
  InitContainer c = container();
  c.command = {"/bin/sh", "-c", "echo hi"};
  c.env = {{"MODE", "pod"}, {"EXTRA", "1"}};
  c.workdir = "/data";
  c.user = "0";
  c.capabilities = {"CAP_NET_BIND_SERVICE", "CAP_CHOWN"};
  c.seccomp = "unconfined";
  c.cpu_millis = 500;
  c.memory_mib = 64;
  c.init = true;
  c.read_only_rootfs = true;
  c.tmpfs = {"/tmp"};
  auto plan = plan_container(c, image(), {"DB_PASSWORD=s3cret"});
  ASSERT_TRUE(plan.ok()) << plan.error().describe();
  EXPECT_EQ(plan->argv, c.command);
  EXPECT_EQ(plan->env, (std::vector<std::string>{"PATH=/opt/bin", "MODE=pod", "EXTRA=1",
                                                 "DB_PASSWORD=s3cret"}));
  EXPECT_EQ(plan->workdir, "/data");
  EXPECT_EQ(plan->user, "0");
  EXPECT_EQ(plan->capabilities, (std::vector<int>{10, 0}));  // CAP_NET_BIND_SERVICE, CAP_CHOWN
  EXPECT_FALSE(plan->seccomp);
  EXPECT_EQ(plan->cpu_millis, 500u);
  EXPECT_EQ(plan->memory_mib, 64u);
  EXPECT_TRUE(plan->init);
  EXPECT_TRUE(plan->read_only_rootfs);
  EXPECT_EQ(plan->tmpfs, c.tmpfs);
}

TEST(PlanContainer, DefaultsWhenNeitherSaysAndNoCommandIsAnError) {
  oci::ImageConfig bare;
  bare.cmd = {"/bin/true"};
  auto plan = plan_container(container(), bare, {});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->workdir, "/");
  EXPECT_EQ(plan->user, "");
  ASSERT_EQ(plan->env.size(), 1u);
  EXPECT_EQ(plan->env[0].rfind("PATH=/usr/local/sbin:", 0), 0u) << plan->env[0];
  auto none = plan_container(container(), oci::ImageConfig{}, {});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "agent.image");
  EXPECT_NE(none.error().message.find("container web"), std::string::npos);
}

TEST(MergedEnv, ReplacesEveryEntryOfAKeyAndMatchesWholeKeys) {
  auto env = merged_env({"A=1", "AB=2", "A=3", "PATH=/x"}, {{"A", "9"}});
  EXPECT_EQ(env, (std::vector<std::string>{"A=9", "AB=2", "A=9", "PATH=/x"}));
  auto with_path = merged_env({}, {{"PATH", "/mine"}});
  EXPECT_EQ(with_path, (std::vector<std::string>{"PATH=/mine"}));
}

TEST(SafeContainerName, OneDirectoryComponentOnly) {
  EXPECT_TRUE(safe_container_name("web"));
  EXPECT_TRUE(safe_container_name("web.1"));
  for (const std::string& bad :
       std::vector<std::string>{"", ".", "..", "a/b", "/", std::string("a\0b", 3)})
    EXPECT_FALSE(safe_container_name(bad)) << bad;
}

}  // namespace
}  // namespace confpod::guest::agent
