#include "attest/snp/report_json.h"

#include <cstdint>
#include <string>

#include "attest/snp/report.h"

namespace confpod::snp {
namespace {

Error bad(const std::string& member, const std::string& what) {
  return make_error("snp.json", "attestation_report." + member + " " + what);
}

Result<std::uint64_t> uint_member(const nlohmann::json& obj, const char* name, std::uint64_t max) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_number_unsigned()) return bad(name, "must be an unsigned integer");
  auto v = it->get<std::uint64_t>();
  if (v > max) return bad(name, "is out of range");
  return v;
}

void put_le(Bytes& out, std::size_t off, std::uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[off + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

Status put_u(Bytes& out, std::size_t off, const nlohmann::json& obj, const char* name,
             std::size_t n) {
  std::uint64_t max = n == 8 ? UINT64_MAX : (std::uint64_t{1} << (8 * n)) - 1;
  CONFPOD_ASSIGN_OR_RETURN(std::uint64_t v, uint_member(obj, name, max));
  put_le(out, off, v, n);
  return ok_status();
}

Status put_array(Bytes& out, std::size_t off, const nlohmann::json& obj, const char* name,
                 std::size_t n) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_array() || it->size() != n)
    return bad(name, "must be an array of " + std::to_string(n) + " bytes");
  for (std::size_t i = 0; i < n; ++i) {
    const auto& b = (*it)[i];
    if (!b.is_number_unsigned() || b.get<std::uint64_t>() > 255)
      return bad(name, "must hold integers 0..255");
    out[off + i] = static_cast<std::uint8_t>(b.get<std::uint64_t>());
  }
  return ok_status();
}

// Optional<u8> members: null, absent or 0..255.
Result<std::optional<std::uint8_t>> opt_u8(const nlohmann::json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return std::optional<std::uint8_t>();
  if (!it->is_number_unsigned() || it->get<std::uint64_t>() > 255)
    return bad(name, "must be null or an integer 0..255");
  return std::optional<std::uint8_t>(static_cast<std::uint8_t>(it->get<std::uint64_t>()));
}

// A TCB: the Turin layout when it carries an FMC SVN, else the Milan/Genoa one.
Status put_tcb(Bytes& out, std::size_t off, const nlohmann::json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_object()) return bad(name, "must be an object");
  TcbVersion tcb;
  CONFPOD_ASSIGN_OR_RETURN(auto bl, uint_member(*it, "bootloader", 255));
  CONFPOD_ASSIGN_OR_RETURN(auto tee, uint_member(*it, "tee", 255));
  CONFPOD_ASSIGN_OR_RETURN(auto snp_svn, uint_member(*it, "snp", 255));
  CONFPOD_ASSIGN_OR_RETURN(auto ucode, uint_member(*it, "microcode", 255));
  CONFPOD_ASSIGN_OR_RETURN(auto fmc, opt_u8(*it, "fmc"));
  tcb.bootloader = static_cast<std::uint8_t>(bl);
  tcb.tee = static_cast<std::uint8_t>(tee);
  tcb.snp = static_cast<std::uint8_t>(snp_svn);
  tcb.microcode = static_cast<std::uint8_t>(ucode);
  tcb.fmc = fmc;
  auto raw = encode_tcb(tcb, fmc ? Product::kTurin : Product::kMilan);
  std::copy(raw.begin(), raw.end(), out.begin() + static_cast<std::ptrdiff_t>(off));
  return ok_status();
}

// Firmware version bytes: build, minor, major.
Status put_version(Bytes& out, std::size_t off, const nlohmann::json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_object()) return bad(name, "must be an object");
  CONFPOD_ASSIGN_OR_RETURN(auto major, uint_member(*it, "major", 255));
  CONFPOD_ASSIGN_OR_RETURN(auto minor, uint_member(*it, "minor", 255));
  CONFPOD_ASSIGN_OR_RETURN(auto build, uint_member(*it, "build", 255));
  out[off] = static_cast<std::uint8_t>(build);
  out[off + 1] = static_cast<std::uint8_t>(minor);
  out[off + 2] = static_cast<std::uint8_t>(major);
  return ok_status();
}

}  // namespace

