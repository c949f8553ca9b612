#include "vmm/config.h"

namespace confpod::vmm {

std::string to_string(Tee tee) {
  switch (tee) {
    case Tee::kNone:
      return "none";
    case Tee::kSnp:
      return "snp";
    case Tee::kTdx:
      return "tdx";
  }
  return "unknown";
}

}  // namespace confpod::vmm
