#include "guest/evidence/evidence.h"

#include <fcntl.h>
#include <linux/sev-guest.h>
#include <openssl/rand.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>

#include "attest/snp/report.h"
#include "attest/snp/report_json.h"
#include "attest/tdx/quote.h"

namespace confpod::guest {
namespace {

constexpr std::size_t kReportDataSize = 64;
constexpr std::size_t kMaxQuoteSize = 128u << 10;  // the KBS's bound on a TDX quote
constexpr std::size_t kMaxAuxblob = 1u << 20;      // SNP certificate table
constexpr std::size_t kMaxEventLog = 2u << 20;     // the KBS's bound on cc_eventlog
constexpr std::size_t kMaxCertSize = 16u << 10;    // the KBS's bound on one certificate
constexpr std::size_t kMaxCertEntries = 8;         // the KBS's bound on cert_chain
constexpr std::size_t kMaxCmdline = 64u << 10;
constexpr const char* kTsmReportDir = "/sys/kernel/config/tsm/report";
constexpr const char* kSevGuestDevice = "/dev/sev-guest";
constexpr const char* kTdxGuestDevice = "/dev/tdx_guest";
constexpr const char* kCcelData = "/sys/firmware/acpi/tables/data/CCEL";

Error io_error(const std::string& what) {
  return make_error("evidence.io", what + ": " + std::strerror(errno));
}

// `root` + absolute path, without doubling the slash for root "/".
std::string under(const std::string& root, const std::string& path) {
  std::string r = root;
  while (!r.empty() && r.back() == '/') r.pop_back();
  return r + path;
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now, reporting the error: configfs binary attributes commit on close.
  int close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// Reads until EOF, refusing more than `max` bytes (sysfs/configfs sizes are not real, so the
// size is never taken from stat). ENOENT is reported as "evidence.unavailable".
Result<Bytes> read_all(const std::string& path, std::size_t max) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return make_error("evidence.unavailable", path + " does not exist");
    return io_error("cannot open " + path);
  }
  Bytes out;
  std::array<std::uint8_t, 16384> buf;
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot read " + path);
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max)
      return make_error("evidence.format",
                        path + " holds more than the " + std::to_string(max) + " bytes allowed");
    out.insert(out.end(), buf.begin(), buf.begin() + n);
  }
  return out;
}

Status write_all(const std::string& path, ByteView data) {
  // O_CREAT only matters for a fake tree; configfs attributes always exist.
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  if (fd.get() < 0) return io_error("cannot open " + path);
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot write " + path);
    }
    done += static_cast<std::size_t>(n);
  }
  if (fd.close() != 0) return io_error("cannot write " + path);
  return ok_status();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

Result<Bytes> pad_report_data(ByteView report_data) {
  if (report_data.size() > kReportDataSize)
    return make_error("evidence.format", "report_data is " + std::to_string(report_data.size()) +
                                             " bytes, at most 64 fit a report");
  Bytes out(report_data.begin(), report_data.end());
  out.resize(kReportDataSize, 0);
  return out;
}

std::string default_entry_name() {
  std::array<std::uint8_t, 8> r{};
  if (RAND_bytes(r.data(), static_cast<int>(r.size())) != 1) return {};
  return "confpod-" + std::to_string(::getpid()) + "-" + to_hex(r);
}

TsmEntryNamer namer_or_default(TsmEntryNamer namer) {
  return namer ? std::move(namer) : TsmEntryNamer(default_entry_name);
}

// configfs-tsm --------------------------------------------------------------------------------

struct TsmBlobs {
  Bytes outblob;
  std::optional<Bytes> auxblob;
};

// One configfs-tsm report entry: created on construction (an existing one is used as it is,
// see evidence.h), removed when it goes out of scope. The removal of a fake tree's entry
// fails (it holds files) and is ignored.
class TsmEntry {
 public:
  static Result<TsmEntry> create(const std::string& root, const TsmEntryNamer& namer) {
    const std::string base = under(root, kTsmReportDir);
    if (!is_directory(base))
      return make_error("evidence.unavailable", base + " does not exist (no configfs-tsm)");
    std::string name = namer();
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
      return make_error("evidence.io", "unusable configfs-tsm entry name '" + name + "'");
    std::string dir = base + "/" + name;
    bool created = ::mkdir(dir.c_str(), 0700) == 0;
    if (!created && errno != EEXIST) return io_error("cannot create " + dir);
    return TsmEntry(std::move(dir), created);
  }
  TsmEntry(TsmEntry&& o) noexcept : dir_(std::move(o.dir_)), owned_(o.owned_) { o.owned_ = false; }
  TsmEntry& operator=(TsmEntry&&) = delete;
  ~TsmEntry() {
    if (owned_) ::rmdir(dir_.c_str());
  }
  const std::string& dir() const { return dir_; }
  std::string file(const char* name) const { return dir_ + "/" + name; }

