// The checks an exec or attach request passes before anything reaches the pod's agent: the
// container it names against the pod's spec, and the command against the bounds the guest's
// parser enforces (so a refusal names the caller's mistake here, not in the guest).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "attest/base/result.h"
#include "daemon/spec/spec.h"
#include "daemon/store/store.h"

namespace confpod::pods {

// The container `container` names in the pod: itself when the spec has it; "" picks the
// first non-init container (exec), or stays "" meaning all containers when `empty_is_all`
// (attach). Errors "pods.invalid_state" (the stored spec no longer parses),
// "pods.no_container" (quoting the name, sanitized and cut to 64 bytes).
Result<std::string> resolve_container(const store::PodRecord& record,
                                      const std::optional<spec::PodSpec>& spec,
                                      const std::string& container, bool empty_is_all);

// Error "pods.invalid_exec" for an empty command, more than guest::kMaxInitArgs arguments, an
// argument over guest::kMaxInitStringBytes or one holding NUL.
Status check_exec_command(const std::vector<std::string>& command);

}  // namespace confpod::pods
