#include "daemon/ctl/collateral.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "attest/base/bytes.h"
#include "attest/collateral/collateral.h"
#include "daemon/ctl/client.h"
#include "daemon/ctl/verify.h"

namespace confpod::ctl {
namespace {

// Files named on the command line, directories expanded to their regular files (sorted).
Result<std::vector<std::string>> expand(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      std::vector<std::string> in_dir;
      for (const auto& entry : std::filesystem::directory_iterator(path, ec))
        if (entry.is_regular_file(ec)) in_dir.push_back(entry.path().string());
      if (ec) return make_error("file.read", path + ": " + ec.message());
      std::sort(in_dir.begin(), in_dir.end());
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else {
      files.push_back(path);
    }
  }
  return files;
}

}  // namespace

std::string expiry_text(UnixSeconds not_after, UnixSeconds now, int warn_days) {
  std::string out = format_rfc3339(not_after).substr(0, 10);
  if (not_after < now) return out + " (EXPIRED)";
  const auto days = (not_after - now) / 86400;
  if (days <= warn_days) out += " (in " + std::to_string(days) + (days == 1 ? " day)" : " days)");
  return out;
}

int collateral_import(const BusArgs& bus, const std::vector<std::string>& paths, std::ostream& out,
                      std::ostream& err) {
  auto files = expand(paths);
  if (!files.ok()) {
    fail(files.error(), err);
    return kExitUsage;
  }
  struct Pending {
    std::string path;
    Bytes data;
  };
  std::vector<Pending> pending;
  for (const std::string& f : *files) {
    auto data = read_file(f, collateral::kMaxFileSize);
    if (!data.ok()) {
      fail(data.error(), err);
      return kExitUsage;
    }
    pending.push_back({f, std::move(*data)});
  }
  auto client = connect(bus);
  if (!client.ok()) return fail(client.error(), err);
  // A file whose issuer another file brings is imported once that one is in: passes repeat
  // while any file got in.
  std::vector<std::pair<std::string, Error>> failed;
  while (!pending.empty()) {
    std::vector<Pending> again;
    failed.clear();
    for (Pending& p : pending) {
      const std::string name = std::filesystem::path(p.path).filename().string();
      auto rows = client->import_collateral(name, p.data);
      if (!rows.ok()) {
        failed.emplace_back(p.path, rows.error());
        again.push_back(std::move(p));
        continue;
      }
      for (const auto& row : *rows)
        out << row.status << "  " << row.id << "  " << row.kind << "  " << row.subject << "\n";
    }
    if (again.size() == pending.size()) break;  // no progress
    pending = std::move(again);
  }
  for (const auto& [path, error] : failed) fail(error, err);
  return failed.empty() ? kExitOk : kExitRejected;
}

int collateral_list(const BusArgs& bus, UnixSeconds now, std::ostream& out, std::ostream& err) {
  auto client = connect(bus);
  if (!client.ok()) return fail(client.error(), err);
  auto rows = client->list_collateral();
  if (!rows.ok()) return fail(rows.error(), err);
  out << "ID                KIND             EXPIRES                  SUBJECT\n";
  for (const auto& row : *rows) {
    std::string kind = row.kind;
    kind.resize(std::max<std::size_t>(kind.size(), 16), ' ');
    std::string expires = expiry_text(row.not_after, now);
    expires.resize(std::max<std::size_t>(expires.size(), 24), ' ');
    out << row.id << "  " << kind << " " << expires << " " << row.subject << "\n";
  }
  return kExitOk;
}

int collateral_remove(const BusArgs& bus, const std::vector<std::string>& ids, std::ostream& out,
                      std::ostream& err) {
  auto client = connect(bus);
  if (!client.ok()) return fail(client.error(), err);
  int code = kExitOk;
  for (const std::string& id : ids) {
    auto removed = client->remove_collateral(id);
    if (!removed.ok()) {
      code = fail(removed.error(), err);
      continue;
    }
    out << *removed << "\n";
  }
  return code;
}

}  // namespace confpod::ctl