  Result<std::string> provider() const {
    CONFPOD_ASSIGN_OR_RETURN(Bytes p, read_all(file("provider"), 256));
    return trim(std::string(p.begin(), p.end()));
  }
  // The `generation` counter, or nullopt when the (fake) entry has none.
  std::optional<std::string> generation() const {
    auto g = read_all(file("generation"), 64);
    if (!g.ok()) return std::nullopt;
    return trim(std::string(g->begin(), g->end()));
  }

 private:
  TsmEntry(std::string dir, bool owned) : dir_(std::move(dir)), owned_(owned) {}
  std::string dir_;
  bool owned_;
};

// A report for `inblob` (64 bytes) from the configfs-tsm provider `want` ("sev_guest",
// "tdx_guest").
Result<TsmBlobs> tsm_report(const std::string& root, const TsmEntryNamer& namer,
                            const std::string& want, ByteView inblob, std::size_t max_out,
                            bool with_aux) {
  CONFPOD_ASSIGN_OR_RETURN(TsmEntry entry, TsmEntry::create(root, namer));
  CONFPOD_ASSIGN_OR_RETURN(std::string provider, entry.provider());
  if (provider != want)
    return make_error("evidence.unavailable",
                      "configfs-tsm provider is '" + provider + "', not '" + want + "'");
  CONFPOD_TRY(write_all(entry.file("inblob"), inblob));
  auto before = entry.generation();
  TsmBlobs blobs;
  CONFPOD_ASSIGN_OR_RETURN(blobs.outblob, read_all(entry.file("outblob"), max_out));
  if (with_aux) {
    // Optional: a host that provides no certificates gives an empty or absent auxblob.
    auto aux = read_all(entry.file("auxblob"), kMaxAuxblob);
    if (aux.ok() && !aux->empty())
      blobs.auxblob = std::move(aux).value();
    else if (!aux.ok() && aux.error().code != "evidence.unavailable")
      return aux.take_error();
  }
  // Someone else writing the entry between our write and reads would change the report.
  if (before != entry.generation())
    return make_error("evidence.io", entry.dir() + " changed while the report was read");
  return blobs;
}

// SNP -----------------------------------------------------------------------------------------

// The GHCB certificate table (SNP extended report / configfs-tsm auxblob): 24-byte entries
// {GUID, offset u32, length u32} ending with an all-zero entry; offsets from the table start.
// Returns the KBS cert_chain (VCEK, VLEK, ASK, ARK; other GUIDs are skipped), null if empty.
Result<nlohmann::json> cert_chain_from_table(ByteView table) {
  struct Known {
    std::array<std::uint8_t, 16> guid;
    const char* type;
  };
  // The GUIDs in RFC 4122 byte order; the little-endian (EFI) order is accepted too, since
  // tools disagree and the GUIDs cannot collide either way.
  static constexpr std::array<Known, 4> kKnown = {{
      {{0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac,
        0xcd},
       "VCEK"},
      {{0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e, 0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8,
        0xa1},
       "VLEK"},
      {{0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4, 0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7,
        0x82},
       "ASK"},
      {{0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52, 0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0,
        0xae},
       "ARK"},
  }};
  auto le_form = [](const std::array<std::uint8_t, 16>& g) {
    std::array<std::uint8_t, 16> o = g;
    std::reverse(o.begin(), o.begin() + 4);
    std::reverse(o.begin() + 4, o.begin() + 6);
    std::reverse(o.begin() + 6, o.begin() + 8);
    return o;
  };
  nlohmann::json chain = nlohmann::json::array();
  for (std::size_t off = 0;; off += 24) {
    if (off + 24 > table.size())
      return make_error("evidence.format", "SNP certificate table has no terminating entry");
    ByteView guid = table.subspan(off, 16);
    if (is_all_zero(guid)) break;
    std::uint32_t at = load_le32(table.data() + off + 16);
    std::uint32_t len = load_le32(table.data() + off + 20);
    if (static_cast<std::uint64_t>(at) + len > table.size())
      return make_error("evidence.format", "SNP certificate table entry at " + std::to_string(off) +
                                               " points outside the table");
    const char* type = nullptr;
    for (const auto& k : kKnown) {
      auto le = le_form(k.guid);
      if (std::equal(guid.begin(), guid.end(), k.guid.begin()) ||
          std::equal(guid.begin(), guid.end(), le.begin()))
        type = k.type;
    }
    if (!type) continue;
    if (len == 0 || len > kMaxCertSize)
      return make_error("evidence.format", std::string("SNP ") + type + " certificate of " +
                                               std::to_string(len) + " bytes");
    if (chain.size() == kMaxCertEntries)
      return make_error("evidence.format", "SNP certificate table has too many entries");
    chain.push_back({{"cert_type", type}, {"data", to_base64(table.subspan(at, len))}});
  }
  if (chain.empty()) return nlohmann::json(nullptr);
  return chain;
}

