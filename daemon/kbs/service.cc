#include "daemon/kbs/service.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "attest/crypto/crypto.h"
#include "daemon/pods/log.h"
#include "daemon/spec/init_data.h"
#include "daemon/spec/spec.h"

namespace confpod::kbs_http {
namespace {

Error key_error(const std::string& message) { return make_error("kbs.signing_key", message); }

Status write_file_0600(const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return key_error("cannot create " + tmp + ": " + std::strerror(errno));
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return key_error("cannot write " + tmp + ": " + std::strerror(e));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return key_error("cannot write " + tmp + ": " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return key_error("cannot rename " + tmp + ": " + std::strerror(e));
  }
  return ok_status();
}

}  // namespace

Result<kbs::TokenKey> load_or_create_signing_key(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if ((st.st_mode & 077) != 0) {
      // A key others can read is not ours alone any more; tighten and carry on loudly.
      pods::log_warning("KBS signing key was readable by others; setting mode 0600",
                        {{"path", path}});
      if (::chmod(path.c_str(), 0600) != 0)
        return key_error("cannot chmod " + path + ": " + std::strerror(errno));
    }
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) return key_error("cannot read " + path);
    auto key = kbs::TokenKey::from_pem(text.str());
    if (!key.ok()) return key_error(path + ": " + key.error().message);
    return key;
  }
  if (errno != ENOENT) return key_error("cannot stat " + path + ": " + std::strerror(errno));
  CONFPOD_ASSIGN_OR_RETURN(kbs::TokenKey key, kbs::TokenKey::generate());
  CONFPOD_TRY(write_file_0600(path, key.private_pem()));
  pods::log_info("KBS signing key created", {{"path", path}, {"kid", key.kid()}});
  return key;
}

Result<kbs::ReferenceValues> pod_reference_values(const pods::Manager& pods, std::string_view name,
                                                  bool allow_insecure) {
  const store::PodRecord* record = pods.find(name);
  if (record == nullptr) return pods::not_found(name);
  CONFPOD_ASSIGN_OR_RETURN(spec::PodSpec spec, spec::parse_pod_spec(record->spec_toml));
  kbs::ReferenceValues v;
  v.pod = spec.name;
  for (const auto& secret : spec.secrets) v.resources.push_back(secret.resource);
  if (spec.tee == vmm::Tee::kNone) {
    if (!allow_insecure)
      return make_error("pods.invalid_state", "tee none has no evidence to check");
    // No hardware binds anything; the KBS checks the init-data body the sample evidence
    // carries against the pod's own document (docs/init-data.md).
    v.tee = "sample";
    CONFPOD_ASSIGN_OR_RETURN(std::string init_data, pods.init_data(name));
    v.init_data_digest = crypto::sha256(as_bytes(init_data));
    return v;
  }
  CONFPOD_ASSIGN_OR_RETURN(pods::ReferenceValues ref, pods.reference_values(name));
  v.tee = ref.tee == vmm::Tee::kSnp ? "snp" : "tdx";
  CONFPOD_ASSIGN_OR_RETURN(Bytes measurement, from_hex(ref.measurement));
  CONFPOD_ASSIGN_OR_RETURN(v.init_data_digest, from_hex(ref.init_data_digest));
  v.measurements.push_back(std::move(measurement));
  return v;
}

void PodSync::sync(std::string_view name) {
  auto values = pod_reference_values(pods_, name, allow_insecure_);
  if (!values.ok()) {
    kbs_.remove_reference_values(name);
    return;
  }
  Status set = kbs_.set_reference_values(std::move(*values));
  if (!set.ok()) {
    kbs_.remove_reference_values(name);
    pods::log_warning("KBS refused a pod's reference values",
                      {{"pod", name}, {"error", set.error().describe()}});
  }
}

void PodSync::sync_all() {
  for (const store::PodRecord* pod : pods_.list()) sync(pod->name);
}

ServerOptions server_options(const config::KbsConfig& config) {
  ServerOptions o;
  o.listen = config.listen;
  o.tls_cert = config.tls_cert;
  o.tls_key = config.tls_key;
  o.allow_plain_http = config.allow_plain_http;
  return o;
}

}  // namespace confpod::kbs_http
