#include "daemon/ctl/secrets.h"

#include <openssl/crypto.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "attest/base/bytes.h"
#include "daemon/ctl/client.h"
#include "daemon/ctl/format.h"
#include "daemon/ctl/verify.h"

namespace confpod::ctl {
namespace {

// The daemon's limit (kbs::kMaxResourceSize); checked here too so a large file fails early.
constexpr std::size_t kMaxSecretSize = 1u << 20;

Result<Bytes> read_stdin(std::size_t max_bytes) {
  Bytes out;
  std::uint8_t buffer[65536];
  while (true) {
    const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error("file.read", std::string("stdin: ") + std::strerror(errno));
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
      OPENSSL_cleanse(out.data(), out.size());
      return make_error("file.read", "stdin: larger than " + std::to_string(max_bytes) + " bytes");
    }
    out.insert(out.end(), buffer, buffer + n);
  }
  OPENSSL_cleanse(buffer, sizeof buffer);
  return out;
}

}  // namespace

int secret_put(const BusArgs& bus, const std::string& path, const std::string& file,
               std::ostream& out, std::ostream& err) {
  auto value = file == "-" ? read_stdin(kMaxSecretSize) : read_file(file, kMaxSecretSize);
  if (!value.ok()) {
    fail(value.error(), err);
    return kExitUsage;
  }
  auto client = connect(bus);
  Status done = client.ok() ? client->set_resource(path, *value) : Status(client.error());
  OPENSSL_cleanse(value->data(), value->size());
  if (!done.ok()) return fail(done.error(), err);
  out << path << "\n";
  return kExitOk;
}

int secret_remove(const BusArgs& bus, const std::string& path, std::ostream& out,
                  std::ostream& err) {
  auto client = connect(bus);
  if (!client.ok()) return fail(client.error(), err);
  Status done = client->delete_resource(path);
  if (!done.ok()) return fail(done.error(), err);
  out << path << "\n";
  return kExitOk;
}

int secret_list(const BusArgs& bus, std::ostream& out, std::ostream& err) {
  auto client = connect(bus);
  if (!client.ok()) return fail(client.error(), err);
  auto paths = client->list_resources();
  if (!paths.ok()) return fail(paths.error(), err);
  for (const std::string& p : *paths) out << p << "\n";
  return kExitOk;
}

}  // namespace confpod::ctl