Result<snp::Report> parse_snp(ByteView raw) {
  if (raw.size() != snp::kReportSize)
    return make_error("evidence.format", "SEV-SNP report is " + std::to_string(raw.size()) +
                                             " bytes, expected " +
                                             std::to_string(snp::kReportSize));
  auto r = snp::parse_report(raw);
  if (!r.ok()) return make_error("evidence.format", r.error().describe());
  return std::move(r).value();
}

// The source of raw SNP reports: configfs-tsm or the sev-guest ioctl.
class SnpProvider : public EvidenceProvider {
 public:
  std::string tee() const override { return "snp"; }

  Result<Bytes> init_data_digest() override {
    if (!digest_) {
      Bytes zero(kReportDataSize, 0);
      CONFPOD_ASSIGN_OR_RETURN(Raw raw, report(zero));
      CONFPOD_ASSIGN_OR_RETURN(snp::Report r, parse_snp(raw.report));
      digest_ = Bytes(r.host_data.begin(), r.host_data.end());
    }
    return *digest_;
  }

  Result<nlohmann::json> evidence(ByteView report_data) override {
    CONFPOD_ASSIGN_OR_RETURN(Bytes rd, pad_report_data(report_data));
    CONFPOD_ASSIGN_OR_RETURN(Raw raw, report(rd));
    CONFPOD_TRY(parse_snp(raw.report));
    nlohmann::json chain(nullptr);
    if (raw.certs) {
      CONFPOD_ASSIGN_OR_RETURN(chain, cert_chain_from_table(*raw.certs));
    }
    // Trustee's shape (its SNP attester): the report as the sev crate serializes it.
    return nlohmann::json{{"attestation_report", snp::sev_json_from_raw_report(raw.report)},
                          {"cert_chain", chain}};
  }

 protected:
  struct Raw {
    Bytes report;
    std::optional<Bytes> certs;  // the certificate table, when the interface gives one
  };
  virtual Result<Raw> report(ByteView report_data64) = 0;

 private:
  std::optional<Bytes> digest_;
};

class SnpTsmProvider final : public SnpProvider {
 public:
  SnpTsmProvider(std::string root, TsmEntryNamer namer)
      : root_(std::move(root)), namer_(std::move(namer)) {}

 protected:
  Result<Raw> report(ByteView rd) override {
    CONFPOD_ASSIGN_OR_RETURN(TsmBlobs b, tsm_report(root_, namer_, "sev_guest", rd, 4000, true));
    return Raw{std::move(b.outblob), std::move(b.auxblob)};
  }

 private:
  std::string root_;
  TsmEntryNamer namer_;
};

// /dev/sev-guest, SNP_GET_REPORT (kernels before configfs-tsm). No certificates: the KBS
// supplies the VCEK itself.
class SnpIoctlProvider final : public SnpProvider {
 public:
  explicit SnpIoctlProvider(std::string root) : device_(under(root, kSevGuestDevice)) {}

