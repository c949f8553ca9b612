#include "guest/agent/pod_setup.h"

#include <string.h>
#include <sys/mount.h>

#include <cerrno>
#include <filesystem>
#include <memory>

#include "attest/crypto/crypto.h"
#include "guest/agent/log.h"
#include "guest/agent/network.h"
#include "guest/kbs_client/kbs_client.h"

namespace confpod::guest::agent {
namespace {

namespace fs = std::filesystem;

std::string under_root(const std::string& root, const std::string& path) {
  if (root.empty() || root == "/") return path;
  return (root.back() == '/' ? root.substr(0, root.size() - 1) : root) + path;
}

}  // namespace

Status verify_init_data_digest(EvidenceProvider& provider, std::string_view raw_init_data) {
  const bool tdx = provider.tee() == "tdx";
  Bytes got =
      crypto::digest(tdx ? crypto::Hash::kSha384 : crypto::Hash::kSha256, as_bytes(raw_init_data));
  auto bound = provider.init_data_digest();
  if (!bound.ok()) return make_error("agent.evidence", bound.error().describe());
  if (*bound != got)
    return make_error("agent.init_data.mismatch",
                      std::string("init-data ") + (tdx ? "SHA-384 " : "SHA-256 ") + to_hex(got) +
                          " differs from the digest bound at launch " + to_hex(*bound));
  return ok_status();
}

void PodSecrets::clear() {
  for (auto& entry : env) ::explicit_bzero(entry.data(), entry.size());
  env.clear();
  files.clear();
}

Result<PodSecrets> fetch_secrets(const InitData& init, const std::string& raw_init_data,
                                 EvidenceProvider& provider, const SecretSource& source,
                                 const std::function<void()>& on_attested) {
  PodSecrets out;
  if (init.secrets.empty()) return out;
  std::unique_ptr<KbsClient> client;
  if (!source) {
    if (init.kbs_url.empty())
      return make_error("agent.kbs", "init-data has secrets but no kbs_url");
    KbsClientOptions options;
    options.url = init.kbs_url;
    client = std::make_unique<KbsClient>(options, provider);
    if (auto s = client->attest(raw_init_data); !s.ok())
      return make_error("agent.kbs", "attest: " + s.error().describe());
    if (on_attested) on_attested();
  }
  for (const auto& secret : init.secrets) {
    auto bytes = client ? client->get_resource(secret.resource) : source(secret.resource);
    if (!bytes.ok())
      return make_error("agent.kbs",
                        "resource " + secret.resource + ": " + bytes.error().describe());
    // Names only: the console is the host's to read, so neither a secret's value nor its
    // length reaches a log or the channel.
    if (!secret.env.empty()) {
      log("secret " + secret.resource + " for $" + secret.env);
      // An environment variable cannot hold NUL: the value is cut there (docs/containers.md).
      std::string value(bytes->begin(), bytes->end());
      value.resize(std::min(value.size(), value.find('\0')));
      out.env.push_back(secret.env + "=" + value);
      ::explicit_bzero(value.data(), value.size());
      ::explicit_bzero(bytes->data(), bytes->size());
      continue;
    }
    log("secret " + secret.resource + " for " + secret.path);
    out.files.push_back({secret.path, SecretBytes(std::move(*bytes))});
  }
  return out;
}

std::string container_rootfs(const std::string& state_dir, const std::string& name) {
  return (fs::path(state_dir) / "containers" / name / "rootfs").string();
}

Result<oci::ImageConfig> unpack_container_image(const InitContainer& c, const std::string& disk,
                                                const std::string& state_dir, bool mount_tmpfs,
                                                const InitData& init) {
  fs::path rootfs = container_rootfs(state_dir, c.name);
  fs::path dir = rootfs.parent_path();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error("agent.image", "mkdir " + dir.string() + ": " + ec.message());
  if (mount_tmpfs && ::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") != 0)
    return make_error("agent.image", "mount tmpfs " + dir.string() + ": " + ::strerror(errno));
  fs::create_directory(rootfs, ec);
  if (ec || !fs::is_empty(rootfs, ec))
    return make_error("agent.image", rootfs.string() + " is not a new empty directory");
  auto config = oci::verify_and_unpack(disk, c.image.digest, rootfs.string());
  if (!config.ok())
    return make_error("agent.image", "container " + c.name + " (" + c.image.digest + " on disk " +
                                         c.image.disk + "): " + config.error().describe());
  // The pod's names and resolvers, as init-data (attested) says, not as the image has.
  if (Status named = write_name_files(rootfs.string(), init.network, init.pod); !named.ok())
    return make_error("agent.image", "container " + c.name + ": " + named.error().message);
  return std::move(config).value();
}

Result<std::string> find_disk_by_serial(const std::string& root, const std::string& serial) {
  std::string sys_block = under_root(root, "/sys/block");
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(sys_block, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("vd", 0) != 0) continue;
    auto text = read_text_file((entry.path() / "serial").string(), 256);
    if (!text.ok()) continue;
    std::string value = *text;
    while (!value.empty() && (value.back() == '\n' || value.back() == ' ' || value.back() == '\0'))
      value.pop_back();
    if (value == serial) return under_root(root, "/dev/" + name);
  }
  return make_error("agent.image",
                    "no virtio disk with serial \"" + printable(serial) + "\" in " + sys_block);
}

}  // namespace confpod::guest::agent
