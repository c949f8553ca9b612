// The launch plan: the same VM for create, start and the KBS, and errors that name the pod.
#include "daemon/pods/launch_plan.h"

#include <gtest/gtest.h>

#include <string>

#include "attest/base/bytes.h"
#include "attest/crypto/crypto.h"
#include "daemon/spec/init_data.h"
#include "vmm/libvirt_xml.h"
#include "vmm/qemu_argv.h"

namespace confpod::pods {
namespace {

spec::PodSpec parse(const std::string& tee) {
  auto parsed = spec::parse_pod_spec(
      "name = \"web\"\ntee = \"" + tee +
      "\"\n[[containers]]\nname = \"app\"\nimage = \"oci-archive:/i.tar@sha256:"
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"\n");
  EXPECT_TRUE(parsed.ok()) << parsed.error().describe();
  return std::move(parsed).value();
}

spec::HostDefaults host() {
  spec::HostDefaults h;
  h.runtime_dir = "/run/confpod-test";
  h.kernel = "/boot/vmlinuz-test";
  h.initrd = "/boot/initrd-test";
  h.accel = "tcg";
  h.allow_insecure_tee = true;
  return h;
}

TEST(LaunchPlan, TeeNoneIsTheSpecsVmItsArgvAndNoMeasurement) {
  Measurer measurer(0x00a00f11);
  const spec::PodSpec spec = parse("none");
  auto plan = plan_launch(spec, host(), measurer);
  ASSERT_TRUE(plan.ok()) << plan.error().describe();
  auto vm = spec::vm_config_from_spec(spec, host());
  ASSERT_TRUE(vm.ok());
  auto argv = vmm::qemu_argv(*vm);
  ASSERT_TRUE(argv.ok());
  EXPECT_EQ(plan->argv, *argv);
  EXPECT_EQ(plan->vm.qmp_socket, "/run/confpod-test/pods/web/qmp.sock");
  EXPECT_EQ(plan->measurement, "");
}

TEST(LaunchPlan, AHostThatCannotRunTheSpecIsASpecError) {
  Measurer measurer(0x00a00f11);
  spec::HostDefaults h = host();
  h.runtime_dir = "relative/dir";
  auto plan = plan_launch(parse("none"), h, measurer);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().code, "spec.host");
}

TEST(LaunchPlan, AnUnmeasurableLaunchNamesThePodAndWhat) {
  Measurer measurer(0x00a00f11);
  spec::HostDefaults h = host();
  h.accel = "kvm";
  h.firmware_snp = "/nonexistent/AMDSEV.fd";
  auto plan = plan_launch(parse("snp"), h, measurer);
  ASSERT_FALSE(plan.ok());
  EXPECT_TRUE(plan.error().code.starts_with("measure.")) << plan.error().describe();
  EXPECT_NE(plan.error().message.find("pod web: cannot compute the expected SEV-SNP launch digest"),
            std::string::npos)
      << plan.error().message;
}

// On the libvirt backend the domain is made from the plan's VmConfig: every input of the SEV-SNP
// launch digest (firmware, kernel, initrd, command line, vCPUs and their model, policy, the
// init-data digest as HOST_DATA, kernel hashes on) is in the XML libvirt launches.
TEST(LaunchPlan, TheLibvirtDomainCarriesEveryMeasuredInput) {
  spec::HostDefaults h = host();
  h.accel = "kvm";
  h.allow_insecure_tee = false;
  h.cpu_model = "EPYC-v4";
  h.firmware_snp = "/usr/share/ovmf/AMDSEV.fd";
  h.kernel_cmdline = "console=ttyS0 quiet";
  h.snp_policy = 0x30000;
  const spec::PodSpec spec = parse("snp");
  auto vm = plan_vm(spec, h);
  ASSERT_TRUE(vm.ok()) << vm.error().describe();
  auto xml = vmm::libvirt_domain_xml(*vm);
  ASSERT_TRUE(xml.ok()) << xml.error().describe();
  const std::string host_data = to_base64(crypto::sha256(as_bytes(spec::init_data_text(spec, h))));
  for (const std::string& expected :
       {std::string("<loader type='rom' readonly='yes'>/usr/share/ovmf/AMDSEV.fd</loader>"),
        std::string("<kernel>/boot/vmlinuz-test</kernel>"),
        std::string("<initrd>/boot/initrd-test</initrd>"),
        "<cmdline>" + vm->kernel_cmdline + "</cmdline>",
        std::string("<vcpu placement='static'>1</vcpu>"), std::string("<model>EPYC-v4</model>"),
        std::string("<launchSecurity type='sev-snp' kernelHashes='yes'>"),
        std::string("<policy>0x30000</policy>"), "<hostData>" + host_data + "</hostData>"})
    EXPECT_NE(xml->find(expected), std::string::npos) << expected << "\n" << *xml;
}

}  // namespace
}  // namespace confpod::pods