Result<Bytes> raw_report_from_sev_json(const nlohmann::json& r) {
  if (!r.is_object()) return bad("", "must be an object");
  Bytes out(kReportSize, 0);
  CONFPOD_ASSIGN_OR_RETURN(std::uint64_t version, uint_member(r, "version", UINT32_MAX));
  put_le(out, 0x00, version, 4);
  CONFPOD_TRY(put_u(out, 0x04, r, "guest_svn", 4));
  CONFPOD_TRY(put_u(out, 0x08, r, "policy", 8));
  CONFPOD_TRY(put_array(out, 0x10, r, "family_id", 16));
  CONFPOD_TRY(put_array(out, 0x20, r, "image_id", 16));
  CONFPOD_TRY(put_u(out, 0x30, r, "vmpl", 4));
  CONFPOD_TRY(put_u(out, 0x34, r, "sig_algo", 4));
  CONFPOD_TRY(put_tcb(out, 0x38, r, "current_tcb"));
  CONFPOD_TRY(put_u(out, 0x40, r, "plat_info", 8));
  CONFPOD_TRY(put_u(out, 0x48, r, "key_info", 4));
  CONFPOD_TRY(put_array(out, 0x50, r, "report_data", 64));
  CONFPOD_TRY(put_array(out, 0x90, r, "measurement", 48));
  CONFPOD_TRY(put_array(out, 0xC0, r, "host_data", 32));
  CONFPOD_TRY(put_array(out, 0xE0, r, "id_key_digest", 48));
  CONFPOD_TRY(put_array(out, 0x110, r, "author_key_digest", 48));
  CONFPOD_TRY(put_array(out, 0x140, r, "report_id", 32));
  CONFPOD_TRY(put_array(out, 0x160, r, "report_id_ma", 32));
  CONFPOD_TRY(put_tcb(out, 0x180, r, "reported_tcb"));
  if (version >= 3) {
    CONFPOD_ASSIGN_OR_RETURN(auto fam, opt_u8(r, "cpuid_fam_id"));
    CONFPOD_ASSIGN_OR_RETURN(auto mod, opt_u8(r, "cpuid_mod_id"));
    CONFPOD_ASSIGN_OR_RETURN(auto step, opt_u8(r, "cpuid_step"));
    out[0x188] = fam.value_or(0);
    out[0x189] = mod.value_or(0);
    out[0x18A] = step.value_or(0);
  }
  CONFPOD_TRY(put_array(out, 0x1A0, r, "chip_id", 64));
  CONFPOD_TRY(put_tcb(out, 0x1E0, r, "committed_tcb"));
  CONFPOD_TRY(put_version(out, 0x1E8, r, "current"));
  CONFPOD_TRY(put_version(out, 0x1EC, r, "committed"));
  CONFPOD_TRY(put_tcb(out, 0x1F0, r, "launch_tcb"));
  if (version >= 5) {
    for (auto [name, off] :
         {std::pair{"launch_mit_vector", 0x1F8}, {"current_mit_vector", 0x200}}) {
      auto it = r.find(name);
      if (it != r.end() && !it->is_null()) CONFPOD_TRY(put_u(out, off, r, name, 8));
    }
  }
  auto sig = r.find("signature");
  if (sig == r.end() || !sig->is_object()) return bad("signature", "must be an object");
  CONFPOD_TRY(put_array(out, 0x2A0, *sig, "r", 72));
  CONFPOD_TRY(put_array(out, 0x2E8, *sig, "s", 72));
  return out;
}

nlohmann::json sev_json_from_raw_report(ByteView r) {
  auto le = [&](std::size_t off, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{r[off + i]} << (8 * i);
    return v;
  };
  auto arr = [&](std::size_t off, std::size_t n) {
    return nlohmann::json(Bytes(r.begin() + off, r.begin() + off + n));
  };
  const std::uint64_t v = le(0, 4);
  const bool turin = v >= 3 && r[0x188] == 0x1A;
  auto tcb = [&](std::size_t off) {
    if (turin)
      return nlohmann::json{{"fmc", r[off]},
                            {"bootloader", r[off + 1]},
                            {"tee", r[off + 2]},
                            {"snp", r[off + 3]},
                            {"microcode", r[off + 7]}};
    return nlohmann::json{{"fmc", nullptr},
                          {"bootloader", r[off]},
                          {"tee", r[off + 1]},
                          {"snp", r[off + 6]},
                          {"microcode", r[off + 7]}};
  };
  auto version = [&](std::size_t off) {
    return nlohmann::json{{"major", r[off + 2]}, {"minor", r[off + 1]}, {"build", r[off]}};
  };
  nlohmann::json j = {{"version", v},
                      {"guest_svn", le(0x04, 4)},
                      {"policy", le(0x08, 8)},
                      {"family_id", arr(0x10, 16)},
                      {"image_id", arr(0x20, 16)},
                      {"vmpl", le(0x30, 4)},
                      {"sig_algo", le(0x34, 4)},
                      {"current_tcb", tcb(0x38)},
                      {"plat_info", le(0x40, 8)},
                      {"key_info", le(0x48, 4)},
                      {"report_data", arr(0x50, 64)},
                      {"measurement", arr(0x90, 48)},
                      {"host_data", arr(0xC0, 32)},
                      {"id_key_digest", arr(0xE0, 48)},
                      {"author_key_digest", arr(0x110, 48)},
                      {"report_id", arr(0x140, 32)},
                      {"report_id_ma", arr(0x160, 32)},
                      {"reported_tcb", tcb(0x180)},
                      {"cpuid_fam_id", v >= 3 ? nlohmann::json(r[0x188]) : nlohmann::json()},
                      {"cpuid_mod_id", v >= 3 ? nlohmann::json(r[0x189]) : nlohmann::json()},
                      {"cpuid_step", v >= 3 ? nlohmann::json(r[0x18A]) : nlohmann::json()},
                      {"chip_id", arr(0x1A0, 64)},
                      {"committed_tcb", tcb(0x1E0)},
                      {"current", version(0x1E8)},
                      {"committed", version(0x1EC)},
                      {"launch_tcb", tcb(0x1F0)},
                      {"signature", {{"r", arr(0x2A0, 72)}, {"s", arr(0x2E8, 72)}}}};
  // Version 5 fields only where the report has them, as Trustee's sev crate sends them.
  if (v >= 5) {
    j["launch_mit_vector"] = le(0x1F8, 8);
    j["current_mit_vector"] = le(0x200, 8);
  }
  return j;
}

}  // namespace confpod::snp