 protected:
  Result<Raw> report(ByteView rd) override {
    snp_report_req req{};
    std::memcpy(req.user_data, rd.data(), sizeof req.user_data);
    req.vmpl = 0;
    snp_report_resp resp{};
    snp_guest_request_ioctl io{};
    io.msg_version = 1;
    io.req_data = reinterpret_cast<std::uintptr_t>(&req);
    io.resp_data = reinterpret_cast<std::uintptr_t>(&resp);
    Fd fd(::open(device_.c_str(), O_RDWR | O_CLOEXEC));
    if (fd.get() < 0) return io_error("cannot open " + device_);
    if (::ioctl(fd.get(), SNP_GET_REPORT, &io) != 0)
      return make_error("evidence.io", "SNP_GET_REPORT on " + device_ +
                                           " failed: " + std::strerror(errno) +
                                           " (firmware error " + hex_number(io.fw_error) +
                                           ", VMM error " + hex_number(io.vmm_error) + ")");
    // MSG_REPORT_RSP: status u32, report_size u32, 24 reserved bytes, then the report.
    const std::uint8_t* p = resp.data;
    std::uint32_t status = load_le32(p);
    std::uint32_t size = load_le32(p + 4);
    if (status != 0)
      return make_error("evidence.io",
                        "SNP firmware refused the report: status " + hex_number(status));
    if (size < snp::kReportSize || size > sizeof resp.data - 32)
      return make_error("evidence.format",
                        "SNP report response of " + std::to_string(size) + " bytes");
    return Raw{Bytes(p + 32, p + 32 + snp::kReportSize), std::nullopt};
  }

 private:
  std::string device_;
};

// TDX -----------------------------------------------------------------------------------------

class TdxTsmProvider final : public EvidenceProvider {
 public:
  TdxTsmProvider(std::string root, TsmEntryNamer namer)
      : root_(std::move(root)), namer_(std::move(namer)) {}
  std::string tee() const override { return "tdx"; }

  Result<Bytes> init_data_digest() override {
    if (!digest_) {
      Bytes zero(kReportDataSize, 0);
      CONFPOD_ASSIGN_OR_RETURN(Bytes raw, quote(zero));
      CONFPOD_ASSIGN_OR_RETURN(tdx::Quote q, parse(raw));
      digest_ = Bytes(q.body.mr_config_id.begin(), q.body.mr_config_id.end());
    }
    return *digest_;
  }

  Result<nlohmann::json> evidence(ByteView report_data) override {
    CONFPOD_ASSIGN_OR_RETURN(Bytes rd, pad_report_data(report_data));
    CONFPOD_ASSIGN_OR_RETURN(Bytes raw, quote(rd));
    CONFPOD_TRY(parse(raw));
    nlohmann::json log(nullptr);
    // The CC event log, as Trustee's attester sends it; the KBS does not replay it yet, so a
    // missing or oversized log is left out rather than failing the evidence.
    if (auto ccel = read_all(under(root_, kCcelData), kMaxEventLog); ccel.ok() && !ccel->empty())
      log = to_base64(*ccel);
    return nlohmann::json{{"quote", to_base64(raw)}, {"cc_eventlog", log}};
  }

 private:
  Result<Bytes> quote(ByteView rd) {
    CONFPOD_ASSIGN_OR_RETURN(TsmBlobs b,
                             tsm_report(root_, namer_, "tdx_guest", rd, kMaxQuoteSize, false));
    return std::move(b.outblob);
  }
  static Result<tdx::Quote> parse(ByteView raw) {
    auto q = tdx::parse_quote(raw);
    if (!q.ok()) return make_error("evidence.format", "TDX quote: " + q.error().describe());
    return std::move(q).value();
  }

  std::string root_;
  TsmEntryNamer namer_;
  std::optional<Bytes> digest_;
};

// sample --------------------------------------------------------------------------------------

class SampleProvider final : public EvidenceProvider {
 public:
  explicit SampleProvider(std::string root) : cmdline_(under(root, "/proc/cmdline")) {}
  std::string tee() const override { return "sample"; }

  Result<Bytes> init_data_digest() override {
    CONFPOD_ASSIGN_OR_RETURN(Bytes raw, read_all(cmdline_, kMaxCmdline));
    const std::string text(raw.begin(), raw.end());
    const std::string key = std::string(kSampleDigestParameter) + "=";
    std::optional<std::string> value;
    std::size_t i = 0;
    while (i < text.size()) {
      std::size_t start = text.find_first_not_of(" \t\n", i);
      if (start == std::string::npos) break;
      std::size_t end = text.find_first_of(" \t\n", start);
      if (end == std::string::npos) end = text.size();
      std::string_view word(text.data() + start, end - start);
      if (word.substr(0, key.size()) == key) {
        if (value)
          return make_error("evidence.format",
                            std::string(kSampleDigestParameter) + " is given more than once");
        value = std::string(word.substr(key.size()));
      }
      i = end;
    }
    if (!value)
      return make_error("evidence.unavailable", std::string("the kernel command line has no ") +
                                                    kSampleDigestParameter + "=<64 hex>");
    bool hex = value->size() == 64 && std::all_of(value->begin(), value->end(), [](char c) {
                 return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
               });
    if (!hex)
      return make_error("evidence.format", std::string(kSampleDigestParameter) +
                                               " must be 64 hex digits, got '" +
                                               value->substr(0, 80) + "'");
    return from_hex(*value);
  }

