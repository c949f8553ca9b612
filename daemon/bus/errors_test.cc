#include "daemon/bus/errors.h"

#include <gtest/gtest.h>

namespace confpod::bus {
namespace {

TEST(BusErrors, EveryCodeMapsToItsName) {
  struct Case {
    const char* code;
    const char* name;
  } cases[] = {
      {"pods.not_found", kErrorNoSuchPod},
      {"store.not_found", kErrorNoSuchPod},
      {"pods.exists", kErrorPodExists},
      {"store.exists", kErrorPodExists},
      {"spec.invalid", kErrorInvalidSpec},
      {"vmm.tee_unavailable", kErrorTeeUnavailable},
      {"spec.tee", kErrorTeeUnavailable},
      {"measure.input", kErrorTeeUnavailable},
      {"measure.ovmf", kErrorTeeUnavailable},
      {"measure.ovmf.kernel_hashes", kErrorTeeUnavailable},
      {"measure.tdvf", kErrorTeeUnavailable},
      {"measure.params", kErrorTeeUnavailable},
      {"measure.cache", kErrorTeeUnavailable},
      {"measurement", kErrorFailed},
      {"pods.invalid_state", kErrorInvalidState},
      {"pods.busy", kErrorLimitsExceeded},
      {"kbs.resource.path", kErrorInvalidResource},
      {"kbs.resource.size", kErrorInvalidResource},
      {"kbs.resource.not_found", kErrorNoSuchResource},
      {"collateral.untrusted", kErrorInvalidCollateral},
      {"collateral.issuer_missing", kErrorInvalidCollateral},
      {"collateral.not_found", kErrorNoSuchCollateral},
      {"kbs.reference_values", kErrorInvalidArgs},
      {"kbs.store", kErrorFailed},
      {"bus.access_denied", kErrorAccessDenied},
      {"store.io", kErrorFailed},
      {"vmm.supervisor.early_exit", kErrorFailed},
  };
  for (const auto& c : cases) {
    BusError e = to_bus_error(make_error(c.code, "msg"));
    EXPECT_EQ(e.name, c.name) << c.code;
  }
}

TEST(BusErrors, SpecMessageIsTheParserText) {
  BusError e = to_bus_error(make_error("spec.invalid", "line 3: vm.vcpus: must be 1..256"));
  EXPECT_EQ(e.message, "line 3: vm.vcpus: must be 1..256");
}

TEST(BusErrors, MeasurementFailureIsTeeUnavailableWithItsCode) {
  BusError e = to_bus_error(make_error(
      "measure.input",
      "pod web: cannot compute the expected SEV-SNP launch digest: firmware: cannot stat "
      "/usr/share/ovmf/AMDSEV.fd: No such file or directory"));
  EXPECT_EQ(e.name, kErrorTeeUnavailable);
  EXPECT_EQ(e.message,
            "measure.input: pod web: cannot compute the expected SEV-SNP launch digest: "
            "firmware: cannot stat /usr/share/ovmf/AMDSEV.fd: No such file or directory");
}

TEST(BusErrors, GenericFailureKeepsTheCode) {
  BusError e = to_bus_error(make_error("store.io", "disk full"));
  EXPECT_EQ(e.message, "store.io: disk full");
}

TEST(BusErrors, SetBusErrorFillsNameAndReturnsNegative) {
  sd_bus_error error = SD_BUS_ERROR_NULL;
  int r = set_bus_error(&error, make_error("pods.not_found", "no pod named \"x\""));
  EXPECT_LT(r, 0);
  EXPECT_STREQ(error.name, kErrorNoSuchPod);
  EXPECT_STREQ(error.message, "no pod named \"x\"");
  sd_bus_error_free(&error);
}

}  // namespace
}  // namespace confpod::bus