  Result<nlohmann::json> evidence(ByteView report_data) override {
    if (report_data.size() > kReportDataSize)
      return make_error("evidence.format", "report_data is " + std::to_string(report_data.size()) +
                                               " bytes, at most 64");
    // As Trustee's sample attester sends it; the KBS compares report_data with the digest.
    return nlohmann::json{{"svn", "1"}, {"report_data", to_base64(report_data)}};
  }

 private:
  std::string cmdline_;
};

std::unique_ptr<EvidenceProvider> snp_provider(const std::string& root, TsmEntryNamer namer) {
  if (is_directory(under(root, kTsmReportDir)))
    return std::make_unique<SnpTsmProvider>(root, std::move(namer));
  if (exists(under(root, kSevGuestDevice))) return std::make_unique<SnpIoctlProvider>(root);
  return nullptr;
}

}  // namespace

Result<std::unique_ptr<EvidenceProvider>> make_evidence_provider(const std::string& tee,
                                                                 const std::string& root) {
  return make_evidence_provider(tee, root, TsmEntryNamer());
}

Result<std::unique_ptr<EvidenceProvider>> make_evidence_provider(const std::string& tee,
                                                                 const std::string& root,
                                                                 TsmEntryNamer namer) {
  namer = namer_or_default(std::move(namer));
  if (tee == "none" || tee == "sample")
    return std::unique_ptr<EvidenceProvider>(std::make_unique<SampleProvider>(root));
  if (tee == "snp") {
    if (auto p = snp_provider(root, std::move(namer))) return p;
    return make_error("evidence.unavailable", "no SEV-SNP report interface: neither " +
                                                  under(root, kTsmReportDir) + " nor " +
                                                  under(root, kSevGuestDevice));
  }
  if (tee == "tdx") {
    if (is_directory(under(root, kTsmReportDir)))
      return std::unique_ptr<EvidenceProvider>(
          std::make_unique<TdxTsmProvider>(root, std::move(namer)));
    return make_error("evidence.unavailable",
                      "no TDX quote interface: " + under(root, kTsmReportDir) +
                          " does not exist (configfs-tsm, Linux 6.7+)");
  }
  return make_error("evidence.unavailable", "unknown tee '" + tee + "'");
}

Result<std::unique_ptr<EvidenceProvider>> detect_evidence_provider(const std::string& root) {
  return detect_evidence_provider(root, TsmEntryNamer());
}

Result<std::unique_ptr<EvidenceProvider>> detect_evidence_provider(const std::string& root,
                                                                   TsmEntryNamer namer) {
  namer = namer_or_default(std::move(namer));
  // configfs-tsm names its provider only inside an entry: make one and look.
  if (is_directory(under(root, kTsmReportDir))) {
    auto entry = TsmEntry::create(root, namer);
    if (entry.ok()) {
      auto provider = entry->provider();
      if (provider.ok() && *provider == "sev_guest")
        return std::unique_ptr<EvidenceProvider>(
            std::make_unique<SnpTsmProvider>(root, std::move(namer)));
      if (provider.ok() && *provider == "tdx_guest")
        return std::unique_ptr<EvidenceProvider>(
            std::make_unique<TdxTsmProvider>(root, std::move(namer)));
    }
  }
  if (exists(under(root, kSevGuestDevice)))
    return std::unique_ptr<EvidenceProvider>(std::make_unique<SnpIoctlProvider>(root));
  if (exists(under(root, kTdxGuestDevice)))
    return make_error("evidence.unavailable",
                      "this is a TDX guest (" + under(root, kTdxGuestDevice) +
                          ") but configfs-tsm (" + under(root, kTsmReportDir) +
                          ") gives no tdx_guest report; TDX quotes need it");
  return std::unique_ptr<EvidenceProvider>(std::make_unique<SampleProvider>(root));
}

std::size_t init_data_digest_size(const std::string& tee) {
  if (tee == "snp" || tee == "none" || tee == "sample") return 32;
  if (tee == "tdx") return 48;
  return 0;
}

}  // namespace confpod::guest
